"""The contactless kernel: one tap in, one Outcome out, whatever the phone does.

`Kernel.process(card, txn)` runs entry point (PPSE, candidates, pre-processing), then the flow the
AID table names: Visa-style qVSDC (kernel 3: cryptogram in the GPO answer, fDDA when offline),
Mastercard-style M/Chip (kernel 2: records, GENERATE AC with CDOL1, CDA, "see phone"), or the
generic EMV path (kernel 0, e.g. RuPay). It never raises: a removed card, a wrong status word,
malformed or missing data each end in a defined Outcome with a human reason. Card data (PAN,
track 2) goes only into Outcome fields, never into log messages. The card is reached only through
`card.transceive(bytes) -> bytes`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field

from drivers.nfc import CardRemoved
from firmware.config import Config, ConfigError, shipped_config_dir
from firmware.emv import apdu, capk, dol, flows, tlv
from firmware.emv.aids import AidTable, load_aid_table
from firmware.emv.entry_point import Candidate, PpseError, candidates, parse_ppse
from firmware.emv.outcome import Outcome, OutcomeKind, TerminalTransaction

log = logging.getLogger(__name__)

SEE_PHONE = "See phone"
MAX_RECORDS = 64
# A phone may stretch each answer with S(WTX) (nfcpy honours it); the tap as a whole gets this
# long before the kernel stops sending commands and asks for the phone again.
TAP_BUDGET_S = 5.0

T = bytes.fromhex  # tag spelling: T("9F26")

# Field 55 content, in this order; 9F66 / 9F6C / 9F6E / 5F34 only when present.
FIELD55_TAGS = [
    T(t)
    for t in [
        "9F26",
        "9F27",
        "9F10",
        "9F37",
        "9F36",
        "95",
        "9A",
        "9C",
        "9F02",
        "9F03",
        "5F2A",
        "82",
        "9F1A",
        "84",
        "9F33",
        "9F34",
        "9F35",
        "9F66",
        "9F6C",
        "9F6E",
        "9F09",
        "9F1E",
        "5F34",
    ]
]


_Stop = flows.FlowEnd


def _bcd(value: int, size: int) -> bytes:
    return bytes.fromhex(f"{value:0{size * 2}d}"[-size * 2 :])


@dataclass
class _Session:
    """Everything one application attempt learns; turned into the Outcome at the end."""

    txn: TerminalTransaction
    cand: Candidate | None = None
    term: dict[bytes, bytes] = field(default_factory=dict)
    card: dict[bytes, bytes] = field(default_factory=dict)
    fci: dict[bytes, bytes] = field(default_factory=dict)
    tvr: bytearray = field(default_factory=lambda: bytearray(5))
    tsi: bytearray = field(default_factory=lambda: bytearray(2))
    cvm: str = ""
    oda: str = ""
    pdol_data: bytes = b""
    cdol1_data: bytes = b""
    static_data: bytearray = field(default_factory=bytearray)
    oda_records_ok: bool = True
    cryptogram: bytes = b""
    cid: int = 0
    tvr_given: bytes | None = None  # the TVR sent to the card in PDOL / CDOL1 data
    oda_failure: str = ""  # why SDA / DDA failed, for the reason

    def build_dol(self, dol_bytes: bytes) -> bytes:
        """DOL data from the terminal's values; remembers the TVR if the card asked for it."""
        pairs = dol.parse(dol_bytes)
        if any(tag == T("95") for tag, _ in pairs):
            self.tvr_given = self.term[T("95")]
        return dol.build(pairs, self.term)

    def start(self, cand: Candidate) -> None:
        txn, cfg = self.txn, cand.config
        self.cand = cand
        un = bytes(txn.unpredictable_number)[:4].rjust(4, b"\x00")
        when = txn.when
        self.term = {
            T("9F02"): _bcd(txn.amount, 6),
            T("9F03"): _bcd(txn.amount_other, 6),
            T("9F1A"): _bcd(txn.country, 2),
            T("5F2A"): _bcd(txn.currency, 2),
            T("9A"): bytes.fromhex(when.strftime("%y%m%d")),
            T("9F21"): bytes.fromhex(when.strftime("%H%M%S")),
            T("9C"): bytes([txn.txn_type.emv_code]),
            T("9F37"): un,
            T("95"): bytes(5),
            T("9F66"): cand.ttq,
            T("9F33"): cfg.terminal_capabilities,
            T("9F35"): cfg.terminal_type,
            T("9F40"): cfg.additional_terminal_capabilities,
            T("9F09"): cfg.app_version,
            T("9F1C"): txn.terminal_id.encode("ascii", "replace")[:8].ljust(8, b" "),
            T("9F1E"): txn.terminal_id.encode("ascii", "replace")[:8].ljust(8, b" "),
            T("9F4E"): txn.merchant_name.encode("ascii", "replace")[:20],
            T("9F34"): flows.CVM_RESULTS[""],
        }

    def add_card_data(self, objs: list[tlv.Tlv], where: str) -> None:
        for obj in tlv.walk(objs):
            if obj.constructed:
                continue
            old = self.card.get(obj.tag)
            if old is not None and old != obj.value:
                raise _Stop(
                    OutcomeKind.END_APPLICATION,
                    f"card sent tag {obj.tag.hex().upper()} twice with different values ({where})",
                    "Card error",
                )
            self.card[obj.tag] = obj.value

    # -- derived card data ---------------------------------------------------------------
    def track2(self) -> bytes:
        return self.card.get(T("57")) or self.card.get(T("9F6B")) or b""

    def pan(self) -> str:
        if T("5A") in self.card:
            return self.card[T("5A")].hex().upper().rstrip("F")
        t2 = self.track2().hex().upper()
        return t2.split("D", 1)[0] if "D" in t2 else ""

    def expiry(self) -> str:
        if T("5F24") in self.card and len(self.card[T("5F24")]) == 3:
            return self.card[T("5F24")].hex()[:4]
        t2 = self.track2().hex().upper()
        return t2.split("D", 1)[1][:4] if "D" in t2 else ""

    def icc_data(self) -> bytes:
        values = {**self.term, **self.card}
        # The TVR the card was given (in PDOL or CDOL1 data) is part of what its cryptogram
        # covers; the issuer must see that one. Findings after that are in Outcome.tvr.
        values[T("95")] = self.tvr_given if self.tvr_given is not None else bytes(self.tvr)
        values[T("9F26")] = self.cryptogram
        values[T("9F27")] = bytes([self.cid])
        values[T("84")] = self.fci.get(T("84"), self.cand.entry.aid if self.cand else b"")
        values[T("9F34")] = self.term.get(T("9F34"), flows.CVM_RESULTS[""])
        out = []
        for tag in FIELD55_TAGS:
            if tag in (T("9F66"),) and self.cand and self.cand.config.kernel != 3:
                continue
            if tag in (T("9F6C"), T("9F6E"), T("5F34")) and tag not in self.card:
                continue
            value = values.get(tag)
            if value is None:
                continue
            out.append(tlv.encode(tag, value))
        return b"".join(out)


