"""Crash soak: pull the plug on the terminal again and again, then reconcile with the host.

Runs the host simulator (a real TCP server on 127.0.0.1, with its ledger file) in this process,
and the terminal in a child process (`soak.py --worker`: recovery at start, then `pitap pay`
style payments, each with a simulated phone on nfcpy's udp: link). The child is killed with
SIGKILL and restarted, run after run:

- "awaiting_reply": by the host, when the run's k-th authorization request arrives: the host
  books it, kills the terminal and only then lets its answer go (to nobody). The kill is
  triggered by the state it aims at, never by a clock: the terminal has sent the 0100, so its
  journal must say "awaiting_reply" (checked after every such kill);
- "random": at a random moment, wherever that falls;
- "none": the run ends by itself.

Then the commands with no tap: two sales and a hold are taken, and a void of the first, a tip
adjustment of the second and the hold's completion are each killed by the host as their message
(0400, 0220, 0220) arrives, the request lost with the terminal or booked and its answer lost;
the journal must hold it queued, and the restart sends it again (the host books it once).

At the end the journal's queues are drained (reversals and advices sent) and the ledger is
reconciled (holds aside: they are in no total): the simulator's approved-minus-reversed
payments equal the journal's approved ones, STAN by STAN and to the unit, with no duplicate and
nothing pending. Then end of day: the
settlement is killed by the host as its totals (0500) arrive, once or twice (the request lost
with the terminal's connection, or booked and the answer lost), restarted, and every batch the
host closed must match the journal's totals for it, with nothing left unsettled.

    python bench/soak.py [--payments 100] [--seed N] [--state DIR] [--scan-tokens] [--json]

Prints payments, kills and every mismatch; exits 1 on any mismatch. Used by
tests/test_journal_crash.py with a small --payments.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from firmware.config import Config, load_config  # noqa: E402
from firmware.host.dialect import MessageError  # noqa: E402
from simulators.host.simulator import HostSimulator  # noqa: E402

# (profile, amount suffix): what the simulated customers do. The host simulator's test amounts:
# ...05 do not honour, ...96 never answers, ...97 drops the connection; others approve.
MIX = [
    ("visa-online", 0),
    ("visa-online", 0),
    ("mastercard-online", 0),
    ("visa-online", 5),
    ("visa-online", 96),
    ("mastercard-online", 97),
    ("visa-offline", 0),
]
OFFLINE_AMOUNT = 400  # visa-offline is approved offline under the floor limit only
AUTHORIZATION_MTIS = ("0100", "0200")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def soak_config(state: Path, reader_port: int, host_port: int) -> Config:
    """The shipped config on this run's ports and state directory. The phone is always there:
    the presentment timeout only has to outlast a slow machine; the host's test amount ...96
    costs one response timeout."""
    cfg = load_config()
    return dataclasses.replace(
        cfg,
        terminal=dataclasses.replace(cfg.terminal, state_dir=str(state),
                                     presentment_timeout_s=30.0),
        reader=dataclasses.replace(cfg.reader, path=f"udp:127.0.0.1:{reader_port}"),
        host=dataclasses.replace(
            cfg.host, host="127.0.0.1", port=host_port, tls=False, response_timeout_s=2.0
        ),
        display=dataclasses.replace(cfg.display, backend="none"),
        printer=dataclasses.replace(cfg.printer, backend="none"),
        journal=dataclasses.replace(cfg.journal, retry_first_s=0.01, retry_max_s=0.05),
        tips=dataclasses.replace(cfg.tips, mode="adjust"),  # `pitap tip` in the no-tap phase
    )


# ---- the terminal process ---------------------------------------------------------------------


def settle_worker(args: argparse.Namespace) -> int:
    """End of day as `pitap settle` does it: recovery, drain, close the batch; the Z-report."""
    from firmware.host import connect
    from firmware.host.settlement import settle_day
    from firmware.recovery import open_journal_at_start

    cfg = soak_config(Path(args.state), args.reader_port, args.host_port)
    journal, _report = open_journal_at_start(cfg)
    acquirer = connect(cfg, stan_source=journal.next_stan)
    try:
        z = settle_day(journal, acquirer, cfg)
    finally:
        acquirer.close()
        journal.close()
    print(json.dumps(z.as_dict()), flush=True)
    return 0


def worker(args: argparse.Namespace) -> int:
    """The terminal (recovery at start), then one payment per (profile, amount) in args.plan;
    one JSON line each."""
    from firmware.terminal import Terminal
    from simulators.wallet.phone import SimulatedPhone

    cfg = soak_config(Path(args.state), args.reader_port, args.host_port)
    # Log as a terminal would, verbosely, to a file the card-data scan reads afterwards.
    logging.basicConfig(
        filename=Path(args.state) / "terminal.log",
        level=logging.DEBUG,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("nfc").setLevel(logging.INFO)  # as `pitap -v`: no APDU dumps
    terminal = Terminal.from_config(cfg)  # recovery at start, store-and-forward running
    try:
        for profile, amount in json.loads(args.plan):
            stop = threading.Event()
            phone = SimulatedPhone(profile, cfg.reader.path)
            t = threading.Thread(
                target=phone.serve,
                kwargs={"taps": 1, "timeout": 120.0, "stop": stop},
                daemon=True,
            )
            t.start()
            result = terminal.pay(amount)
            stop.set()
            t.join(timeout=5.0)
            print(json.dumps(result.as_dict()), flush=True)
    finally:
        terminal.close()
    return 0


def no_tap_worker(args: argparse.Namespace) -> int:
    """One command as `pitap void ID`, `pitap tip ID TIP`, `pitap complete ID AMOUNT` run it
    (recovery at start, then the action, no tap), or `pay AMOUNT` / `preauth AMOUNT` (a sale, a
    hold: one tap each): one JSON line."""
    from firmware.host import connect
    from firmware.host.saf import StoreAndForward
    from firmware.preauth import complete_hold
    from firmware.recovery import open_journal_at_start
    from firmware.tips import adjust_tip
    from firmware.void import void_payment

    cfg = soak_config(Path(args.state), args.reader_port, args.host_port)
    action, *numbers = json.loads(args.plan)
    if action in ("pay", "preauth"):
        from firmware.terminal import Terminal
        from simulators.wallet.phone import SimulatedPhone

        terminal = Terminal.from_config(cfg)
        phone = SimulatedPhone("visa-online", cfg.reader.path)
        phone.start(taps=1, timeout=120.0)
        try:
            take = terminal.preauth if action == "preauth" else terminal.pay
            result = take(numbers[0])
        finally:
            phone.stop()
            terminal.close()
        print(json.dumps(result.as_dict()), flush=True)
        return 0
    journal, _report = open_journal_at_start(cfg)
    acquirer = connect(cfg, stan_source=journal.next_stan)
    try:
        saf = StoreAndForward(journal, acquirer, cfg.terminal.merchant_id)
        if action == "void":
            done = void_payment(journal, saf, numbers[0], cfg.currency).voided
        elif action == "tip":
            done = adjust_tip(journal, saf, numbers[0], numbers[1], cfg.tips,
                              cfg.currency).adjusted
        else:
            done = complete_hold(journal, saf, numbers[0], numbers[1], cfg).done
    finally:
        acquirer.close()
        journal.close()
    print(json.dumps({"action": action, "done": done}), flush=True)
    return 0


# ---- the host that pulls the plug -------------------------------------------------------------


class Tripwire:
    """Fires `trip` once, on the `nth` request (1-based) of one of `mtis` that reaches the host."""

    def __init__(self, mtis: tuple[str, ...], nth: int, trip, drop_request: bool) -> None:  # noqa: ANN001
        self.mtis, self.nth, self.trip, self.drop_request = mtis, nth, trip, drop_request
        self.seen = 0
        self.fired = False
        self._lock = threading.Lock()

    def hit(self, mti: str) -> bool:
        with self._lock:
            if self.fired or mti not in self.mtis:
                return False
            self.seen += 1
            self.fired = self.seen == self.nth
            return self.fired


class TrippingHost(HostSimulator):
    """The host simulator with a tripwire: when it fires, the request is either dropped
    (`drop_request`: lost with the terminal) or booked, and in both cases the terminal is killed
    before any answer leaves."""

    wire: Tripwire | None = None

    def handle_message(self, raw: bytes) -> bytes | None:
        wire = self.wire
        if wire is None:
            return super().handle_message(raw)
        try:
            mti = self.dialect.decode(raw).get("t", "")
        except MessageError:
            mti = ""
        if not wire.hit(mti):
            return super().handle_message(raw)
        if wire.drop_request:
            wire.trip()
            return None
        try:
            return super().handle_message(raw)  # booked, as a host whose answer gets lost
        finally:
            wire.trip()  # the terminal dies before the answer goes out


def kill_and_reap(proc: subprocess.Popen) -> None:
    """SIGKILL, and wait until the process is gone (so that nothing reaches it any more)."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGKILL)
    proc.wait()


