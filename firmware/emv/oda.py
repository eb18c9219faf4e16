"""Offline data authentication (EMV Book 2): key recovery, SDA, DDA, fDDA and CDA checks.

Certificates are raw RSA: recovered = cert^e mod n, header 6A, trailer BC, SHA-1 hashes. Each
check returns the recovered pieces or raises `OdaError` with a human reason ("issuer certificate
expired", "fDDA signature invalid", ...). Pure functions over bytes: no card I/O, no outcomes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field

from firmware.emv.capk import CaKeyStore, CaPublicKey
from firmware.emv.dates import month_passed
from firmware.errors import PitapError


class OdaError(PitapError):
    """Offline data authentication failed; str() is the human reason."""


class OdaDataMissing(OdaError):
    """The card did not give what authentication needs (TVR: ICC data missing)."""


@dataclass(frozen=True)
class PublicKey:
    modulus: bytes
    exponent: int


@dataclass(frozen=True)
class IssuerKey(PublicKey):
    identifier: bytes  # 4 bytes, leftmost PAN digits padded with F
    expiry: str  # MMYY
    serial: bytes


@dataclass(frozen=True)
class IccKey(PublicKey):
    pan: bytes = field(repr=False)  # 10 bytes, padded with F
    expiry: str
    serial: bytes


@dataclass(frozen=True)
class DynamicSignature:
    """What a verified SDAD (format 05) carried."""

    icc_dynamic_data: bytes
    icc_dynamic_number: bytes
    cid: int | None = None  # CDA only
    cryptogram: bytes = b""  # CDA only
    transaction_data_hash: bytes = b""  # CDA only


def rsa_recover(data: bytes, key: PublicKey, what: str) -> bytes:
    """cert^e mod n, as big-endian bytes of the modulus length."""
    n = len(key.modulus)
    if len(data) != n:
        raise OdaError(f"{what} is {len(data)} bytes, its key is {n}")
    c = int.from_bytes(data, "big")
    m = int.from_bytes(key.modulus, "big")
    if c >= m:
        raise OdaError(f"{what} is not below its key's modulus")
    return pow(c, key.exponent, m).to_bytes(n, "big")


def _frame(rec: bytes, fmt: int, what: str) -> None:
    if rec[0] != 0x6A or rec[-1] != 0xBC:
        raise OdaError(f"{what} signature invalid (header/trailer)")
    if rec[1] != fmt:
        raise OdaError(f"{what} signature invalid (format {rec[1]:02X}, expected {fmt:02X})")


def _hash_ok(rec: bytes, tail: bytes) -> bool:
    n = len(rec)
    digest = hashlib.sha1(rec[1 : n - 21] + tail).digest()
    return hmac.compare_digest(digest, rec[n - 21 : n - 1])


def _mmyy_expired(mmyy: bytes, on: dt.date) -> bool:
    """A certificate's BCD MMYY expiry before `on`'s month (an unreadable one counts as expired)."""
    text = mmyy.hex()
    if len(text) != 4 or not text.isdigit():
        return True
    return month_passed(int(text[2:]), int(text[:2]), on) is not False


def _digits(b: bytes) -> str:
    return b.hex().upper().rstrip("F")


def _public_key(
    part: bytes, remainder: bytes, key_len: int, exp_len: int, exponent: bytes, whose: str
) -> tuple[bytes, int]:
    """The modulus (leftmost digits in the certificate, the rest in the remainder) and exponent
    of the key a certificate carries."""
    if key_len <= len(part):
        modulus = part[:key_len]
    else:
        if len(remainder) != key_len - len(part):
            raise OdaDataMissing(f"{whose} public key remainder missing or wrong length")
        modulus = part + remainder
    value = int.from_bytes(exponent, "big")
    if exp_len != len(exponent) or value not in (3, 65537):
        raise OdaError(f"{whose} public key exponent invalid")
    return modulus, value


def recover_issuer_key(
    ca: CaPublicKey,
    cert: bytes,
    remainder: bytes,
    exponent: bytes,
    pan: str,
    on: dt.date,
    store: CaKeyStore | None = None,
) -> IssuerKey:
    """Issuer public key from the issuer certificate (90), remainder (92), exponent (9F32)."""
    if ca.expired(on):
        raise OdaError("CA public key expired")
    rec = rsa_recover(cert, PublicKey(ca.modulus, ca.exponent), "issuer certificate")
    n = len(rec)
    _frame(rec, 0x02, "issuer certificate")
    if not _hash_ok(rec, remainder + exponent):
        raise OdaError("issuer certificate hash invalid")
    if rec[11] != 0x01 or rec[12] != 0x01:
        raise OdaError("issuer certificate names an unknown hash or key algorithm")
    identifier = rec[2:6]
    ident_digits = _digits(identifier)
    if len(ident_digits) < 3 or not pan.startswith(ident_digits):
        raise OdaError("issuer certificate does not match the card number")
    if _mmyy_expired(rec[6:8], on):
        raise OdaError("issuer certificate expired")
    serial = rec[8:11]
    if store is not None and store.is_revoked(ca.rid, ca.index, serial):
        raise OdaError("issuer certificate revoked")
    modulus, exp = _public_key(rec[15 : n - 21], remainder, rec[13], rec[14], exponent, "issuer")
    return IssuerKey(
        modulus=modulus,
        exponent=exp,
        identifier=identifier,
        expiry=rec[6:8].hex(),
        serial=serial,
    )


def recover_icc_key(
    issuer: PublicKey,
    cert: bytes,
    remainder: bytes,
    exponent: bytes,
    static_data: bytes,
    pan: str,
    on: dt.date,
) -> IccKey:
    """ICC public key from 9F46 / 9F48 / 9F47 and the static data to be authenticated."""
    rec = rsa_recover(cert, issuer, "ICC certificate")
    n = len(rec)
    _frame(rec, 0x04, "ICC certificate")
    if not _hash_ok(rec, remainder + exponent + static_data):
        raise OdaError("ICC certificate hash invalid")
    if rec[17] != 0x01 or rec[18] != 0x01:
        raise OdaError("ICC certificate names an unknown hash or key algorithm")
    if _digits(rec[2:12]) != pan:
        raise OdaError("ICC certificate does not match the card number")
    if _mmyy_expired(rec[12:14], on):
        raise OdaError("ICC certificate expired")
    modulus, exp = _public_key(rec[21 : n - 21], remainder, rec[19], rec[20], exponent, "ICC")
    return IccKey(
        modulus=modulus,
        exponent=exp,
        pan=rec[2:12],
        expiry=rec[12:14].hex(),
        serial=rec[14:17],
    )


def verify_ssad(issuer: PublicKey, ssad: bytes, static_data: bytes) -> bytes:
    """SDA: check the signed static application data (93); return the data authentication code."""
    rec = rsa_recover(ssad, issuer, "signed static data")
    _frame(rec, 0x03, "SDA")
    if rec[2] != 0x01:
        raise OdaError("SDA signature names an unknown hash algorithm")
    if not _hash_ok(rec, static_data):
        raise OdaError("SDA signature invalid")
    return rec[3:5]


def verify_sdad(icc: PublicKey, sdad: bytes, signed_tail: bytes, kind: str) -> DynamicSignature:
    """DDA / fDDA / CDA: check the signed dynamic application data (9F4B).

    `signed_tail` is what the card signed after its own data: the DDOL data (DDA), the unpredictable
    number (CDA) or 9F37 || 9F02 || 5F2A || 9F69 (fDDA). `kind` names the check in reasons.
    """
    rec = rsa_recover(sdad, icc, f"{kind} signature")
    n = len(rec)
    _frame(rec, 0x05, kind)
    if rec[2] != 0x01:
        raise OdaError(f"{kind} signature names an unknown hash algorithm")
    ldd = rec[3]
    if 4 + ldd > n - 21:
        raise OdaError(f"{kind} signature invalid (dynamic data length)")
    if not _hash_ok(rec, signed_tail):
        raise OdaError(f"{kind} signature invalid")
    dyn = rec[4 : 4 + ldd]
    ldn = dyn[0] if dyn else 0
    if not 2 <= ldn <= 8 or 1 + ldn > len(dyn):
        raise OdaError(f"{kind} signature invalid (ICC dynamic number)")
    number = dyn[1 : 1 + ldn]
    if kind != "CDA":
        return DynamicSignature(dyn, number)
    rest = dyn[1 + ldn :]
    if len(rest) < 29:
        raise OdaError("CDA signature invalid (no cryptogram inside)")
    return DynamicSignature(dyn, number, rest[0], rest[1:9], rest[9:29])


def transaction_data_hash(pdol_data: bytes, cdol1_data: bytes, response_tlvs: bytes) -> bytes:
    """CDA Transaction Data Hash Code: SHA-1(PDOL data || CDOL1 data || GENERATE AC TLVs)."""
    return hashlib.sha1(pdol_data + cdol1_data + response_tlvs).digest()
