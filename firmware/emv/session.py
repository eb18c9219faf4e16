"""The state of one tap's application attempt: `Session`, from the terminal's data to the Outcome.

A Session starts from the terminal's transaction and the candidate entry point chose; the kernel's
steps add what the card says (FCI, GPO answer, records, GENERATE AC answer) and what they decide
(TVR, TSI, cardholder verification, offline authentication, cryptogram). `outcome()` turns it and
a Verdict into the Outcome, with field 55 when there is a cryptogram. Card data (PAN, track 2)
is held here and handed to the Outcome only; nothing here logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware.emv import dol, tlv
from firmware.emv.entry_point import Candidate
from firmware.emv.flags import Tsi, Tvr
from firmware.emv.outcome import (
    CVM_RESULTS,
    DEFAULT_PROMPT,
    CvmMethod,
    OdaMethod,
    Outcome,
    TerminalTransaction,
)
from firmware.emv.tags import Tag
from firmware.emv.verdict import Verdict, card_error

# Field 55 content, in this order; TTQ only for kernel 3, CTQ / form factor / PSN only if sent.
FIELD55_TAGS = (
    Tag.APPLICATION_CRYPTOGRAM,
    Tag.CRYPTOGRAM_INFORMATION_DATA,
    Tag.ISSUER_APPLICATION_DATA,
    Tag.UNPREDICTABLE_NUMBER,
    Tag.ATC,
    Tag.TVR,
    Tag.TRANSACTION_DATE,
    Tag.TRANSACTION_TYPE,
    Tag.AMOUNT_AUTHORISED,
    Tag.AMOUNT_OTHER,
    Tag.TRANSACTION_CURRENCY_CODE,
    Tag.AIP,
    Tag.TERMINAL_COUNTRY_CODE,
    Tag.DF_NAME,
    Tag.TERMINAL_CAPABILITIES,
    Tag.CVM_RESULTS,
    Tag.TERMINAL_TYPE,
    Tag.TTQ,
    Tag.CTQ,
    Tag.FORM_FACTOR_INDICATOR,
    Tag.TERMINAL_APPLICATION_VERSION_NUMBER,
    Tag.IFD_SERIAL_NUMBER,
    Tag.PAN_SEQUENCE_NUMBER,
)
_FIELD55_IF_SENT = (Tag.CTQ, Tag.FORM_FACTOR_INDICATOR, Tag.PAN_SEQUENCE_NUMBER)


def _bcd(value: int, size: int) -> bytes:
    return bytes.fromhex(f"{value:0{size * 2}d}"[-size * 2 :])


def _ascii(text: str, size: int, pad: bool) -> bytes:
    raw = text.encode("ascii", "replace")[:size]
    return raw.ljust(size, b" ") if pad else raw


@dataclass
class Session:
    """Everything one application attempt learns; turned into the Outcome at the end."""

    txn: TerminalTransaction
    cand: Candidate | None = None
    term: dict[bytes, bytes] = field(default_factory=dict)
    card: dict[bytes, bytes] = field(default_factory=dict)
    fci: dict[bytes, bytes] = field(default_factory=dict)
    tvr: Tvr = Tvr(0)
    tsi: Tsi = Tsi(0)
    cvm: CvmMethod | None = None
    oda: OdaMethod | None = None
    pdol_data: bytes = b""
    cdol1_data: bytes = b""
    static_data: bytearray = field(default_factory=bytearray)
    oda_records_ok: bool = True
    cryptogram: bytes = b""
    cid: int = 0
    tvr_given: bytes | None = None  # the TVR sent to the card in PDOL / CDOL1 data
    oda_failure: str = ""  # why SDA / DDA failed, for the reason

    @property
    def candidate(self) -> Candidate:
        """The application being tried (set by start(); steps run only after it)."""
        assert self.cand is not None, "session not started"
        return self.cand

    def start(self, cand: Candidate) -> None:
        """Begin the attempt at `cand`: the terminal's data objects for PDOL, CDOL1, DDOL."""
        txn, cfg = self.txn, cand.config
        self.cand = cand
        when = txn.when
        self.term = {
            Tag.AMOUNT_AUTHORISED: _bcd(txn.amount, 6),
            Tag.AMOUNT_OTHER: _bcd(txn.amount_other, 6),
            Tag.TERMINAL_COUNTRY_CODE: _bcd(txn.country, 2),
            Tag.TRANSACTION_CURRENCY_CODE: _bcd(txn.currency, 2),
            Tag.TRANSACTION_DATE: bytes.fromhex(when.strftime("%y%m%d")),
            Tag.TRANSACTION_TIME: bytes.fromhex(when.strftime("%H%M%S")),
            Tag.TRANSACTION_TYPE: bytes([txn.txn_type.emv_code]),
            Tag.UNPREDICTABLE_NUMBER: bytes(txn.unpredictable_number)[:4].rjust(4, b"\x00"),
            Tag.TVR: bytes(5),
            Tag.TTQ: cand.ttq,
            Tag.TERMINAL_CAPABILITIES: cfg.terminal_capabilities,
            Tag.TERMINAL_TYPE: cfg.terminal_type,
            Tag.ADDITIONAL_TERMINAL_CAPABILITIES: cfg.additional_terminal_capabilities,
            Tag.TERMINAL_APPLICATION_VERSION_NUMBER: cfg.app_version,
            Tag.TERMINAL_IDENTIFICATION: _ascii(txn.terminal_id, 8, pad=True),
            Tag.IFD_SERIAL_NUMBER: _ascii(txn.terminal_id, 8, pad=True),
            Tag.MERCHANT_NAME_AND_LOCATION: _ascii(txn.merchant_name, 20, pad=False),
            Tag.CVM_RESULTS: CVM_RESULTS[None],
        }

    def build_dol(self, dol_bytes: bytes) -> bytes:
        """DOL data from the terminal's values; remembers the TVR if the card asked for it."""
        pairs = dol.parse(dol_bytes)
        if any(tag == Tag.TVR for tag, _ in pairs):
            self.tvr_given = self.term[Tag.TVR]
        return dol.build(pairs, self.term)

    def add_card_data(self, objs: list[tlv.Tlv], where: str) -> None:
        """Keep the card's primitive objects; the same tag twice with two values is an error."""
        for obj in tlv.walk(objs):
            if obj.constructed:
                continue
            old = self.card.get(obj.tag)
            if old is not None and old != obj.value:
                raise card_error(
                    f"card sent tag {obj.tag.hex().upper()} twice with different values ({where})"
                )
            self.card[obj.tag] = obj.value

    def need(self, *tags: Tag) -> None:
        """End the application ("Card error") unless the card gave all of `tags`."""
        missing = [t.label for t in tags if t not in self.card]
        if missing:
            raise card_error(f"card data missing: {', '.join(missing)}")

    # -- derived card data ---------------------------------------------------------------
    def track2(self) -> bytes:
        return self.card.get(Tag.TRACK2_EQUIVALENT_DATA) or self.card.get(Tag.TRACK2_DATA) or b""

    def pan(self) -> str:
        if Tag.PAN in self.card:
            return self.card[Tag.PAN].hex().upper().rstrip("F")
        t2 = self.track2().hex().upper()
        return t2.split("D", 1)[0] if "D" in t2 else ""

    def expiry(self) -> str:
        """YYMM from 5F24, else from track 2; "" when neither says."""
        date = self.card.get(Tag.APPLICATION_EXPIRATION_DATE)
        if date is not None and len(date) == 3:
            return date.hex()[:4]
        t2 = self.track2().hex().upper()
        return t2.split("D", 1)[1][:4] if "D" in t2 else ""

    def icc_data(self) -> bytes:
        """ISO 8583 field 55: FIELD55_TAGS from the terminal's and the card's data."""
        values = {**self.term, **self.card}
        # The TVR the card was given (in PDOL or CDOL1 data) is part of what its cryptogram
        # covers; the issuer must see that one. Findings after that are in Outcome.tvr.
        values[Tag.TVR] = self.tvr_given if self.tvr_given is not None else self.tvr.encoded()
        values[Tag.APPLICATION_CRYPTOGRAM] = self.cryptogram
        values[Tag.CRYPTOGRAM_INFORMATION_DATA] = bytes([self.cid])
        values[Tag.DF_NAME] = self.fci.get(Tag.DF_NAME, self.cand.entry.aid if self.cand else b"")
        values[Tag.CVM_RESULTS] = self.term.get(Tag.CVM_RESULTS, CVM_RESULTS[None])
        out = []
        for tag in FIELD55_TAGS:
            if tag is Tag.TTQ and self.cand and self.cand.config.kernel != 3:
                continue
            if tag in _FIELD55_IF_SENT and tag not in self.card:
                continue
            value = values.get(tag)
            if value is not None:
                out.append(tlv.encode(tag, value))
        return b"".join(out)

    # -- the end ------------------------------------------------------------------------
    def outcome(self, verdict: Verdict) -> Outcome:
        """The Outcome of this attempt with `verdict`; card fields once an application ran."""
        prompt = verdict.prompt or DEFAULT_PROMPT[verdict.kind]
        out = Outcome(
            kind=verdict.kind,
            reason=verdict.reason,
            ui_message=prompt.text if prompt else "",
            prompt=prompt,
        )
        if self.cand is not None:
            self._fill(out, self.cand)
        return out

    def _fill(self, out: Outcome, cand: Candidate) -> None:
        psn = self.card.get(Tag.PAN_SEQUENCE_NUMBER)
        atc = self.card.get(Tag.ATC, b"")
        out.scheme = cand.config.scheme
        out.aid = cand.config.aid
        label = self.fci.get(Tag.APPLICATION_LABEL, b"").decode("ascii", "replace")
        printable = label.isascii() and label.isprintable() and 0 < len(label) <= 16
        out.application_label = label if printable else cand.config.label
        out.kernel_id = cand.config.kernel
        out.tvr = self.tvr.encoded()
        out.tsi = self.tsi.encoded()
        out.cvm = self.cvm.value if self.cvm else ""
        out.oda = self.oda.value if self.oda else ""
        out.pan = self.pan()
        out.pan_sequence = int(psn.hex()) if psn and psn.hex().isdigit() else None
        out.expiry = self.expiry()
        out.track2 = self.track2()
        out.cryptogram = self.cryptogram
        out.cid = self.cid
        out.atc = int.from_bytes(atc, "big") if len(atc) == 2 else 0
        if self.cryptogram:
            out.icc_data = self.icc_data()
