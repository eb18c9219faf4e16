"""Search bytes for card numbers/tokens in every form they could leak in: ASCII, hex, BCD."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r"(?<![0-9A-Fa-f])(?:476173|541333|608326)\d{7,13}(?!\d)")


def forms(pan: str) -> dict[str, bytes]:
    """The byte strings a leaked `pan` could appear as."""
    digits = pan.encode()
    padded = pan + ("F" if len(pan) % 2 else "")
    bcd = bytes.fromhex(padded)
    candidates = {
        "ascii": digits,
        "ascii-hex": digits.hex().encode(),  # digits only: upper and lower case are the same
        "bcd": bcd,
        "bcd-hex": bcd.hex().upper().encode(),  # = ascii unless the PAN is odd (F padded)
        "utf16": pan.encode("utf-16-le"),
    }
    out: dict[str, bytes] = {}
    for name, needle in candidates.items():
        if needle not in out.values():
            out[name] = needle
    return out


def leaks(data: bytes, pans: list[str]) -> list[str]:
    """'<pan> as <form>' for every pan form found in `data`."""
    found = []
    for pan in pans:
        for name, needle in forms(pan).items():
            if needle in data:
                found.append(f"{pan[:6]}...{pan[-4:]} as {name}")
    return found


def leaks_in_files(paths: list[Path], pans: list[str]) -> list[str]:
    found = []
    for path in paths:
        if path.is_file():
            found += [f"{path.name}: {leak}" for leak in leaks(path.read_bytes(), pans)]
    return found


def wallet_tokens() -> list[str]:
    """Every test token (476173.../541333.../608326...) in the simulated wallets' data."""
    found: set[str] = set()
    for path in (ROOT / "simulators").rglob("*"):
        if path.is_file() and path.suffix in (".toml", ".json", ".py"):
            text = path.read_text(errors="replace")
            found.update(TOKEN.findall(text))
    return sorted(found)
