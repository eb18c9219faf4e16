"""Test support: an EMV-correct phone built from our own test keys, to drive the kernel by APDUs.

Written from EMV Books 2/3 and the contactless kernel notes, independently of simulators/wallet (the
wallets): the kernel and the simulated wallets must not hide each other's mistakes. Keys are
generated with `cryptography` once per test session; certificates are raw RSA (m^d mod n).
`TestPhone.transceive` answers like a phone; `faults` lets a test replace or drop any answer.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from drivers.nfc import CardRemoved
from firmware.emv.capk import checksum

T = bytes.fromhex


def enc(tag: str, value: bytes) -> bytes:
    """Minimal BER-TLV encoder for the tests (independent of firmware.emv.tlv)."""
    n = len(value)
    length = (
        bytes([n])
        if n < 0x80
        else (b"\x81" + bytes([n]) if n < 256 else b"\x82" + n.to_bytes(2, "big"))
    )
    return T(tag) + length + value


@dataclass(frozen=True)
class RsaKey:
    n: int
    e: int
    d: int

    @property
    def size(self) -> int:
        return (self.n.bit_length() + 7) // 8

    @property
    def modulus(self) -> bytes:
        return self.n.to_bytes(self.size, "big")

    @property
    def exponent(self) -> bytes:
        return b"\x03" if self.e == 3 else self.e.to_bytes(3, "big")

    def sign(self, message: bytes) -> bytes:
        assert len(message) == self.size
        return pow(int.from_bytes(message, "big"), self.d, self.n).to_bytes(self.size, "big")


@functools.cache
def rsa_key(bits: int, tag: str, e: int = 3) -> RsaKey:
    """A fresh test RSA key (cached per session by bits/tag)."""
    key = rsa.generate_private_key(public_exponent=e, key_size=bits)
    nums = key.private_numbers()
    return RsaKey(nums.public_numbers.n, e, nums.d)


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


@functools.cache
def issuer_certificate(
    ca: RsaKey, issuer: RsaKey, identifier: str, expiry: str
) -> tuple[bytes, bytes]:
    """(90, 92) for `issuer` signed by `ca`; identifier like '476173FF', expiry MMYY."""
    n = ca.size
    room = n - 36
    mod = issuer.modulus
    part, rem = (
        (mod + b"\xbb" * (room - len(mod)), b"") if len(mod) <= room else (mod[:room], mod[room:])
    )
    body = (
        b"\x02"
        + T(identifier)
        + T(expiry)
        + T("000001")
        + b"\x01\x01"
        + bytes([len(mod), len(issuer.exponent)])
        + part
    )
    digest = _sha1(body + rem + issuer.exponent)
    return ca.sign(b"\x6a" + body + digest + b"\xbc"), rem


@functools.cache
def icc_certificate(
    issuer: RsaKey, icc: RsaKey, pan: str, expiry: str, static_data: bytes
) -> tuple[bytes, bytes]:
    n = issuer.size
    room = n - 42
    mod = icc.modulus
    part, rem = (
        (mod + b"\xbb" * (room - len(mod)), b"") if len(mod) <= room else (mod[:room], mod[room:])
    )
    pan_f = T((pan + "F" * 20)[:20])
    body = (
        b"\x04"
        + pan_f
        + T(expiry)
        + T("000001")
        + b"\x01\x01"
        + bytes([len(mod), len(icc.exponent)])
        + part
    )
    digest = _sha1(body + rem + icc.exponent + static_data)
    return issuer.sign(b"\x6a" + body + digest + b"\xbc"), rem


@functools.cache
def signed_static_data(issuer: RsaKey, dac: bytes, static_data: bytes) -> bytes:
    """SSAD (93), format 03, signed by the issuer key over the static data."""
    body = b"\x03\x01" + dac
    body += b"\xbb" * (issuer.size - 22 - len(body))
    return issuer.sign(b"\x6a" + body + _sha1(body + static_data) + b"\xbc")


@functools.cache
def sdad(icc: RsaKey, dynamic_data: bytes, tail: bytes) -> bytes:
    n = icc.size
    body = b"\x05\x01" + bytes([len(dynamic_data)]) + dynamic_data
    body += b"\xbb" * (n - 22 - len(body))
    return icc.sign(b"\x6a" + body + _sha1(body + tail) + b"\xbc")


@dataclass
class TestPki:
    __test__ = False  # a test double, not a test class

    rid: str
    index: int = 0x92
    ca_bits: int = 1408

    @property
    def ca(self) -> RsaKey:
        return rsa_key(self.ca_bits, "ca-" + self.rid)

    @property
    def issuer(self) -> RsaKey:
        return rsa_key(1152, "issuer")

    @property
    def icc(self) -> RsaKey:
        return rsa_key(1024, "icc")

    def capk_line(self, comment: str = "pitap unit-test CA (test)") -> str:
        ca = self.ca
        rid = T(self.rid)
        csum = checksum(rid, self.index, ca.modulus, ca.exponent)
        return (
            f"{self.rid} {self.index:02X} 000000 rsa {ca.exponent.hex().upper()} "
            f"{ca.modulus.hex().upper()} sha1 {csum.hex().upper()}   # {comment}"
        )


PDOL_VISA = T("9F66049F02069F03069F1A0295055F2A029A039C019F3704")
CDOL1_MC = T("9F02069F03069F1A0295055F2A029A039C019F37049F35019F45029F4C089F34039F21039F7C14")


def parse_dol(dol: bytes) -> list[tuple[bytes, int]]:
    out, i = [], 0
    while i < len(dol):
        tag_len = 2 if dol[i] & 0x1F == 0x1F else 1
        out.append((dol[i : i + tag_len], dol[i + tag_len]))
        i += tag_len + 1
    return out


def split_dol(dol: bytes, data: bytes) -> dict[bytes, bytes]:
    out, pos = {}, 0
    for tag, length in parse_dol(dol):
        out[tag] = data[pos : pos + length]
        pos += length
    return out


@dataclass
class TestPhone:
    """A phone wallet answering APDUs like EMV says (one scheme, one token)."""

    __test__ = False  # a test double, not a test class

    scheme: str = "visa"  # visa | mastercard | rupay
    pan: str = ""  # default: a test token of the scheme's range
    offline_capable: bool = True  # Visa: TC under the floor limit; MC: TC when asked
    see_phone_taps: int = 0  # Mastercard-style: answer AAC + DF4B on this many first taps
    visa_6986_taps: int = 0  # Visa-style: GPO answers 6986 on this many first taps
    visa_aac_taps: int = 0  # Visa-style: AAC (with the CTQ as set) on this many first taps
    issuer_expiry: str = "1230"  # MMYY
    icc_expiry: str = "1230"
    app_expiry: str = "301231"  # YYMMDD
    corrupt_signature: bool = False
    ctq: bytes = T("0280")  # byte1 0x02? (none), byte2 0x80 CDCVM performed
    extra_ppse: list[bytes] = field(default_factory=list)  # extra 61 entries
    faults: dict[str, Callable[[bytes], bytes] | bytes | Exception] = field(default_factory=dict)
    pki: TestPki | None = None
    gpo_cryptogram: bool = True  # rupay: cryptogram in the GPO answer, else GENERATE AC
    aip_override: bytes | None = None  # e.g. 4000 (SDA) or 2000 (DDA) for a generic-path card
    log: list[tuple[str, bytes]] = field(default_factory=list)
    taps: int = -1  # taps served so far, minus one (tap() counts the new one)
    atc: int = 7

    def __post_init__(self) -> None:
        rid = {"visa": "A000000003", "mastercard": "A000000004", "rupay": "A000000524"}[self.scheme]
        self.aid = T(rid + "1010")
        default_pan = {"visa": "4761730000000011", "mastercard": "5413330000000019"}
        self.pan = self.pan or default_pan.get(self.scheme, "6083260000000014")
        self.pki = self.pki or TestPki(rid)

    # ---- data ----------------------------------------------------------------------
    @property
    def track2(self) -> bytes:
        t = self.pan + "D" + self.app_expiry[:4] + "2010000000000000"
        if len(t) % 2:
            t += "F"
        return T(t)

    def aip(self) -> bytes:
        if self.aip_override is not None:
            return self.aip_override
        if self.scheme == "visa":
            return T("2000")  # fDDA supported (qVSDC)
        if self.scheme == "mastercard":
            return T("1B80")  # CDA, on-device CVM, CVM supported, TRM, EMV mode
        return T("1980")

    def oda_record(self) -> bytes:
        return (
            enc("5A", T(self.pan + ("F" if len(self.pan) % 2 else "")))
            + enc("5F24", T(self.app_expiry))
            + enc("5F34", b"\x01")
            + enc("9F4A", T("82"))
        )

    def static_data(self) -> bytes:
        return self.oda_record() + self.aip()

    def cert_record(self) -> bytes:
        pki = self.pki
        assert pki is not None
        c90, r92 = issuer_certificate(pki.ca, pki.issuer, self.pan[:6] + "FF", self.issuer_expiry)
        c46, r48 = icc_certificate(
            pki.issuer, pki.icc, self.pan, self.icc_expiry, self.static_data()
        )
        body = enc("8F", bytes([pki.index])) + enc("90", c90) + enc("9F32", pki.issuer.exponent)
        if r92:
            body += enc("92", r92)
        body += enc("9F46", c46) + enc("9F47", pki.icc.exponent)
        if r48:
            body += enc("9F48", r48)
        if self.aip()[0] & 0x40:
            ssad = signed_static_data(pki.issuer, T("DAC1"), self.static_data())
            if self.corrupt_signature:
                ssad = bytes([ssad[0] ^ 1]) + ssad[1:]
            body += enc("93", ssad)
        return body

    def afl(self) -> bytes:
        return T("08010100") + T("10010101") + T("18010100")

    def records(self) -> dict[tuple[int, int], bytes]:
        rec1 = enc("57", self.track2)
        if self.scheme != "visa":
            rec1 += enc("8C", CDOL1_MC) + enc("8D", T("8A029F3704"))
        return {(1, 1): rec1, (2, 1): self.oda_record(), (3, 1): self.cert_record()}

    def label(self) -> bytes:
        return {"visa": b"VISA", "mastercard": b"MASTERCARD", "rupay": b"RUPAY"}[self.scheme]

    def kernel_id(self) -> bytes:
        return {"visa": b"\x03", "mastercard": b"\x02", "rupay": b"\x0d"}[self.scheme]

    def pdol(self) -> bytes:
        return PDOL_VISA if self.scheme in ("visa", "rupay") else T("9F1A02")

    def ac(self, data: bytes) -> bytes:
        return _sha1(b"test-ac" + data)[:8]

    # ---- APDUs ---------------------------------------------------------------------
    def reset(self) -> None:
        self.taps += 1

    def transceive(self, apdu: bytes) -> bytes:
        step = self._step(apdu)
        self.log.append((step, apdu))
        fault = self.faults.get(step)
        if isinstance(fault, Exception):
            raise fault
        if isinstance(fault, bytes):
            return fault
        resp = self._answer(step, apdu)
        if callable(fault):
            return fault(resp)
        return resp

    def _step(self, apdu: bytes) -> str:
        ins = apdu[1]
        if ins == 0xA4:
            return "select_ppse" if apdu[5:19] == b"2PAY.SYS.DDF01" else "select_aid"
        if ins == 0xA8:
            return "gpo"
        if ins == 0xB2:
            return f"read_{apdu[3] >> 3}_{apdu[2]}"
        if ins == 0xAE:
            return "generate_ac"
        if ins == 0x88:
            return "internal_authenticate"
        return f"ins_{ins:02X}"

    def _answer(self, step: str, apdu: bytes) -> bytes:
        ok = b"\x90\x00"
        if step == "select_ppse":
            entry = enc(
                "61",
                enc("4F", self.aid)
                + enc("50", self.label())
                + enc("87", b"\x01")
                + enc("9F2A", self.kernel_id()),
            )
            entries = entry + b"".join(self.extra_ppse)
            return enc("6F", enc("84", b"2PAY.SYS.DDF01") + enc("A5", enc("BF0C", entries))) + ok
        if step == "select_aid":
            name = apdu[5 : 5 + apdu[4]]
            if name != self.aid:
                return b"\x6a\x82"
            fci = enc("50", self.label()) + enc("87", b"\x01") + enc("9F38", self.pdol())
            return enc("6F", enc("84", self.aid) + enc("A5", fci)) + ok
        if step == "gpo":
            return self._gpo(apdu) + ok
        if step.startswith("read_"):
            _, sfi, rec = step.split("_")
            body = self.records().get((int(sfi), int(rec)))
            return (enc("70", body) + ok) if body is not None else b"\x6a\x83"
        if step == "generate_ac":
            return self._generate_ac(apdu) + ok
        if step == "internal_authenticate":
            ddol_data = apdu[5 : 5 + apdu[4]]
            sig = sdad(self.pki.icc, b"\x04" + T("CAFE0001"), ddol_data)
            if self.corrupt_signature:
                sig = bytes([sig[0] ^ 1]) + sig[1:]
            return enc("80", sig) + ok
        return b"\x6d\x00"

    def _gpo(self, apdu: bytes) -> bytes:
        data = apdu[7 : 7 + apdu[6]]
        self.pdol_data = data
        if self.scheme == "mastercard" or not self.gpo_cryptogram:
            return enc("77", enc("82", self.aip()) + enc("94", self.afl()))
        if self.visa_6986_taps > self.taps:
            raise _Sw(b"\x69\x86")
        values = split_dol(self.pdol(), data)
        ttq = values[T("9F66")]
        online = bool(ttq[1] & 0x80) or not self.offline_capable
        cid = 0x80 if online else 0x40
        if self.visa_aac_taps > self.taps:
            cid = 0x00
        iad = T("06010A03") + bytes([0xA0, 0x20 if online else 0x10, 0x00])
        ac = self.ac(data)
        body = (
            enc("82", self.aip())
            + enc("94", self.afl())
            + enc("5F34", b"\x01")
            + enc("9F10", iad)
            + enc("9F26", ac)
            + enc("9F27", bytes([cid]))
            + enc("9F36", self.atc.to_bytes(2, "big"))
            + enc("9F6C", self.ctq)
            + enc("9F6E", T("20700000"))
        )
        if not online and self.scheme == "visa":
            card_un = T("0A0B0C0D")
            f69 = b"\x01" + card_un + self.ctq + T("0000")
            tail = values[T("9F37")] + values[T("9F02")] + values[T("5F2A")] + f69
            sig = sdad(self.pki.icc, b"\x04" + card_un, tail)
            if self.corrupt_signature:
                sig = bytes([sig[0] ^ 1]) + sig[1:]
            body += enc("9F4B", sig) + enc("9F69", f69)
        return enc("77", body)

    def _generate_ac(self, apdu: bytes) -> bytes:
        p1 = apdu[2]
        data = apdu[5 : 5 + apdu[4]]
        values = split_dol(CDOL1_MC, data)
        atc = self.atc.to_bytes(2, "big")
        iad = T("0110A00003220000000000000000000000FF")
        if self.see_phone_taps > self.taps:
            return enc(
                "77",
                enc("9F27", b"\x00")
                + enc("9F36", atc)
                + enc("9F26", self.ac(data))
                + enc("9F10", iad)
                + enc("DF4B", T("010001")),
            )
        wanted = p1 & 0xC0
        cid = wanted if (wanted != 0x40 or self.offline_capable) else 0x80
        ac = self.ac(data)
        if not p1 & 0x10 or cid == 0x00:
            return enc(
                "77",
                enc("9F27", bytes([cid])) + enc("9F36", atc) + enc("9F26", ac) + enc("9F10", iad),
            )
        tlvs = enc("9F27", bytes([cid])) + enc("9F36", atc) + enc("9F10", iad)
        tdhc = _sha1(self.pdol_data + data + tlvs)
        dyn = b"\x08" + T("1122334455667788") + bytes([cid]) + ac + tdhc
        sig = sdad(self.pki.icc, dyn, values[T("9F37")])
        if self.corrupt_signature:
            sig = bytes([sig[0] ^ 1]) + sig[1:]
        return enc(
            "77", enc("9F27", bytes([cid])) + enc("9F36", atc) + enc("9F4B", sig) + enc("9F10", iad)
        )


class _Sw(Exception):  # noqa: N818
    def __init__(self, sw: bytes) -> None:
        self.sw = sw


class Tap:
    """One tap of a TestPhone: a `card` object whose transceive turns _Sw into a status word."""

    def __init__(self, phone: TestPhone) -> None:
        self.phone = phone
        self.apdus = 0

    def transceive(self, apdu: bytes) -> bytes:
        self.apdus += 1
        try:
            return self.phone.transceive(apdu)
        except _Sw as sw:
            return sw.sw


def tap(phone: TestPhone) -> Tap:
    phone.reset()
    return Tap(phone)


def removed(_: bytes = b"") -> bytes:
    raise CardRemoved("test: phone left the field")


__all__ = ["TestPhone", "TestPki", "tap", "enc", "removed", "dataclasses"]


def kernel_config(tmp_path, extra: str = "", capk_lines: list[str] | None = None):  # noqa: ANN001, ANN201
    """A Config using the shipped AID table and a CA key file with our test CAs."""
    from firmware.config import parse_config, shipped_config_dir

    lines = capk_lines
    if lines is None:
        lines = [TestPki(r).capk_line() for r in ("A000000003", "A000000004", "A000000524")]
    capk = tmp_path / "capk.txt"
    capk.write_text("\n".join(lines) + "\n", encoding="utf-8")
    aids = shipped_config_dir() / "aids.toml"
    text = f'{extra}\n[kernel]\naid_table = "{aids}"\ncapk_file = "{capk}"\n'
    return parse_config(text, tmp_path / "terminal.toml")
