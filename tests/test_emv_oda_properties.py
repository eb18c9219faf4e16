"""Property tests (hypothesis) of offline data authentication key recovery (firmware.emv.oda).

Whatever a phone puts in its certificates and signatures, recovery returns a key / signature or
raises OdaError with a reason: never another exception. A genuine certificate with any byte
changed never recovers. And certificates *validly signed* over random contents (right header,
trailer and hash, nonsense inside: lengths, dates, exponents) are refused cleanly too.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from emv_testcard import issuer_certificate, rsa_key
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.emv import oda
from firmware.emv.capk import CaPublicKey, checksum

ON = dt.date(2026, 11, 27)
PAN = "4761739001010010"
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def keys():  # noqa: ANN201
    ca = rsa_key(1408, "oda-prop-ca")
    issuer = rsa_key(1152, "oda-prop-issuer")
    icc = rsa_key(1024, "oda-prop-icc")
    rid = bytes.fromhex("A000000003")
    ca_pub = CaPublicKey(rid, 0x92, None, ca.e, ca.modulus,
                         checksum(rid, 0x92, ca.modulus, ca.exponent), True, "test")  # fmt: skip
    return ca, issuer, icc, ca_pub


def _issuer_pub(issuer) -> oda.PublicKey:  # noqa: ANN001
    return oda.PublicKey(issuer.modulus, issuer.e)


def _signed(key, fmt: int, body: bytes, tail: bytes) -> bytes:  # noqa: ANN001
    """A record validly signed by `key`: 6A fmt body(padded) SHA-1 BC."""
    room = key.size - 22
    body = (bytes([fmt]) + body)[:room].ljust(room, b"\xbb")
    digest = hashlib.sha1(body + tail).digest()
    return key.sign(b"\x6a" + body + digest + b"\xbc")


@FAST
@given(cert=st.binary(max_size=200), rem=st.binary(max_size=40), exp=st.binary(max_size=4))
def test_random_issuer_certificate_is_refused_cleanly(keys, cert, rem, exp) -> None:  # noqa: ANN001
    ca_pub = keys[3]
    cert = cert.ljust(len(ca_pub.modulus), b"\x00")[: len(ca_pub.modulus)] if cert else cert
    with pytest.raises(oda.OdaError):
        oda.recover_issuer_key(ca_pub, cert, rem, exp, PAN, ON)


@FAST
@given(at=st.integers(0, 175), flip=st.integers(1, 255))
def test_genuine_issuer_certificate_with_a_byte_changed_never_recovers(keys, at, flip) -> None:  # noqa: ANN001
    ca, issuer, _icc, ca_pub = keys
    cert, rem = issuer_certificate(ca, issuer, "476173FF", "1230")
    assert oda.recover_issuer_key(ca_pub, cert, rem, issuer.exponent, PAN, ON).modulus == (
        issuer.modulus
    )
    at %= len(cert)
    bent = cert[:at] + bytes([cert[at] ^ flip]) + cert[at + 1 :]
    with pytest.raises(oda.OdaError):
        oda.recover_issuer_key(ca_pub, bent, rem, issuer.exponent, PAN, ON)


expiries = st.sampled_from([b"\x12\x30", b"\x01\x24", b"\x13\x30", b"\xff\xff", b"\x00\x00"])
algorithms = st.sampled_from([b"\x01\x01", b"\x01\x02", b"\x00\x01"])
exponents = st.sampled_from([b"\x03", b"\x01\x00\x01", b"", b"\x02", b"\x00\x03"])
issuer_bodies = st.builds(
    lambda ident, expiry, alg, key_len, exp_len, rest: (
        ident + expiry + b"\x00\x00\x01" + alg + bytes([key_len, exp_len]) + rest
    ),
    st.sampled_from([bytes.fromhex("476173FF"), bytes.fromhex("4761FFFF"), bytes(4)]),
    expiries, algorithms, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=200),
)  # fmt: skip
icc_bodies = st.builds(
    lambda pan, expiry, alg, key_len, exp_len, rest: (
        pan + expiry + b"\x00\x00\x01" + alg + bytes([key_len, exp_len]) + rest
    ),
    st.sampled_from([bytes.fromhex(PAN + "F" * 4), bytes(10)]),
    expiries, algorithms, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=200),
)  # fmt: skip
sdad_bodies = st.builds(
    lambda alg, ldd, ldn, rest: bytes([alg, ldd, ldn]) + rest,
    st.sampled_from([1, 2]), st.integers(0, 255), st.integers(0, 255), st.binary(max_size=120),
)  # fmt: skip


@FAST
@given(body=issuer_bodies | st.binary(max_size=200), rem=st.binary(max_size=40), exp=exponents)
def test_validly_signed_nonsense_issuer_certificate(keys, body, rem, exp) -> None:  # noqa: ANN001
    ca, _issuer, _icc, ca_pub = keys
    cert = _signed(ca, 0x02, body, rem + exp)
    try:
        key = oda.recover_issuer_key(ca_pub, cert, rem, exp, PAN, ON)
    except oda.OdaError as exc:
        assert str(exc)
        return
    assert key.exponent in (3, 65537) and key.modulus
    assert PAN.startswith(key.identifier.hex().upper().rstrip("F"))


@FAST
@given(body=icc_bodies | st.binary(max_size=200), rem=st.binary(max_size=40),
       static=st.binary(max_size=60))  # fmt: skip
def test_validly_signed_nonsense_icc_certificate(keys, body, rem, static) -> None:  # noqa: ANN001
    _ca, issuer, _icc, _ = keys
    cert = _signed(issuer, 0x04, body, rem + b"\x03" + static)
    try:
        key = oda.recover_icc_key(_issuer_pub(issuer), cert, rem, b"\x03", static, PAN, ON)
    except oda.OdaError as exc:
        assert str(exc)
        return
    assert key.modulus


@FAST
@given(body=sdad_bodies | st.binary(max_size=120), tail=st.binary(max_size=40),
       kind=st.sampled_from(["DDA", "fDDA", "CDA"]))  # fmt: skip
def test_validly_signed_nonsense_dynamic_signature(keys, body, tail, kind) -> None:  # noqa: ANN001
    icc = keys[2]
    sdad = _signed(icc, 0x05, body, tail)
    try:
        sig = oda.verify_sdad(oda.PublicKey(icc.modulus, icc.e), sdad, tail, kind)
    except oda.OdaError as exc:
        assert str(exc)
        return
    assert 2 <= len(sig.icc_dynamic_number) <= 8
    if kind == "CDA":
        assert len(sig.cryptogram) == 8 and len(sig.transaction_data_hash) == 20


@FAST
@given(sdad=st.binary(max_size=140), tail=st.binary(max_size=20))
def test_random_dynamic_signature_is_refused_cleanly(keys, sdad, tail) -> None:  # noqa: ANN001
    icc = keys[2]
    with pytest.raises(oda.OdaError):
        oda.verify_sdad(oda.PublicKey(icc.modulus, icc.e), sdad, tail, "fDDA")
