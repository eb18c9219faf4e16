"""The AID table (config/aids.toml): which applications the terminal accepts, with what limits.

Loads and validates the table into frozen dataclasses; every mistake is a ConfigError naming the
file and the key (`aid[2].floor_limit`). Holds no card data and does no I/O beyond reading the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.config import ConfigError, read_toml
from firmware.money import CURRENCIES

KERNELS = {0: "generic EMV", 2: "Mastercard-style M/Chip", 3: "Visa-style qVSDC"}


@dataclass(frozen=True)
class Limits:
    floor_limit: int
    contactless_txn_limit: int
    cvm_required_limit: int


@dataclass(frozen=True)
class AidConfig:
    aid: bytes
    scheme: str
    label: str
    kernel: int
    priority: int
    limits: Limits
    currency_limits: dict[int, Limits]
    zero_amount: str  # "online" | "not_allowed"
    max_offline_approvals: int
    ttq: bytes
    terminal_type: bytes
    terminal_capabilities: bytes
    additional_terminal_capabilities: bytes
    app_version: bytes
    tac_default: bytes
    tac_denial: bytes
    tac_online: bytes
    partial_match: bool = True

    def limits_for(self, currency: int) -> Limits:
        return self.currency_limits.get(currency, self.limits)

    def matches(self, card_aid: bytes) -> bool:
        if self.partial_match:
            return card_aid.startswith(self.aid)
        return card_aid == self.aid


@dataclass(frozen=True)
class AidTable:
    entries: tuple[AidConfig, ...] = field(default_factory=tuple)

    def find(self, card_aid: bytes) -> AidConfig | None:
        """The longest table AID that matches the card's AID."""
        best: AidConfig | None = None
        for entry in self.entries:
            if entry.matches(card_aid) and (best is None or len(entry.aid) > len(best.aid)):
                best = entry
        return best


_HEX_FIELDS = {
    "ttq": (4, "22004000"),
    "terminal_type": (1, "22"),
    "terminal_capabilities": (3, "0028C8"),
    "additional_terminal_capabilities": (5, "6000F0A001"),
    "app_version": (2, "0002"),
    "tac_default": (5, "DC4000A800"),
    "tac_denial": (5, "0010000000"),
    "tac_online": (5, "DC4004F800"),
}
_LIMIT_FIELDS = ("floor_limit", "contactless_txn_limit", "cvm_required_limit")
_KNOWN = {
    "aid", "scheme", "label", "kernel", "priority", "zero_amount", "max_offline_approvals",
    "partial_match", "limits", *_HEX_FIELDS, *_LIMIT_FIELDS,
}  # fmt: skip


def _int(table: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = table.get(key, default)
    if value is None:
        raise ConfigError(f"{where}.{key}: missing")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{where}.{key}: must be a non-negative integer, got {value!r}")
    return value


def _hex(table: dict[str, Any], key: str, where: str, size: int, default: str | None) -> bytes:
    value = table.get(key, default)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or (size and len(raw) != size):
        raise ConfigError(f"{where}.{key}: must be {size} bytes of hex, got {value!r}")
    return raw


def _limits(table: dict[str, Any], where: str, base: Limits | None) -> Limits:
    got = {k: _int(table, k, where, getattr(base, k) if base else None) for k in _LIMIT_FIELDS}
    return Limits(**got)


def parse_aid_table(data: dict[str, Any], file: str) -> AidTable:
    entries = data.get("aid")
    extra = set(data) - {"aid"}
    if extra:
        raise ConfigError(f"{file}: unknown key '{sorted(extra)[0]}' (expected [[aid]] tables)")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{file}: 'aid': at least one [[aid]] table is needed")
    return AidTable(tuple(_entry(table, f"{file}: aid[{i}]") for i, table in enumerate(entries)))


def _currency_limits(table: dict[str, Any], where: str, base: Limits) -> dict[int, Limits]:
    """[[aid.limits]]: per ISO 4217 currency, each limit defaulting to the entry's own."""
    per_currency: dict[int, Limits] = {}
    for j, lim in enumerate(table.get("limits", [])):
        lwhere = f"{where}.limits[{j}]"
        code = lim.get("currency")
        if not isinstance(code, str) or code.upper() not in CURRENCIES:
            raise ConfigError(f"{lwhere}.currency: a known ISO 4217 alpha code")
        unknown = set(lim) - {"currency", *_LIMIT_FIELDS}
        if unknown:
            raise ConfigError(f"{lwhere}: unknown key '{sorted(unknown)[0]}'")
        per_currency[CURRENCIES[code.upper()].numeric] = _limits(lim, lwhere, base)
    return per_currency


def _names(table: dict[str, Any], where: str) -> tuple[str, str]:
    scheme = table.get("scheme", "")
    label = table.get("label", scheme)
    if not isinstance(scheme, str) or not scheme or not isinstance(label, str):
        raise ConfigError(f"{where}.scheme: a name such as 'visa'")
    return scheme, label


def _entry(table: dict[str, Any], where: str) -> AidConfig:
    """One [[aid]] table; ConfigError naming the key at fault."""
    unknown = set(table) - _KNOWN
    if unknown:
        raise ConfigError(f"{where}: unknown key '{sorted(unknown)[0]}'")
    aid = _hex(table, "aid", where, 0, None)
    if not 5 <= len(aid) <= 16:
        raise ConfigError(f"{where}.aid: 5 to 16 bytes of hex")
    kernel = _int(table, "kernel", where)
    if kernel not in KERNELS:
        raise ConfigError(f"{where}.kernel: one of {sorted(KERNELS)} ({KERNELS})")
    zero = table.get("zero_amount", "online")
    if zero not in ("online", "not_allowed"):
        raise ConfigError(f"{where}.zero_amount: 'online' or 'not_allowed'")
    base = _limits(table, where, None)
    per_currency = _currency_limits(table, where, base)
    hexes = {k: _hex(table, k, where, size, d) for k, (size, d) in _HEX_FIELDS.items()}
    scheme, label = _names(table, where)
    partial = table.get("partial_match", True)
    if not isinstance(partial, bool):
        raise ConfigError(f"{where}.partial_match: true or false")
    return AidConfig(
        aid=aid, scheme=scheme, label=label, kernel=kernel,
        priority=_int(table, "priority", where, 15), limits=base, currency_limits=per_currency,
        zero_amount=zero, max_offline_approvals=_int(table, "max_offline_approvals", where, 0),
        partial_match=partial, **hexes,
    )  # fmt: skip


def load_aid_table(path: Path) -> AidTable:
    return parse_aid_table(read_toml(path, "AID table"), str(path))
