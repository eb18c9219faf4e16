"""`pitap run` with `[api] enabled`: the API of the real service process, its keys made with
`pitap api-key`, a bad [api] section, HTTPS off 127.0.0.1. (An idempotent retry across a
`kill -9` of the terminal: tests/test_api_by_openapi.py, by the OpenAPI document alone.)"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from api_support import site
from run_support import run_pitap, start_pitap


def test_api_key_commands(tmp_path: Path, host_sim) -> None:
    config, _reader, _base = site(tmp_path, host_sim.port)
    made = run_pitap("api-key", "add", "till-1", "--config", str(config))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("pitap_") and len(key) > 40
    keys_file = tmp_path / "state" / "api-keys.json"
    assert keys_file.stat().st_mode & 0o777 == 0o600
    assert key not in keys_file.read_text()  # only its hash is kept
    listed = run_pitap("api-key", "list", "--config", str(config))
    assert listed.returncode == 0 and listed.stdout.startswith("till-1\t")
    again = run_pitap("api-key", "add", "till-1", "--config", str(config))
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert run_pitap("api-key", "revoke", "till-1", "--config", str(config)).returncode == 0
    gone = run_pitap("api-key", "revoke", "till-1", "--config", str(config))
    assert gone.returncode == 2 and "no key named" in gone.stderr


def test_a_bad_api_section_is_one_line_and_exit_2(tmp_path: Path, host_sim) -> None:
    for extra, fragment in [({"bind": '"localhost"'}, "api.bind"),
                            ({"colour": '"red"'}, "'api.colour'"),
                            ({"port": 70000}, "'api.port'")]:
        config, _reader, _base = site(tmp_path, host_sim.port, **extra)
        done = run_pitap("run", "--config", str(config), timeout=120)
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert fragment in line and "Traceback" not in done.stderr


def test_off_loopback_pitap_run_serves_https_and_names_its_fingerprint(tmp_path: Path,
                                                                       host_sim) -> None:
    import hashlib
    import ssl

    config, _reader, base = site(tmp_path, host_sim.port, bind='"127.0.0.2"')
    port = int(base.rsplit(":", 1)[1])
    proc = start_pitap("run", "--config", str(config), stdin=subprocess.DEVNULL)
    try:
        assert proc.stderr is not None
        line = ""
        while "terminal API" not in line:
            line = proc.stderr.readline()
            assert line, "pitap run ended without serving the API"
        assert f"https://127.0.0.2:{port}/" in line
        der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.2", port)))
        served = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
        assert f"certificate SHA-256 {served}" in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()


def test_enter_on_the_ready_screen_shows_the_api_service_screen(make_config, host_sim) -> None:
    """`pitap run`'s service loop: `#` (enter) with nothing keyed puts the API's address and
    its certificate's fingerprint, grouped to read aloud, on the screen (as a PNG)."""
    import io

    from drivers.keypad import KeyboardKeypad
    from firmware.service import TerminalService
    from firmware.terminal import Terminal
    from ui.screens import fingerprint_groups

    cfg = make_config(host_sim.port)
    fingerprint = ":".join(f"{b:02X}" for b in range(0xA0, 0xC0))
    terminal = Terminal.from_config(cfg)
    try:
        service = TerminalService(terminal, KeyboardKeypad(io.StringIO("\n")),
                                  currency=cfg.currency, result_hold_s=0)
        service.api_address = ("https://10.0.0.7:8443/", fingerprint)
        assert service.run() == 0
        shown = [s for s in terminal.feedback.recent if s.name == "service_api"]
    finally:
        terminal.close()
    (screen,) = shown
    text = " ".join(t.text for t in screen.texts)
    assert "https://10.0.0.7:8443/" in text
    assert all(group in text for group in fingerprint_groups(fingerprint))
    from pathlib import Path

    assert len(list(Path(cfg.display.directory).glob("*-service_api.png"))) == 1
