"""Fuzz target: offline data authentication key recovery (firmware.emv.oda).

A genuine issuer and ICC certificate chain is made at start (test keys, never shipped); the fuzz
input either bends bytes of a genuine certificate (then recovery must fail: a changed certificate
never recovers) or replaces a certificate, remainder or exponent with its own bytes. Recovery
returns a key or raises OdaError; any other exception is a finding.

    python tests/fuzz/fuzz_oda.py -max_total_time=60
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emv_testcard import icc_certificate, issuer_certificate, rsa_key  # noqa: E402

from firmware.emv import oda  # noqa: E402
from firmware.emv.capk import CaPublicKey, checksum  # noqa: E402

ON = dt.date(2026, 11, 27)
PAN = "4761739001010010"
RID = bytes.fromhex("A000000003")
STATIC = bytes.fromhex("5A0847617390010100105F24032812315F340101")

CA, ISSUER, ICC = rsa_key(1408, "fuzz-ca"), rsa_key(1152, "fuzz-issuer"), rsa_key(1024, "fuzz-icc")
CA_PUB = CaPublicKey(RID, 0x92, None, CA.e, CA.modulus,
                     checksum(RID, 0x92, CA.modulus, CA.exponent), True, "test")  # fmt: skip
ISSUER_CERT, ISSUER_REM = issuer_certificate(CA, ISSUER, "476173FF", "1230")
ICC_CERT, ICC_REM = icc_certificate(ISSUER, ICC, PAN, "1230", STATIC)
ISSUER_PUB = oda.PublicKey(ISSUER.modulus, ISSUER.e)

SEEDS = [b"\x00\x05\x01", b"\x01\x10\x80", b"\x02" + bytes(40), b"\x03" + bytes(range(64))]


def _bend(genuine: bytes, data: bytes) -> bytes:
    """Flip bytes of `genuine` at the positions and with the masks the input names."""
    out = bytearray(genuine)
    for i in range(0, len(data) - 1, 2):
        out[data[i] * 7 % len(out)] ^= data[i + 1] or 1
    return bytes(out)


def _issuer(cert: bytes, rem: bytes, exp: bytes) -> None:
    oda.recover_issuer_key(CA_PUB, cert, rem, exp, PAN, ON)


def _icc(cert: bytes, rem: bytes, exp: bytes) -> None:
    oda.recover_icc_key(ISSUER_PUB, cert, rem, exp, STATIC, PAN, ON)


def one_input(data: bytes) -> None:
    if not data:
        return
    op, rest = data[0] % 4, data[1:]
    if op in (0, 1):  # a genuine certificate with bytes changed never recovers
        recover, cert, rem, exp = ((_issuer, ISSUER_CERT, ISSUER_REM, ISSUER.exponent) if op == 0
                                   else (_icc, ICC_CERT, ICC_REM, ICC.exponent))  # fmt: skip
        bent = _bend(cert, rest[:16])
        if bent == cert:
            return
        try:
            recover(bent, rem, exp)
        except oda.OdaError:
            return
        raise AssertionError(f"a changed certificate recovered (op {op}, {rest[:16].hex()})")
    # the input's own bytes as certificate / remainder / exponent: a key or OdaError only
    cut = rest[0] if rest else 0
    cert, tail = rest[1 : 1 + cut], rest[1 + cut :]
    rem, exp = tail[: len(tail) // 2], tail[len(tail) // 2 :][:3]
    with contextlib.suppress(oda.OdaError):
        (_issuer if op == 2 else _icc)(cert, rem, exp)


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(one_input, SEEDS)
