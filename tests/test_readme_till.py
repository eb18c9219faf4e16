"""The README's 20-line Python till, run as printed against `pitap run` with its API on: it
starts a payment, follows the events until that payment's outcome and prints the receipt. Only
the base URL and the key are put in (as an integrator would); the rest is the README's text."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from api_support import site, up
from run_support import run_pitap, start_pitap, wait_until

from simulators.wallet.phone import SimulatedPhone

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_till() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("A till in 20 lines of Python"):]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None, "the README's till example is gone"
    return block.group(1)


def test_the_readme_till_takes_a_payment_and_prints_its_receipt(tmp_path: Path,
                                                                 host_sim) -> None:
    code = readme_till()
    assert len(code.strip().splitlines()) <= 22  # "a 20-line till" it is said to be
    config, reader, base = site(tmp_path, host_sim.port)
    key = run_pitap("api-key", "add", "till-1", "--config", str(config)).stdout.strip()
    code, found = re.subn(r'^BASE, KEY = .*$', f'BASE, KEY = "{base}", "{key}"', code,
                          flags=re.M)
    assert found == 1
    proc = start_pitap("run", "--config", str(config), stdin=subprocess.DEVNULL)
    phone = SimulatedPhone("visa-online", reader)
    tapped = phone.start(taps=1, timeout=120.0)
    try:
        assert wait_until(lambda: up(base, key), seconds=120), "the API never came up"
        till = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=240)
    finally:
        phone.stop()
        tapped.join(30)
        proc.kill()
        proc.wait()
    assert till.returncode == 0, till.stderr
    lines = till.stdout.splitlines()
    assert "waiting_for_card" in lines and "outcome" in lines
    receipt = "\n".join(lines[lines.index("outcome") + 1:])
    assert "Total EUR 12.50" in receipt and "APPROVED" in receipt.splitlines()
    assert "**** 0019" in receipt and "CUSTOMER COPY" in receipt
    assert "4761739001010019" not in till.stdout  # never the whole card number
    assert [r["approved"] for r in host_sim.ledger.transactions()] == [1]
