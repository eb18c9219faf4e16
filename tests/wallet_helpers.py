"""Test helpers for the simulated wallets: a phone in a thread, terminal data,
and the issuer side of the cryptogram computed independently with pyemv from the issuer keys."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pyemv import cvn

ROOT = Path(__file__).resolve().parents[1]
ISSUER_KEYS = ROOT / "simulators" / "data" / "test-issuers.toml"
CAPK_FILE = ROOT / "config" / "capk" / "test.txt"

PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


def select(aid: str) -> bytes:
    name = bytes.fromhex(aid)
    return bytes([0x00, 0xA4, 0x04, 0x00, len(name)]) + name + b"\x00"


def terminal_values(amount: int = 1000, currency: int = 978, un: str = "11223344") -> dict:
    """Terminal data, tag -> value, as a kernel would send it."""
    return {
        0x9F66: bytes.fromhex("36004000"),  # qVSDC, online capable, CDCVM supported
        0x9F02: bytes.fromhex(f"{amount:012d}"),
        0x9F03: bytes(6),
        0x9F1A: bytes.fromhex("0380"),
        0x95: bytes(5),
        0x5F2A: bytes.fromhex(f"{currency:04d}"),
        0x9A: bytes.fromhex("261127"),
        0x9C: b"\x00",
        0x9F37: bytes.fromhex(un),
        0x9F35: b"\x22",
        0x9F34: bytes.fromhex("3F0000"),
    }


VISA_PDOL_TAGS = [0x9F66, 0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37]
CDOL1_TAGS = [0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37, 0x9F35, 0x9F34]


def visa_gpo(values: dict) -> bytes:
    data = b"".join(values[t] for t in VISA_PDOL_TAGS)
    return bytes([0x80, 0xA8, 0, 0, len(data) + 2, 0x83, len(data)]) + data + b"\x00"


def generate_ac(values: dict, p1: int = 0x80) -> bytes:
    data = b"".join(values[t] for t in CDOL1_TAGS)
    return bytes([0x80, 0xAE, p1, 0x00, len(data)]) + data + b"\x00"


def tlvs(data: bytes) -> dict[int, bytes]:
    """A tiny independent BER-TLV reader for the tests (opens 6F/A5/BF0C/61/70/77 templates)."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        start = pos
        pos += 1
        if data[start] & 0x1F == 0x1F:
            while data[pos] & 0x80:
                pos += 1
            pos += 1
        tag = int.from_bytes(data[start:pos], "big")
        length = data[pos]
        pos += 1
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(data[pos : pos + n], "big")
            pos += n
        value = data[pos : pos + length]
        assert len(value) == length, f"tag {tag:X} truncated"
        pos += length
        out[tag] = value
        if tag in (0x6F, 0xA5, 0xBF0C, 0x61, 0x70, 0x77):
            out.update(tlvs(value))
    return out


def issuer_ac(token: str, psn: str, values: dict, aip: bytes, atc: bytes, iad: bytes) -> bytes:
    """The cryptogram as the issuer computes it, from test-issuers.toml alone."""
    with open(ISSUER_KEYS, "rb") as fh:
        issuers = tomllib.load(fh)["issuer"]
    entry = max(
        (i for i in issuers for p in i["pan_prefixes"] if token.startswith(p)),
        key=lambda i: max(len(p) for p in i["pan_prefixes"] if token.startswith(p)),
    )
    imk = bytes.fromhex(entry["imk_ac"])
    cls, extra = {
        10: (cvn.VisaCVN10, iad[3:7]),
        18: (cvn.VisaCVN18, iad),
        16: (cvn.MasterCardCVN16, iad[2:8]),
    }[entry["cvn"]]
    card = cls(imk, imk, imk, token, psn)
    v = values
    return card.generate_ac(
        v[0x9F02], v[0x9F03], v[0x9F1A], v[0x95], v[0x5F2A], v[0x9A], v[0x9C], v[0x9F37],
        aip, atc, extra,
    )  # fmt: skip
