"""Bad input to every command with no tap (issue 13's "Bad input"): a void, a tip, an
increment, a completion or a release of an unknown, refunded, voided (released), expired or
other-currency payment, an over-tolerance completion or tip, a negative tip: one line on stderr,
exit 2, nothing on stdout, nothing sent (the host's port sees no connection) and nothing written
(the journal's payments and queue as they were).

The payments are made in a real journal file the way the terminal makes them (journal_support
walk_to: card read, then the host's answer); `pitap` runs as a process.
"""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
from host_support import LoopbackServer
from journal_support import walk_to
from run_support import run_pitap

from firmware.config import load_config
from firmware.journal import Journal
from simulators.demo import free_port


class Listener(LoopbackServer):
    """A host port that counts the connections made to it and answers nothing."""

    def __init__(self) -> None:
        self.connections = 0
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        self.connections += 1
        conn.close()


UNKNOWN = 99  # no such payment


def make_journal(site: Path) -> dict[str, int]:
    """The payments every case refers to, by kind."""
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=6)).isoformat()
    ids: dict[str, int] = {}
    with Journal.from_config(load_config(site)) as j:
        def approved(kind: str, amount: int, currency: int = 978, **fields: object) -> int:
            pid = j.new_payment(kind, amount, currency, "PITAP001")
            walk_to(j, pid, "awaiting_reply", stan=j.next_stan())
            j.record(pid, "approved", auth_code="123456", rrn=f"{pid:012d}", **fields)
            return pid

        ids["sale"] = approved("purchase", 1000)
        ids["refunded"] = approved("purchase", 1000)
        refund = j.new_payment("refund", 400, 978, "PITAP001", refund_of=ids["refunded"])
        walk_to(j, refund, "awaiting_reply", stan=j.next_stan())
        j.record(refund, "approved", auth_code="654321")
        ids["voided"] = approved("purchase", 2000)
        j.record(ids["voided"], "void_queued")
        j.record(ids["voided"], "voided")
        ids["rupees"] = approved("purchase", 50000, currency=356)
        ids["hold"] = approved("preauth", 4000, expires_at=future)
        ids["expired"] = approved("preauth", 3000, expires_at=past)
        ids["released"] = approved("preauth", 2500, expires_at=future)
        j.record(ids["released"], "void_queued")
        j.record(ids["released"], "voided")
        ids["rupee_hold"] = approved("preauth", 90000, currency=356, expires_at=future)
        ids["completed"] = approved("preauth", 1500, expires_at=future)
        done = j.new_payment("completion", 1500, 978, "PITAP001")
        j.record(done, "card_read", hold_of=ids["completed"])
        j.queue_done(j.holds.approve_completion(done, stan=j.next_stan(), auth_code="123456"))
    return ids


# (command, the payment, extra arguments) -> words the one line must say
CASES: list[tuple[str, str, tuple[str, ...], str]] = [
    # unknown
    ("void", "unknown", (), "no payment 99"),
    ("tip", "unknown", ("1.00",), "no payment 99"),
    ("increment", "unknown", ("1.00",), "no payment 99"),
    ("complete", "unknown", (), "no payment 99"),
    ("release", "unknown", (), "no payment 99"),
    # refunded (a purchase: no hold command takes it either)
    ("void", "refunded", (), "refunded"),
    ("tip", "refunded", ("1.00",), "refunded"),
    ("increment", "refunded", ("1.00",), "not a pre-authorization"),
    ("complete", "refunded", (), "not a pre-authorization"),
    ("release", "refunded", (), "not a pre-authorization"),
    # voided; a hold's void is its release
    ("void", "voided", (), "already voided"),
    ("tip", "voided", ("1.00",), "is voided"),
    ("increment", "released", ("1.00",), "is released"),
    ("complete", "released", (), "is released"),
    ("release", "released", (), "is released"),
    # expired: a hold past expires_at; a void or a tip takes purchases only
    ("void", "expired", (), "a hold is released"),
    ("tip", "expired", ("1.00",), "only a purchase"),
    ("increment", "expired", ("1.00",), "expired"),
    ("complete", "expired", (), "expired"),
    ("release", "expired", (), "expired"),
    # another currency than the terminal's EUR
    ("void", "rupees", (), "INR"),
    ("tip", "rupees", ("1.00",), "INR"),
    ("increment", "rupee_hold", ("1.00",), "INR"),
    ("complete", "rupee_hold", (), "INR"),
    ("release", "rupee_hold", (), "INR"),
    # completed already
    ("increment", "completed", ("1.00",), "completed"),
    ("complete", "completed", (), "completed"),
    ("release", "completed", (), "completed"),
    # over the tolerance: 40.00 held + 15 % = 46.00; a tip at most 25 % of 10.00
    ("complete", "hold", ("46.01",), "over"),
    ("tip", "sale", ("2.51",), "over the tolerance"),
    # negative
    ("tip", "sale", ("-1",), "negative"),
    ("increment", "hold", ("-1",), "amount"),
    ("complete", "hold", ("-1",), "amount"),
]


@pytest.mark.parametrize(("command", "which", "extra", "words"), CASES,
                         ids=[f"{c}-{w}-{''.join(e) or 'none'}" for c, w, e, _ in CASES])
def test_refused_in_one_line_exit_2_nothing_sent(tmp_path: Path, command: str, which: str,
                                                 extra: tuple[str, ...], words: str) -> None:
    host = Listener()
    try:
        site = tmp_path / "site.toml"
        site.write_text(
            f'[terminal]\nstate_dir = "{tmp_path / "state"}"\n'
            f'[reader]\npath = "udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"\n'
            f'[host]\nport = {host.port}\n[display]\nbackend = "none"\n'
            '[tips]\nmode = "adjust"\n', encoding="utf-8")
        ids = make_journal(site)
        cfg = load_config(site)
        with Journal.from_config(cfg) as j:
            before = [(p.id, p.state, p.amount, p.tip) for p in j.payments()]
            queued = [q.id for q in j.queue()]
        target = UNKNOWN if which == "unknown" else ids[which]
        done = run_pitap(command, str(target), *extra, "--config", str(site))
        assert done.returncode == 2, (done.stdout, done.stderr)
        err = done.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert words in err, err
        assert done.stdout == ""
        assert host.connections == 0  # nothing sent
        with Journal.from_config(cfg) as j:
            assert [(p.id, p.state, p.amount, p.tip) for p in j.payments()] == before
            assert [q.id for q in j.queue()] == queued
    finally:
        host.close()
