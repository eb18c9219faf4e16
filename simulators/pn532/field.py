"""The RF field of the emulated PN532: a Type 4A phone as the chip sees it over the air.

Holds the card side below the PN532: ISO/IEC 14443-3 Type A identity (SENS_RES, UID, SEL_RES),
activation states (idle, active, protocol, halted) and the ISO/IEC 14443-4 PICC rules (RATS/ATS,
I-blocks with block numbers and chaining, R(ACK)/R(NAK), S(DESELECT), S(WTX)) around an APDU-level
applet (`respond(apdu) -> rapdu`, `reset()`), e.g. `simulators.wallet.phone.CardApplet`. Frames here
are without CRC: the PN532 adds and checks CRC_A itself. No serial line, no PN532 commands.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from simulators.wallet.isodep import FS_TABLE, frame_waiting_time

log = logging.getLogger(__name__)

# What phones commonly answer: ATQA 0x0004 (single-size UID), SAK 0x20 (ISO-DEP only).
PHONE_SENS_RES = b"\x04\x00"  # air order (LSB first)
PHONE_SEL_RES = 0x20

FSDI_TO_FSD = FS_TABLE  # FSDI/FSCI -> frame size, as ISO-DEP's card side uses it


class Applet(Protocol):
    """The APDU-level phone: what `simulators.wallet.phone.CardApplet` provides."""

    def respond(self, apdu: bytes) -> bytes: ...

    def reset(self) -> None: ...


def default_ats() -> bytes:
    """TL T0 TA TB TC: FSC 256, 106 kbit/s both ways, FWI 8, no CID/NAD, no historical bytes."""
    return bytes.fromhex("0578807002")


def random_uid() -> bytes:
    """A 4-byte random UID as phones use (first byte 08h)."""
    return b"\x08" + secrets.token_bytes(3)


@dataclass
class PhoneInField:
    """One Type 4A phone in (or near) the field, answering raw frames as it would over the air.

    `air_exchange(frame)` takes a frame the PN532 sends (no CRC) and returns the phone's answer, or
    None when the phone stays silent (the chip then reports a timeout).
    """

    applet: Applet
    uid: bytes = field(default_factory=random_uid)
    sens_res: bytes = PHONE_SENS_RES
    sel_res: int = PHONE_SEL_RES
    ats: bytes = field(default_factory=default_ats)
    wtx_before_response: int = 0  # S(WTX) requests the phone sends before each APDU response
    on_activated: Callable[[], None] | None = None  # called once a tap reached ISO-DEP (RATS)

    state: str = field(default="off", init=False)  # off, idle, active, protocol, halted, gone
    answer_delay: float = field(default=0.0, init=False)  # seconds before the last answer
    fsd: int = field(default=256, init=False)
    block_number: int = field(default=1, init=False)
    apdus: int = field(default=0, init=False)
    _chained_command: bytearray = field(default_factory=bytearray, init=False)
    _pending_response: bytes = field(default=b"", init=False)
    _last_block: bytes = field(default=b"", init=False)
    _wtx_left: int = field(default=0, init=False)
    _waiting_response: bytes | None = field(default=None, init=False)
    _thinking_left: float = field(default=0.0, init=False)

    # --- the RF field ----------------------------------------------------------------------

    def field_on(self) -> None:
        """The reader's carrier reached the phone: it powers up in IDLE, as a new tap."""
        if self.state == "off":  # a phone that is "gone" left the field for good
            self.state = "idle"
            self.applet.reset()

    def field_off(self) -> None:
        """The carrier went away: everything the phone held for this tap is gone."""
        if self.state != "gone":
            self.state = "off"
        self._chained_command.clear()
        self._pending_response = b""
        self._last_block = b""
        self._waiting_response = None

    # --- ISO/IEC 14443-3: anticollision and selection, done by the chip ----------------------

    def select(self) -> bool:
        """SENS_REQ/ALL_REQ + anticollision + SELECT: True if the phone is now ACTIVE.

        A HALTed phone answers only WUPA; the PN532's InListPassiveTarget sends WUPA, so a halted
        phone is woken again, as on the air.
        """
        if self.state in ("idle", "halted", "active"):
            self.state = "active"
            return True
        return False

    def halt(self) -> None:
        if self.state in ("active", "protocol"):
            self.state = "halted"

    # --- ISO/IEC 14443-4 ---------------------------------------------------------------------

    def air_exchange(self, frame: bytes) -> bytes | None:
        """One frame from the PCD (no CRC); the phone's answer or None (silence)."""
        self.answer_delay = 0.0
        if not frame or self.state not in ("active", "protocol"):
            return None
        if self.state == "active":
            return self._in_active_state(frame)
        return self._in_protocol_state(frame)

    def _in_active_state(self, frame: bytes) -> bytes | None:
        if frame[0] == 0xE0 and len(frame) == 2:  # RATS
            self.fsd = FSDI_TO_FSD[min(frame[1] >> 4, 8)]
            self.state = "protocol"
            self.block_number = 1
            if self.on_activated is not None:
                self.on_activated()
            return self.ats
        if frame[:2] == b"\x50\x00":  # HLTA
            self.state = "halted"
        return None

    def _in_protocol_state(self, frame: bytes) -> bytes | None:
        pcb = frame[0]
        if pcb & 0xE2 == 0x02:  # I-block: 000c xn1b
            return self._i_block(pcb, self._strip_prologue(pcb, frame))
        if pcb & 0xE6 == 0xA2:  # R-block: 101a x01b (a: NAK)
            return self._r_block(pcb)
        if pcb & 0xC7 == 0xC2:  # S-block: 11ss x010
            return self._s_block(pcb, self._strip_prologue(pcb, frame))
        log.debug("phone ignores a frame it cannot parse: PCB %02X", pcb)
        return None

    @staticmethod
    def _strip_prologue(pcb: int, frame: bytes) -> bytes:
        skip = 1 + bool(pcb & 0x08) + bool(pcb & 0x04 and pcb & 0xC0 == 0x00)
        return frame[skip:]

    def _send(self, block: bytes) -> bytes:
        self._last_block = block
        return block

    def _i_block(self, pcb: int, inf: bytes) -> bytes | None:
        number = pcb & 0x01
        if number != self.block_number:
            self.block_number = number  # rule B: toggle on a new block
        elif self._last_block:
            return self._last_block  # the PCD repeats a block we already answered
        if pcb & 0x10:  # chaining from the PCD: acknowledge, keep collecting
            self._chained_command += inf
            return self._send(bytes([0xA2 | self.block_number]))
        apdu = bytes(self._chained_command + inf)
        self._chained_command.clear()
        try:
            response = self.applet.respond(apdu)
        except Exception as exc:  # noqa: BLE001 - e.g. the wallet's PhoneLeftField
            log.info("phone stops answering: %s", type(exc).__name__)
            self.field_off()
            self.state = "gone"
            return None
        self.apdus += 1
        wtx = self.wtx_before_response + self._wtx_for(apdu)
        if wtx:
            self._wtx_left = wtx - 1
            self._waiting_response = response
            return self._send(b"\xf2\x01")
        return self._send(self._response_block(response))

    def _wtx_for(self, apdu: bytes) -> int:
        """S(WTX) requests (multiplier 1, one FWT each) covering the applet's thinking time."""
        delay = getattr(self.applet, "processing_delay", None)
        seconds = float(delay(apdu)) if callable(delay) else 0.0
        self._thinking_left = seconds
        return math.ceil(seconds / self.fwt) if seconds > 0 else 0

    @property
    def fwt(self) -> float:
        """Frame waiting time from this phone's own ATS (TB's FWI)."""
        t0 = self.ats[1] if len(self.ats) > 1 else 0
        at = 2 + bool(t0 & 0x10)
        fwi = self.ats[at] >> 4 if t0 & 0x20 and len(self.ats) > at else 4
        return frame_waiting_time(fwi if fwi <= 14 else 4)

    def _response_block(self, response: bytes) -> bytes:
        room = self.fsd - 3  # PCB + CRC
        if len(response) > room:
            self._pending_response = response[room:]
            return bytes([0x12 | self.block_number]) + response[:room]
        self._pending_response = b""
        return bytes([0x02 | self.block_number]) + response

    def _r_block(self, pcb: int) -> bytes | None:
        number = pcb & 0x01
        nak = bool(pcb & 0x10)
        if number == self.block_number:
            return self._last_block or None  # rule 10: re-transmit the last block
        if nak:
            return self._send(bytes([0xA2 | self.block_number]))  # rule 11
        self.block_number = number  # rule B
        if self._pending_response:  # rule 12: continue chaining
            return self._send(self._response_block(self._pending_response))
        return None

    def _s_block(self, pcb: int, inf: bytes) -> bytes | None:
        if pcb & 0x30 == 0x00:  # S(DESELECT)
            self.state = "halted"
            return bytes([pcb])
        if pcb & 0x30 == 0x30 and self._waiting_response is not None:  # S(WTX) response
            granted = self.fwt * max(1, inf[0] & 0x3F if inf else 1)
            self.answer_delay = min(self._thinking_left, granted)
            self._thinking_left -= self.answer_delay
            if self._wtx_left > 0:
                self._wtx_left -= 1
                return self._send(b"\xf2\x01")
            response, self._waiting_response = self._waiting_response, None
            return self._send(self._response_block(response))
        return None