# ---- the soak ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Soak:
    payments_started: int = 0
    payments_finished: int = 0
    kills: int = 0
    aimed_awaiting_reply: int = 0  # runs armed to be killed at an authorization request
    kills_awaiting_reply: int = 0  # ...killed there, with the journal saying "awaiting_reply"
    runs: int = 0
    outcomes: dict[str, int] = dataclasses.field(default_factory=dict)
    mismatches: list[str] = dataclasses.field(default_factory=list)
    ledger_net: int = 0
    journal_net: int = 0
    drained: int = 0
    settlement_kills: int = 0
    no_tap_kills: int = 0  # a void, a tip adjustment, a completion killed as it reached the host
    settlement: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0


def _journal_states(path: Path) -> dict[int, str]:
    """The journal's payment states, read without writing (the child holds it open)."""
    if not path.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            return dict(conn.execute("SELECT id, state FROM payments").fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        return {}


def _plan(rng: random.Random, n: int, serial: int) -> list[tuple[str, int]]:
    out = []
    for i in range(n):
        profile, suffix = rng.choice(MIX)
        if profile == "visa-offline":
            amount = OFFLINE_AMOUNT - (serial + i) % 50 * 2  # even, below the floor limit
        else:
            amount = (10 + (serial + i) % 500) * 100 + suffix
        out.append((profile, amount))
    return out


def token_scanner():  # noqa: ANN201
    """state dir -> leaks of the wallets' tokens (ASCII, hex, BCD) in any file there."""
    sys.path.insert(0, str(ROOT / "tests"))
    from card_data_scan import leaks_in_files, wallet_tokens

    tokens = wallet_tokens()
    return lambda state: leaks_in_files(sorted(state.iterdir()), tokens)


def run_soak(payments: int, seed: int, state: Path, log=print, scan=None) -> Soak:
    rng = random.Random(seed)
    soak = Soak()
    started = time.monotonic()
    ledger = state / "host-ledger.sqlite"
    sim = TrippingHost(
        host="127.0.0.1",
        port=0,
        ledger_file=ledger,
    )
    sim.start()
    try:
        reader_port = free_port(socket.SOCK_DGRAM)
        cfg = soak_config(state, reader_port, sim.port)
        journal_file = cfg.state_path(cfg.journal.file)
        while soak.payments_started < payments:
            n = min(rng.randint(3, 8), payments - soak.payments_started)
            plan = _plan(rng, n, soak.payments_started)
            soak.payments_started += n
            soak.runs += 1
            _one_run(soak, rng, plan, state, sim, reader_port, journal_file, log, scan)
        soak.drained = _drain(cfg, log)
        _no_tap_kills(soak, rng, state, reader_port, sim, cfg, log)
        _reconcile(soak, cfg, ledger, sim)
        _settle_with_kills(soak, rng, state, reader_port, sim, cfg, ledger, log)
        if scan:
            soak.mismatches += [f"at the end: clear card data: {leak}" for leak in scan(state)]
    finally:
        sim.stop()
    soak.seconds = time.monotonic() - started
    return soak


def _one_run(
    soak: Soak,
    rng: random.Random,
    plan: list[tuple[str, int]],
    state: Path,
    sim: TrippingHost,
    reader_port: int,
    journal_file: Path,
    log,
    scan=None,
) -> None:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker",
        "--state", str(state), "--reader-port", str(reader_port),
        "--host-port", str(sim.port), "--plan", json.dumps(plan),
    ]  # fmt: skip
    # Every random choice of the run is drawn here, whatever happens later: a seed gives the
    # same plan, the same kills aimed at the same requests, on a fast machine or a loaded one.
    how = rng.choice(["awaiting_reply", "awaiting_reply", "random", "none"])
    online = sum(1 for profile, _amount in plan if profile != "visa-offline")
    target = rng.randrange(max(online, 1)) + 1  # awaiting_reply: the k-th authorization request
    kill_after = rng.uniform(0.3, 2.0 + 1.5 * len(plan))  # random: this long after the start
    if how == "awaiting_reply" and not online:
        how = "none"  # offline approvals only: no request to kill it at
    before = _journal_states(journal_file)
    out = open(state / "worker.out", "w+")  # noqa: SIM115 - closed below
    errors = open(state / "worker.stderr", "a+")  # noqa: SIM115 - closed below
    errors.seek(0, os.SEEK_END)
    errors_from = errors.tell()
    proc = subprocess.Popen(cmd, stdout=out, stderr=errors, text=True)
    wire = None
    if how == "awaiting_reply":
        wire = Tripwire(AUTHORIZATION_MTIS, target, lambda: kill_and_reap(proc), False)
        soak.aimed_awaiting_reply += 1
    sim.wire = wire
    # A bound for a hung terminal only, not a speed check: generous for a loaded machine.
    deadline = time.monotonic() + 120.0 + 20.0 * len(plan)
    killed = hung = False
    try:
        proc.wait(timeout=kill_after if how == "random" else deadline - time.monotonic())
    except subprocess.TimeoutExpired:
        if how == "random":
            killed = True
        else:
            hung = True
        kill_and_reap(proc)
    finally:
        sim.wire = None
    if wire is not None and wire.fired:
        killed = True
        hung = False
        new = {pid: st for pid, st in _journal_states(journal_file).items() if pid not in before}
        last = new[max(new)] if new else None
        if last == "awaiting_reply":
            soak.kills_awaiting_reply += 1
        else:
            soak.mismatches.append(f"run {soak.runs}: killed as authorization request {target} "
                                   f"reached the host, but the journal says {last!r}")
    elif wire is not None and not hung:
        soak.mismatches.append(f"run {soak.runs}: ended before its authorization request "
                               f"{target} ({wire.seen} reached the host)")
    if killed or hung:
        soak.kills += 1
    if hung:
        soak.mismatches.append(f"run {soak.runs}: terminal hung, killed after the deadline")
    out.seek(0)
    lines = [line for line in out.read().splitlines() if line.startswith("{")]
    out.close()
    errors.seek(errors_from)
    err = errors.read()
    errors.close()
    if not killed and not hung and proc.returncode != 0:
        soak.mismatches.append(f"run {soak.runs}: exit {proc.returncode}: {err.strip()[-300:]}")
    finished = 0
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line cut by the kill
        if "outcome" in rec:
            finished += 1
            soak.outcomes[rec["outcome"]] = soak.outcomes.get(rec["outcome"], 0) + 1
    soak.payments_finished += finished
    if scan:
        soak.mismatches += [f"run {soak.runs}: clear card data: {leak}" for leak in scan(state)]
    log(f"run {soak.runs}: {len(plan)} planned, {finished} finished"
        + (f", SIGKILL ({how})" if killed else ""))  # fmt: skip


