"""`pitap demo`: scripted payments on simulated hardware, end to end on loopback.

Starts the host simulator as its own process (`pitap host`, so it can be killed mid-demo), puts
one simulated phone per scripted payment on nfcpy's `udp:` driver, and runs the real terminal
loop against both with a fresh journal. The script is data: config/demo.toml.

A payment may be scripted with the host down (`host_down = true`: the host process is switched
unreachable with SIGUSR1 before it, back with SIGUSR2 after): with [offline] on (the demo turns
it on when its script has such a payment) it is stored (`expect = "stored"`). After the last
payment the host comes back, store-and-forward sends what was stored, and each stored payment
must end as its `after` says: "forwarded", or "declined_late" (declined after the fact).

A UPI payment (`upi = true`, INR, no phone) is taken by dynamic QR (firmware.upi.tender)
against the simulated PSP, started in this process on 127.0.0.1 when the script has one; the
simulated payer pays a second after the QR is shown, and the payment must end approved only
once the PSP said SUCCESS (the result carries the PSP's reference).

A pre-authorization (`preauth = true`) is taken with a tap, raised by `increment` minor units and
captured for `complete` (no tap, firmware.preauth); its result then names the hold, the
increment and the completion in `parts` and the amount captured in `approved_amount`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from firmware.config import Config, ConfigError, read_toml
from firmware.money import CURRENCIES, Currency, Money
from firmware.payment import PaymentState
from firmware.private_files import make_private_dir
from firmware.terminal import PaymentResult, Terminal
from firmware.upi.tender import UpiTender
from simulators.upi.psp import PspSimulator
from simulators.wallet.phone import SimulatedPhone

# The demo shop's UPI ([upi]): the simulated PSP's address is added when it has started.
DEMO_UPI = {"payee_vpa": "pitapdemo@okaxis", "payee_name": "Pitap Demo Shop", "mcc": "5411",
            "poll_interval_s": 0.5, "request_expiry_s": 60}
OUTCOMES = ("approved", "declined", "no_card", "try_again", "error", "stored")
AFTER = ("", PaymentState.FORWARDED.value, PaymentState.DECLINED_LATE.value)


@dataclass(frozen=True)
class ScriptedPayment:
    wallet: str  # simulated phone profile, "" for no phone
    amount: int
    expect: str
    currency: str | None = None
    taps: int = 1
    presentment_timeout_s: float | None = None
    host_down: bool = False  # the host is unreachable for this payment ([offline])
    after: str = ""  # a stored payment, once forwarded: "forwarded" or "declined_late"
    void: bool = False  # once it ended as expected, void it (no tap): it must end "voided"
    preauth: bool = False  # a pre-authorization: funds held, then raised and completed
    increment: int = 0  # a pre-authorization: minor units added to the hold (0: none)
    complete: int = 0  # a pre-authorization: minor units captured by its completion
    tip: int = 0  # the part of `amount` that is a tip (field 54; `amount` is the total)
    upi: bool = False  # paid by UPI (dynamic QR, the simulated PSP), INR, no phone

    def matches(self, result: PaymentResult, voided: bool = False) -> bool:
        """The payment ended as scripted ("stored": approved and stored for the bank), and was
        voided if and only if the script says `void`."""
        if voided != self.void:
            return False
        if self.preauth:  # held, raised (when scripted) and completed for the scripted amount
            steps = 3 if self.increment else 2
            return (result.outcome == self.expect and len(result.parts) == steps
                    and result.approved_amount == self.complete)
        if self.expect == "stored":
            return result.outcome == "approved" and result.stored
        if self.upi != (result.tender == "upi"):
            return False
        if self.upi and self.expect == "approved" and not result.psp_reference:
            return False  # approved only on the PSP's SUCCESS, which names its reference
        return result.outcome == self.expect and not result.stored

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
        if item.after not in AFTER or bool(item.after) != (item.expect == "stored"):
            raise ConfigError(f"{path}: payment {i}: 'after' ({', '.join(AFTER[1:])}) goes with "
                              "expect = \"stored\", and only with it")
        if not isinstance(item.void, bool) or (item.void and item.expect != "approved"):
            raise ConfigError(f"{path}: payment {i}: 'void' (true/false) voids an approval")
        if not isinstance(item.preauth, bool) or (item.preauth and (
                item.expect != "approved" or item.void or item.host_down
                or not isinstance(item.increment, int) or item.increment < 0
                or not isinstance(item.complete, int) or item.complete <= 0)):
            raise ConfigError(f"{path}: payment {i}: 'preauth' (true/false) is an approved hold "
                              "with 'increment' (>= 0) and 'complete' (> 0) minor units")
        if not isinstance(item.amount, int) or item.amount < 0:
            raise ConfigError(f"{path}: payment {i}: 'amount' must be minor units >= 0")
        if not isinstance(item.tip, int) or not 0 <= item.tip <= item.amount or (
                item.tip and item.preauth):
            raise ConfigError(f"{path}: payment {i}: 'tip' must be minor units, part of the "
                              "amount (0..amount), of a sale")
        if not isinstance(item.upi, bool) or (item.upi and (
                item.wallet or (item.currency or "").upper() != "INR" or item.void
                or item.preauth or item.host_down or item.tip or item.expect == "stored")):
            raise ConfigError(f"{path}: payment {i}: 'upi' (true/false) is a UPI payment in INR, "
                              "with no wallet, void, preauth, host_down or tip")
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


def switch_host(proc: subprocess.Popen[bytes], port: int, down: bool) -> None:
    """Make the host process unreachable (SIGUSR1) or reachable again (SIGUSR2) and wait until
    a connect says so."""
    proc.send_signal(signal.SIGUSR1 if down else signal.SIGUSR2)
    deadline = time.monotonic() + 15.0
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            listening = True
        except OSError:
            listening = False
        if listening != down:
            return
        time.sleep(0.05)
    raise ConfigError(f"host simulator did not go {'down' if down else 'up'} on port {port}")


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
    forwarded: int = 0  # stored payments checked after forwarding
    forwarded_as_scripted: int = 0

    @property
    def ok(self) -> bool:
        return (self.payments > 0 and self.as_scripted == self.payments
                and self.forwarded_as_scripted == self.forwarded)


def hold_and_complete(terminal: Terminal, result: PaymentResult, item: ScriptedPayment) -> None:
    """After an approved hold: the scripted increment and completion, no tap; the result then
    lists the journal payments of the pre-authorization and the amount captured."""
    from firmware.preauth import complete_hold, increment_hold
    from ui.money import operator_text

    cfg, journal = terminal.cfg, terminal.journal
    steps = [f"held {operator_text(result.money)}"]
    if item.increment:
        raised = increment_hold(journal, terminal.acquirer, terminal.saf, result.id,
                                item.increment, cfg)
        if not raised.done:
            result.reason = f"increment not approved: {raised.pending}"
            return
        result.parts.append(raised.payment.id)
        steps.append(f"+{operator_text(Money(item.increment, result.currency))}")
    done = complete_hold(journal, terminal.saf, result.id, item.complete, cfg)
    if done.done:
        result.parts.append(done.payment.id)
        result.approved_amount = done.payment.amount
        steps.append(f"completed {operator_text(Money(done.payment.amount, result.currency))}")
    result.reason = ", ".join(steps) if done.done else f"completion queued: {done.pending}"


def run_demo(
    cfg: Config,
    script: list[ScriptedPayment],
    count: int,
    screens: Path,
    state_dir: Path,
    report: Callable[[PaymentResult, ScriptedPayment, bool], None],
    report_forwarded: Callable[[PaymentResult, ScriptedPayment, str], None] | None = None,
) -> DemoSummary:
    """Take `count` payments from the script (cycling it) and report each as it ends (with
    whether the demo voided it, for a payment scripted `void`); then forward what was stored
    and report each stored payment's end (`report_forwarded`)."""

    # Relative to where the demo runs: the journal too (a relative terminal.state_dir would be
    # read against the configuration file's directory instead), so that it is the one wiped.
    state_dir, screens = state_dir.resolve(), screens.resolve()
    shutil.rmtree(state_dir, ignore_errors=True)
    shutil.rmtree(screens, ignore_errors=True)
    make_private_dir(screens)
    make_private_dir(state_dir)
    reader_port, host_port = free_port(socket.SOCK_DGRAM), free_port()
    cfg = demo_config(cfg, state_dir, screens, reader_port, host_port)
    if any(item.host_down for item in script[:count]):
        cfg = dataclasses.replace(cfg, offline=dataclasses.replace(cfg.offline, enabled=True))
    summary = DemoSummary()
    stored: list[tuple[PaymentResult, ScriptedPayment]] = []
    with host_simulator(cfg, host_port, state_dir / "host-ledger.sqlite") as host, \
            contextlib.ExitStack() as upi_parts:
        if any(item.upi for item in script[:count]):
            psp = upi_parts.enter_context(PspSimulator(host="127.0.0.1", pay_delay_s=1.0))
            cfg = dataclasses.replace(cfg, upi=DEMO_UPI | {"psp_url": psp.url})
        terminal = Terminal.from_config(cfg)
        host_down = False
        try:
            upi = None
            if any(item.upi for item in script[:count]):
                upi = UpiTender.for_terminal(cfg, terminal.journal, terminal.feedback)
                upi_parts.callback(upi.close)
            terminal.feedback.ready()
            for n in range(count):
                item = script[n % len(script)]
                if item.host_down != host_down:
                    switch_host(host, host_port, item.host_down)
                    host_down = item.host_down
                phone = SimulatedPhone(item.wallet, cfg.reader.path) if item.wallet else None
                phone_thread = phone.start(taps=item.taps, timeout=30.0) if phone else None
                if item.upi and upi is not None:
                    result = upi.take(item.amount)
                elif item.preauth:
                    result = terminal.preauth(item.amount, currency=item.money_currency,
                                              presentment_timeout=item.presentment_timeout_s)
                else:
                    result = terminal.pay(item.amount, currency=item.money_currency,
                                          presentment_timeout=item.presentment_timeout_s,
                                          tip=item.tip)
                if phone is not None and phone_thread is not None:
                    phone.stop()
                    phone_thread.join(timeout=5.0)
                if item.preauth and result.outcome == "approved":
                    hold_and_complete(terminal, result, item)
                voided = False
                if item.void and result.outcome == "approved":
                    voided = all(terminal.void(part).voided for part in result.parts)
                summary.payments += 1
                summary.by_outcome[result.outcome] = summary.by_outcome.get(result.outcome, 0) + 1
                if item.matches(result, voided):
                    summary.as_scripted += 1
                if result.stored:
                    stored.append((result, item))
                report(result, item, voided)
                shown = terminal.stored()
                terminal.feedback.ready(shown.count, Money(shown.amount, terminal.cfg.currency),
                                        shown.declined_late)
            if host_down:
                switch_host(host, host_port, False)
            if stored:
                terminal.saf.drain(include_not_due=True)  # what `pitap settle` does first
            for result, item in stored:
                state = terminal.journal.payment(result.id).state.value
                summary.forwarded += 1
                summary.forwarded_as_scripted += state == item.after
                if report_forwarded is not None:
                    report_forwarded(result, item, state)
            if stored:
                shown = terminal.stored()
                terminal.feedback.ready(shown.count, Money(shown.amount, terminal.cfg.currency),
                                        shown.declined_late)
        finally:
            terminal.close()
    return summary
