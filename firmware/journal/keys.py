"""The terminal key the card vault encrypts with: a 32-byte AES key in a 0600 file of its own."""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from firmware.config import ConfigError, read_data_file
from firmware.journal.errors import JournalError
from firmware.private_files import make_private_dir

__all__ = ["KEY_BYTES", "fsync_dir", "load_or_create_key"]

log = logging.getLogger(__name__)

KEY_BYTES = 32  # AES-256-GCM


def load_or_create_key(key_file: Path, create: bool = True) -> bytes:
    """Read the 32-byte terminal key; create it (0600, atomically) when missing and allowed.

    Refuses a key file that group or others can read or write, or that has the wrong size."""
    key_file = Path(key_file)
    if not key_file.exists():
        if not create:
            raise JournalError(
                f"{key_file}: journal key missing; provision the terminal key (0600) first"
            )
        make_private_dir(key_file.parent)
        key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        encoded = base64.b64encode(key) + b"\n"
        tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, encoded)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, key_file)  # fails if another process created it meanwhile
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        fsync_dir(key_file.parent)
        log.info("created a new journal key in %s", key_file)
    mode = key_file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise JournalError(
            f"{key_file}: journal key is accessible by group/others "
            f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {key_file}"
        )
    try:
        key = base64.b64decode(read_data_file(key_file, "journal key", 1024).strip(),
                               validate=True)
    except ConfigError as exc:
        raise JournalError(str(exc)) from None
    except ValueError as exc:
        raise JournalError(f"{key_file}: unreadable journal key: {exc}") from None
    if len(key) != KEY_BYTES:
        raise JournalError(f"{key_file}: journal key must be {KEY_BYTES} bytes (base64)")
    return key


def fsync_dir(path: Path) -> None:
    """Make a new directory entry durable (best effort)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
