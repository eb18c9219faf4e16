"""SIGKILL in the middle of journal writes: the file stays sound and nothing acknowledged is lost.

A child process writes payments as fast as it can and prints each id once `record` returned;
it is killed several times, each time once it has acknowledged a random number of payments (so
mid-write, wherever the next write is: the count, not a clock, decides, so a loaded machine
kills as often and as late as an idle one). Every printed payment must be there with its
last acknowledged state, the STAN counter must never go back, and the integrity check passes.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from firmware.journal import Journal

WRITER = """
import sys
from pathlib import Path
from firmware.journal import Journal
j = Journal.open(Path(sys.argv[1]), Path(sys.argv[2]))
while True:
    pid = j.new_payment("purchase", 100, 978, "PITAP001")
    stan = j.next_stan()
    j.record(pid, "card_read")
    j.record(pid, "awaiting_reply", stan=stan)
    j.record(pid, "approved", auth_code="123456")
    print(pid, stan, flush=True)
"""


def test_killed_writers_lose_nothing_acknowledged(tmp_path: Path) -> None:
    db, key = tmp_path / "journal.sqlite", tmp_path / "journal.key"
    rng = random.Random(6)
    acknowledged: dict[int, int] = {}
    aimed = 0
    for _ in range(4):
        target = rng.randint(3, 40)
        aimed += target
        out = tmp_path / "out.txt"
        with out.open("w") as fh:
            proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(key)], stdout=fh)
            deadline = time.monotonic() + 120.0  # a writer that hangs, not a speed check
            while out.read_text().count("\n") < target and time.monotonic() < deadline:
                assert proc.poll() is None, "the writer died by itself"
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        for line in out.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                acknowledged[int(parts[0])] = int(parts[1])
    assert len(acknowledged) >= aimed

    j = Journal.open(db, key)  # runs the integrity check
    try:
        for pid, stan in acknowledged.items():
            p = j.payment(pid)
            assert (p.state, p.stan) == ("approved", stan)
        assert j.next_stan() > max(acknowledged.values())
        stans = [p.stan for p in j.payments() if p.stan is not None]
        assert len(stans) == len(set(stans))
    finally:
        j.close()
