"""The contactless kernel: one tap in, one Outcome out, whatever the phone does.

`Kernel.process(card, txn)` orchestrates the EMV steps, each in its own module: application
selection (PPSE, entry point's candidates, SELECT AID), initiation (GET PROCESSING OPTIONS),
records (READ RECORD), then the flow the AID table names. Visa-style qVSDC (kernel 3): the
cryptogram from the GPO answer, cardholder verification by CTQ, card action analysis with fDDA.
Mastercard-style M/Chip (kernel 2) and the generic EMV path (kernel 0, e.g. RuPay): processing
restrictions, cardholder verification, terminal risk management, offline data authentication,
terminal action analysis, GENERATE AC, the CDA check, card action analysis. The steps never
import this module. It never raises: a removed card, a wrong status word, malformed or missing
data each end in a defined Outcome with a human reason and a Prompt. Card data (PAN, track 2)
goes only into Outcome fields, never into log messages. The card is reached only through
`card.transceive(bytes) -> bytes`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Protocol

from drivers.nfc import CardRemoved
from firmware.config import Config, ConfigError, shipped_config_dir
from firmware.emv import (
    action_analysis,
    apdu,
    capk,
    card_action,
    cryptogram,
    cvm,
    data_authentication,
    initiation,
    records,
    restrictions,
    risk_management,
    selection,
    tlv,
)
from firmware.emv.aids import AidTable, load_aid_table
from firmware.emv.flags import CryptogramType
from firmware.emv.outcome import Outcome, OutcomeKind, Prompt, TerminalTransaction
from firmware.emv.session import Session
from firmware.emv.tags import Tag
from firmware.emv.verdict import FlowEnd, Verdict, card_error

log = logging.getLogger(__name__)

# A phone may stretch each answer with S(WTX) (nfcpy honours it); the tap as a whole gets this
# long before the kernel stops sending commands and asks for the phone again.
TAP_BUDGET_S = 5.0


class OfflineCounts(Protocol):
    """Where the consecutive offline approvals per AID are counted (a dict in memory, or the
    journal's counters, which survive restarts: firmware.journal.Journal.offline_approvals)."""

    def get(self, aid: bytes, default: int) -> int: ...
    def __setitem__(self, aid: bytes, count: int) -> None: ...


class Kernel:
    """The terminal's EMV contactless kernel, configured from the AID table and the CA keys."""

    def __init__(self, table: AidTable, keys: capk.CaKeyStore) -> None:
        self.table = table
        self.keys = keys
        # consecutive offline approvals per AID; `count_offline_in` puts them somewhere durable
        self._offline_counts: OfflineCounts = {}
        self.tap_budget_s = TAP_BUDGET_S
        self._lock = threading.Lock()

    # ---- configuration ------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Config) -> Kernel:
        """Load `kernel.aid_table` and `kernel.capk_file`; ConfigError on bad data or test keys
        in production mode."""
        kcfg = cfg.kernel
        table = load_aid_table(cfg.data_path(kcfg.aid_table))
        store = _load_ca_keys(cfg)
        if kcfg.floor_limit_override >= 0:
            table = _with_floor_limit(table, kcfg.floor_limit_override)
        return cls(table, store)

    # ---- the one public operation -------------------------------------------------------
    def process(self, card: apdu.CardLink, txn: TerminalTransaction) -> Outcome:
        """Run one tap to an Outcome. Never raises."""
        session = Session(txn)
        try:
            out = self._run(_BudgetedLink(card, self.tap_budget_s), session)
        except Exception as exc:  # noqa: BLE001 - the contract: nothing escapes the kernel
            out = _fault_outcome(session, exc)
        self._count(out)
        log.info("outcome %s: %s", out.kind.value, out.reason)
        return out

    # ---- offline approvals per AID ------------------------------------------------------
    def count_offline_in(self, counts: OfflineCounts) -> None:
        """Count consecutive offline approvals in `counts` (the journal's: they survive a
        restart, so a power cut does not reset the cap) instead of in memory."""
        with self._lock:
            self._offline_counts = counts

    def _count(self, out: Outcome) -> None:
        with self._lock:
            now = self._offline_counts.get(out.aid, 0)
            if out.kind is OutcomeKind.APPROVED:
                self._offline_counts[out.aid] = now + 1
            elif out.kind is OutcomeKind.ONLINE_REQUEST and now:
                self._offline_counts[out.aid] = 0

    def _offline_exhausted(self) -> dict[bytes, bool]:
        with self._lock:
            return {
                e.aid: self._offline_counts.get(e.aid, 0) >= e.max_offline_approvals
                for e in self.table.entries
            }

    # ---- the steps, in order ------------------------------------------------------------
    def _run(self, card: apdu.CardLink, s: Session) -> Outcome:
        entries = selection.read_directory(card)
        cands = selection.choose(entries, self.table, s.txn, self._offline_exhausted())
        reasons: list[str] = []
        for cand in cands:
            s = Session(s.txn)
            s.start(cand)
            try:
                out = s.outcome(self._application(card, s))
            except Exception as exc:  # noqa: BLE001 - turned into this application's outcome
                out = _fault_outcome(s, exc)
            if out.kind is not OutcomeKind.SELECT_NEXT:
                return out
            reasons.append(out.reason)
        raise FlowEnd(
            OutcomeKind.END_APPLICATION, "no application could be used: " + "; ".join(reasons)
        )

    def _application(self, card: apdu.CardLink, s: Session) -> Verdict:
        selection.select_application(card, s)
        initiation.get_processing_options(card, s)
        records.read_records(card, s, s.card.get(Tag.AFL, b""))
        kernel = s.candidate.config.kernel
        if kernel == 3 or (kernel == 0 and Tag.APPLICATION_CRYPTOGRAM in s.card):
            return self._qvsdc(s)
        return self._generate_ac(card, s)

    def _qvsdc(self, s: Session) -> Verdict:
        """Kernel 3 (and generic cards that answer GPO with a cryptogram)."""
        cryptogram.from_gpo(s)
        cvm.by_ctq(s, CryptogramType.of(s.cid))
        return card_action.after_gpo(self.keys, s)

    def _generate_ac(self, card: apdu.CardLink, s: Session) -> Verdict:
        """Kernel 2 and the generic path."""
        s.need(Tag.CDOL1)
        if not s.track2() and Tag.PAN not in s.card:
            raise card_error("card data missing: PAN / track 2")
        restrictions.check(s)
        cvm.by_aip(s)
        aid = s.candidate.config.aid
        risk_management.manage(s, bool(self._offline_exhausted().get(aid)))
        icc_key, cda_failure = data_authentication.before_generate_ac(self.keys, card, s)
        asked = action_analysis.requested_cryptogram(s)
        cda = icc_key is not None and asked is not CryptogramType.AAC
        signed_tlvs = cryptogram.generate_ac(card, s, asked, cda)
        return card_action.after_generate_ac(s, icc_key if cda else None, signed_tlvs, cda_failure)


def _fault_outcome(s: Session, exc: Exception) -> Outcome:
    """The outcome for anything that stopped a flow (never raises itself)."""
    try:
        return s.outcome(_fault_verdict(exc))
    except Exception as inner:  # noqa: BLE001 - building the outcome itself failed
        log.error("kernel fault while building an outcome: %s", type(inner).__name__)
        return Outcome(
            kind=OutcomeKind.END_APPLICATION,
            reason=f"kernel fault ({type(inner).__name__})",
            ui_message=Prompt.CARD_ERROR.text,
            prompt=Prompt.CARD_ERROR,
        )


def _fault_verdict(exc: Exception) -> Verdict:
    if isinstance(exc, FlowEnd):
        return exc.verdict
    if isinstance(exc, CardRemoved):
        return Verdict(OutcomeKind.TRY_AGAIN, f"card left the field: {exc}", Prompt.TRY_AGAIN)
    if isinstance(exc, apdu.CardError):
        return card_error(f"card answer unusable: {exc}").verdict
    if isinstance(exc, tlv.TlvError):
        return card_error(f"malformed card data: {exc}").verdict
    log.error("kernel fault: %s at %s", type(exc).__name__, _where(exc))
    return card_error(f"kernel fault ({type(exc).__name__})").verdict


def _load_ca_keys(cfg: Config) -> capk.CaKeyStore:
    """The CA keys (and revocations) the configuration names; test keys marked, refused in
    production mode."""
    kcfg = cfg.kernel
    capk_path = cfg.data_path(kcfg.capk_file)
    try:
        store = capk.load_file(capk_path)
        if kcfg.capk_revoked:
            capk.load_revocation_list(cfg.data_path(kcfg.capk_revoked), store)
    except capk.CapkFileError as exc:
        raise ConfigError(f"kernel.capk_file: {exc}") from None
    store.mark_test_keys(
        capk.load_public_test_moduli(shipped_config_dir() / "capk" / "public-test-keys.txt")
    )
    test_keys = [k for k in store.keys.values() if k.test]
    if cfg.mode == "production" and test_keys:
        k = test_keys[0]
        raise ConfigError(
            f"{capk_path}: kernel.capk_file: production mode refuses test CA key "
            f"{k.rid.hex().upper()} #{k.index:02X} ({k.where}); configure the live keys"
        )
    return store


def _with_floor_limit(table: AidTable, floor_limit: int) -> AidTable:
    """The table with every floor limit (also per currency) set to `floor_limit`."""
    entries = []
    for e in table.entries:
        lim = dataclasses.replace(e.limits, floor_limit=floor_limit)
        per = {
            c: dataclasses.replace(v, floor_limit=floor_limit)
            for c, v in e.currency_limits.items()
        }
        entries.append(dataclasses.replace(e, limits=lim, currency_limits=per))
    return AidTable(tuple(entries))


class _BudgetedLink:
    """The card, refusing to send another command once the tap has run out of time."""

    def __init__(self, card: apdu.CardLink, budget_s: float) -> None:
        self.card = card
        self.deadline = time.monotonic() + budget_s
        self.budget_s = budget_s

    def transceive(self, command: bytes) -> bytes:
        if time.monotonic() > self.deadline:
            raise FlowEnd(
                OutcomeKind.TRY_AGAIN,
                f"phone too slow: tap took longer than {self.budget_s:g} s",
                Prompt.TRY_AGAIN,
            )
        return self.card.transceive(command)


def _where(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
