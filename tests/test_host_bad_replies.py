"""A host that misbehaves: every kind of bad reply ends as NoReply (reverse) or HostUnavailable
(nothing sent), within the configured timeout, never a traceback or a hang.

The rogue host keeps a bad connection open until the terminal hangs up (at most HOLD_S), so a
terminal without its own deadline would wait that long; the bound the tests check, the timeout
plus NO_HANG_S, leaves a loaded machine plenty of room and still tells the two apart."""

from __future__ import annotations

import dataclasses
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from host_support import LoopbackServer, TestCard, auth_request

from firmware.config import Config, load_config
from firmware.host import connect
from firmware.host.acquirer import HostUnavailable, NoReply
from firmware.host.dialect import load_dialect
from simulators.host.testpki import make_test_pki

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")

TIMEOUT = 0.3  # the terminal's response (and TLS handshake) timeout under test
NO_HANG_S = 10.0  # room on top of TIMEOUT for a slow machine: a bound, not a speed check
HOLD_S = 60.0  # how long a rogue host keeps a connection the terminal does not hang up
LATE_S = TIMEOUT + 2.0  # a "late" reply comes this long after the request: late on any machine
DIALECT = load_dialect("pitap-default", load_config().source.parent)


def reply_doc(req: dict[str, str], **override: str) -> dict[str, str]:
    doc = {"t": "0110", "11": req["11"], "41": req["41"], "39": "00", "38": "123456",
           "37": "000000000001"}
    doc.update(override)
    return {k: v for k, v in doc.items() if v != ""}


def framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


Behaviour = Callable[[socket.socket, dict[str, str]], None]


