"""Property tests (hypothesis) on what the terminal does with bytes from the host: the reply
decoder and the frame reader either give a well-formed answer or a clean MessageError /
ReplyMismatch / FrameError - for any input, in every shipped dialect."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from host_support import write_keys
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.config import load_config
from firmware.host import messages
from firmware.host.dialect import MessageError, load_dialect
from firmware.host.link import FrameError, FrameReader, frame
from firmware.host.response_codes import ResponseCode
from simulators.host.simulator import HostSimulator

CONFIG_DIR = load_config().source.parent
DIALECTS = {name: load_dialect(name, CONFIG_DIR)
            for name in ("pitap-default", "bcd-tpdu", "ascii4-binary")}
EXPECT = messages.Expectation("0110", "000042", "PITAP001")

digits = st.text(alphabet="0123456789", min_size=1, max_size=1)
stans = st.integers(min_value=1, max_value=999999).map(lambda n: f"{n:06d}")
codes = st.sampled_from(sorted(c.value for c in ResponseCode) + ["Z3", "N7", "99"])
alnum6 = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=6, max_size=6)
rrns = st.text(alphabet="0123456789", min_size=12, max_size=12)
icc = st.binary(min_size=0, max_size=120)


@pytest.mark.parametrize("name", sorted(DIALECTS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=600))
def test_any_bytes_decode_or_fail_cleanly(name: str, data: bytes) -> None:
    try:
        doc = messages.parse_reply(data, DIALECTS[name], EXPECT)
    except (MessageError, messages.ReplyMismatch):
        return
    assert doc["t"] == "0110" and doc["11"] == "000042"


@pytest.mark.parametrize("name", sorted(DIALECTS))
@settings(max_examples=100, deadline=None)
@given(stan=stans, code=codes, auth=alnum6, rrn=rrns, issuer=icc)
def test_valid_replies_round_trip(name: str, stan: str, code: str, auth: str, rrn: str,
                                  issuer: bytes) -> None:
    dialect = DIALECTS[name]
    doc = {"t": "0110", "11": stan, "41": "PITAP001", "39": code, "38": auth, "37": rrn}
    if issuer:
        doc["55"] = issuer.hex().upper()
    raw = dialect.encode(doc)
    got = messages.parse_reply(raw, dialect, messages.Expectation("0110", stan, "PITAP001"))
    reply = messages.auth_response(got, dialect)
    assert reply.response_code == code
    assert reply.approved == (code in ("00", "08", "10", "11"))
    assert reply.approved_amount is None  # a partial approval's amount: none below 0 asked
    assert reply.auth_code == auth and reply.rrn == rrn and reply.issuer_data == issuer
    assert reply.message  # always something a shopkeeper can read


@pytest.mark.parametrize("name", sorted(DIALECTS))
@settings(max_examples=150, deadline=None)
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255),
       cut=st.integers(min_value=0, max_value=400))
def test_damaged_replies_fail_cleanly(name: str, position: int, value: int, cut: int) -> None:
    dialect = DIALECTS[name]
    raw = bytearray(dialect.encode({"t": "0110", "11": "000042", "41": "PITAP001", "39": "00",
                                    "38": "ABC123", "55": "910A0102030405060708" + "3030"}))
    raw[position % len(raw)] = value
    damaged = bytes(raw[: max(1, len(raw) - cut % len(raw))])
    try:
        doc = messages.parse_reply(damaged, dialect, EXPECT)
    except (MessageError, messages.ReplyMismatch):
        return
    messages.auth_response(doc, dialect)  # whatever survived still maps to an answer


@pytest.mark.parametrize("header", ["binary2", "ascii4", "none"])
@settings(max_examples=100, deadline=None)
@given(stream=st.binary(max_size=300))
def test_frame_reader_never_hangs_or_crashes(header: str, stream: bytes) -> None:
    a, b = socket.socketpair()
    try:
        a.sendall(stream)
        a.shutdown(socket.SHUT_WR)
        dialect = DIALECTS["pitap-default"]

        def complete(data: bytes) -> bool:
            try:
                dialect.decode(data)
            except MessageError:
                return False
            return True

        reader = FrameReader(b, header, max_message=256, complete=complete)
        started = time.monotonic()
        got = []
        try:
            while True:
                got.append(reader.read(time.monotonic() + 0.2))
        except FrameError:
            pass
        assert time.monotonic() - started < 10.0  # it ends: a bound, not a speed check
        assert all(0 < len(m) <= 256 for m in got)
    finally:
        a.close()
        b.close()


@settings(max_examples=100, deadline=None)
@given(messages_=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=5),
       header=st.sampled_from(["binary2", "ascii4"]))
def test_frames_split_anywhere_come_back_whole(messages_: list[bytes], header: str) -> None:
    a, b = socket.socketpair()
    try:
        a.sendall(b"".join(frame(m, header) for m in messages_))
        reader = FrameReader(b, header, max_message=4096)
        for m in messages_:
            assert reader.read(time.monotonic() + 1.0) == m
    finally:
        a.close()
        b.close()


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostSimulator]:
    sim = HostSimulator(port=0, keys_file=write_keys(tmp_path_factory.mktemp("keys")))
    yield sim
    sim.stop()


@pytest.mark.filterwarnings("ignore:.*TripleDES.*")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_simulator_answers_any_bytes_cleanly(simulator: HostSimulator, data: bytes) -> None:
    reply = simulator.handle_message(data)
    assert reply is None or DIALECTS["pitap-default"].decode(reply)["39"]


@pytest.mark.filterwarnings("ignore:.*TripleDES.*")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(mti=st.sampled_from(["0100", "0200", "0220", "0400", "0401", "0500", "0320", "0800",
                            "0600"]),
       amount=st.text(alphabet="0123456789 X", min_size=12, max_size=12),
       icc=st.binary(max_size=60), totals=st.text(alphabet="0123456789", max_size=30),
       pan=st.text(alphabet="0123456789", min_size=0, max_size=19))
def test_simulator_answers_odd_requests_with_a_response_code(
        simulator: HostSimulator, mti: str, amount: str, icc: bytes, totals: str,
        pan: str) -> None:
    doc = {"t": mti, "3": "000000", "4": amount, "11": "000001", "41": "PITAP001",
           "42": "000000000000001", "49": "978", "55": icc.hex().upper(), "63": totals}
    if pan:
        doc["2"] = pan
    reply = simulator.handle_message(DIALECTS["pitap-default"].encode(doc))
    assert reply is not None
    answer = DIALECTS["pitap-default"].decode(reply)
    assert answer["t"] == messages.reply_mti(mti) and len(answer["39"]) == 2
    if mti in ("0100", "0200"):  # random "chip data" never carries a valid cryptogram
        assert answer["39"] != "00"
