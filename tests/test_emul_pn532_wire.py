"""The emulated PN532 byte for byte on its serial line, as any PN532 host software sees it.

A plain pyserial host sends frames and checks the chip's exact answers: ACK/NACK, error frames,
extended frames, the chip doing RATS and ISO-DEP itself (InListPassiveTarget + InDataExchange,
as libnfc or Adafruit's driver use it), deselect/release, power-down and the serial speed.
"""

from __future__ import annotations

import threading
import time

import pytest
import serial
from emul_support import PPSE_FCI, SELECT_PPSE, TinyApplet, long_echo

from simulators.pn532.emulator import Pn532Emulator
from simulators.pn532.frame import (
    ACK,
    ERROR_FRAME,
    NACK,
    Command,
    FrameParser,
    encode_frame,
    response_frame,
)

WAIT_S = 10.0  # how long an answer that must come may take on a loaded machine (ends when it does)
QUIET_S = 0.05  # how long "nothing comes" is listened for


def eventually(condition, timeout: float = WAIT_S) -> bool:
    """True once `condition()` holds (the emulator works in its own thread), False at timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class Host:
    """A minimal PN532 host on the emulator's tty."""

    def __init__(self, emu: Pn532Emulator) -> None:
        self.port = serial.Serial(emu.tty_path, 115200, timeout=QUIET_S)
        self.parser = FrameParser(stale_after=1.0)
        self.raw = bytearray()

    def close(self) -> None:
        self.port.close()

    def send(self, frame: bytes) -> None:
        self.port.write(frame)

    def command(self, code: int, params: bytes = b"") -> bytes:
        """Send a command frame; return the raw bytes of everything the chip answered."""
        self.send(encode_frame(bytes([0xD4, code]) + params))
        return self.read_until_frame()

    def read(self, n: int, timeout: float = WAIT_S) -> bytes:
        """`n` bytes, or fewer when `timeout` passes first."""
        self.port.timeout = timeout
        try:
            return self.port.read(n)
        finally:
            self.port.timeout = QUIET_S

    def read_until_frame(self, timeout: float = WAIT_S) -> bytes:
        """Raw bytes received until one frame after the ACK (or `timeout`)."""
        deadline = time.monotonic() + timeout
        got = bytearray()
        while time.monotonic() < deadline:
            got += self.port.read(max(1, self.port.in_waiting))
            body = got[len(ACK) :] if got.startswith(ACK) else got
            if any(isinstance(e, Command) for e in FrameParser().feed(bytes(body), 0.0)):
                break
            if got == ERROR_FRAME or got == ACK + ERROR_FRAME:
                break
        return bytes(got)

    def data(self, code: int, params: bytes = b"") -> bytes:
        """Send a command, check ACK and response code, return the response data."""
        answer = self.command(code, params)
        assert answer.startswith(ACK), answer.hex()
        events = FrameParser().feed(answer[len(ACK) :], 0.0)
        assert len(events) == 1 and isinstance(events[0], Command), answer.hex()
        assert events[0].tfi == 0xD5 and events[0].data[0] == code + 1
        return events[0].data[1:]


@pytest.fixture
def host(emu):
    host = Host(emu)
    yield host
    host.close()


def test_get_firmware_version_byte_for_byte(host) -> None:
    assert host.command(0x02) == ACK + bytes.fromhex("0000ff06fad50332010607e800")


def test_a_nack_makes_the_chip_send_its_last_response_again(host) -> None:
    first = host.command(0x02)
    host.send(NACK)
    assert host.read_until_frame() == first[len(ACK) :]


def test_a_frame_with_a_bad_checksum_gets_no_ack_and_the_next_one_works(emu, host) -> None:
    frame = bytearray(encode_frame(b"\xd4\x02"))
    frame[-2] ^= 0xFF
    host.send(bytes(frame))
    assert host.read(6, QUIET_S) == b""  # nothing
    assert eventually(lambda: emu.stats.bad_frames) and "DCS" in emu.stats.bad_frames[0]
    assert host.data(0x02) == bytes([0x32, 1, 6, 7])


def test_unknown_commands_and_bad_parameters_get_the_error_frame(host) -> None:
    assert host.command(0x8C, bytes(37)) == ACK + ERROR_FRAME  # TgInitAsTarget: not emulated
    assert host.command(0x14, b"\x07\x00") == ACK + ERROR_FRAME  # SAM mode 7 does not exist
    assert host.data(0x14, b"\x01\x14\x01") == b""  # a good one still works


def test_the_line_test_echoes_an_extended_frame(host) -> None:
    payload = b"\x00" + bytes(i & 0xFF for i in range(262))
    answer = host.command(0x00, payload)
    assert answer[len(ACK) : len(ACK) + 5] == b"\x00\x00\xff\xff\xff"  # extended
    assert answer == ACK + response_frame(0x00, payload)


def test_the_chip_does_rats_and_iso_dep_itself_for_in_data_exchange(emu, host) -> None:
    applet = TinyApplet()
    phone = emu.place_phone(applet, ats=bytes.fromhex("0570807002"))  # FSC 16: chaining
    listed = host.data(0x4A, b"\x01\x00")  # after reset fAutomaticRATS is on
    assert listed[:2] == b"\x01\x01"
    assert listed[2:4] == b"\x00\x04" and listed[4] == 0x20  # SENS_RES as the chip reports it
    assert listed[5] == 4 and listed[6:10] == phone.uid
    assert listed[10:] == phone.ats  # the ATS, TL first
    assert host.data(0x40, b"\x01" + SELECT_PPSE) == b"\x00" + PPSE_FCI
    command = long_echo(120)
    assert host.data(0x40, b"\x01" + command) == b"\x00" + command[5:] + b"\x90\x00"
    assert applet.apdus[-1] == command


