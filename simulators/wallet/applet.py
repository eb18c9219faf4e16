"""The APDU-level simulated phone: `CardApplet(profile).respond(apdu) -> rapdu`.

Behaves as an EMV payment application on a phone does: SELECT PPSE with one directory entry,
SELECT AID with an FCI (and PDOL for Visa), GET PROCESSING OPTIONS, READ RECORD only for the records
its AFL names, GENERATE AC for Mastercard-style and generic flows, and error status words for
anything else. Cryptograms are real (pyemv.cvn with the ICC master key derived from the TEST issuer
keys); offline data authentication uses the test PKI of simulators.wallet.pki.

Transport-free: the ISO-DEP card side (simulators.wallet.isodep) or an emulated PN532 puts it in a
field. Never imports the kernel (firmware.emv): its TLV and signing are written separately on
purpose, so that each checks the other.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pyemv import cvn as pyemv_cvn

from simulators.wallet import pki, tlv
from simulators.wallet.profiles import Profile, ProfileError, get_profile, issuer_for

log = logging.getLogger(__name__)

# the issuer's cryptogram versions a wallet can use (pyemv: one class each)
Cvn = pyemv_cvn.VisaCVN10 | pyemv_cvn.VisaCVN18 | pyemv_cvn.MasterCardCVN16

PPSE_NAME = b"2PAY.SYS.DDF01"

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_CONDITIONS_NOT_SATISFIED = b"\x69\x85"
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_RECORD_NOT_FOUND = b"\x6a\x83"
SW_WRONG_P1P2 = b"\x6a\x86"
SW_DATA_NOT_FOUND = b"\x6a\x88"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
SW_CLA_NOT_SUPPORTED = b"\x6e\x00"
SW_NO_DIAGNOSIS = b"\x6f\x00"

# Visa-style PDOL: TTQ, amount, other amount, country, TVR, currency, date, type, UN.
VISA_PDOL = bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704")
# Mastercard-style and generic CDOL1.
CDOL1 = bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F37049F35019F3403")
CDOL2 = bytes.fromhex("8A029F02069F03069F1A0295055F2A029A039C019F3704")

CID_AAC, CID_TC, CID_ARQC = 0x00, 0x40, 0x80


class PhoneLeftField(Exception):
    """The phone stops answering here (profile leaves-field): the transport goes silent."""


@dataclass
class _Tap:
    """What the phone remembers during one tap."""

    selected: bool = False
    gpo_done: bool = False
    genac_done: bool = False
    pdol_values: bytes = b""
    atc: bytes = b""


@dataclass
class _Record:
    sfi: int
    number: int
    body: bytes  # the value of template 70
    oda: bool = False


@dataclass
class _Card:
    """The personalised application: static data built once per profile."""

    aip: bytes
    records: list[_Record] = field(default_factory=list)

    @property
    def afl(self) -> bytes:
        out = b""
        by_sfi: dict[int, list[_Record]] = {}
        for rec in self.records:
            by_sfi.setdefault(rec.sfi, []).append(rec)
        for sfi, recs in by_sfi.items():
            numbers = [r.number for r in recs]
            oda = sum(1 for r in recs if r.oda)
            out += bytes([sfi << 3, min(numbers), max(numbers), oda])
        return out

    def record(self, sfi: int, number: int) -> _Record | None:
        for rec in self.records:
            if rec.sfi == sfi and rec.number == number:
                return rec
        return None

    def static_data(self) -> bytes:
        """Static data to be authenticated: ODA records (SFI 1-10: values only) then the AIP."""
        return b"".join(r.body for r in self.records if r.oda) + self.aip


def _bcd(value: int, nbytes: int) -> bytes:
    return bytes.fromhex(f"{value:0{2 * nbytes}d}")


def _track2(token: str, expiry: str) -> bytes:
    digits = f"{token}D{expiry}201" + "0" * 12
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex(digits)


class CardApplet:
    """One phone wallet at the APDU level. `reset()` on each new tap; state survives across taps
    only where a phone's does (the ATC, and the owner having unlocked the phone)."""

    def __init__(
        self,
        profile: str | Profile,
        issuer_keys: Path | None = None,
        atc_start: int | None = None,
    ) -> None:
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        p = self.profile
        self.issuer = issuer_for(p.token, issuer_keys)
        if self.issuer.cvn not in (10, 16, 18):
            raise ProfileError(f"issuer of {p.name}: cvn {self.issuer.cvn} not supported")
        classes: dict[int, type[Cvn]] = {
            10: pyemv_cvn.VisaCVN10,
            18: pyemv_cvn.VisaCVN18,
            16: pyemv_cvn.MasterCardCVN16,
        }
        cvn_class = classes[self.issuer.cvn]
        imk = self.issuer.imk_ac
        self._cvn: Cvn = cvn_class(imk, imk, imk, p.token, p.psn)
        self._atc = atc_start if atc_start is not None else 0x0100 + secrets.randbelow(0x4000)
        self._unlocked = not p.see_phone
        self._unlock_after_tap = False
        self._pki = pki.load_pki()[p.scheme] if self._uses_oda else None
        self._card = self._personalise()
        self._tap = _Tap()

    # --- personalisation -------------------------------------------------------------------

    @property
    def _uses_oda(self) -> bool:
        p = self.profile
        return (p.flow == "visa" and p.offline) or (p.flow == "mastercard" and p.cda)

    def _personalise(self) -> _Card:
        p = self.profile
        last_day = calendar.monthrange(2000 + int(p.expiry[:2]), int(p.expiry[2:]))[1]
        expiry_date = bytes.fromhex(f"{p.expiry}{last_day:02d}")
        country = _bcd(p.issuer_country, 2)
        if p.flow == "visa":
            aip = bytes.fromhex("2000" if p.offline else "0000")
            card = _Card(aip)
            card.records.append(
                _Record(
                    1,
                    1,
                    tlv.encode(
                        [
                            (0x5F24, expiry_date),
                            (0x5F28, country),
                            (0x9F07, bytes.fromhex("FFC0")),
                            (0x9F4A, b"\x82"),
                        ]
                    ),
                    oda=p.offline,
                )
            )
        else:
            if p.flow == "mastercard":
                aip = bytes.fromhex("1B80" if p.cda else "1A80")
            else:
                aip = bytes.fromhex("1800")
            card = _Card(aip)
            card.records.append(
                _Record(1, 1, tlv.encode([(0x57, _track2(p.token, p.expiry))]), oda=p.cda)
            )
            card.records.append(
                _Record(
                    2,
                    1,
                    tlv.encode(
                        [
                            (0x5A, pki.digits_padded(p.token, (len(p.token) + 1) // 2)),
                            (0x5F24, expiry_date),
                            (0x5F25, bytes.fromhex("230101")),
                            (0x5F28, country),
                            (0x5F34, bytes.fromhex(p.psn)),
                            (0x8C, CDOL1),
                            (0x8D, CDOL2),
                            (0x8E, bytes(8) + bytes.fromhex("42031E031F03")),
                            (0x9F07, bytes.fromhex("FFC0")),
                            (0x9F0D, bytes.fromhex("B050AC8800")),
                            (0x9F0E, bytes.fromhex("0000000000")),
                            (0x9F0F, bytes.fromhex("B070BC9800")),
                            (0x9F42, country),
                            (0x9F4A, b"\x82"),
                        ]
                    ),
                    oda=p.cda,
                )
            )
        if self._pki is not None:
            self._add_certificates(card)
        return card

    def _add_certificates(self, card: _Card) -> None:
        assert self._pki is not None
        p, k = self.profile, self._pki
        issuer_cert, issuer_rem = pki.issuer_certificate_for(p.scheme)
        icc_expiry = "0124" if p.fault == "expired-cert" else "1230"
        icc_cert, icc_rem = pki.icc_certificate(
            k.issuer, k.icc, p.token, icc_expiry, b"\x00\x01\x07", card.static_data()
        )
        sfi = 2 if p.flow == "visa" else 3
        card.records.append(
            _Record(
                sfi,
                1,
                tlv.encode(
                    [
                        (0x8F, bytes.fromhex(k.ca_index)),
                        (0x90, issuer_cert),
                        (0x9F32, k.issuer.exponent),
                        (0x92, issuer_rem),
                    ]
                ),
            )
        )
        card.records.append(
            _Record(
                sfi,
                2,
                tlv.encode([(0x9F46, icc_cert), (0x9F47, k.icc.exponent), (0x9F48, icc_rem)]),
            )
        )

    # --- the tap ---------------------------------------------------------------------------

    def reset(self) -> None:
        """A new tap: nothing selected. A phone unlocked by its owner stays unlocked."""
        if self._unlock_after_tap:
            self._unlocked, self._unlock_after_tap = True, False
        self._tap = _Tap()

    @property
    def atc(self) -> int:
        """The last ATC used (the next transaction uses atc + 1)."""
        return self._atc

    def processing_delay(self, apdu: bytes) -> float:
        """Seconds this phone needs before answering `apdu` (the transport covers it with WTX)."""
        if self.profile.fault == "slow-wtx" and apdu[:2] == b"\x80\xa8":
            return self.profile.slow_seconds
        return 0.0

    def respond(self, apdu: bytes) -> bytes:
        """Answer one command APDU with data || SW1 SW2. Raises PhoneLeftField to go silent."""
        apdu = bytes(apdu)
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = apdu[:4]
        if len(apdu) == 4:
            data = b""
        elif len(apdu) == 5:
            data = b""  # Le only
        else:
            lc = apdu[4]
            if lc == 0 or len(apdu) not in (5 + lc, 6 + lc):
                return SW_WRONG_LENGTH
            data = apdu[5 : 5 + lc]
        try:
            if ins == 0xA4:
                return SW_CLA_NOT_SUPPORTED if cla != 0x00 else self._select(p1, p2, data)
            if ins == 0xA8:
                return SW_CLA_NOT_SUPPORTED if cla != 0x80 else self._gpo(p1, p2, data)
            if ins == 0xB2:
                return SW_CLA_NOT_SUPPORTED if cla != 0x00 else self._read_record(p1, p2)
            if ins == 0xAE:
                return SW_CLA_NOT_SUPPORTED if cla != 0x80 else self._generate_ac(p1, p2, data)
            if ins == 0xCA:
                return SW_DATA_NOT_FOUND
            return SW_INS_NOT_SUPPORTED
        except tlv.TlvError as exc:
            log.debug("%s: bad command data: %s", self.profile.name, exc)
            return SW_WRONG_LENGTH

    def _select(self, p1: int, p2: int, name: bytes) -> bytes:
        p = self.profile
        if p1 != 0x04 or p2 not in (0x00,):
            return SW_FILE_NOT_FOUND
        self._tap = _Tap()
        if name == PPSE_NAME:
            entry = [(0x4F, p.aid_bytes), (0x50, p.label.encode()), (0x87, bytes([p.priority]))]
            if p.kernel_id:
                entry.append((0x9F2A, bytes([p.kernel_id])))
            directory = tlv.tlv(0xBF0C, tlv.tlv(0x61, tlv.encode(entry)))
            return tlv.tlv(0x6F, tlv.tlv(0x84, PPSE_NAME) + tlv.tlv(0xA5, directory)) + SW_OK
        if name != p.aid_bytes:
            return SW_FILE_NOT_FOUND
        self._tap.selected = True
        prop = [(0x50, p.label.encode()), (0x87, bytes([p.priority]))]
        if p.flow == "visa":
            prop.append((0x9F38, VISA_PDOL))
        prop.append((0x5F2D, b"en"))
        return tlv.tlv(0x6F, tlv.tlv(0x84, p.aid_bytes) + tlv.tlv(0xA5, tlv.encode(prop))) + SW_OK

    def _next_atc(self) -> bytes:
        self._atc = (self._atc + 1) & 0xFFFF
        return self._atc.to_bytes(2, "big")

    def _iad_and_cvr(self, cid: int) -> tuple[bytes, bytes]:
        """Issuer application data (9F10) and the CVR bytes the cryptogram covers."""
        first = {CID_ARQC: 0x20, CID_TC: 0x10, CID_AAC: 0x00}[cid]
        if self.issuer.cvn == 16:
            cvr = bytes([0x80 | first, 0, 0, 0, 0, 0])
            return b"\x01\x10" + cvr + bytes(10), cvr
        cvr = bytes([0x03, 0x80 | first, 0x00, 0x00])
        iad = bytes([0x06, 0x01, self.issuer.cvn]) + cvr
        return iad, (iad if self.issuer.cvn == 18 else cvr)

    def _cryptogram(self, t: dict[int, bytes], atc: bytes, cvr: bytes) -> bytes:
        return self._cvn.generate_ac(
            t[0x9F02], t[0x9F03], t[0x9F1A], t[0x95], t[0x5F2A], t[0x9A], t[0x9C], t[0x9F37],
            self._card.aip, atc, cvr,
        )  # fmt: skip

    def _gpo(self, p1: int, p2: int, data: bytes) -> bytes:
        p = self.profile
        if p1 or p2:
            return SW_WRONG_P1P2
        if not self._tap.selected or self._tap.gpo_done:
            return SW_CONDITIONS_NOT_SATISFIED
        if p.fault == "wrong-sw":
            return SW_NO_DIAGNOSIS
        items = tlv.decode(data)
        if len(items) != 1 or items[0][0] != 0x83:
            return SW_WRONG_LENGTH
        pdol_values = items[0][1]
        self._tap.gpo_done = True
        self._tap.pdol_values = pdol_values
        self._tap.atc = self._next_atc()
        if p.flow != "visa":
            if pdol_values:
                return SW_WRONG_LENGTH
            body = tlv.encode([(0x82, self._card.aip), (0x94, self._card.afl)])
            return tlv.tlv(0x77, body) + SW_OK
        return self._visa_gpo(tlv.split_dol_data(tlv.parse_dol(VISA_PDOL), pdol_values))

    def _visa_gpo(self, t: dict[int, bytes]) -> bytes:
        p, atc = self.profile, self._tap.atc
        ttq = t[0x9F66]
        if not ttq[0] & 0x20:  # the reader does not do qVSDC
            return SW_CONDITIONS_NOT_SATISFIED
        digits = t[0x9F02].hex()
        amount = int(digits) if digits.isdigit() else None  # not BCD: never offline
        online_required = bool(ttq[1] & 0x80)
        offline = (
            p.offline and not online_required and amount is not None and amount <= p.offline_limit
        )
        cid = CID_TC if offline else CID_ARQC
        iad, cvr = self._iad_and_cvr(cid)
        ac = self._cryptogram(t, atc, cvr)
        ctq = bytes([0x20 if p.offline else 0x00, 0x80])  # byte 2: on-device CVM performed
        items = [
            (0x82, self._card.aip),
            (0x94, self._card.afl),
            (0x57, _track2(p.token, p.expiry)),
            (0x5F34, bytes.fromhex(p.psn)),
            (0x9F10, iad),
            (0x9F26, ac),
            (0x9F27, bytes([cid])),
            (0x9F36, atc),
            (0x9F6C, ctq),
            (0x9F6E, bytes.fromhex("23840000")),  # FFI: consumer mobile phone
        ]
        if offline:
            assert self._pki is not None
            card_auth = b"\x01" + secrets.token_bytes(4) + ctq  # 9F69, fDDA version 01
            signed_over = t[0x9F37] + t[0x9F02] + t[0x5F2A] + card_auth
            sdad = pki.signed_dynamic_data(self._pki.icc, b"\x02" + atc, signed_over)
            if p.fault == "bad-signature":
                sdad = sdad[:-1] + bytes([sdad[-1] ^ 0x5A])
            items += [(0x9F69, card_auth), (0x9F4B, sdad)]
        body = tlv.encode(items)
        if p.fault == "malformed-tlv":
            return b"\x77\x81" + bytes([len(body) + 16]) + body + SW_OK
        return tlv.tlv(0x77, body) + SW_OK

    def _read_record(self, p1: int, p2: int) -> bytes:
        if p2 & 0x07 != 0x04:
            return SW_WRONG_P1P2
        if not self._tap.gpo_done:
            return SW_CONDITIONS_NOT_SATISFIED
        rec = self._card.record(p2 >> 3, p1)
        if rec is None:
            return SW_RECORD_NOT_FOUND
        return tlv.tlv(0x70, rec.body) + SW_OK

    def _generate_ac(self, p1: int, p2: int, data: bytes) -> bytes:
        p = self.profile
        if p.flow == "visa":
            return SW_INS_NOT_SUPPORTED
        if p2 or p1 & 0x2F:
            return SW_WRONG_P1P2
        if not self._tap.gpo_done or self._tap.genac_done:
            return SW_CONDITIONS_NOT_SATISFIED
        if p.fault == "leaves-field":
            raise PhoneLeftField(p.name)
        t = tlv.split_dol_data(tlv.parse_dol(CDOL1), data)
        self._tap.genac_done = True
        requested = p1 & 0xC0
        cda = bool(p1 & 0x10) and p.cda
        see_phone = not self._unlocked
        # A phone is online-only: it answers ARQC to a TC request, AAC to an AAC request.
        cid = CID_AAC if requested == 0x00 or see_phone else CID_ARQC
        atc = self._tap.atc
        iad, cvr = self._iad_and_cvr(cid)
        ac = self._cryptogram(t, atc, cvr)
        items = [(0x9F27, bytes([cid])), (0x9F36, atc)]
        if not (cda and cid != CID_AAC):
            items.append((0x9F26, ac))
        items.append((0x9F10, iad))
        if p.flow == "mastercard":
            # POS cardholder interaction information: byte 2 low bits = "see phone" (OD-CVM
            # required); 0x10 = on-device CVM verified.
            items.append((0xDF4B, bytes.fromhex("000100" if see_phone else "001000")))
        if see_phone:
            self._unlock_after_tap = True  # the owner unlocks the phone before the next tap
        if cda and cid != CID_AAC:
            assert self._pki is not None
            hash_code = hashlib.sha1(self._tap.pdol_values + data + tlv.encode(items)).digest()
            idn = secrets.token_bytes(8)
            dynamic = bytes([len(idn)]) + idn + bytes([cid]) + ac + hash_code
            items.append((0x9F4B, pki.signed_dynamic_data(self._pki.icc, dynamic, t[0x9F37])))
        return tlv.tlv(0x77, tlv.encode(items)) + SW_OK
