"""Start-up with the journal key in a folder pitap cannot write: how a provisioned Pi runs
(first boot keeps the key in /etc/pitap/secrets; pitap.service sees /etc read-only through
ProtectSystem=strict). An existing key is only read, so the terminal starts; a missing key
there is one line naming `journal.key_file`.

The folder is made read-only for real: as root (CI, the Pi) chmod does not stop writes, so the
command runs in a mount namespace of its own with the folder bind-mounted read-only
(`unshare -m`); failing that, as another user (`setpriv`) over a folder it may only read. A user
other than root simply gets the folder chmod 0500.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware.journal import load_or_create_key
from simulators.demo import free_port

NOBODY = 65534
Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]


def _run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=240, check=False,
                          env=os.environ | {"PYTHONUNBUFFERED": "1"},
                          **kw)  # type: ignore[call-overload]


def _bind_ro_prefix(folder: Path) -> list[str] | None:
    """`unshare -m sh -c 'mount --bind -o ro F F && exec "$@"'`, when it works here."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return None
    f = shlex.quote(str(folder))
    prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c",
              f'mount --bind -o ro {f} {f} && exec "$@"', "sh"]
    probe = _run([*prefix, "sh", "-c", f"! touch {f}/.probe 2>/dev/null"])
    (folder / ".probe").unlink(missing_ok=True)
    return prefix if probe.returncode == 0 else None


def _as_nobody_prefix(top: Path) -> list[str] | None:
    """`setpriv` to uid/gid 65534 with `top` handed to it, when that user can run pitap."""
    if shutil.which("setpriv") is None:
        return None
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    for path in [top, *top.rglob("*")]:
        os.chown(path, NOBODY, NOBODY)
    probe = _run([*prefix, sys.executable, "-c", "import firmware, simulators"])
    return prefix if probe.returncode == 0 else None


@pytest.fixture
def read_only_runner() -> Iterator[tuple[Path, Callable[[Path], Runner]]]:
    """(a fresh folder, make_runner): make_runner(secrets) gives a function that runs a command
    for which `secrets` (under the folder) cannot be written, or skips saying why not."""
    top = Path(tempfile.mkdtemp(prefix="pitap-ro-key-"))  # not under root's 0700 pytest folder

    def make_runner(secrets: Path) -> Runner:
        if os.geteuid() != 0:
            secrets.chmod(0o500)
            return lambda args: _run(args)
        prefix = _bind_ro_prefix(secrets)
        if prefix is None:
            prefix = _as_nobody_prefix(top)
            if prefix is None:
                pytest.skip("as root, a read-only folder needs a read-only bind mount "
                            "(unshare -m, mount --bind -o ro) or another user (setpriv); "
                            "neither works here")
            secrets.chmod(0o500)
        return lambda args: _run([*prefix, *args])

    yield top, make_runner
    for path in [top, *top.rglob("*")]:
        if path.is_dir():
            path.chmod(0o700)
    shutil.rmtree(top)


def _terminal(top: Path) -> tuple[Path, Path]:
    """A test terminal whose journal key lives in top/secrets; (config, secrets folder)."""
    state, secrets = top / "state", top / "secrets"
    state.mkdir(mode=0o700)
    secrets.mkdir(mode=0o700)
    config = top / "terminal.toml"
    config.write_text(
        f"[terminal]\nstate_dir = '{state}'\npresentment_timeout_s = 1.0\n"
        f"[journal]\nkey_file = '{secrets / 'journal.key'}'\n"
        f"[reader]\npath = 'udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}'\n"
        f"[host]\nport = {free_port()}\nconnect_timeout_s = 1.0\n")
    config.chmod(0o600)
    return config, secrets


PAY = [sys.executable, "-m", "firmware", "pay", "1.00", "--config"]


def test_existing_key_in_a_read_only_folder_starts_the_terminal(read_only_runner) -> None:
    top, make_runner = read_only_runner
    config, secrets = _terminal(top)
    key = load_or_create_key(secrets / "journal.key", create=True)
    run = make_runner(secrets)([*PAY, str(config)])
    # the terminal started and waited for a tap; nobody taps: no card, exit 1 (not a start-up
    # error, exit 2)
    assert run.returncode == 1, run.stderr
    assert "cannot create files" not in run.stderr and "Traceback" not in run.stderr
    assert load_or_create_key(secrets / "journal.key", create=False) == key
    assert (top / "state" / "journal.sqlite").is_file()
    assert sorted(p.name for p in secrets.iterdir()) == ["journal.key"]


def test_missing_key_in_a_read_only_folder_is_one_line(read_only_runner) -> None:
    top, make_runner = read_only_runner
    config, secrets = _terminal(top)
    run = make_runner(secrets)([*PAY, str(config)])
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert "journal.key_file" in lines[0] and str(secrets) in lines[0]
    assert list(secrets.iterdir()) == []