def test_long_data_moves_with_the_more_information_bit_both_ways(emu, host) -> None:
    applet = TinyApplet()
    emu.place_phone(applet)
    host.data(0x4A, b"\x01\x00")
    command = long_echo(200)
    assert host.data(0x40, b"\x41" + command[:100]) == b"\x00"  # MI: more to come
    assert host.data(0x40, b"\x01" + command[100:]) == b"\x00" + command[5:] + b"\x90\x00"
    assert applet.apdus[-1] == command
    first = host.data(0x40, b"\x01\x80\xee\x01\x00\x00")  # 302 bytes: more than one frame
    assert first[0] == 0x40
    rest = host.data(0x40, b"\x01")
    assert rest[0] == 0x00
    assert first[1:] + rest[1:] == bytes(i & 0xFF for i in range(300)) + b"\x90\x00"


def test_the_chip_grants_waiting_time_to_a_slow_phone(emu, host) -> None:
    emu.place_phone(TinyApplet(delay=0.2))
    host.data(0x4A, b"\x01\x00")
    host.send(encode_frame(b"\xd4\x40\x01" + SELECT_PPSE))
    answer = host.read_until_frame()
    assert answer == ACK + response_frame(0x40, b"\x00" + PPSE_FCI)


def test_deselect_select_and_release(emu, host) -> None:
    phone = emu.place_phone(TinyApplet())
    host.data(0x4A, b"\x01\x00")
    assert host.data(0x44, b"\x01") == b"\x00"  # InDeselect: S(DESELECT) on the air
    assert phone.state == "halted"
    assert host.data(0x40, b"\x01" + SELECT_PPSE) == b"\x27"  # not in this context
    assert host.data(0x54, b"\x01") == b"\x00"  # InSelect: WUPA, SELECT, RATS again
    assert phone.state == "protocol"
    assert host.data(0x40, b"\x01" + SELECT_PPSE) == b"\x00" + PPSE_FCI
    assert host.data(0x52, b"\x00") == b"\x00"  # InRelease all
    assert phone.state == "halted"
    assert host.data(0x40, b"\x01" + SELECT_PPSE) == b"\x27"


def test_a_phone_that_leaves_during_in_data_exchange_is_a_timeout(emu, host) -> None:
    emu.place_phone(TinyApplet())
    host.data(0x4A, b"\x01\x00")
    emu.remove_phone()
    assert host.data(0x40, b"\x01" + SELECT_PPSE) == b"\x01"


def test_polling_waits_for_a_phone_and_an_ack_aborts_it(emu, host) -> None:
    host.send(encode_frame(b"\xd4\x4a\x01\x00"))  # endless retries after reset
    assert host.read(6) == ACK
    assert host.read(16, QUIET_S) == b""  # nobody there: no answer yet
    threading.Timer(0.1, emu.place_phone, args=(TinyApplet(),)).start()
    answer = host.read_until_frame()
    assert answer[5:7] == b"\xd5\x4b" and answer[7] == 1
    emu.remove_phone()
    host.send(encode_frame(b"\xd4\x4a\x01\x00"))
    assert host.read(6) == ACK
    host.send(ACK)  # abort
    assert host.read(16, QUIET_S) == b""
    assert eventually(lambda: emu.stats.aborts == 1)
    assert host.data(0x02) == bytes([0x32, 1, 6, 7])
    host.send(encode_frame(b"\xd4\x4a\x01\x00"))
    assert host.read(6) == ACK
    assert host.data(0x02) == bytes([0x32, 1, 6, 7])  # a new command aborts the polling
    assert eventually(lambda: emu.stats.aborts == 2)


def test_power_down_then_wake_up_on_the_next_frame(emu, host) -> None:
    assert host.data(0x16, b"\xb0\x00") == b"\x00"
    assert emu.asleep
    host.send(b"\x55\x55\x00\x00\x00")  # HSU wake-up
    assert host.data(0x02) == bytes([0x32, 1, 6, 7])
    assert not emu.asleep


def test_set_serial_baud_rate_takes_effect_after_the_host_ack(emu, host) -> None:
    assert host.data(0x10, b"\x06") == b""
    assert emu.baud == 115200
    host.send(ACK)
    assert eventually(lambda: emu.baud == 460800)
    host.send(encode_frame(b"\xd4\x02"))  # still at 115200: the chip hears noise
    assert host.read(6, QUIET_S) == b""
    host.port.baudrate = 460800
    assert host.data(0x02) == bytes([0x32, 1, 6, 7])


def test_registers_gpio_and_general_status(emu, host) -> None:
    assert host.data(0x08, b"\x63\x02\x80\x63\x03\x80") == b""
    assert host.data(0x06, b"\x63\x02\x63\x03") == b"\x80\x80"
    assert host.data(0x0C) == b"\xff\x07\x00"
    emu.place_phone(TinyApplet())
    host.data(0x4A, b"\x01\x00")
    status = host.data(0x04)
    assert status[2] == 1 and status[3:7] == b"\x01\x00\x00\x00"  # Tg 1, 106 kbit/s, Type A
    assert host.data(0x06, b"\x63\x04")[0] & 0x03 == 0x03  # CIU_TxControl: carrier on
