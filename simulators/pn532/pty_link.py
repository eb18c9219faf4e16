"""The name nfcpy opens an emulated chip's pseudo-terminal by.

Holds the link from a name nfcpy's `tty:`/`com:` paths can reach (`/dev/ttyPITAPn`, or `./COMn`
without root) to a pty's `/dev/pts/N`, picked under a lock file so emulators in parallel test runs
never take the same name, and removed only by the emulator that made it. No chip logic here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from pathlib import Path

DEV = Path("/dev")
LINK_PREFIX = "ttyPITAP"
LINK_LOCK = Path(tempfile.gettempdir()) / "pitap-pn532-links.lock"
NFCPY_TTY_NAME = re.compile(r"^[a-zA-Z0-9-]+$")  # what nfcpy's tty: path accepts as a port
NFCPY_COM_NAME = re.compile(r"^COM\d+$")


class LinkError(Exception):
    """No usable link: the name is taken, nfcpy could not open it, or /dev is not writable."""


def make_link(tty_path: str, requested: Path | None) -> Path:
    """Link `requested` (or the first free /dev/ttyPITAPn) to our pty.

    Emulators in several processes (parallel test runs) pick names under one lock file, so
    two never take the same name and none removes a link another just made."""
    with open(LINK_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if requested is not None:
            return _link_at(tty_path, requested)
        for n in range(100):
            candidate = DEV / f"{LINK_PREFIX}{n}"
            if _free_or_stale(candidate):
                try:
                    return _link_at(tty_path, candidate, auto=True)
                except FileExistsError:
                    continue  # taken by an emulator that does not use the lock
    raise LinkError(f"no free {DEV}/{LINK_PREFIX}N name")


def _link_at(tty_path: str, path: Path, auto: bool = False) -> Path:
    """One link; FileExistsError when `auto` and another process just took the name."""
    nfcpy_path_for(path)  # refuse a name nfcpy could not open
    if not _free_or_stale(path):
        raise LinkError(f"{path} exists and is not a stale emulator link")
    try:
        if os.path.lexists(path):
            os.unlink(path)
        os.symlink(tty_path, path)
    except FileExistsError:
        if auto:
            raise
        raise LinkError(f"{path} exists and is not a stale emulator link") from None
    except OSError as exc:
        hint = ""
        if path.parent == DEV:
            hint = " (run as root, or use --link ./COM7 and com:COM7:pn532 from that directory)"
        raise LinkError(f"cannot create {path}: {exc.strerror}{hint}") from None
    return path


def remove_link(link: Path, tty_path: str) -> None:
    """Remove `link` if it still points at our pty (never someone else's)."""
    with contextlib.suppress(OSError):
        if os.readlink(link) == tty_path:
            os.unlink(link)


def nfcpy_path_for(link: Path) -> str:
    """The nfcpy reader path that opens the tty behind `link`.

    nfcpy's `tty:NAME:pn532` finds NAME in /dev only (`tty:S0` and the like get a `tty`
    prefix; other names are taken as they are). On Linux, `com:COMn:pn532` opens the relative
    path `COMn`, i.e. a link of that name in the current directory, without root.
    """
    link = Path(link)
    if link.parent == DEV and NFCPY_TTY_NAME.match(link.name):
        if re.match(r"^(S|ACM|AMA|USB)\d*$", link.name):
            raise LinkError(f"{link.name!r}: nfcpy would read this as /dev/tty{link.name}")
        return f"tty:{link.name}:pn532"
    if NFCPY_COM_NAME.match(link.name):
        return f"com:{link.name}:pn532"
    raise LinkError(
        f"{link}: nfcpy opens serial ports as /dev/NAME (tty:NAME:pn532) or ./COMn (com:COMn:pn532)"
    )


def _free_or_stale(path: Path) -> bool:
    """True if nothing is at `path`, or only a link to a pty that is gone."""
    if not os.path.lexists(path):
        return True
    if not path.is_symlink():
        return False
    target = os.readlink(path)
    return target.startswith("/dev/pts/") and not os.path.exists(target)
