"""The PN532 host frame protocol (HSU/UART), as the chip sees it: frames in, frames out.

Holds the byte-level codec the emulated PN532 (simulators/pn532/emulator.py) speaks on its serial
line: normal and extended information frames (preamble, start code, LEN/LCS, TFI, data, DCS,
postamble), ACK and NACK frames, the application-level error frame, and an incremental parser that
turns a byte stream with noise, wake-up bytes and broken frames into events. Pure: no I/O, no
threads, no clock of its own (the caller passes the time).
"""

from __future__ import annotations

from dataclasses import dataclass

PREAMBLE = b"\x00"
START_CODE = b"\x00\xff"
POSTAMBLE = b"\x00"
ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"  # "syntax error" at application level

TFI_HOST_TO_CHIP = 0xD4
TFI_CHIP_TO_HOST = 0xD5

# Normal frames carry up to 255 bytes (TFI + data); the PN532 accepts up to 265 in one frame.
NORMAL_FRAME_MAX = 255
CHIP_FRAME_MAX = 265


def checksum(data: bytes) -> int:
    """The byte that makes `sum(data) + checksum` zero modulo 256."""
    return (-sum(data)) & 0xFF


def encode_frame(body: bytes) -> bytes:
    """An information frame around `body` (TFI + data): normal up to 255 bytes, else extended."""
    if not body:
        raise ValueError("a frame body holds at least the TFI byte")
    if len(body) > 0xFFFF:
        raise ValueError("frame body longer than an extended frame can hold")
    if len(body) <= NORMAL_FRAME_MAX - 1:  # LEN 0xFF is reserved for the extended marker
        head = PREAMBLE + START_CODE + bytes([len(body), checksum(bytes([len(body)]))])
    else:
        length = len(body).to_bytes(2, "big")
        head = PREAMBLE + START_CODE + b"\xff\xff" + length + bytes([checksum(length)])
    return head + body + bytes([checksum(body)]) + POSTAMBLE


def response_frame(command_code: int, data: bytes = b"") -> bytes:
    """The chip's answer to `command_code`: TFI D5, response code = command code + 1, data."""
    return encode_frame(bytes([TFI_CHIP_TO_HOST, (command_code + 1) & 0xFF]) + data)


@dataclass(frozen=True)
class Ack:
    """The host acknowledged (or, while the chip works, aborted) the current command."""


@dataclass(frozen=True)
class Nack:
    """The host asks the chip to send its last response frame again."""


@dataclass(frozen=True)
class Command:
    """A well-formed host frame: TFI and the bytes after it (command code + parameters)."""

    tfi: int
    data: bytes
    extended: bool = False


@dataclass(frozen=True)
class BadFrame:
    """A frame the chip received but cannot use; `reason` names the fault."""

    reason: str


FrameEvent = Ack | Nack | Command | BadFrame


class FrameParser:
    """Incremental parser for host -> chip bytes.

    Bytes before a start code (preamble, HSU wake-up 0x55s, line noise) are skipped. A frame left
    incomplete for longer than `stale_after` seconds is dropped (a byte was lost on the line), so
    the next frame is read cleanly instead of being swallowed as the missing tail.
    """

    def __init__(self, stale_after: float = 0.03) -> None:
        self.stale_after = stale_after
        self._buf = bytearray()
        self._last_byte_at = 0.0
        self.skipped = 0  # bytes that were not part of any frame (noise, preambles)

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes, now: float) -> list[FrameEvent]:
        """Add bytes received at time `now`; return the events they complete."""
        events = self.expire(now)
        if data:
            self._buf += data
            self._last_byte_at = now
        while True:
            event = self._next_event()
            if event is None:
                break
            events.append(event)
        return events

    def expire(self, now: float) -> list[FrameEvent]:
        """Drop a partial frame that has waited too long for its missing bytes."""
        if self._buf and now - self._last_byte_at > self.stale_after:
            start = self._buf.find(START_CODE)
            held = len(self._buf)
            self._buf.clear()
            if start >= 0:
                return [BadFrame(f"incomplete frame dropped after {held} bytes")]
            self.skipped += held
        return []

    def _next_event(self) -> FrameEvent | None:
        buf = self._buf
        start = buf.find(START_CODE)
        if start < 0:
            # Keep a trailing 0x00: it may be the first half of the next start code.
            keep = 1 if buf[-1:] == b"\x00" else 0
            self.skipped += len(buf) - keep
            del buf[: len(buf) - keep]
            return None
        self.skipped += start
        del buf[:start]
        if len(buf) < 4:
            return None
        length, lcs = buf[2], buf[3]
        if (length, lcs) == (0x00, 0xFF):
            del buf[:4]
            self._eat_postamble()
            return Ack()
        if (length, lcs) == (0xFF, 0x00):
            del buf[:4]
            self._eat_postamble()
            return Nack()
        extended = (length, lcs) == (0xFF, 0xFF)
        if extended:
            if len(buf) < 7:
                return None
            lenm, lenl, lcs = buf[4], buf[5], buf[6]
            if (lenm + lenl + lcs) & 0xFF:
                del buf[:2]  # resynchronise on the next start code
                return BadFrame("extended frame length checksum (LCS) wrong")
            length, body_at = (lenm << 8) | lenl, 7
        else:
            if (length + lcs) & 0xFF:
                del buf[:2]
                return BadFrame("frame length checksum (LCS) wrong")
            body_at = 4
        if length == 0:
            del buf[: body_at + 1]
            return BadFrame("frame with LEN 0 and no TFI")
        if len(buf) < body_at + length + 1:
            return None
        body = bytes(buf[body_at : body_at + length])
        dcs = buf[body_at + length]
        del buf[: body_at + length + 1]
        self._eat_postamble()
        if (sum(body) + dcs) & 0xFF:
            return BadFrame("frame data checksum (DCS) wrong")
        return Command(tfi=body[0], data=body[1:], extended=extended)

    def _eat_postamble(self) -> None:
        # The postamble is optional on the wire; a 0x00 that starts the next frame's start code
        # (00 FF) must stay.
        if self._buf[:1] == b"\x00" and self._buf[1:2] != b"\xff":
            del self._buf[:1]