class RfField:
    """What is in range of the PN532's antenna, and whether its carrier is on.

    A phone either stays in range until `remove()` (`place`), or comes for a number of taps
    (`queue_taps`): each tap ends at the first carrier-off after the phone reached ISO-DEP, as a
    customer takes the phone away once the terminal is done; the next tap comes `gap` seconds
    later. More phones can be held in range beside it (`add`, e.g. a wallet with two cards laid
    on the reader) until `take_away(phone)` or `remove()`. Thread-safe enough for one chip
    thread and one test thread: each change is one attribute assignment.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.carrier = False
        self._phone: PhoneInField | None = None
        self._others: tuple[PhoneInField, ...] = ()
        self._make_phone: Callable[[], PhoneInField] | None = None
        self._taps_left = 0
        self._gap = 0.0
        self._next_tap_at = 0.0
        self._tap_activated = False
        self.taps_done = 0

    def place(self, phone: PhoneInField) -> None:
        """Put a phone in range and leave it there."""
        self._make_phone = None
        self._taps_left = 0
        self._enter(phone)

    def add(self, phone: PhoneInField) -> None:
        """Put one more phone in range, beside the one already there, until taken away."""
        self._others = (*self._others, phone)
        if self.carrier:
            phone.field_on()

    def take_away(self, phone: PhoneInField) -> None:
        """Take one phone out of range; the others stay."""
        if phone is self._phone:
            self._make_phone = None
            self._taps_left = 0
            self._phone = None
        else:
            self._others = tuple(p for p in self._others if p is not phone)
        phone.field_off()

    def queue_taps(self, make_phone: Callable[[], PhoneInField], taps: int, gap: float) -> None:
        """Bring a phone (a new one from `make_phone` each time) for `taps` taps."""
        self._make_phone = make_phone
        self._taps_left = taps
        self._gap = gap
        self._next_tap_at = self.clock()
        self._phone = None

    def remove(self) -> None:
        """Take every phone out of range (mid-exchange if the chip is talking to one)."""
        self._make_phone = None
        self._taps_left = 0
        phone, self._phone = self._phone, None
        others, self._others = self._others, ()
        for gone in (phone, *others):
            if gone is not None:
                gone.field_off()

    def phone(self) -> PhoneInField | None:
        """The (first) phone in range now (a queued tap arrives when its time has come)."""
        if self._phone is None and self._taps_left > 0 and self.clock() >= self._next_tap_at:
            assert self._make_phone is not None
            self._taps_left -= 1
            self._enter(self._make_phone())
        if self._phone is None and self._others:
            return self._others[0]
        return self._phone

    def phones(self) -> list[PhoneInField]:
        """Every phone in range now, the first one (`phone()`) first."""
        first = self.phone()
        rest = [p for p in self._others if p is not first]
        return [first, *rest] if first is not None else rest

    def in_range(self, phone: PhoneInField) -> bool:
        return phone is self.phone() or phone in self._others

    def _enter(self, phone: PhoneInField) -> None:
        self._tap_activated = False
        previous = phone.on_activated

        def activated() -> None:
            self._tap_activated = True
            if previous is not None:
                previous()

        phone.on_activated = activated
        self._phone = phone
        if self.carrier:
            phone.field_on()

    def set_carrier(self, on: bool) -> None:
        """The chip switched its RF carrier on or off."""
        if on == self.carrier:
            return
        self.carrier = on
        for other in self._others:
            if on:
                other.field_on()
            else:
                other.field_off()
        self.phone()  # a queued tap that is due arrives now
        phone = self._phone
        if phone is None:
            return
        if on:
            phone.field_on()
            return
        phone.field_off()
        if self._tap_activated and self._make_phone is not None:  # the tap is over
            self.taps_done += 1
            self._phone = None
            self._next_tap_at = self.clock() + self._gap
