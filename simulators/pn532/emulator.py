"""An emulated PN532 on a pseudo-terminal, for nfcpy's own `tty:...:pn532` driver.

Holds the serial side of the emulated chip: a pty whose slave end nfcpy opens through a link
(simulators.pn532.pty_link: `/dev/ttyPITAP0` -> `/dev/pts/N`, opened as `tty:ttyPITAP0:pn532`), a
thread that reads host frames (simulators.pn532.frame) at the line speed the host set, ACKs them,
runs them on the chip (simulators.pn532.chip) with the RF field and the phone in it
(simulators.pn532.field), and writes the responses; NACK re-sends, a host ACK or a new command
aborts a waiting one, an ACK completes a baud-rate change. Faults can be injected on the line (a
dropped byte, a bad checksum, a NACK for an ACK, no ACK, no response, a silent chip).
It must not touch the code above nfcpy: the terminal reaches it only through its path string.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import errno
import logging
import os
import select
import termios
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

from simulators.pn532.chip import Pn532Chip, Reply
from simulators.pn532.field import Applet, PhoneInField, RfField
from simulators.pn532.frame import (
    ACK,
    ERROR_FRAME,
    NACK,
    TFI_HOST_TO_CHIP,
    Ack,
    BadFrame,
    Command,
    FrameEvent,
    FrameParser,
    Nack,
    response_frame,
)
from simulators.pn532.pty_link import LinkError, make_link, nfcpy_path_for, remove_link

log = logging.getLogger(__name__)

TERMIOS_SPEEDS = {
    getattr(termios, f"B{rate}"): rate
    for rate in (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
    if hasattr(termios, f"B{rate}")
}


class EmulatorError(Exception):
    """The emulator cannot be set up (no pty, no place for the link)."""


class LineFault(enum.Enum):
    """Things that go wrong on a real UART between a Pi and a PN532."""

    DROP_RESPONSE_BYTE = "a byte of the response frame is lost"
    BAD_RESPONSE_CHECKSUM = "the response frame arrives with a wrong data checksum"
    NACK_FOR_ACK = "the chip sends a NACK frame where its ACK belongs"
    NO_ACK = "the chip's ACK is lost (the response still follows)"
    NO_RESPONSE = "the chip ACKs, then never answers"
    DROP_COMMAND_BYTE = "a byte of the host's command frame is lost on the way to the chip"
    SILENCE = "the chip stops answering for good (a pulled wire, a dead chip)"


@dataclass
class _ArmedFault:
    fault: LineFault
    command: int | None  # only on this command code; None = the next command
    times: int
    after: int = 0  # matching commands to let through first


@dataclass
class LineStats:
    """What crossed the serial line, for measurements."""

    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    bad_frames: list[str] = field(default_factory=list)
    nacks_in: int = 0
    aborts: int = 0
    garbled: int = 0  # reads at a speed the chip is not set to


class Pn532Emulator:
    """A PN532 on a pty, with an RF field that can hold a simulated phone.

    Use as a context manager (or `start()` / `stop()`); `nfcpy_path` is the reader path to give
    nfcpy (`tty:ttyPITAP0:pn532`). With `line_timing`, bytes take the time they take at the
    chip's baud rate and RF exchanges their air time, so latencies resemble a real reader's.
    """

    def __init__(
        self,
        link: str | os.PathLike[str] | None = None,
        line_timing: bool = False,
        stale_after: float = 0.03,
        check_line_speed: bool = True,
    ) -> None:
        self.clock = time.monotonic
        self.field = RfField(self.clock)
        self.chip = Pn532Chip(self.field, air_timing=line_timing)
        self.line_timing = line_timing
        self.check_line_speed = check_line_speed
        self.stats = LineStats()
        self._parser = FrameParser(stale_after=stale_after)
        self._events: collections.deque[FrameEvent] = collections.deque()
        self._faults: list[_ArmedFault] = []
        self._silent = False
        self._asleep = False
        self._pending_baud: int | None = None
        self._last_response = b""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1
        self._requested_link = Path(link) if link is not None else None
        self.link: Path | None = None
        self.tty_path = ""

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> Pn532Emulator:
        """Open the pty, make the link, start answering. Raises EmulatorError."""
        if self._thread is not None:
            return self
        try:
            self._master, self._slave = os.openpty()
        except OSError as exc:
            raise EmulatorError(f"cannot open a pseudo-terminal: {exc.strerror}") from None
        tty.setraw(self._slave)  # no echo, no line discipline until nfcpy opens it
        self.tty_path = os.ttyname(self._slave)
        try:
            self.link = make_link(self.tty_path, self._requested_link)
        except LinkError as exc:
            self._close_fds()
            raise EmulatorError(str(exc)) from None
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pn532-emulator", daemon=True)
        self._thread.start()
        log.info("PN532 emulator on %s (link %s)", self.tty_path, self.link)
        return self

    def stop(self) -> None:
        """Stop the thread, remove the link, close the pty."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.link is not None:
            remove_link(self.link, self.tty_path)
            self.link = None
        self._close_fds()

    def __enter__(self) -> Pn532Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def nfcpy_path(self) -> str:
        """The reader path nfcpy opens this emulator with."""
        if self.link is None:
            raise EmulatorError("emulator not started")
        return nfcpy_path_for(self.link)  # checked when the link was made

    # --- the field and the faults ------------------------------------------------------------

    def place_phone(self, applet: Applet, **phone_options: object) -> PhoneInField:
        """Put a phone answering with `applet` in the field until `remove_phone()`."""
        phone = PhoneInField(applet=applet, **phone_options)  # type: ignore[arg-type]
        self.field.place(phone)
        return phone

    def queue_taps(self, applet: Applet, taps: int, gap: float = 0.3) -> None:
        """Tap a phone answering with `applet` `taps` times (each ends when the field drops)."""
        self.field.queue_taps(lambda: PhoneInField(applet=applet), taps, gap)

    def add_phone(self, applet: Applet, **phone_options: object) -> PhoneInField:
        """Put one more phone in the field beside the one there (two phones held together),
        until `remove_phone(phone)`; InListPassiveTarget with MaxTg 2 then lists both."""
        phone = PhoneInField(applet=applet, **phone_options)  # type: ignore[arg-type]
        self.field.add(phone)
        return phone

    def remove_phone(self, phone: PhoneInField | None = None) -> None:
        """Take `phone` out of the field, or every phone (and any queued taps) when None."""
        if phone is None:
            self.field.remove()
        else:
            self.field.take_away(phone)

    def inject(
        self, fault: LineFault, command: int | None = None, times: int = 1, after: int = 0
    ) -> None:
        """Arm `fault` for `times` commands (with code `command`, if given), letting `after`
        such commands through first."""
        with self._lock:
            self._faults.append(_ArmedFault(fault, command, times, after))

    def go_silent(self, silent: bool = True) -> None:
        """The chip stops answering anything (a dead chip, a pulled wire) until called False."""
        self._silent = silent

    def power_cycle(self) -> None:
        """Switch the chip off and on: reset state, 115200 baud, field off, awake."""
        with self._lock:
            self.field.set_carrier(False)
            self.chip = Pn532Chip(self.field, air_timing=self.line_timing)
            self._pending_baud = None
            self._asleep = False
            self._last_response = b""

    @property
    def baud(self) -> int:
        return self.chip.baud

    @property
    def asleep(self) -> bool:
        return self._asleep

    # --- the line ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._events:
                    self._receive(0.02)
                while self._events and not self._stop.is_set():
                    self._handle(self._events.popleft())
        except Exception:  # noqa: BLE001 - a dying emulator must say why, then go silent
            log.exception("PN532 emulator stopped on an error")

    def _receive(self, timeout: float) -> None:
        """Read what the host sent within `timeout` seconds into the event queue."""
        data = b""
        try:
            ready, _, _ = select.select([self._master], [], [], timeout)
            if ready:
                data = os.read(self._master, 4096)
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise
            time.sleep(timeout)
        if data:
            self.stats.bytes_in += len(data)
            if self._silent or not self._speeds_match():
                return
            if self._asleep:  # any byte on HSU wakes the chip; that byte is spent waking it
                self._asleep = False
                data = data[1:]
            data = self._lose_command_byte(data)
        self._events.extend(self._parser.feed(data, self.clock()))

    def _line_speed(self) -> int | None:
        """The speed the host set on its end of the line (the pty slave's termios)."""
        try:
            speed = termios.tcgetattr(self._slave)[5]
        except (termios.error, OSError):
            return None
        return TERMIOS_SPEEDS.get(speed)

    def _speeds_match(self) -> bool:
        """Both ends at one baud rate? At another the chip sees only framing errors."""
        if not self.check_line_speed:
            return True
        speed = self._line_speed()
        if speed is None or speed == self.chip.baud:
            return True
        if speed == self._pending_baud:  # the host moved on before its ACK arrived
            self._switch_baud()
            return True
        self.stats.garbled += 1
        if self.stats.garbled == 1:
            log.warning("PN532 emulator: host at %d baud, chip at %d: bytes lost", speed, self.baud)
        return False

    def _lose_command_byte(self, data: bytes) -> bytes:
        """DROP_COMMAND_BYTE: lose the first parameter byte (or the DCS) of a command frame."""
        start = data.find(b"\x00\xff")
        if start < 0 or len(data) < start + 8 or data[start + 2 : start + 4] == b"\xff\xff":
            return data  # not the head of a normal command frame (extended ones: left alone)
        code_at = start + 5
        if not self._take_fault(LineFault.DROP_COMMAND_BYTE, data[code_at : code_at + 1]):
            return data
        return data[: code_at + 1] + data[code_at + 2 :]

    def _handle(self, event: FrameEvent) -> None:
        if self._silent:
            return
        if isinstance(event, Ack):
            if self._pending_baud is not None:
                self._switch_baud()
            return
        if isinstance(event, Nack):
            self.stats.nacks_in += 1
            if self._last_response:
                self._write(self._last_response)
            return
        if isinstance(event, BadFrame):
            self.stats.bad_frames.append(event.reason)
            log.info("PN532 emulator: %s; frame ignored", event.reason)
            return
        assert isinstance(event, Command)
        self._command(event)

    def _command(self, frame: Command) -> None:
        self.stats.frames_in += 1
        if frame.tfi != TFI_HOST_TO_CHIP or not frame.data:
            self._write(ACK)
            self._respond(ERROR_FRAME)
            return
        code, params = frame.data[0], frame.data[1:]
        if self._take_fault(LineFault.SILENCE, frame.data):
            self._silent = True
            return
        if self._pending_baud is not None:
            # nfcpy closes the port right after writing that ACK, and closing flushes output
            # still queued in the pty: the ACK may never arrive. The host talks at the new
            # speed now, so the chip does too.
            self._switch_baud()
        if self._take_fault(LineFault.NACK_FOR_ACK, frame.data):
            self._write(NACK)
        elif not self._take_fault(LineFault.NO_ACK, frame.data):
            self._write(ACK)
        reply = self.chip.execute(code, params)
        if reply.wait_for_phone:
            waited = self._wait_for_phone(code, params)
            if waited is None:
                return  # the host aborted with an ACK
            reply = waited
        if reply.busy_for and self._wait(reply.busy_for):
            return
        if self._take_fault(LineFault.NO_RESPONSE, frame.data):
            return
        out = ERROR_FRAME if reply.data is None else response_frame(code, reply.data)
        if self._take_fault(LineFault.BAD_RESPONSE_CHECKSUM, frame.data):
            out = out[:-2] + bytes([(out[-2] + 1) & 0xFF]) + out[-1:]
        if self._take_fault(LineFault.DROP_RESPONSE_BYTE, frame.data):
            out = out[: len(out) // 2] + out[len(out) // 2 + 1 :]
        self._after(reply)  # the chip's new state holds by the time the host reads the answer
        self._respond(out)

    def _switch_baud(self) -> None:
        assert self._pending_baud is not None
        self.chip.baud, self._pending_baud = self._pending_baud, None
        log.debug("PN532 emulator: serial speed now %d", self.chip.baud)

    def _after(self, reply: Reply) -> None:
        if reply.new_baud is not None:
            self._pending_baud = reply.new_baud
        if reply.power_down:
            self._asleep = True

    def _respond(self, frame: bytes) -> None:
        self._last_response = frame
        self.stats.frames_out += 1
        self._write(frame)

    def _write(self, frame: bytes) -> None:
        if self.check_line_speed and self._line_speed() not in (None, self.chip.baud):
            return  # what the host reads at the wrong speed is noise: send nothing
        if self.line_timing:
            time.sleep(len(frame) * 10 / self.chip.baud)
        try:
            os.write(self._master, frame)
        except OSError as exc:
            log.debug("PN532 emulator: write failed: %r", exc)
            return
        self.stats.bytes_out += len(frame)

    def _wait(self, seconds: float) -> bool:
        """Let `seconds` of chip time pass; True if the host aborted the command with an ACK."""
        deadline = self.clock() + seconds
        while not self._stop.is_set():
            if self._abort_seen():
                return True
            left = deadline - self.clock()
            if left <= 0:
                return False
            self._receive(min(left, 0.01))
        return True

    def _wait_for_phone(self, code: int, params: bytes) -> Reply | None:
        """InListPassiveTarget with endless retries: poll the field until a phone answers."""
        while not self._stop.is_set():
            if self._abort_seen():
                return None
            if self.field.phone() is not None:
                reply = self.chip.execute(code, params)
                if not reply.wait_for_phone:
                    return reply
            self._receive(0.01)
        return None

    def _abort_seen(self) -> bool:
        """An ACK from the host, or a new command, aborts the command the chip is working on
        (the ACK is consumed; the new command is run next)."""
        for index, event in enumerate(self._events):
            if isinstance(event, Ack | Command):
                if isinstance(event, Ack):
                    del self._events[index]
                self.stats.aborts += 1
                return True
        return False

    def _take_fault(self, fault: LineFault, command_data: bytes) -> bool:
        code = command_data[0] if command_data else None
        with self._lock:
            for armed in self._faults:
                if armed.fault is fault and armed.command in (None, code):
                    if armed.after > 0:
                        armed.after -= 1
                        return False
                    armed.times -= 1
                    if armed.times <= 0:
                        self._faults.remove(armed)
                    log.info("PN532 emulator: injected fault: %s", fault.value)
                    return True
        return False

    # --- the link nfcpy opens ----------------------------------------------------------------

    def _close_fds(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1
