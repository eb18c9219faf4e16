"""The PN532 host frame codec and parser (simulators.pn532.frame): pure, no line."""

from __future__ import annotations

from simulators.pn532.frame import (
    ACK,
    NACK,
    Ack,
    BadFrame,
    Command,
    FrameParser,
    Nack,
    encode_frame,
    response_frame,
)

GET_FIRMWARE_VERSION = bytes.fromhex("0000ff02fed4022a00")  # what nfcpy sends, byte for byte


def test_encode_matches_the_frames_nfcpy_expects() -> None:
    assert encode_frame(b"\xd4\x02") == GET_FIRMWARE_VERSION
    assert response_frame(0x14) == bytes.fromhex("0000ff02fed5151600")  # SAMConfiguration
    assert response_frame(0x02, bytes([0x32, 1, 6, 7])) == bytes.fromhex(
        "0000ff06fad50332010607e800"
    )


def test_long_bodies_use_the_extended_frame() -> None:
    body = b"\xd5\x01" + bytes(range(256)) + bytes(5)
    frame = encode_frame(body)
    assert frame[:5] == b"\x00\x00\xff\xff\xff"
    assert int.from_bytes(frame[5:7], "big") == len(body)
    assert (frame[5] + frame[6] + frame[7]) & 0xFF == 0
    assert (sum(frame[8:-1])) & 0xFF == 0
    events = FrameParser().feed(b"\x00" * 3 + frame, now=0.0)
    assert events == [Command(tfi=0xD5, data=body[1:], extended=True)]


def test_parser_skips_preamble_and_noise_and_reads_ack_nack_and_commands() -> None:
    parser = FrameParser()
    stream = b"\x55\x55" + bytes(10) + GET_FIRMWARE_VERSION + ACK + b"\x13" + NACK
    events = parser.feed(stream, now=0.0)
    assert events == [Command(tfi=0xD4, data=b"\x02"), Ack(), Nack()]
    assert parser.pending == 0


def test_parser_assembles_a_frame_that_arrives_in_pieces() -> None:
    parser = FrameParser()
    events = []
    for i, byte in enumerate(GET_FIRMWARE_VERSION):
        events += parser.feed(bytes([byte]), now=i * 0.001)
    assert events == [Command(tfi=0xD4, data=b"\x02")]


def test_bad_checksums_are_reported_and_the_next_frame_still_parses() -> None:
    bad_lcs = bytearray(GET_FIRMWARE_VERSION)
    bad_lcs[4] ^= 0x01
    bad_dcs = bytearray(GET_FIRMWARE_VERSION)
    bad_dcs[7] ^= 0x01
    events = FrameParser().feed(bytes(bad_lcs) + bytes(bad_dcs) + GET_FIRMWARE_VERSION, 0.0)
    assert [type(e) for e in events] == [BadFrame, BadFrame, Command]
    assert "LCS" in events[0].reason and "DCS" in events[1].reason


def test_a_frame_missing_a_byte_is_dropped_after_a_pause_not_glued_to_the_next() -> None:
    parser = FrameParser(stale_after=0.03)
    broken = GET_FIRMWARE_VERSION[:6] + GET_FIRMWARE_VERSION[7:-1]  # command code lost
    assert parser.feed(broken, now=0.0) == []
    events = parser.feed(GET_FIRMWARE_VERSION, now=0.1)
    assert [type(e) for e in events] == [BadFrame, Command]
    assert "incomplete" in events[0].reason
