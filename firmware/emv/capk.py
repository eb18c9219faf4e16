"""Certification Authority public keys (CAPK): the capk.txt line format, checksums, revocation.

One key a line, hex fields, as in the open-source EMV tools (lumag/emv-tools, proxmark3):

    RID INDEX EXPIRY rsa EXPONENT MODULUS sha1 CHECKSUM   # optional comment

EXPIRY is YYMMDD (000000 = none); CHECKSUM = SHA-1(RID || INDEX || MODULUS || EXPONENT) (EMV
Book 2, 11.2.2). A line whose checksum is wrong or whose fields do not parse is refused and logged;
the other keys load. A key counts as a *test* key when the word "test" appears in its line's
comment or in the file's leading comment block, or when its modulus is one of the public scheme
test keys listed in `config/capk/public-test-keys.txt`; a production configuration refuses those.

The revocation list (`kernel.capk_revoked`) holds one issuer certificate a line:
`RID INDEX SERIAL` (hex, serial 3 bytes), as EMV Book 2 section 5.3 step 10 uses it.
This module only reads files and holds keys; it does no RSA.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from firmware.config import ConfigError, read_text_file
from firmware.errors import PitapError

log = logging.getLogger(__name__)

_TEST_WORD = re.compile(r"\btest\b", re.IGNORECASE)


class CapkFileError(PitapError, ValueError):
    """The key file cannot be read at all (missing, unreadable)."""


@dataclass(frozen=True)
class CaPublicKey:
    rid: bytes
    index: int
    expiry: dt.date | None
    exponent: int
    modulus: bytes
    checksum: bytes
    test: bool
    where: str  # "file:line", for messages

    @property
    def bits(self) -> int:
        return len(self.modulus) * 8

    def expired(self, on: dt.date) -> bool:
        return self.expiry is not None and on > self.expiry


def checksum(rid: bytes, index: int, modulus: bytes, exponent: bytes) -> bytes:
    return hashlib.sha1(rid + bytes([index]) + modulus + exponent).digest()


def _parse_expiry(text: str) -> dt.date | None:
    if text == "000000":
        return None
    yy, mm, dd = int(text[0:2]), int(text[2:4]), int(text[4:6])
    return dt.date(2000 + yy, mm, dd)


def _check_key(rid: bytes, index_b: bytes, exponent_b: bytes, modulus: bytes) -> None:
    if len(rid) != 5 or len(index_b) != 1:
        raise ValueError("RID must be 5 bytes and INDEX 1 byte")
    if int.from_bytes(exponent_b, "big") not in (3, 65537):
        raise ValueError("exponent must be 3 or 65537")
    if not (64 <= len(modulus) <= 248) or modulus[0] == 0:
        raise ValueError(f"modulus of {len(modulus)} bytes is not a usable RSA key")


def _expiry_field(text: str) -> dt.date | None:
    """YYMMDD, or 000000 for none; ValueError otherwise."""
    try:
        expiry = _parse_expiry(text) if len(text) == 6 and text.isdigit() else None
        if expiry is None and text != "000000":
            raise ValueError
    except ValueError:
        raise ValueError(f"expiry {text!r} is not YYMMDD") from None
    return expiry


def parse_line(line: str, where: str, file_is_test: bool = False) -> CaPublicKey:
    """One key line -> CaPublicKey; ValueError naming the fault (bad field or checksum)."""
    body, _, comment = line.partition("#")
    parts = body.split()
    if len(parts) != 8 or parts[3].lower() != "rsa" or parts[6].lower() != "sha1":
        raise ValueError("expected 'RID INDEX EXPIRY rsa EXP MODULUS sha1 CHECKSUM'")
    _, _, expiry_s, _, _, _, _, sum_s = parts
    hex_fields = [parts[i] for i in (0, 1, 4, 5, 7)]
    try:
        rid, index_b, exponent_b, modulus, given = map(bytes.fromhex, hex_fields)
    except ValueError:
        raise ValueError("a field is not hex") from None
    _check_key(rid, index_b, exponent_b, modulus)
    expiry = _expiry_field(expiry_s)
    expected = checksum(rid, index_b[0], modulus, exponent_b)
    if given != expected:
        raise ValueError(f"checksum {sum_s.upper()} wrong (SHA-1 gives {expected.hex().upper()})")
    return CaPublicKey(
        rid=rid,
        index=index_b[0],
        expiry=expiry,
        exponent=int.from_bytes(exponent_b, "big"),
        modulus=modulus,
        checksum=given,
        test=file_is_test or bool(_TEST_WORD.search(comment)),
        where=where,
    )


@dataclass
class CaKeyStore:
    """The trusted CA keys by (RID, index), plus the revoked issuer certificates."""

    keys: dict[tuple[bytes, int], CaPublicKey] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # "file:line: why"
    revoked: set[tuple[bytes, int, bytes]] = field(default_factory=set)

    def get(self, rid: bytes, index: int) -> CaPublicKey | None:
        return self.keys.get((bytes(rid), index))

    def is_revoked(self, rid: bytes, index: int, serial: bytes) -> bool:
        return (bytes(rid), index, bytes(serial)) in self.revoked

    def add(self, key: CaPublicKey) -> None:
        ident = (key.rid, key.index)
        old = self.keys.get(ident)
        if old is not None and old.modulus != key.modulus:
            self.refused.append(
                f"{key.where}: key {key.rid.hex().upper()} #{key.index:02X} already loaded "
                f"from {old.where} with another modulus; kept the first"
            )
            log.warning("CA key %s", self.refused[-1])
            return
        self.keys[ident] = key

    def mark_test_keys(self, public_test_moduli: set[bytes]) -> None:
        for ident, key in list(self.keys.items()):
            if not key.test and key.modulus in public_test_moduli:
                self.keys[ident] = CaPublicKey(**{**key.__dict__, "test": True})


def load_file(path: Path, store: CaKeyStore | None = None) -> CaKeyStore:
    """Load a capk.txt file into `store`; bad lines are refused (logged, listed), not fatal."""
    store = store if store is not None else CaKeyStore()
    try:
        text = read_text_file(path, "CA key file")
    except ConfigError as exc:
        raise CapkFileError(str(exc)) from None
    file_is_test = False
    header = True
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if header and _TEST_WORD.search(line):
                file_is_test = True
            continue
        header = False
        where = f"{path}:{number}"
        try:
            store.add(parse_line(line, where, file_is_test))
        except ValueError as exc:
            store.refused.append(f"{where}: {exc}")
            log.warning("CA key refused: %s: %s", where, exc)
    return store


def load_public_test_moduli(path: Path) -> set[bytes]:
    """Moduli of the public scheme test keys (a capk.txt file); missing file -> empty set."""
    try:
        store = load_file(path)
    except CapkFileError:
        return set()
    return {key.modulus for key in store.keys.values()}


def load_revocation_list(path: Path, store: CaKeyStore) -> None:
    """`RID INDEX SERIAL` lines (hex) -> store.revoked; a bad line raises ValueError naming it."""
    try:
        text = read_text_file(path, "revocation list")
    except ConfigError as exc:
        raise CapkFileError(str(exc)) from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.partition("#")[0].strip()
        if not line:
            continue
        parts = line.split()
        try:
            rid, index, serial = (bytes.fromhex(p) for p in parts)
            if len(rid) != 5 or len(index) != 1 or len(serial) != 3:
                raise ValueError
        except ValueError:
            raise CapkFileError(
                f"{path}:{number}: expected 'RID INDEX SERIAL' (5, 1 and 3 bytes of hex)"
            ) from None
        store.revoked.add((rid, index[0], serial))
