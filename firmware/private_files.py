"""Private files: the state directory made private whatever the umask, and the start-up check
that configuration and secrets are readable only by the service user.

`make_private_dir` makes a directory and every missing parent 0700 whatever the process umask
(files pitap makes there are 0600: the journal, its key, screens, receipts); `prepare_state_dir`
does so for every directory the configuration puts state in and makes sure files can be created
there, or says which key is wrong in one line.

Checked: the configuration file, the journal and its key (with the WAL), the host's TLS client
key, and the state directory. A file is private when the user running pitap owns it and neither
group nor others may read or write it (a directory: neither may enter it). Missing files are not
problems here (the journal and its key are created private on first use).

`[journal] check_permissions` says what to do with a problem: "enforce" stops with one line,
"warn" logs it, "auto" (default) enforces in production mode and warns in test mode, because a
fresh checkout's shipped config/terminal.toml is world-readable. Touches files' metadata only.

`no_core_dumps()` keeps card data that is in memory during a payment out of crash dumps.
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import stat
import tempfile
from pathlib import Path

from firmware.config import Config, ConfigError

log = logging.getLogger(__name__)


def make_private_dir(path: str | os.PathLike[str]) -> Path:
    """`path` as a directory; every part of it that was missing is made 0700 whatever the
    process umask. An existing directory is left as it is (the start-up check below reports one
    that is open to others). Raises OSError (a file in the way, no permission, read-only)."""
    path = Path(path)
    missing = []
    part = path
    while not part.is_dir() and part.parent != part:
        missing.append(part)
        part = part.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if directory.is_dir():
                continue  # another process made it meanwhile
            raise
        os.chmod(directory, 0o700)  # a umask such as 0277 takes the owner's bits too
    return path


def prepare_state_dir(cfg: Config) -> None:
    """Make the directories the configuration keeps state in (terminal.state_dir, the journal's,
    the PNG screens', the receipt file's) private when missing, and check that files can be
    created in each; a ConfigError naming the file and the key when not."""
    places = [
        ("terminal.state_dir", cfg.state_dir),
        ("journal.file", cfg.state_path(cfg.journal.file).parent),
        ("journal.key_file", cfg.state_path(cfg.journal.key_file).parent),
    ]
    if cfg.display.backend == "png":
        places.append(("display.directory", cfg.state_path(cfg.display.directory)))
    if cfg.printer.backend == "file":
        places.append(("printer.path", cfg.state_path(cfg.printer.path).parent))
    checked: set[Path] = set()
    for key, directory in places:
        if directory in checked:
            continue
        checked.add(directory)
        try:
            make_private_dir(directory)
            fd, probe = tempfile.mkstemp(prefix=".pitap-write-test-", dir=directory)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise ConfigError(f"{cfg.source}: {key}: cannot create files in {directory} ({why})"
                              ) from None


def private_paths(cfg: Config) -> list[tuple[str, Path]]:
    """(what, path) for every file or directory that must be private to the service user."""
    out: list[tuple[str, Path]] = [
        ("configuration file", cfg.source),
        ("state directory", cfg.state_dir),
        ("journal key", cfg.state_path(cfg.journal.key_file)),
        ("journal", cfg.state_path(cfg.journal.file)),
        ("journal WAL", Path(str(cfg.state_path(cfg.journal.file)) + "-wal")),
    ]
    if cfg.host.client_key:
        out.append(("host TLS client key", cfg.data_path(cfg.host.client_key)))
    return out


def problems(cfg: Config, uid: int | None = None) -> list[str]:
    """One line per path that is not private to `uid` (default: the effective user)."""
    uid = os.geteuid() if uid is None else uid
    found = []
    for what, path in private_paths(cfg):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            found.append(f"{what} {path}: cannot check ({exc.strerror})")
            continue
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid != uid:
            found.append(f"{what} {path}: owned by uid {st.st_uid}, pitap runs as uid {uid}")
        if mode & 0o077:
            fix = "700" if stat.S_ISDIR(st.st_mode) else "600"
            found.append(
                f"{what} {path}: mode {mode:04o} lets group/others in; run: chmod {fix} {path}"
            )
    return found


def check_private_files(cfg: Config, uid: int | None = None) -> list[str]:
    """Run the check as configured; raises ConfigError (one line) when enforcing."""
    found = problems(cfg, uid)
    policy = cfg.journal.check_permissions
    enforce = policy == "enforce" or (policy == "auto" and cfg.mode == "production")
    if found and enforce:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ConfigError(f"not private to the service user: {found[0]}{more}")
    # In test mode (the demo, a laptop) this is advice, not an alarm: shown with -v.
    level = logging.WARNING if policy == "warn" or cfg.mode == "production" else logging.INFO
    for line in found:
        log.log(level, "not private to the service user: %s", line)
    return found


PR_SET_DUMPABLE = 4


def no_core_dumps() -> bool:
    """No core file and no ptrace by other users' tools for this process (card data lives in
    its memory during a payment). True when both took effect."""
    ok = True
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError) as exc:
        log.warning("cannot disable core dumps: %s", exc)
        ok = False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            ok = False
    except (OSError, AttributeError):
        ok = False
    return ok
