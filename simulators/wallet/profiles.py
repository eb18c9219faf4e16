"""Wallet profiles (simulators/wallet/profiles.toml) and the TEST issuer key a phone computes with.

A profile is data: token, expiry, AID, flow, behaviour and fault. This module turns the TOML into
`Profile` objects and finds, for a token, its issuer's master key in
`simulators/data/test-issuers.toml` (the same file the host simulator reads). No I/O beyond reading
those two files; nothing here talks NFC.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

from simulators.keys import TEST_ISSUERS_FILE, IssuerKey, key_for, load_issuer_keys

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


def issuer_for(token: str, path: Path | None = None) -> IssuerKey:
    """The test issuer key with the longest prefix of `token` (ConfigError: unusable keys file)."""
    path = path or TEST_ISSUERS_FILE
    key = key_for(load_issuer_keys(path), token)
    if key is None:
        raise ProfileError(f"{path}: no issuer serves token range {token[:6]}…")
    return key
