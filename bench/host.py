"""Host link speed: authorizations per second through the host simulator with 1, 10 and 50
concurrent terminals on loopback, and the terminal's own encode+decode time per message.

The simulator runs as its own process (`pitap host`), so terminals and host do not share one
interpreter lock; every request carries a fresh, correct ARQC (pyemv, a bench-only test key),
so the simulator does its full work (key derivation, ARQC, ARPC, ledger). Prints figures,
asserts nothing; runs in well under a minute.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyemv import cvn as pyemv_cvn  # noqa: E402
from pyemv import tlv as pyemv_tlv  # noqa: E402

from firmware.config import load_config  # noqa: E402
from firmware.host import messages  # noqa: E402
from firmware.host.acquirer import AuthRequest  # noqa: E402
from firmware.host.dialect import load_dialect  # noqa: E402
from firmware.host.iso8583_acquirer import Iso8583Acquirer  # noqa: E402

warnings.filterwarnings("ignore", message=".*TripleDES.*")

BENCH_KEY = "0123456789ABCDEFFEDCBA9876543210"  # bench-only test key
KEYS = f"""[[issuer]]
scheme = "visa"
pan_prefixes = ["476173"]
cvn = 10
imk_ac = "{BENCH_KEY}"
"""
SECONDS_PER_LEVEL = 4.0
LEVELS = (1, 10, 50)


class BenchCard:
    def __init__(self, n: int) -> None:
        self.pan = f"4761739{n:09d}"
        k = bytes.fromhex(BENCH_KEY)
        self.crypto = pyemv_cvn.VisaCVN10(k, k, k, self.pan, "01")
        self.atc = 0

    def request(self, stan: int, terminal_id: str, amount: int = 1200) -> AuthRequest:
        self.atc += 1
        t = {"9F02": bytes.fromhex(f"{amount:012d}"), "9F03": bytes(6),
             "9F1A": bytes.fromhex("0380"), "95": bytes(5), "5F2A": bytes.fromhex("0978"),
             "9A": bytes.fromhex(dt.date.today().strftime("%y%m%d")), "9C": b"\x00",
             "9F37": secrets.token_bytes(4), "82": bytes.fromhex("2000"),
             "9F36": self.atc.to_bytes(2, "big")}
        iad = bytes.fromhex("06010A03A00000")
        ac = self.crypto.generate_ac(**{f"tag_{k.lower()}": v for k, v in t.items()},
                                     cvr=iad[3:7])
        t.update({"9F26": ac, "9F27": b"\x80", "9F10": iad})
        return AuthRequest(
            stan=stan, amount=amount, currency=978, txn_type="purchase", pan=self.pan,
            pan_sequence=1, expiry="2812", track2=bytes.fromhex(self.pan + "D2812201000000000F"),
            icc_data=pyemv_tlv.encode(t), terminal_id=terminal_id,
            merchant_id="000000000000001", when=dt.datetime.now(),
        )


def start_simulator(tmp: Path) -> tuple[subprocess.Popen[str], int]:
    keys = tmp / "keys.toml"
    keys.write_text(KEYS, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware", "host", "--port", "0", "--keys", str(keys),
         "--ledger", str(tmp / "ledger.sqlite")],
        stdout=subprocess.PIPE, text=True, cwd=tmp,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
             "PYTHONWARNINGS": "ignore"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "host simulator listening on 127.0.0.1:PORT (...)"
    port = int(line.split("127.0.0.1:")[1].split()[0])
    return proc, port


def throughput(port: int, terminals: int, seconds: float) -> tuple[float, float, int]:
    cfg = load_config()
    counts = [0] * terminals
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def terminal(n: int) -> None:
        tcfg = dataclasses.replace(
            cfg, terminal=dataclasses.replace(cfg.terminal, terminal_id=f"B{n:07d}"),
            host=dataclasses.replace(cfg.host, port=port, response_timeout_s=10.0))
        acq = Iso8583Acquirer(tcfg)
        card = BenchCard(n)
        stan = 0
        mine: list[float] = []
        while time.monotonic() < stop:
            stan += 1
            req = card.request(stan, tcfg.terminal.terminal_id)
            t0 = time.perf_counter()
            try:
                ok = acq.authorize(req).approved
            except Exception:
                ok = False
            mine.append(time.perf_counter() - t0)
            if ok:
                counts[n] += 1
            else:
                errors[0] += 1
        acq.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=terminal, args=(n,)) for n in range(terminals)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    median_ms = statistics.median(latencies) * 1000 if latencies else float("nan")
    return sum(counts) / elapsed, median_ms, errors[0]


def codec_times(n: int = 2000) -> None:
    cfg = load_config()
    card = BenchCard(1)
    req = card.request(1, "PITAP001")
    for name in ("pitap-default", "bcd-tpdu", "ascii4-binary"):
        dialect = load_dialect(name, cfg.source.parent)
        reply = dialect.encode({"t": "0110", "11": "000001", "41": "PITAP001", "39": "00",
                                "38": "123456", "37": "000000000001",
                                "55": "910A" + "00" * 8 + "3030"})
        expect = messages.Expectation("0110", "000001", "PITAP001")
        t0 = time.perf_counter()
        for _ in range(n):
            dialect.encode(messages.authorization(req, "0100", dialect))
        t1 = time.perf_counter()
        for _ in range(n):
            messages.auth_response(messages.parse_reply(reply, dialect, expect), dialect)
        t2 = time.perf_counter()
        print(f"  {name:<14} encode 0100: {(t1 - t0) / n * 1e6:6.1f} us   "
              f"decode+match 0110: {(t2 - t1) / n * 1e6:6.1f} us")


def main() -> int:
    print("terminal side, per message (no network):")
    codec_times()
    with tempfile.TemporaryDirectory() as d:
        proc, port = start_simulator(Path(d))
        try:
            print(f"through the host simulator (separate process, 127.0.0.1:{port}), "
                  f"{SECONDS_PER_LEVEL:g} s per level, full ARQC check per request:")
            for terminals in LEVELS:
                rate, median_ms, errors = throughput(port, terminals, SECONDS_PER_LEVEL)
                print(f"  {terminals:>3} terminal(s): {rate:7.1f} authorizations/s, "
                      f"median {median_ms:6.1f} ms per authorization, {errors} not approved")
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
