"""Fuzz target: what the terminal does with bytes from the host (firmware.host).

The bytes arrive on a real socket, are cut into frames by the link's FrameReader, decoded by
each shipped ISO 8583 dialect, matched against the request, and turned into an AuthResponse.
Every step either succeeds or raises its own clean error (FrameError, MessageError,
ReplyMismatch); nothing else may come out, nothing may hang.

    python tests/fuzz/fuzz_iso8583_reply.py -max_total_time=60
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from firmware.config import load_config  # noqa: E402
from firmware.host import messages  # noqa: E402
from firmware.host.acquirer import AuthResponse  # noqa: E402
from firmware.host.dialect import MessageError, load_dialect  # noqa: E402
from firmware.host.link import FrameError, FrameReader  # noqa: E402

CONFIG_DIR = load_config().source.parent
DIALECTS = [
    load_dialect(name, CONFIG_DIR) for name in ("pitap-default", "bcd-tpdu", "ascii4-binary")
]
EXPECT = messages.Expectation("0110", "000042", "PITAP001")


def _valid_reply(dialect_index: int) -> bytes:
    d = DIALECTS[dialect_index]
    doc = {"t": "0110", "11": "000042", "41": "PITAP001", "39": "00", "38": "A1B2C3",
           "37": "633112345678"}  # fmt: skip
    try:
        return d.encode(doc)
    except MessageError:
        return b""


SEEDS = [bytes([i]) + _valid_reply(i) for i in range(len(DIALECTS))] + [b"\x00\x00", b"\xff"]


def one_input(data: bytes) -> None:
    if not data:
        return
    dialect = DIALECTS[data[0] % len(DIALECTS)]
    payload = data[1:]
    # Straight to the decoder, as the link hands over one frame's payload ...
    for raw in (payload, len(payload).to_bytes(2, "big") + payload):
        try:
            doc = messages.parse_reply(raw, dialect, EXPECT)
        except (MessageError, messages.ReplyMismatch):
            continue
        assert doc["t"] == "0110" and doc["11"] == "000042"
        assert isinstance(messages.auth_response(doc, dialect), AuthResponse)
    # ... and through a socket and the frame reader, with a 2-byte length header.
    a, b = socket.socketpair()
    try:
        a.sendall(payload[:4096])
        a.shutdown(socket.SHUT_WR)
        reader = FrameReader(b, "binary2", max_message=2048)
        started = time.monotonic()
        while True:
            try:
                frame = reader.read(time.monotonic() + 0.2)
            except FrameError:
                break
            assert 0 < len(frame) <= 2048
            with contextlib.suppress(MessageError, messages.ReplyMismatch):
                messages.parse_reply(frame, dialect, EXPECT)
        assert time.monotonic() - started < 1.0, "frame reader hung"
    finally:
        a.close()
        b.close()


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(one_input, SEEDS)
