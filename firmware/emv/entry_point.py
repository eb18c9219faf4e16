"""Entry point: the PPSE directory, the candidate list, pre-processing against the amount.

EMV Contactless Book B in short: read the directory entries (61 / 4F / 50 / 87 / 9F2A), keep those
the AID table supports, order them by the phone's priority (then the table's), and for each one
decide from the amount whether contactless is allowed, whether an online cryptogram and
cardholder verification are required, and the TTQ to send. An application left out comes back
as a `Skipped` with a typed `SkipReason` (its text is for the outcome's reason). Pure functions;
no card I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from firmware.emv import tlv
from firmware.emv.aids import AidConfig, AidTable
from firmware.emv.flags import Ttq
from firmware.emv.outcome import TerminalTransaction
from firmware.emv.tags import Tag
from firmware.errors import PitapError
from firmware.payment import TxnType


@dataclass(frozen=True)
class DirectoryEntry:
    aid: bytes
    label: str
    priority: int  # 87 low nibble; 0 = none given
    kernel_id: int | None  # 9F2A first byte, None when absent


@dataclass(frozen=True)
class Candidate:
    entry: DirectoryEntry
    config: AidConfig
    online_required: bool
    cvm_required: bool
    ttq: bytes


class SkipReason(Enum):
    """Why entry point left an application of the directory out."""

    NOT_SUPPORTED = "not_supported"  # not in the AID table
    OTHER_KERNEL = "other_kernel"  # the card names a kernel the table's entry is not
    OVER_CONTACTLESS_LIMIT = "over_contactless_limit"  # amount above the contactless limit
    ZERO_AMOUNT_REFUSED = "zero_amount_refused"  # amount 0 and the entry says not_allowed

    @property
    def amount(self) -> bool:
        """The amount, not the application, kept it out (another interface may take it)."""
        return self in (SkipReason.OVER_CONTACTLESS_LIMIT, SkipReason.ZERO_AMOUNT_REFUSED)


@dataclass(frozen=True)
class Skipped:
    """One application entry point left out; str() is the human reason."""

    aid: bytes
    why: SkipReason
    text: str

    def __str__(self) -> str:
        return self.text


class PpseError(PitapError, ValueError):
    """The PPSE answer is not a usable directory."""


def parse_ppse(fci: bytes) -> list[DirectoryEntry]:
    """Directory entries of a SELECT PPSE answer (6F / A5 / BF0C / 61...)."""
    objs = tlv.decode(fci)
    if len(objs) != 1 or objs[0].tag != Tag.FCI_TEMPLATE:
        raise PpseError("PPSE answer is not an FCI template (6F)")
    directory = tlv.find(objs, Tag.FCI_ISSUER_DISCRETIONARY_DATA)
    if directory is None:
        raise PpseError("PPSE answer has no directory (BF0C)")
    entries: list[DirectoryEntry] = []
    for obj in directory.children:
        if obj.tag != Tag.APPLICATION_TEMPLATE:
            continue
        values = {c.tag: c.value for c in obj.children}
        aid = values.get(Tag.APPLICATION_IDENTIFIER, b"")
        if not 5 <= len(aid) <= 16:
            continue  # an entry without a usable AID is skipped, as Book B says
        prio = values.get(Tag.APPLICATION_PRIORITY_INDICATOR, b"\x00")
        kid = values.get(Tag.KERNEL_IDENTIFIER)
        label = values.get(Tag.APPLICATION_LABEL, b"").decode("ascii", "replace")
        entries.append(
            DirectoryEntry(
                aid=aid,
                label=label[:16],
                priority=(prio[0] & 0x0F) if len(prio) == 1 else 0,
                kernel_id=kid[0] if kid else None,
            )
        )
    return entries


def _kernel_supported(entry: DirectoryEntry, config: AidConfig) -> bool:
    if config.kernel == 0 or entry.kernel_id in (None, 0):
        return True
    return entry.kernel_id == config.kernel


def preprocess(
    entry: DirectoryEntry, config: AidConfig, txn: TerminalTransaction, offline_exhausted: bool
) -> Candidate | SkipReason:
    """Book B pre-processing for one application; the SkipReason when contactless is refused."""
    limits = config.limits_for(txn.currency)
    amount = txn.amount
    if amount > limits.contactless_txn_limit:
        return SkipReason.OVER_CONTACTLESS_LIMIT
    if amount == 0 and config.zero_amount == "not_allowed":
        return SkipReason.ZERO_AMOUNT_REFUSED
    # A pre-authorization holds funds at the issuer: always online (an ARQC), never a TC.
    online = (amount > limits.floor_limit or amount == 0 or offline_exhausted
              or txn.txn_type is TxnType.PREAUTH)
    cvm = amount > limits.cvm_required_limit
    decided = Ttq.ONLINE_CRYPTOGRAM_REQUIRED | Ttq.CVM_REQUIRED
    ttq = (Ttq.of(config.ttq) | decided) ^ decided  # both cleared, RFU bits kept
    if online:
        ttq |= Ttq.ONLINE_CRYPTOGRAM_REQUIRED
    if cvm:
        ttq |= Ttq.CVM_REQUIRED
    return Candidate(entry, config, online, cvm, ttq.encoded())


def candidates(
    entries: list[DirectoryEntry],
    table: AidTable,
    txn: TerminalTransaction,
    offline_exhausted: dict[bytes, bool] | None = None,
) -> tuple[list[Candidate], list[Skipped]]:
    """Ordered candidates, and why others were left out."""
    kept: list[tuple[int, int, int, Candidate]] = []
    skipped: list[Skipped] = []
    for position, entry in enumerate(entries):
        name = entry.aid.hex().upper()
        config = table.find(entry.aid)
        if config is None:
            skipped.append(Skipped(entry.aid, SkipReason.NOT_SUPPORTED, f"{name} not supported"))
            continue
        if not _kernel_supported(entry, config):
            text = f"{name} asks for kernel {entry.kernel_id}"
            skipped.append(Skipped(entry.aid, SkipReason.OTHER_KERNEL, text))
            continue
        exhausted = bool(offline_exhausted and offline_exhausted.get(config.aid))
        cand = preprocess(entry, config, txn, exhausted)
        if isinstance(cand, SkipReason):
            text = f"{config.label}: amount not allowed contactless"
            skipped.append(Skipped(entry.aid, cand, text))
            continue
        prio = entry.priority or 16
        kept.append((prio, config.priority, position, cand))
    kept.sort(key=lambda k: k[:3])
    return [k[3] for k in kept], skipped
