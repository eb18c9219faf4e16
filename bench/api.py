"""Terminal API benchmark: from `POST /v1/payments` (sent) to "waiting for card" on the terminal's
screen (the feedback showing it), and from a payment's outcome (the feedback telling it) to its
event reaching a client of `GET /v1/events`. A real terminal on a udp: reader with nobody
tapping, the host simulator, the API on 127.0.0.1; each payment is cancelled through the API, and
its outcome ("cancelled") is the event timed. Figures only; nothing asserted.

    python bench/api.py [--runs N]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from api_support import EventReader, call, serve  # noqa: E402

from firmware.config import load_config  # noqa: E402
from simulators.demo import demo_config, free_port  # noqa: E402
from simulators.host.simulator import HostSimulator  # noqa: E402


def ms(values: list[float]) -> str:
    values = sorted(v * 1000 for v in values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    median = statistics.median(values)
    return f"median {median:6.1f} ms  p95 {p95:6.1f} ms  max {values[-1]:6.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp())
    host = HostSimulator(host="127.0.0.1", port=0, ledger_file=work / "ledger.sqlite")
    host.start()
    cfg = demo_config(load_config(), work / "state", work / "screens",
                      free_port(socket.SOCK_DGRAM), host.port)
    to_screen: list[float] = []
    to_event: list[float] = []
    try:
        with serve(cfg) as api:
            shown: dict[str, float] = {}
            seen = threading.Condition()

            def listener(name: str, payment_id: int | None, _data: dict[str, object]) -> None:
                with seen:
                    shown[f"{name}:{payment_id}"] = time.monotonic()
                    seen.notify_all()

            api.service.feedback.listen(listener)
            events = EventReader(api.base, api.key).start()
            for _ in range(args.runs):
                sent = time.monotonic()
                answer = call(api.base, "POST", "/v1/payments", api.key, {"amount": "1.00"},
                              headers={"Idempotency-Key": str(uuid.uuid4())})
                pid = answer["id"]
                with seen:
                    seen.wait_for(lambda p=pid: f"present_card:{p}" in shown, 60)
                to_screen.append(shown[f"present_card:{pid}"] - sent)
                call(api.base, "POST", f"/v1/payments/{pid}/cancel", api.key)
                events.wait_for(lambda e, p=pid: e["type"] == "outcome" and e["payment_id"] == p)
                got = time.monotonic()  # the reader notices at once; the wait adds nothing
                to_event.append(got - shown[f"outcome:{pid}"])
            events.close()
    finally:
        host.stop()
    print(f"API bench, {args.runs} payments on 127.0.0.1 (HTTP, one SSE client)")
    print(f"  POST /v1/payments -> 'waiting for card' on screen: {ms(to_screen)}")
    print(f"  outcome -> its event at the client:               {ms(to_event)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
