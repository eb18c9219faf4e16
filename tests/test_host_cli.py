"""`pitap host` as a user runs it: it serves until interrupted, says where it listens, and a
port already taken or a missing keys file is one line on stderr, never a traceback."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest
from host_support import write_keys
from run_support import start_pitap

NO_WARNINGS = {"PYTHONWARNINGS": "ignore"}  # stderr holds the one line under test


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_pitap_host_serves_until_interrupted(tmp_path: Path, stop: signal.Signals) -> None:
    keys = write_keys(tmp_path)
    proc = start_pitap("host", "--port", "0", "--keys", str(keys), "--ledger",
                       str(tmp_path / "ledger.sqlite"), "--tls", "--tls-dir", str(tmp_path / "tls"),
                       cwd=tmp_path, **NO_WARNINGS)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("host simulator listening on 127.0.0.1:") and "TLS" in line
        assert "host.ca_file" in proc.stdout.readline()
        port = int(line.split("127.0.0.1:")[1].split()[0])
        socket.create_connection(("127.0.0.1", port), timeout=30).close()
        assert (tmp_path / "tls" / "test-ca.pem").is_file()
        assert (tmp_path / "tls" / "server.key").stat().st_mode & 0o077 == 0
    finally:
        proc.send_signal(stop)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()  # never leave a host running after the test
            proc.communicate()
            raise
    assert proc.returncode == 0 and "Traceback" not in err


def test_port_in_use_and_missing_keys_are_one_line(tmp_path: Path) -> None:
    keys = write_keys(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = start_pitap("host", "--port", str(port), "--keys", str(keys), cwd=tmp_path,
                           **NO_WARNINGS)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and err.count("\n") == 1 and "cannot listen" in err
    proc = start_pitap("host", "--port", "0", "--keys", str(tmp_path / "nope.toml"),
                       cwd=tmp_path, **NO_WARNINGS)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.count("\n") == 1 and "nope.toml" in err


def test_tls_ca_path_is_absolute(tmp_path: Path) -> None:
    """The CA line is pasted into a configuration, which resolves a relative path against its
    own folder: it must name the file wherever the host was started from."""
    site = tmp_path / "site" / "site.toml"  # state_dir "var" lives beside it, not in the cwd
    site.parent.mkdir()
    site.write_text('[terminal]\nstate_dir = "var"\n', encoding="utf-8")
    proc = start_pitap("host", "--port", "0", "--tls", "--config", str(site), cwd=tmp_path,
                       **NO_WARNINGS)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        line = proc.stdout.readline().strip()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert line.startswith('terminals pin the test CA: host.ca_file = "'), line
    ca = Path(line.split('"')[1])
    assert ca.is_absolute() and ca == site.parent.resolve() / "var" / "host-tls" / "test-ca.pem"
    assert ca.is_file()
