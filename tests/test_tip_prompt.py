"""The tip prompt of `pitap run` ([tips] mode = "prompt"): after the amount, the customer's
screen offers the presets (percent of the amount), another amount and no tip; the keypad
chooses; the tap pays the total (9F02 and field 4) with the tip in field 54, as `pitap pay
--tip` does. Real parts: `pitap run` as a process with keys typed on a pseudo-terminal (or the
service loop with a keyboard keypad on a script), a simulated phone on nfcpy's udp: driver,
the host simulator on 127.0.0.1 with its ledger, the journal file, screens as PNG files."""

from __future__ import annotations

import dataclasses
import io
import os
import socket
from pathlib import Path

import pytest
from run_support import start_pitap, wait_until
from test_ui_run import last_screen

from drivers.keypad import KeyboardKeypad
from firmware.config import TipsSection, load_config
from firmware.journal import Journal
from firmware.money import CURRENCIES
from firmware.service import TerminalService
from firmware.terminal import Terminal
from simulators.demo import free_port
from simulators.wallet.phone import SimulatedPhone

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


def test_pitap_run_asks_for_a_tip_and_the_host_gets_total_and_tip(tmp_path: Path,
                                                                   host_sim) -> None:
    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    site = tmp_path / "terminal.toml"
    site.write_text(
        f'[terminal]\nstate_dir = "{tmp_path / "state"}"\npresentment_timeout_s = 60.0\n'
        f'[reader]\npath = "{reader}"\n[host]\nport = {host_sim.port}\n'
        f'[display]\ndirectory = "{tmp_path / "screens"}"\n'
        '[tips]\nmode = "prompt"\npresets = [10, 15, 20]\n', encoding="utf-8")
    phone = SimulatedPhone("visa-online", reader)
    phone.start(taps=1, timeout=120.0)
    master, slave = os.openpty()  # a keyboard, as on a desk
    proc = start_pitap("run", "--config", str(site), "--hold", "0", stdin=slave)
    os.close(slave)
    try:
        assert wait_until(lambda: last_screen(tmp_path) == "ready", seconds=60)
        os.write(master, b"2000\n")
        assert wait_until(lambda: last_screen(tmp_path) == "tip_prompt", seconds=30)
        os.write(master, b"2")  # 15 %: 3.00
        assert wait_until(lambda: len(host_sim.ledger.transactions("PITAP001")) == 1,
                          seconds=120)
        assert wait_until(lambda: last_screen(tmp_path) == "ready", seconds=60)
        os.write(master, b"q")
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        phone.stop()
    (row,) = host_sim.ledger.transactions("PITAP001")
    assert (row["amount"], row["tip"], row["approved"]) == (2300, 300, 1)  # field 4, field 54
    with Journal.from_config(load_config(site)) as j:
        (p,) = j.payments()
    assert (p.state, p.amount, p.tip, p.base) == ("approved", 2300, 300, 2000)
    shots = sorted((tmp_path / "screens").glob("*-tip_prompt.png"))
    assert shots and shots[0].stat().st_size > 0
    names = [s.stem.split("-", 1)[1] for s in sorted((tmp_path / "screens").glob("*.png"))]
    assert names.index("tip_prompt") < names.index("present_card")


@pytest.mark.parametrize(("keys", "tip"), [
    ("2000\n" "0", 0),  # no tip
    ("2000\n" "1", 200),  # the first preset: 10 %
    ("2000\n" "4" "600\n" "ccc" "250\n", 250),  # another amount: 6.00 is over 25 %, 2.50
    ("2000\n" "4" "c" "3", 400),  # another amount, cleared out: back to the presets, 20 %
])
def test_the_keypad_chooses_the_tip(make_config, host_sim, phone, keys: str, tip: int) -> None:
    cfg = make_config(host_sim.port)
    cfg = dataclasses.replace(cfg, tips=TipsSection(mode="prompt"))
    phone("visa-online", cfg.reader.path)
    terminal = Terminal.from_config(cfg)
    try:
        service = TerminalService(terminal, KeyboardKeypad(io.StringIO(keys)),
                                  currency=CURRENCIES["EUR"], result_hold_s=0)
        assert service.run(max_payments=1) == 1
        shown = list(terminal.feedback.recent)
    finally:
        terminal.close()
    (result,) = service.results
    assert (result.outcome, result.amount, result.tip) == ("approved", 2000 + tip, tip)
    (row,) = host_sim.ledger.transactions("PITAP001")
    assert (row["amount"], row["tip"]) == (2000 + tip, tip)
    prompt = next(s for s in shown if s.name == "tip_prompt")
    for text in ("Add a tip?", "€20.00", "10%", "€2.00", "15%", "€3.00", "20%", "€4.00",
                 "Another amount", "No tip"):
        assert prompt.shows(text), text
    if "600" in keys:
        refused = [s for s in shown if s.name == "tip_entry" and s.shows("Too much")]
        assert refused and refused[0].shows("€5.00") and refused[0].shows("€6.00")


def test_cancel_on_the_tip_screen_and_refunds_take_no_tip(make_config, host_sim,
                                                          phone) -> None:
    cfg = make_config(host_sim.port)
    cfg = dataclasses.replace(cfg, tips=TipsSection(mode="prompt"))
    phone("visa-online", cfg.reader.path)
    terminal = Terminal.from_config(cfg)
    try:
        # cancelled on the tip screen (nothing charged), then a refund: no tip screen
        service = TerminalService(terminal, KeyboardKeypad(io.StringIO("2000\n" "x" "r500\n")),
                                  currency=CURRENCIES["EUR"], result_hold_s=0)
        assert service.run(max_payments=1) == 1
        names = [s.name for s in terminal.feedback.recent]
    finally:
        terminal.close()
    (result,) = service.results
    assert (result.outcome, result.amount, result.tip) == ("approved", 500, 0)
    assert names.count("tip_prompt") == 1
    (row,) = host_sim.ledger.transactions("PITAP001")
    assert (row["kind"], row["amount"], row["tip"]) == ("refund", 500, 0)
