"""Wallet profiles (drivers/sim/profiles.toml) and the TEST issuer keys the phones compute with.

A profile is data: token, expiry, AID, flow, behaviour and fault. This module turns the TOML into
`Profile` objects and finds, for a token, its issuer's master key in
`config/keys/test-issuers.toml` (the same file the host simulator reads). No I/O beyond reading
those two files; nothing here talks NFC.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

PROFILES_FILE = Path(__file__).resolve().parent / "profiles.toml"

FLOWS = ("visa", "mastercard", "emv")
FAULTS = (
    "",
    "bad-signature",
    "expired-cert",
    "malformed-tlv",
    "wrong-sw",
    "leaves-field",
    "slow-wtx",
    "unknown-aid",
)


class ProfileError(ValueError):
    """An unknown profile name or a profile/keys file that does not make sense."""


@dataclass(frozen=True)
class Profile:
    """One simulated phone wallet."""

    name: str
    scheme: str
    flow: str
    summary: str
    token: str
    expiry: str  # YYMM
    psn: str
    aid: str
    label: str
    kernel_id: int
    priority: int = 1
    issuer_country: int = 840
    offline: bool = False
    offline_limit: int = 0
    cda: bool = False
    see_phone: bool = False
    fault: str = ""
    slow_seconds: float = 0.0

    @property
    def aid_bytes(self) -> bytes:
        return bytes.fromhex(self.aid)


@dataclass(frozen=True)
class IssuerKey:
    """One [[issuer]] entry of test-issuers.toml."""

    scheme: str
    pan_prefixes: tuple[str, ...]
    cvn: int
    imk_ac: bytes


def _resolve(name: str, raw: dict[str, dict], seen: tuple[str, ...] = ()) -> dict:
    if name not in raw:
        raise ProfileError(f"unknown wallet profile {name!r} (known: {', '.join(raw)})")
    if name in seen:
        raise ProfileError(f"profile {name!r}: base loop {' -> '.join(seen + (name,))}")
    entry = dict(raw[name])
    base = entry.pop("base", None)
    merged = _resolve(base, raw, seen + (name,)) if base else {}
    merged.update(entry)
    return merged


@lru_cache(maxsize=4)
def load_profiles(path: Path = PROFILES_FILE) -> dict[str, Profile]:
    """All profiles of `path`, in file order."""
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    known = {f.name for f in fields(Profile)}
    out: dict[str, Profile] = {}
    for name in raw:
        entry = _resolve(name, raw)
        unknown = set(entry) - known
        if unknown:
            raise ProfileError(f"{path}: profile {name!r}: unknown key {sorted(unknown)[0]!r}")
        try:
            profile = Profile(name=name, **entry)
        except TypeError as exc:
            raise ProfileError(f"{path}: profile {name!r}: {exc}") from None
        if profile.flow not in FLOWS:
            raise ProfileError(f"{path}: profile {name!r}: flow must be one of {FLOWS}")
        if profile.fault not in FAULTS:
            raise ProfileError(f"{path}: profile {name!r}: unknown fault {profile.fault!r}")
        out[name] = profile
    return out


def profile_names() -> list[str]:
    """Names of all wallet profiles, in the order `pitap wallet --list` shows them."""
    return list(load_profiles())


def get_profile(name: str) -> Profile:
    profiles = load_profiles()
    if name not in profiles:
        raise ProfileError(f"unknown wallet profile {name!r} (known: {', '.join(profiles)})")
    return profiles[name]


def default_issuer_keys_file() -> Path:
    """config/keys/test-issuers.toml: $PITAP_CONFIG_DIR, the checkout, or installed share/."""
    env = os.environ.get("PITAP_CONFIG_DIR")
    if env:
        return Path(env) / "keys" / "test-issuers.toml"
    checkout = Path(__file__).resolve().parents[2] / "config" / "keys" / "test-issuers.toml"
    if checkout.is_file():
        return checkout
    return Path(sys.prefix) / "share" / "pitap" / "config" / "keys" / "test-issuers.toml"


@lru_cache(maxsize=4)
def load_issuer_keys(path: Path) -> tuple[IssuerKey, ...]:
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise ProfileError(f"cannot read issuer keys {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: {exc}") from None
    keys = []
    for i, entry in enumerate(raw.get("issuer", [])):
        try:
            keys.append(
                IssuerKey(
                    scheme=str(entry["scheme"]),
                    pan_prefixes=tuple(str(p) for p in entry["pan_prefixes"]),
                    cvn=int(entry["cvn"]),
                    imk_ac=bytes.fromhex(entry["imk_ac"]),
                )
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ProfileError(f"{path}: issuer[{i}]: bad or missing key ({exc})") from None
    return tuple(keys)


def issuer_for(token: str, path: Path | None = None) -> IssuerKey:
    """The issuer key with the longest prefix of `token`."""
    path = path or default_issuer_keys_file()
    best: tuple[int, IssuerKey] | None = None
    for key in load_issuer_keys(path):
        for prefix in key.pan_prefixes:
            if token.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), key)
    if best is None:
        raise ProfileError(f"{path}: no issuer serves token range {token[:6]}…")
    return best[1]
