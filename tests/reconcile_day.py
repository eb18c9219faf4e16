"""An independent end-of-day check: a shop's day driven through the `pitap` command line only,
against the host simulator, then the host's ledger, the journal and the Z-report reconciled to
the minor unit.

Independent means it shares no code with the terminal: it starts `pitap host` and `pitap
wallet` as processes, runs the shopkeeper's commands (`pay`, `refund`, `void`, `settle`, ...)
as a shopkeeper's script would, reads the host's ledger with plain SQL and keeps its own
expectation from the answers the commands printed. It exits 0 when the four agree and prints
every disagreement, exit 1, otherwise.

    python tests/reconcile_day.py [--workdir DIR] [--pitap "python -m firmware"]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

TERMINAL_ID = "PITAP001"  # the shipped configuration's terminal id


def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Day:
    """The shop's day as this script saw it: what each command answered."""

    pitap: list[str]
    site: Path
    reader: str
    sales: list[int] = field(default_factory=list)  # minor units of each standing sale
    refunds: list[int] = field(default_factory=list)
    voided: int = 0
    released: int = 0  # holds released: a line of their own on the Z-report, not voids
    tips: list[int] = field(default_factory=list)
    completions: list[int] = field(default_factory=list)  # captured holds (also in `sales`)
    problems: list[str] = field(default_factory=list)

    def run(self, *args: str, taps: int = 0, profile: str = "visa-online") -> dict[str, object]:
        """`pitap ARGS --json --config SITE`, with a phone tapping `taps` times."""
        phone = None
        if taps:
            phone = subprocess.Popen(
                [*self.pitap, "wallet", "--reader", self.reader, "--profile", profile,
                 "--taps", str(taps), "--timeout", "120"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            done = subprocess.run([*self.pitap, *args, "--json", "--config", str(self.site)],
                                  capture_output=True, text=True, timeout=300)
        finally:
            if phone is not None:
                phone.terminate()
                phone.wait(timeout=30)
        if done.returncode not in (0, 1):
            raise SystemExit(f"pitap {' '.join(args)}: exit {done.returncode}: "
                             f"{done.stderr.strip()[-500:]}")
        out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return out


def minor(amount: str) -> int:
    whole, _, cents = amount.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def shop_day(day: Day) -> None:
    """The scripted day; each step notes what the command said was charged."""

    def sale(amount: str, profile: str = "visa-online") -> dict[str, object]:
        out = day.run("pay", amount, taps=1, profile=profile)
        if out.get("outcome") == "approved":
            day.sales.append(int(str(out.get("approved_minor", minor(amount)))))
        return out

    sale("12.34")
    sale("8.00", profile="mastercard-online")
    declined = day.run("pay", "7.51", taps=1)  # test amount …51: insufficient funds
    if declined.get("outcome") != "declined":
        day.problems.append(f"7.51 should decline, got {declined.get('outcome')}")
    mistake = sale("19.99")
    if day.run("void", str(mistake["id"])).get("voided") is True:
        day.sales.remove(1999)
        day.voided += 1
    else:
        day.problems.append("the void of 19.99 did not go through")
    partial = day.run("pay", "31.10", taps=2)  # …10: half approved, a second tap pays the rest
    if partial.get("outcome") == "approved":
        day.sales += [1555, 1555]
    else:
        day.problems.append(f"31.10 in two parts: {partial.get('outcome')}")
    refund = day.run("refund", "5.00", taps=1)
    if refund.get("outcome") == "approved":
        day.refunds.append(500)
    tipped = day.run("pay", "20.00", "--tip", "3.00", taps=1)  # 23.00 charged, 3.00 of it tip
    if tipped.get("outcome") == "approved":
        day.sales.append(2300)
        day.tips.append(300)
    restaurant = sale("40.00")
    if day.run("tip", str(restaurant["id"]), "6.00").get("adjusted") is True:
        day.sales[-1] += 600  # the adjustment amends the sale: 46.00, 6.00 of it tip
        day.tips.append(600)
    else:
        day.problems.append("the tip adjustment of 40.00 did not go through")
    hold = day.run("preauth", "100.00", taps=1)
    raised = day.run("increment", str(hold["id"]), "20.00")
    completed = day.run("complete", str(hold["id"]), "115.00")  # within held 120.00 + 15 %
    if raised.get("held") == 12000 and completed.get("done") is True:
        day.sales.append(11500)  # only the completion counts; the hold itself in no total
        day.completions.append(11500)
    else:
        day.problems.append(f"hold raised to {raised.get('held')}, completed {completed}")
    released = day.run("preauth", "50.00", taps=1)
    if day.run("release", str(released["id"])).get("done") is True:
        day.released += 1  # never charged: its own line, not among the voids
    else:
        day.problems.append("the release of the 50.00 hold did not go through")


def ledger_open_totals(ledger: Path) -> tuple[int, int, int, int]:
    """The host's own view of the open batch: approved, unreversed sales and refunds."""
    with sqlite3.connect(ledger) as db:
        rows = db.execute(
            "SELECT kind, COUNT(*), COALESCE(SUM(amount), 0) FROM txn WHERE terminal_id = ?"
            " AND approved = 1 AND reversed = 0 AND batch IS NULL GROUP BY kind",
            (TERMINAL_ID,)).fetchall()
    by_kind = {k: (int(n), int(a)) for k, n, a in rows}
    s, r = by_kind.get("sale", (0, 0)), by_kind.get("refund", (0, 0))
    return (*s, *r)


def journal_totals(day: Day) -> tuple[int, int, int, int]:
    """The journal's view (`pitap journal --json`): approvals that still stand, by type."""
    done = subprocess.run([*day.pitap, "journal", "--json", "--config", str(day.site)],
                          capture_output=True, text=True, timeout=120, check=True)
    standing = {"approved", "advice_queued", "advised", "forwarded"}
    sums = {"purchase": [0, 0], "refund": [0, 0], "completion": [0, 0]}
    for line in done.stdout.splitlines():
        p = json.loads(line)
        if p["outcome"] == "approved" and p["state"] in standing and p["txn_type"] in sums:
            sums[p["txn_type"]][0] += 1
            sums[p["txn_type"]][1] += int(p["amount"])
    sales = [sums["purchase"][0] + sums["completion"][0],
             sums["purchase"][1] + sums["completion"][1]]
    return (*sales, *sums["refund"])  # type: ignore[return-value]


def reconcile(day: Day, ledger: Path, before_settling: bool = True) -> list[str]:
    """Every disagreement between the day's answers, the journal, the host's ledger and the
    Z-report of `pitap settle` (run here). `before_settling`: the journal and the host's open
    batch are compared before the settlement too (not after a kill: the terminal may then hold
    queued what the host already booked, and the settlement sends it first)."""
    problems = list(day.problems)
    expected = (len(day.sales), sum(day.sales), len(day.refunds), sum(day.refunds))
    if before_settling:
        journal = journal_totals(day)
        if journal != expected:
            problems.append(f"journal {journal} != the day's answers {expected}")
        host_before = ledger_open_totals(ledger)
        if host_before != expected:
            problems.append(f"host ledger {host_before} != the day's answers {expected}")
    z = day.run("settle")
    journal = journal_totals(day)
    if journal != expected:
        problems.append(f"journal after settling {journal} != the day's answers {expected}")
    if ledger_open_totals(ledger) != (0, 0, 0, 0):
        problems.append(f"host ledger left open after settling: {ledger_open_totals(ledger)}")
    names = ("sales_count", "sales_amount", "refunds_count", "refunds_amount")
    totals = z.get("totals") or {}
    assert isinstance(totals, dict)
    z_totals = tuple(int(totals.get(n, -1)) for n in names)
    if z_totals != expected:
        problems.append(f"Z-report totals {z_totals} != the day's answers {expected}")
    if not z.get("closed") or not z.get("agreed_first_time"):
        problems.append(f"settlement did not close in agreement: {z}")
    if int(str(z.get("tips_amount", -1))) != sum(day.tips):
        problems.append(f"Z-report tips {z.get('tips_amount')} != the day's {sum(day.tips)}")
    if int(str(z.get("completions_amount", -1))) != sum(day.completions) or z.get(
            "open_holds") != 0:
        problems.append(f"Z-report completions {z.get('completions_amount')}, open holds "
                        f"{z.get('open_holds')}: expected {sum(day.completions)} and none")
    if int(str(z.get("voided", -1))) != day.voided:
        problems.append(f"Z-report voided {z.get('voided')} != {day.voided}")
    if int(str(z.get("released", -1))) != day.released:
        problems.append(f"Z-report released {z.get('released')} != {day.released}")
    with sqlite3.connect(ledger) as db:
        batch = db.execute(
            "SELECT sales_count, sales_amount, refunds_count, refunds_amount, host_agreed"
            " FROM batch WHERE terminal_id = ? ORDER BY closed DESC LIMIT 1",
            (TERMINAL_ID,)).fetchone()
    if batch is None or tuple(batch[:4]) != expected or batch[4] != 1:
        problems.append(f"host's closed batch {batch} != the day's answers {expected}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="where the site, state and ledger go")
    ap.add_argument("--pitap", default=f"{shlex.quote(sys.executable)} -m firmware",
                    help="how to run pitap")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pitap-day-"))
    work.mkdir(parents=True, exist_ok=True)
    pitap = shlex.split(args.pitap)
    host_port = free_port(socket.SOCK_STREAM)
    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    site = work / "site.toml"
    site.write_text(f'[terminal]\nstate_dir = "{work / "state"}"\n[reader]\npath = "{reader}"\n'
                    f'[host]\nport = {host_port}\nresponse_timeout_s = 10\n'
                    '[tips]\nmode = "adjust"\n'
                    '[display]\nbackend = "none"\n', encoding="utf-8")
    ledger = work / "ledger.sqlite"
    host = subprocess.Popen([*pitap, "host", "--config", str(site), "--ledger", str(ledger)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=os.environ | {"PYTHONUNBUFFERED": "1"})
    try:
        assert host.stdout is not None
        line = host.stdout.readline()
        if "listening" not in line:
            raise SystemExit(f"pitap host did not start: {line.strip()}")
        day = Day(pitap, site, reader)
        started = time.monotonic()
        shop_day(day)
        problems = reconcile(day, ledger)
    finally:
        host.terminate()
        host.wait(timeout=30)
    print(f"day: {len(day.sales)} sales {sum(day.sales)} (tips {sum(day.tips)}), "
          f"{len(day.refunds)} refunds {sum(day.refunds)}, {day.voided} voided, "
          f"in {time.monotonic() - started:.1f} s")
    for p in problems:
        print(f"MISMATCH: {p}")
    print("reconciled to the minor unit" if not problems else f"{len(problems)} mismatches")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