def _no_tap_kills(
    soak: Soak,
    rng: random.Random,
    state: Path,
    reader_port: int,
    sim: TrippingHost,
    cfg: Config,
    log,
) -> None:
    """Two sales and a hold (taps, not killed), then the void of the first sale, a tip
    adjustment of the second and the hold's completion, each killed as its message (0400,
    0220, 0220) reaches the host: the request lost with the terminal, or booked and its answer
    lost. The queue is empty before each (drained), so the message the host sees first is
    theirs; the journal must then hold it queued, and the restart (a drain) sends it again, which
    the host books once (the ledger reconciliation and the settlement check that)."""
    from firmware.journal import Journal

    def command(*plan: object) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--worker", "--no-tap",
                "--state", str(state), "--reader-port", str(reader_port),
                "--host-port", str(sim.port), "--plan", json.dumps(plan)]  # fmt: skip

    taken = []
    for plan in (("pay", 2500), ("pay", 3000), ("preauth", 6000)):
        done = subprocess.run(command(*plan), capture_output=True, text=True, timeout=300)
        lines = done.stdout.strip().splitlines()
        taken.append(json.loads(lines[-1]) if lines else {"outcome": done.stderr[-300:]})
    if any(t.get("outcome") != "approved" for t in taken):
        soak.mismatches.append(f"no-tap phase: not approved: {taken}")
        return
    voided, tipped, held = (int(t["id"]) for t in taken)
    journal_file = cfg.state_path(cfg.journal.file)
    for plan, mti in ((("void", voided), "0400"), (("tip", tipped, 450), "0220"),
                      (("complete", held, 6300), "0220")):
        lost = rng.choice([True, False])  # the request lost with the terminal, or its answer
        before = _journal_states(journal_file)
        proc = subprocess.Popen(command(*plan), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wire = Tripwire((mti,), 1, lambda proc=proc: kill_and_reap(proc), lost)
        sim.wire = wire
        try:
            proc.wait(timeout=300.0)  # a hang only: the host kills it at its message
        except subprocess.TimeoutExpired:
            kill_and_reap(proc)
            soak.mismatches.append(f"no-tap {plan[0]}: hung")
        finally:
            sim.wire = None
        if not wire.fired:
            soak.mismatches.append(f"no-tap {plan[0]} ended before its {mti}")
            continue
        soak.no_tap_kills += 1
        with Journal.from_config(cfg) as journal:
            queued = [q.kind.value for q in journal.queue()]
        after = _journal_states(journal_file)
        new = [st for pid, st in after.items() if pid not in before]
        expected = {"void": (["void"], after.get(voided) == "void_queued"),
                    "tip": (["tip"], True),
                    "complete": (["advice"], new == ["advice_queued"])}[str(plan[0])]
        if queued != expected[0] or not expected[1]:
            soak.mismatches.append(f"no-tap {plan[0]} killed at its {mti}: queue {queued}, "
                                   f"new payments {new}")
        log(f"no-tap {plan[0]}: SIGKILL as its {mti} arrived "
            f"({'request' if lost else 'answer'} lost), queued {queued}")
        soak.drained += _drain(cfg, log)  # the restart sends it again; the host books it once


def _settlement_states(path: Path) -> list[str]:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            return [r[0] for r in conn.execute("SELECT state FROM settlements ORDER BY id")]
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def _settle_with_kills(
    soak: Soak,
    rng: random.Random,
    state: Path,
    reader_port: int,
    sim: TrippingHost,
    cfg: Config,
    ledger_file: Path,
    log,
) -> None:
    """End of day, pulling the plug mid-settlement (as the 0500 reaches the host: the request
    lost, or booked and its answer lost) a few times, then letting it finish; the host must hold
    the batch closed once, with the journal's totals."""
    from firmware.journal import Journal

    journal_file = cfg.state_path(cfg.journal.file)
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", "--settle",
        "--state", str(state), "--reader-port", str(reader_port),
        "--host-port", str(sim.port),
    ]  # fmt: skip
    for attempt in range(rng.randint(1, 2)):
        lost = rng.choice([True, False])  # the 0500 lost with the terminal, or its answer
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wire = Tripwire(("0500",), 1, lambda proc=proc: kill_and_reap(proc), lost)
        sim.wire = wire
        try:
            proc.wait(timeout=300.0)  # a hung settlement only: the host kills it at its 0500
        except subprocess.TimeoutExpired:
            kill_and_reap(proc)
            soak.mismatches.append(f"settlement attempt {attempt + 1}: hung")
        finally:
            sim.wire = None
        if wire.fired:
            soak.settlement_kills += 1
            log(f"settlement attempt {attempt + 1}: SIGKILL as the 0500 arrived "
                f"({'request' if lost else 'answer'} lost), journal settlement states "
                f"{_settlement_states(journal_file)}")  # fmt: skip
        else:
            soak.mismatches.append(f"settlement attempt {attempt + 1} ended before its 0500")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if out.returncode != 0 or not out.stdout.strip():
        soak.mismatches.append(f"settlement did not finish: {out.stderr.strip()[-300:]}")
        return
    z = json.loads(out.stdout.strip().splitlines()[-1])
    log(f"settlement: batch {z['batch']} closed={z['closed']} totals={z['totals']}")
    journal = Journal.from_config(cfg)
    try:
        runs = journal.settlements()
        mine = {
            r.batch: journal.batch_totals(r.batch, cfg.currency).counts()
            for r in runs
            if r.state == "done"
        }
    finally:
        journal.close()
    for r in runs:
        if r.state != "done":
            soak.mismatches.append(f"settlement of batch {r.batch} left {r.state.value}")
    if not z["closed"]:
        soak.mismatches.append(f"settlement not closed: {z['response_code']} {z['message']}")
    conn = sqlite3.connect(f"file:{ledger_file}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    tid = cfg.terminal.terminal_id
    host = {
        r["batch"]: dict(r)
        for r in conn.execute("SELECT * FROM batch WHERE terminal_id = ?", (tid,))
    }
    still_open = conn.execute(
        "SELECT COUNT(*) FROM txn WHERE terminal_id = ? AND batch IS NULL AND approved = 1"
        " AND reversed = 0 AND kind NOT IN ('preauth', 'increment')",  # holds outlive batches
        (tid,),
    ).fetchone()[0]
    conn.close()
    keys = ("sales_count", "sales_amount", "refunds_count", "refunds_amount")
    for batch in sorted(set(host) | set(mine)):
        h, m = host.get(batch), mine.get(batch)
        if h is None or m is None or any(h[k] != m[k] for k in keys):
            soak.mismatches.append(f"settlement of batch {batch}: host {h}, journal {m}")
    if still_open:
        soak.mismatches.append(f"settlement: {still_open} host transaction(s) left unsettled")
    first = min(mine) if mine else 0
    soak.settlement = {
        "batches": len(mine),
        "sales_amount": mine.get(first, {}).get("sales_amount", 0),
        "uploaded": [b for b, h in sorted(host.items()) if h["uploaded"]],
    }


def _drain(cfg: Config, log) -> int:
    """Recovery, then store-and-forward rounds until the queue is empty (or a minute passed)."""
    from firmware.host import connect
    from firmware.host.saf import StoreAndForward
    from firmware.recovery import open_journal_at_start

    journal, report = open_journal_at_start(cfg)
    log(report.summary())
    acquirer = connect(cfg)
    sent = 0
    try:
        saf = StoreAndForward(journal, acquirer, cfg.terminal.merchant_id)
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            round_ = saf.drain(include_not_due=True)
            sent += len(round_.sent)
            if round_.complete:
                break
            log(f"store-and-forward: {round_.failed}; {round_.remaining} left, retrying")
            time.sleep(0.2)
    finally:
        acquirer.close()
        journal.close()
    return sent


def _reconcile(soak: Soak, cfg: Config, ledger_file: Path, sim: object) -> None:
    from firmware.journal import Journal

    journal = Journal.from_config(cfg)
    try:
        charged = journal.charged_payments()
        pending = journal.queue()
        stuck = journal.payments_in_state("started", "card_read", "awaiting_reply")
        all_payments = journal.payments()
    finally:
        journal.close()
    for item in pending:
        soak.mismatches.append(f"still queued: {item.kind} of payment {item.payment_id}")
    for p in stuck:
        soak.mismatches.append(f"payment {p.id} left in state {p.state.value}")
    stans = [p.stan for p in all_payments if p.stan is not None]
    if len(stans) != len(set(stans)):
        soak.mismatches.append("the journal used a STAN twice")

    tid = cfg.terminal.terminal_id
    conn = sqlite3.connect(f"file:{ledger_file}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    rows = conn.execute(
        "SELECT stan, amount, kind, approved, reversed FROM txn WHERE terminal_id = ?", (tid,)
    ).fetchall()
    conn.close()
    host: dict[int, int] = {}
    for r in rows:
        if r["kind"] in ("preauth", "increment"):
            continue  # funds held, never charged: in no total (a completion is a sale)
        if r["approved"] and not r["reversed"]:
            stan = int(r["stan"])
            if stan in host:
                soak.mismatches.append(f"STAN {stan}: charged twice by the host")
            sign = -1 if r["kind"] == "refund" else 1
            host[stan] = host.get(stan, 0) + sign * int(r["amount"])
    mine = {
        int(p.stan or 0): (-1 if p.txn_type == "refund" else 1) * p.amount for p in charged
    }
    for stan in sorted(set(host) | set(mine)):
        if host.get(stan) != mine.get(stan):
            soak.mismatches.append(
                f"STAN {stan}: host charged {host.get(stan)}, journal approved {mine.get(stan)}"
            )
    soak.ledger_net = sum(host.values())
    soak.journal_net = sum(mine.values())
    if soak.ledger_net != soak.journal_net:
        soak.mismatches.append(
            f"totals: host {soak.ledger_net} != journal {soak.journal_net} (minor units)"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--payments", type=int, default=100)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--state", default=None, help="state directory (default: a fresh temp dir)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--scan-tokens",
        action="store_true",
        help="after every run, search the state directory for the wallets' tokens",
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--reader-port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--host-port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--plan", help=argparse.SUPPRESS)
    p.add_argument("--settle", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-tap", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker and args.no_tap:
        return no_tap_worker(args)
    if args.worker:
        return settle_worker(args) if args.settle else worker(args)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    say = (lambda *_: None) if args.json else print
    with tempfile.TemporaryDirectory(prefix="pitap-soak-") as tmp:
        state = Path(args.state) if args.state else Path(tmp)
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        scan = token_scanner() if args.scan_tokens else None
        soak = run_soak(args.payments, seed, state, log=say, scan=scan)
    if args.json:
        print(json.dumps({"seed": seed, **dataclasses.asdict(soak)}))
    else:
        print(
            f"seed {seed}: {soak.payments_started} payments planned, "
            f"{soak.payments_finished} finished, {soak.runs} runs, {soak.kills} SIGKILLs "
            f"({soak.kills_awaiting_reply} while awaiting the reply, {soak.no_tap_kills} in a "
            f"void, a tip adjustment or a completion), {soak.drained} queued "
            f"messages drained, {soak.seconds:.1f} s"
        )
        print(f"outcomes: {soak.outcomes}")
        if soak.settlement:
            st = soak.settlement
            print(f"settlement: {soak.settlement_kills} SIGKILL(s) mid-settlement; "
                  f"{st['batches']} batch(es) closed, each once with the journal's totals "
                  f"(first: {st['sales_amount']} minor units); closed after a batch upload: "
                  f"{st['uploaded'] or 'none'}")  # fmt: skip
        print(f"host approved-minus-reversed {soak.ledger_net}, journal approved "
              f"{soak.journal_net} (minor units)")  # fmt: skip
        for m in soak.mismatches:
            print(f"MISMATCH {m}")
        print("reconciled: OK" if not soak.mismatches else f"{len(soak.mismatches)} mismatch(es)")
    return 0 if not soak.mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
