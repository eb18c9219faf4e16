"""API keys: `pitap api-key add NAME` makes one and prints it once; only its SHA-256 is kept.

The key file (`[api] keys_file`, in the state directory) is JSON, private (0600), written whole
and atomically: {"keys": [{"name", "sha256", "created_at"}]}. A key is 32 random bytes
(`secrets`), URL-safe base64 behind a "pitap_" prefix. Checking compares the hash of what came
against every stored hash in constant time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from firmware.errors import PitapError
from firmware.private_files import make_private_dir

__all__ = ["ApiKeyError", "ApiKeys", "KeyEntry"]

KEY_PREFIX = "pitap_"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ApiKeyError(PitapError, ValueError):
    """A bad key name, a name taken or unknown, an unreadable key file: one line."""


@dataclass(frozen=True)
class KeyEntry:
    name: str
    sha256: str
    created_at: str


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """The key file at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def entries(self) -> list[KeyEntry]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [KeyEntry(str(k["name"]), str(k["sha256"]), str(k["created_at"]))
                    for k in data["keys"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ApiKeyError(f"{self.path}: unreadable API key file ({exc})") from None

    def _write(self, entries: list[KeyEntry]) -> None:
        make_private_dir(self.path.parent)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"keys": [e.__dict__ for e in entries]}, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def add(self, name: str) -> str:
        """A new key named `name`; returns it (the only time it is seen)."""
        if not NAME.fullmatch(name):
            raise ApiKeyError(f"key name {name[:40]!r}: letters, digits, '_', '.', '-', "
                              "at most 64, starting with a letter or digit")
        entries = self.entries()
        if any(e.name == name for e in entries):
            raise ApiKeyError(f"a key named {name!r} exists; revoke it first")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._write([*entries, KeyEntry(name, digest(key), when)])
        return key

    def revoke(self, name: str) -> None:
        entries = self.entries()
        kept = [e for e in entries if e.name != name]
        if len(kept) == len(entries):
            raise ApiKeyError(f"no key named {name[:40]!r}")
        self._write(kept)

    def check(self, key: str) -> str | None:
        """The name of the key `key`, or None. Reads the file each time: a revoked key is
        refused at once, without a restart."""
        wanted = digest(key)
        found = None
        for entry in self.entries():
            if hmac.compare_digest(entry.sha256, wanted):
                found = entry.name
        return found
