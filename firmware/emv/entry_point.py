"""Entry point: the PPSE directory, the candidate list, pre-processing against the amount.

EMV Contactless Book B in short: read the directory entries (61 / 4F / 50 / 87 / 9F2A), keep those
the AID table supports, order them by the phone's priority (then the table's), and for each one
decide from the amount whether contactless is allowed, whether an online cryptogram and
cardholder verification are required, and the TTQ to send. Pure functions; no card I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.emv import tlv
from firmware.emv.aids import AidConfig, AidTable
from firmware.emv.outcome import TerminalTransaction


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


class PpseError(ValueError):
    """The PPSE answer is not a usable directory."""


def parse_ppse(fci: bytes) -> list[DirectoryEntry]:
    """Directory entries of a SELECT PPSE answer (6F / A5 / BF0C / 61...)."""
    objs = tlv.decode(fci)
    if len(objs) != 1 or objs[0].tag != b"\x6f":
        raise PpseError("PPSE answer is not an FCI template (6F)")
    directory = tlv.find(objs, b"\xbf\x0c")
    if directory is None:
        raise PpseError("PPSE answer has no directory (BF0C)")
    entries: list[DirectoryEntry] = []
    for obj in directory.children:
        if obj.tag != b"\x61":
            continue
        values = {c.tag: c.value for c in obj.children}
        aid = values.get(b"\x4f", b"")
        if not 5 <= len(aid) <= 16:
            continue  # an entry without a usable AID is skipped, as Book B says
        prio = values.get(b"\x87", b"\x00")
        kid = values.get(b"\x9f\x2a")
        label = values.get(b"\x50", b"").decode("ascii", "replace")
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
) -> Candidate | None:
    """Book B pre-processing for one application; None when contactless is not allowed."""
    limits = config.limits_for(txn.currency)
    amount = txn.amount
    if amount > limits.contactless_txn_limit:
        return None
    if amount == 0 and config.zero_amount == "not_allowed":
        return None
    online = amount > limits.floor_limit or amount == 0 or offline_exhausted
    cvm = amount > limits.cvm_required_limit
    ttq = bytearray(config.ttq)
    ttq[1] &= 0x3F
    if online:
        ttq[1] |= 0x80
    if cvm:
        ttq[1] |= 0x40
    return Candidate(entry, config, online, cvm, bytes(ttq))


def candidates(
    entries: list[DirectoryEntry],
    table: AidTable,
    txn: TerminalTransaction,
    offline_exhausted: dict[bytes, bool] | None = None,
) -> tuple[list[Candidate], list[str]]:
    """Ordered candidates, and why others were left out (for the outcome's reason)."""
    kept: list[tuple[int, int, int, Candidate]] = []
    skipped: list[str] = []
    for position, entry in enumerate(entries):
        config = table.find(entry.aid)
        if config is None:
            skipped.append(f"{entry.aid.hex().upper()} not supported")
            continue
        if not _kernel_supported(entry, config):
            skipped.append(f"{entry.aid.hex().upper()} asks for kernel {entry.kernel_id}")
            continue
        exhausted = bool(offline_exhausted and offline_exhausted.get(config.aid))
        cand = preprocess(entry, config, txn, exhausted)
        if cand is None:
            skipped.append(f"{config.label}: amount not allowed contactless")
            continue
        prio = entry.priority or 16
        kept.append((prio, config.priority, position, cand))
    kept.sort(key=lambda k: k[:3])
    return [k[3] for k in kept], skipped
