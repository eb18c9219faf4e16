"""`pitap demo`: scripted payments on simulated hardware, end to end on loopback.

Starts the host simulator as its own process (`pitap host`, so it can be killed mid-demo), puts
one simulated phone per scripted payment on nfcpy's `udp:` driver, and runs the real terminal
loop against both with a fresh journal. The script is data: config/demo.toml.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from firmware.config import Config, ConfigError, read_toml
from firmware.money import CURRENCIES, Currency
from firmware.private_files import make_private_dir
from firmware.terminal import PaymentResult, Terminal
from simulators.wallet.phone import SimulatedPhone

OUTCOMES = ("approved", "declined", "no_card", "try_again", "error")


@dataclass(frozen=True)
class ScriptedPayment:
    wallet: str  # simulated phone profile, "" for no phone
    amount: int
    expect: str
    currency: str | None = None
    taps: int = 1
    presentment_timeout_s: float | None = None
    void: bool = False  # once it ended as expected, void it (no tap): it must end "voided"

    @property
    def money_currency(self) -> Currency | None:
        """The payment's currency, None for the terminal's own."""
        return None if self.currency is None else CURRENCIES[self.currency.upper()]


def load_script(path: Path) -> list[ScriptedPayment]:
    """Read the demo script; a mistake names the file, the payment and the key."""
    data = read_toml(path, "demo script")
    known = {f.name for f in dataclasses.fields(ScriptedPayment)}
    script = []
    for i, entry in enumerate(data.get("payment", []), start=1):
        unknown = set(entry) - known
        if unknown:
            raise ConfigError(f"{path}: payment {i}: unknown key '{sorted(unknown)[0]}'")
        try:
            item = ScriptedPayment(**entry)
        except TypeError as exc:
            raise ConfigError(f"{path}: payment {i}: {exc}") from None
        if item.expect not in OUTCOMES:
            raise ConfigError(f"{path}: payment {i}: 'expect' must be one of {', '.join(OUTCOMES)}")
        if not isinstance(item.void, bool) or (item.void and item.expect != "approved"):
            raise ConfigError(f"{path}: payment {i}: 'void' (true/false) voids an approval")
        if not isinstance(item.amount, int) or item.amount < 0:
            raise ConfigError(f"{path}: payment {i}: 'amount' must be minor units >= 0")
        if item.currency is not None and (not isinstance(item.currency, str)
                                          or item.currency.upper() not in CURRENCIES):
            raise ConfigError(f"{path}: payment {i}: 'currency' must be a known ISO 4217 code")
        script.append(item)
    if not script:
        raise ConfigError(f"{path}: no [[payment]] entries")
    return script


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def host_simulator(cfg: Config, port: int, ledger: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run `pitap host` in its own process and wait until it accepts connections."""
    cmd = [
        sys.executable, "-m", "firmware", "host", "--port", str(port),
        "--ledger", str(ledger),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15.0
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
                raise ConfigError(f"host simulator did not start: {err.splitlines()[-1:] or '?'}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise ConfigError(f"host simulator not listening on port {port}") from None
                time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def demo_config(cfg: Config, state_dir: Path, screens: Path, reader_port: int,
                host_port: int) -> Config:
    """The embedded default, pointed at this run's loopback ports and directories."""
    return dataclasses.replace(
        cfg,
        terminal=dataclasses.replace(cfg.terminal, state_dir=str(state_dir)),
        reader=dataclasses.replace(cfg.reader, path=f"udp:127.0.0.1:{reader_port}"),
        host=dataclasses.replace(cfg.host, host="127.0.0.1", port=host_port, tls=False),
        display=dataclasses.replace(cfg.display, backend="png", directory=str(screens.resolve())),
        gpio=dataclasses.replace(cfg.gpio, backend="sim"),
    )


@dataclass
class DemoSummary:
    payments: int = 0
    as_scripted: int = 0
    by_outcome: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.payments > 0 and self.as_scripted == self.payments


def run_demo(
    cfg: Config,
    script: list[ScriptedPayment],
    count: int,
    screens: Path,
    state_dir: Path,
    report: Callable[[PaymentResult, ScriptedPayment, bool], None],
) -> DemoSummary:
    """Take `count` payments from the script (cycling it) and report each as it ends (with
    whether the demo voided it, for a payment scripted `void`)."""

    shutil.rmtree(state_dir, ignore_errors=True)
    shutil.rmtree(screens, ignore_errors=True)
    make_private_dir(screens)
    make_private_dir(state_dir)
    reader_port, host_port = free_port(socket.SOCK_DGRAM), free_port()
    cfg = demo_config(cfg, state_dir, screens, reader_port, host_port)
    summary = DemoSummary()
    with host_simulator(cfg, host_port, state_dir / "host-ledger.sqlite"):
        terminal = Terminal.from_config(cfg)
        try:
            terminal.feedback.ready()
            for n in range(count):
                item = script[n % len(script)]
                phone = SimulatedPhone(item.wallet, cfg.reader.path) if item.wallet else None
                phone_thread = phone.start(taps=item.taps, timeout=30.0) if phone else None
                result = terminal.pay(item.amount, currency=item.money_currency,
                                      presentment_timeout=item.presentment_timeout_s)
                if phone is not None and phone_thread is not None:
                    phone.stop()
                    phone_thread.join(timeout=5.0)
                voided = False
                if item.void and result.outcome == "approved":
                    voided = all(terminal.void(part).voided for part in result.parts)
                summary.payments += 1
                summary.by_outcome[result.outcome] = summary.by_outcome.get(result.outcome, 0) + 1
                if result.outcome == item.expect and voided == item.void:
                    summary.as_scripted += 1
                report(result, item, voided)
                terminal.feedback.ready()
        finally:
            terminal.close()
    return summary