class RogueHost(LoopbackServer):
    """Reads one request per connection, then does what `behaviour` says."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(HOLD_S)
            try:
                head = conn.recv(2)
                length = int.from_bytes(head, "big")
                data = b""
                while len(data) < length:
                    data += conn.recv(length - len(data))
                self.behaviour(conn, DIALECT.decode(data))
            except OSError:
                pass


@pytest.fixture
def rogue() -> Iterator[Callable[[Behaviour], RogueHost]]:
    hosts: list[RogueHost] = []

    def make(behaviour: Behaviour) -> RogueHost:
        hosts.append(RogueHost(behaviour))
        return hosts[-1]

    yield make
    for h in hosts:
        h.close()


def cfg_for(port: int, **host: object) -> Config:
    """The response timeout under test; connecting (not under test here) gets generous time."""
    cfg = load_config()
    fields = {"port": port, "response_timeout_s": TIMEOUT, "connect_timeout_s": NO_HANG_S, **host}
    return dataclasses.replace(cfg, host=dataclasses.replace(cfg.host, **fields))


def hold(conn: socket.socket) -> None:
    """Keep the connection open until the terminal hangs up (or HOLD_S pass)."""
    deadline = time.monotonic() + HOLD_S
    while time.monotonic() < deadline and conn.recv(4096):
        pass


def truncated_then_close(conn: socket.socket, req: dict[str, str]) -> None:
    conn.sendall(framed(DIALECT.encode(reply_doc(req)))[:12])


def truncated_then_hang(conn: socket.socket, req: dict[str, str]) -> None:
    conn.sendall(framed(DIALECT.encode(reply_doc(req)))[:12])
    hold(conn)


def lying_length_long(conn: socket.socket, req: dict[str, str]) -> None:
    conn.sendall(b"\xff\xff" + DIALECT.encode(reply_doc(req)))
    hold(conn)


def lying_length_short(conn: socket.socket, req: dict[str, str]) -> None:
    payload = DIALECT.encode(reply_doc(req))
    conn.sendall((len(payload) - 9).to_bytes(2, "big") + payload)
    hold(conn)


def zero_length(conn: socket.socket, req: dict[str, str]) -> None:
    conn.sendall(b"\x00\x00")
    hold(conn)


def wrong_mti(conn: socket.socket, req: dict[str, str]) -> None:
    conn.sendall(framed(DIALECT.encode(reply_doc(req, t="0210"))))


def wrong_stan(conn: socket.socket, req: dict[str, str]) -> None:
    stan = f"{int(req['11']) % 999999 + 1:06d}"
    conn.sendall(framed(DIALECT.encode(reply_doc(req, **{"11": stan}))))


def wrong_terminal(conn: socket.socket, req: dict[str, str]) -> None:
    conn.sendall(framed(DIALECT.encode(reply_doc(req, **{"41": "OTHER001"}))))


def no_response_code(conn: socket.socket, req: dict[str, str]) -> None:
    conn.sendall(framed(DIALECT.encode(reply_doc(req, **{"39": ""}))))


def undecodable_field(conn: socket.socket, req: dict[str, str]) -> None:
    good = DIALECT.encode(reply_doc(req, **{"55": "9100"}))
    i = good.rindex(b"0049100")  # LLL of field 55 -> not digits
    conn.sendall(framed(good[:i] + b"0x4" + good[i + 3:]))


def garbage(conn: socket.socket, req: dict[str, str]) -> None:
    conn.sendall(framed(bytes(range(256)) * 2))


def endless_stream(conn: socket.socket, req: dict[str, str]) -> None:
    conn.sendall(b"\x0f\xa0")  # says 4000 bytes, then trickles until the terminal hangs up
    end = time.monotonic() + HOLD_S
    while time.monotonic() < end:
        conn.sendall(b"0")  # OSError once the terminal has closed: the end
        time.sleep(0.01)


def reset(conn: socket.socket, req: dict[str, str]) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def close_quietly(conn: socket.socket, req: dict[str, str]) -> None:
    conn.shutdown(socket.SHUT_RDWR)


def silent(conn: socket.socket, req: dict[str, str]) -> None:
    hold(conn)


def late_then_right(conn: socket.socket, req: dict[str, str],
                    sent: threading.Event | None = None) -> None:
    time.sleep(LATE_S)
    try:
        conn.sendall(framed(DIALECT.encode(reply_doc(req))))
    finally:
        if sent is not None:
            sent.set()
    hold(conn)


BAD_HOSTS = [truncated_then_close, truncated_then_hang, lying_length_long, lying_length_short,
             zero_length, wrong_mti, wrong_stan, wrong_terminal, no_response_code,
             undecodable_field, garbage, endless_stream, reset, close_quietly, silent,
             late_then_right]


@pytest.mark.parametrize("behaviour", BAD_HOSTS, ids=[b.__name__ for b in BAD_HOSTS])
def test_bad_reply_is_no_reply_within_the_timeout(rogue: Callable[[Behaviour], RogueHost],
                                                 behaviour: Behaviour) -> None:
    host = rogue(behaviour)
    acq = connect(cfg_for(host.port))
    started = time.monotonic()
    with pytest.raises(NoReply):
        acq.authorize(auth_request(TestCard(), 1000, stan=123))
    assert time.monotonic() - started < TIMEOUT + NO_HANG_S  # its own deadline, not the host's
    acq.close()


def test_good_reply_from_the_same_rogue_host_is_accepted(
        rogue: Callable[[Behaviour], RogueHost]) -> None:
    host = rogue(lambda conn, req: conn.sendall(framed(DIALECT.encode(reply_doc(req)))))
    patient = cfg_for(host.port, response_timeout_s=NO_HANG_S)  # a good reply is never late
    reply = connect(patient).authorize(auth_request(TestCard(), 1000, stan=5))
    assert reply.approved and reply.auth_code == "123456"


def test_late_reply_is_never_taken_for_the_next_request(
        rogue: Callable[[Behaviour], RogueHost]) -> None:
    late_sent = threading.Event()
    host = rogue(lambda conn, req: late_then_right(conn, req, late_sent))
    acq = connect(cfg_for(host.port))
    with pytest.raises(NoReply):
        acq.authorize(auth_request(TestCard(), 1000, stan=1))
    assert late_sent.wait(HOLD_S)  # the late 0110 for STAN 1 has gone out on the old connection
    with pytest.raises(NoReply):  # the new request gets a new connection; this host is slow again
        acq.authorize(auth_request(TestCard(), 1000, stan=2))


def test_tls_host_that_never_finishes_the_handshake_is_unavailable(
        rogue: Callable[[Behaviour], RogueHost], tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path)
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(1)  # accepts the TCP connection (kernel backlog), never speaks TLS
    try:
        cfg = cfg_for(mute.getsockname()[1], tls=True, ca_file=str(pki.ca_cert),
                      connect_timeout_s=TIMEOUT)  # the handshake timeout is under test here
        started = time.monotonic()
        with pytest.raises(HostUnavailable, match="TLS"):
            connect(cfg).authorize(auth_request(TestCard(), 1000))
        assert time.monotonic() - started < TIMEOUT + NO_HANG_S  # its own deadline
    finally:
        mute.close()


def test_plain_tcp_host_behind_a_tls_terminal_is_unavailable(
        rogue: Callable[[Behaviour], RogueHost], tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path)
    host = rogue(silent)
    with pytest.raises(HostUnavailable):
        connect(cfg_for(host.port, tls=True, ca_file=str(pki.ca_cert),
                        connect_timeout_s=TIMEOUT)).authorize(auth_request(TestCard(), 1000))