class Kernel:
    """The terminal's EMV contactless kernel, configured from the AID table and the CA keys."""

    def __init__(self, table: AidTable, keys: capk.CaKeyStore) -> None:
        self.table = table
        self.keys = keys
        self._offline_counts: dict[bytes, int] = {}
        self.tap_budget_s = TAP_BUDGET_S
        self._lock = threading.Lock()

    # ---- configuration ------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Config) -> Kernel:
        """Load `kernel.aid_table` and `kernel.capk_file`; ConfigError on bad data or test keys
        in production mode."""
        kcfg = cfg.kernel
        table = load_aid_table(cfg.data_path(kcfg.aid_table))
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
        if cfg.mode == "production":
            test_keys = [k for k in store.keys.values() if k.test]
            if test_keys:
                k = test_keys[0]
                raise ConfigError(
                    f"{capk_path}: kernel.capk_file: production mode refuses test CA key "
                    f"{k.rid.hex().upper()} #{k.index:02X} ({k.where}); configure the live keys"
                )
        if kcfg.floor_limit_override >= 0:
            entries = []
            for e in table.entries:
                lim = dataclasses.replace(e.limits, floor_limit=kcfg.floor_limit_override)
                per = {
                    c: dataclasses.replace(v, floor_limit=kcfg.floor_limit_override)
                    for c, v in e.currency_limits.items()
                }
                entries.append(dataclasses.replace(e, limits=lim, currency_limits=per))
            table = AidTable(tuple(entries))
        return cls(table, store)

    # ---- the one public operation -------------------------------------------------------
    def process(self, card: apdu.CardLink, txn: TerminalTransaction) -> Outcome:
        """Run one tap to an Outcome. Never raises."""
        session = _Session(txn)
        try:
            out = self._run(_BudgetedLink(card, self.tap_budget_s), session)
        except Exception as exc:  # noqa: BLE001 - the contract: nothing escapes the kernel
            out = self._fault_outcome(session, exc)
        self._count(out)
        log.info("outcome %s: %s", out.kind.value, out.reason)
        return out

    # ---- internals ----------------------------------------------------------------------
    def _fault_outcome(self, s: _Session, exc: Exception) -> Outcome:
        """The outcome for anything that stopped a flow (never raises itself)."""
        try:
            if isinstance(exc, _Stop):
                return self._outcome(s, exc.kind, exc.reason, exc.ui)
            if isinstance(exc, CardRemoved):
                return self._outcome(
                    s, OutcomeKind.TRY_AGAIN, f"card left the field: {exc}", "Try again"
                )
            if isinstance(exc, apdu.CardError):
                return self._outcome(
                    s, OutcomeKind.END_APPLICATION, f"card answer unusable: {exc}", "Card error"
                )
            if isinstance(exc, tlv.TlvError):
                return self._outcome(
                    s, OutcomeKind.END_APPLICATION, f"malformed card data: {exc}", "Card error"
                )
            log.error("kernel fault: %s at %s", type(exc).__name__, _where(exc))
            return self._outcome(
                s, OutcomeKind.END_APPLICATION, f"kernel fault ({type(exc).__name__})", "Card error"
            )
        except Exception as inner:  # noqa: BLE001 - building the outcome itself failed
            log.error("kernel fault while building an outcome: %s", type(inner).__name__)
            return Outcome(
                kind=OutcomeKind.END_APPLICATION,
                reason=f"kernel fault ({type(inner).__name__})",
                ui_message="Card error",
            )

    def _count(self, out: Outcome) -> None:
        with self._lock:
            if out.kind is OutcomeKind.APPROVED:
                self._offline_counts[out.aid] = self._offline_counts.get(out.aid, 0) + 1
            elif out.kind is OutcomeKind.ONLINE_REQUEST:
                self._offline_counts[out.aid] = 0

    def _offline_exhausted(self) -> dict[bytes, bool]:
        with self._lock:
            return {
                e.aid: self._offline_counts.get(e.aid, 0) >= e.max_offline_approvals
                for e in self.table.entries
            }

    def _outcome(self, s: _Session, kind: OutcomeKind, reason: str, ui: str = "") -> Outcome:
        cand = s.cand
        ui = (
            ui
            or {
                OutcomeKind.APPROVED: "Approved",
                OutcomeKind.DECLINED: "Declined",
                OutcomeKind.ONLINE_REQUEST: "Processing",
                OutcomeKind.TRY_AGAIN: "Try again",
                OutcomeKind.END_APPLICATION: "Card not supported",
                OutcomeKind.TRY_ANOTHER_INTERFACE: "Use another card",
                OutcomeKind.SELECT_NEXT: "",
            }[kind]
        )
        out = Outcome(kind=kind, reason=reason, ui_message=ui)
        if cand is None:
            return out
        psn = s.card.get(T("5F34"))
        atc = s.card.get(T("9F36"), b"")
        out.scheme = cand.config.scheme
        out.aid = cand.config.aid
        label = s.fci.get(T("50"), b"").decode("ascii", "replace")
        printable = label.isascii() and label.isprintable() and 0 < len(label) <= 16
        out.application_label = label if printable else cand.config.label
        out.kernel_id = cand.config.kernel
        out.tvr = bytes(s.tvr)
        out.tsi = bytes(s.tsi)
        out.cvm = s.cvm
        out.oda = s.oda
        out.pan = s.pan()
        out.pan_sequence = int(psn.hex()) if psn and psn.hex().isdigit() else None
        out.expiry = s.expiry()
        out.track2 = s.track2()
        out.cryptogram = s.cryptogram
        out.cid = s.cid
        out.atc = int.from_bytes(atc, "big") if len(atc) == 2 else 0
        if s.cryptogram:
            out.icc_data = s.icc_data()
        return out

    def _send(self, card: apdu.CardLink, command: bytes) -> apdu.Response:
        return apdu.exchange(card, command)

    def _run(self, card: apdu.CardLink, s: _Session) -> Outcome:
        resp = self._send(card, apdu.select(apdu.PPSE))
        if resp.sw in (0x6A82, 0x6A81):
            raise _Stop(OutcomeKind.END_APPLICATION, "no payment directory (PPSE) on the card")
        if not resp.ok:
            raise _Stop(OutcomeKind.END_APPLICATION, f"SELECT PPSE refused (SW {resp.sw_hex})")
        try:
            entries = parse_ppse(resp.data)
        except (tlv.TlvError, PpseError) as exc:
            raise _Stop(
                OutcomeKind.END_APPLICATION, f"PPSE answer malformed: {exc}", "Card error"
            ) from None
        cands, skipped = candidates(entries, self.table, s.txn, self._offline_exhausted())
        if not cands:
            if any(skip.why.amount for skip in skipped):
                raise _Stop(
                    OutcomeKind.TRY_ANOTHER_INTERFACE,
                    "amount not allowed contactless for the card's applications",
                    "Amount too high",
                )
            listed = "; ".join(map(str, skipped)) or "directory empty"
            raise _Stop(
                OutcomeKind.END_APPLICATION, f"no application this terminal supports ({listed})"
            )
        reasons: list[str] = []
        for cand in cands:
            s = _Session(s.txn)
            s.start(cand)
            try:
                out = self._application(card, s)
            except Exception as exc:  # noqa: BLE001 - turned into this application's outcome
                out = self._fault_outcome(s, exc)
            if out.kind is OutcomeKind.SELECT_NEXT:
                reasons.append(out.reason)
                continue
            return out
        raise _Stop(
            OutcomeKind.END_APPLICATION, "no application could be used: " + "; ".join(reasons)
        )

    def _application(self, card: apdu.CardLink, s: _Session) -> Outcome:
        assert s.cand is not None
        cfg = s.cand.config
        resp = self._send(card, apdu.select(s.cand.entry.aid))
        if not resp.ok:
            raise _Stop(OutcomeKind.SELECT_NEXT, f"{cfg.label}: SELECT refused (SW {resp.sw_hex})")
        try:
            objs = tlv.decode(resp.data)
        except tlv.TlvError as exc:
            raise _Stop(OutcomeKind.SELECT_NEXT, f"{cfg.label}: FCI malformed: {exc}") from None
        if len(objs) != 1 or objs[0].tag != T("6F"):
            raise _Stop(OutcomeKind.SELECT_NEXT, f"{cfg.label}: SELECT answer is not an FCI")
        s.fci = tlv.flatten(objs)
        df_name = s.fci.get(T("84"), b"")
        if not cfg.matches(df_name):
            raise _Stop(OutcomeKind.SELECT_NEXT, f"{cfg.label}: FCI names another application")
        try:
            s.pdol_data = s.build_dol(s.fci.get(T("9F38"), b""))
        except tlv.TlvError as exc:
            raise _Stop(
                OutcomeKind.END_APPLICATION, f"PDOL malformed: {exc}", "Card error"
            ) from None
        resp = self._send(card, apdu.get_processing_options(s.pdol_data))
        if resp.sw == 0x6986:
            raise _Stop(
                OutcomeKind.TRY_AGAIN, "phone asks its owner to unlock it (SW 6986)", SEE_PHONE
            )
        if resp.sw in (0x6984, 0x6985):
            raise _Stop(
                OutcomeKind.SELECT_NEXT,
                f"{cfg.label}: conditions of use not satisfied (SW {resp.sw_hex})",
            )
        if not resp.ok:
            raise _Stop(
                OutcomeKind.END_APPLICATION,
                f"GET PROCESSING OPTIONS refused (SW {resp.sw_hex})",
                "Card error",
            )
        gpo = tlv.decode(resp.data)
        if len(gpo) == 1 and gpo[0].tag == T("80"):
            value = gpo[0].value
            if len(value) < 2 or (len(value) - 2) % 4:
                raise _Stop(OutcomeKind.END_APPLICATION, "GPO format 1 answer malformed")
            s.card[T("82")] = value[:2]
            s.card[T("94")] = value[2:]
        elif len(gpo) == 1 and gpo[0].tag == T("77"):
            s.add_card_data(list(gpo[0].children), "GPO")
        else:
            raise _Stop(OutcomeKind.END_APPLICATION, "GPO answer is neither format 1 nor 2")
        aip = s.card.get(T("82"), b"")
        if len(aip) != 2:
            raise _Stop(OutcomeKind.END_APPLICATION, "card data missing: AIP (82)", "Card error")
        self._read_records(card, s, s.card.get(T("94"), b""))
        if cfg.kernel == 3 or (cfg.kernel == 0 and T("9F26") in s.card):
            return flows.complete_qvsdc(self, s)
        return flows.complete_generate_ac(self, card, s)

    def _read_records(self, card: apdu.CardLink, s: _Session, afl: bytes) -> None:
        if len(afl) % 4:
            raise _Stop(OutcomeKind.END_APPLICATION, "AFL malformed (length)", "Card error")
        count = 0
        for i in range(0, len(afl), 4):
            sfi, first, last, oda_count = afl[i] >> 3, afl[i + 1], afl[i + 2], afl[i + 3]
            if sfi in (0, 31) or afl[i] & 7 or first == 0 or last < first:
                raise _Stop(OutcomeKind.END_APPLICATION, "AFL malformed (entry)", "Card error")
            if oda_count > last - first + 1:
                raise _Stop(OutcomeKind.END_APPLICATION, "AFL malformed (ODA count)", "Card error")
            for number in range(first, last + 1):
                count += 1
                if count > MAX_RECORDS:
                    raise _Stop(OutcomeKind.END_APPLICATION, "AFL names too many records")
                resp = self._send(card, apdu.read_record(sfi, number))
                if not resp.ok:
                    raise _Stop(
                        OutcomeKind.END_APPLICATION,
                        f"READ RECORD SFI {sfi} record {number} refused (SW {resp.sw_hex})",
                        "Card error",
                    )
                objs = tlv.decode(resp.data)
                template = len(objs) == 1 and objs[0].tag == T("70")
                if sfi <= 10 and not template:
                    raise _Stop(
                        OutcomeKind.END_APPLICATION,
                        f"record SFI {sfi} #{number} is not a record template (70)",
                        "Card error",
                    )
                if number - first < oda_count:
                    if sfi <= 10:
                        s.static_data += objs[0].value
                    else:
                        s.static_data += resp.data
                        s.oda_records_ok = s.oda_records_ok and template
                s.add_card_data(list(objs[0].children) if template else objs, "records")


class _BudgetedLink:
    """The card, refusing to send another command once the tap has run out of time."""

    def __init__(self, card: apdu.CardLink, budget_s: float) -> None:
        self.card = card
        self.deadline = time.monotonic() + budget_s
        self.budget_s = budget_s

    def transceive(self, command: bytes) -> bytes:
        if time.monotonic() > self.deadline:
            raise _Stop(
                OutcomeKind.TRY_AGAIN,
                f"phone too slow: tap took longer than {self.budget_s:g} s",
                "Try again",
            )
        return self.card.transceive(command)


def _where(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
