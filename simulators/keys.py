"""The TEST issuer master keys that the simulated phones and the host simulator share.

One file (simulators/data/test-issuers.toml: token/PAN prefixes -> scheme, CVN, IMK-AC) and one
loader for both sides: a phone derives its card key from the same entry the host simulator checks
the ARQC with. TEST KEYS ONLY: this package never goes onto a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from firmware.config import ConfigError, read_toml

TEST_ISSUERS_FILE = Path(__file__).resolve().parent / "data" / "test-issuers.toml"
SUPPORTED_CVNS = {("visa", 10), ("visa", 18), ("mastercard", 16), ("rupay", 10), ("rupay", 18)}


@dataclass(frozen=True)
class IssuerKey:
    """One [[issuer]] entry of the keys file."""

    scheme: str
    pan_prefixes: tuple[str, ...]
    cvn: int
    imk_ac: bytes


def _entry(entry: dict, where: str) -> IssuerKey:
    try:
        scheme = str(entry["scheme"]).lower()
        prefixes = tuple(str(p) for p in entry["pan_prefixes"])
        cvn = int(entry["cvn"])
        imk = bytes.fromhex(str(entry["imk_ac"]))
    except KeyError as exc:
        raise ConfigError(f"{where}: missing key {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: bad value: {exc}") from None
    if len(imk) != 16:
        raise ConfigError(f"{where}.imk_ac: 32 hex digits (double-length 3DES key)")
    if (scheme, cvn) not in SUPPORTED_CVNS:
        raise ConfigError(f"{where}: {scheme} CVN {cvn} is not supported")
    return IssuerKey(scheme, prefixes, cvn, imk)


@lru_cache(maxsize=8)
def load_issuer_keys(path: Path = TEST_ISSUERS_FILE) -> tuple[IssuerKey, ...]:
    """All [[issuer]] entries of `path`; ConfigError (one line naming the entry) if unusable."""
    data = read_toml(path, "issuer keys file")
    keys = tuple(_entry(e, f"{path}: issuer[{i}]") for i, e in enumerate(data.get("issuer", [])))
    if not keys:
        raise ConfigError(f"{path}: no [[issuer]] entries")
    return keys


def key_for(keys: tuple[IssuerKey, ...], pan: str) -> IssuerKey | None:
    """The key whose longest prefix starts `pan` (a token or a PAN), or None."""
    best: IssuerKey | None = None
    best_len = 0
    for key in keys:
        for prefix in key.pan_prefixes:
            if pan.startswith(prefix) and len(prefix) > best_len:
                best, best_len = key, len(prefix)
    return best
