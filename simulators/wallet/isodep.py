"""The card (PICC) side of ISO/IEC 14443-4 (ISO-DEP) for a simulated phone on nfcpy's clf.

nfcpy can be activated as a Type A target (`clf.listen`) but does not emulate a Type 4 card, so
this module answers RATS with an ATS and then runs the block protocol: I-blocks with block number
toggling, chaining both ways (R(ACK)), R(NAK) -> resend, S(DESELECT), and S(WTX) when the applet
needs time. It hands whole command APDUs to an applet and sends back its response APDUs.
Nothing here knows EMV.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

import nfc.clf

log = logging.getLogger(__name__)

FS_TABLE = (16, 24, 32, 40, 48, 64, 96, 128, 256)  # FSCI/FSDI -> frame size

# ATS choices: FSCI 8 (we accept 256-byte frames), FWI 9 (FWT ~155 ms). Phones commonly use FWI 7-8;
# one step more keeps loaded, shared test machines from tripping the reader's timeout.
DEFAULT_FWI = 9


def frame_waiting_time(fwi: int) -> float:
    """FWT in seconds for a frame waiting integer (ISO 14443-4: 256 * 16 / fc * 2^FWI)."""
    return 4096 / 13.56e6 * (2**fwi)


class Applet(Protocol):
    def respond(self, apdu: bytes) -> bytes: ...

    def processing_delay(self, apdu: bytes) -> float: ...


@dataclass
class TapResult:
    """How one activation ended."""

    apdus: int = 0
    ended: str = ""  # "rf-off", "deselect", "re-poll", "idle", "left-field", "no-ats"
    wtx_sent: int = 0


def ats(fwi: int = DEFAULT_FWI, fsci: int = 8) -> bytes:
    """ATS: TL, T0 (TA, TB, TC present | FSCI), TA (106 kbit/s only), TB (FWI | SFGI 0),
    TC (no NAD, no CID)."""
    return bytes([0x05, 0x70 | fsci, 0x00, (fwi << 4) & 0xF0, 0x00])


class IsoDepCard:
    """One activation of the card side: from the RATS until the field goes off or a DESELECT."""

    def __init__(
        self,
        clf: nfc.ContactlessFrontend,
        applet: Applet,
        fwi: int = DEFAULT_FWI,
        idle_timeout: float = 5.0,
        fsci: int = 8,
        atqa: bytes = b"\x04\x00",
        silent_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.clf = clf
        self.applet = applet
        self.fwi = fwi
        self.fsci = fsci
        self.atqa = atqa
        self.fwt = frame_waiting_time(fwi)
        self.idle_timeout = idle_timeout
        self.silent_errors = silent_errors
        self.fsd = 256
        self.block_number = 1  # PICC block number starts at 1 (ISO 14443-4, rule C)
        self.last_block = b""
        self.pending: list[bytes] = []  # response chunks still to send (chaining)
        self.command = b""  # command chunks received so far (chaining)

    def run(self, rats: bytes) -> TapResult:
        result = TapResult()
        if len(rats) < 2 or rats[0] != 0xE0:
            result.ended = "no-ats"
            return result
        self.fsd = FS_TABLE[min(rats[1] >> 4, 8)]
        frame = self._send(ats(self.fwi, self.fsci), result, remember=False)
        while frame is not None:
            try:
                reply = self._handle(frame, result)
            except self.silent_errors as exc:
                log.debug("card goes silent: %r", exc)
                result.ended = "left-field"
                break
            if result.ended in ("deselect", "re-poll"):
                self._send(reply, result, expect_more=False)
                break
            if result.ended:
                break
            frame = self._send(reply, result)
        return result

    def _send(
        self,
        block: bytes | None,
        result: TapResult,
        remember: bool = True,
        expect_more: bool = True,
    ) -> bytes | None:
        """Send `block` (or nothing) and wait for the reader's next frame; None = tap over."""
        if block is not None and remember:
            self.last_block = block
        while True:
            try:
                if not expect_more:
                    self.clf.exchange(block, 0)
                    return None
                frame = self.clf.exchange(block, self.idle_timeout)
            except nfc.clf.BrokenLinkError:
                result.ended = "rf-off"
                return None
            except nfc.clf.TimeoutError:
                result.ended = "idle"
                return None
            except nfc.clf.CommunicationError as exc:  # garbled frame: stay silent, listen on
                log.debug("bad frame from reader: %r", exc)
                block = None
                continue
            if frame is None:
                result.ended = "rf-off"
                return None
            return bytes(frame)

    def _handle(self, frame: bytes, result: TapResult) -> bytes | None:
        """The block to answer `frame` with (None: stay silent)."""
        if not frame:
            return None
        if frame in (b"\x26", b"\x52"):
            # REQA/WUPA: the reader started over without switching the field off. Answer with
            # the ATQA so its anticollision goes on with the next activation.
            result.ended = "re-poll"
            return self.atqa
        pcb = frame[0]
        if pcb & 0xE2 == 0x02:  # I-block
            offset = 1 + bool(pcb & 0x08) + bool(pcb & 0x04)  # skip CID / NAD if present
            self.block_number = pcb & 0x01
            self.command += frame[offset:]
            if pcb & 0x10:  # the reader chains: acknowledge, wait for the rest
                return bytes([0xA2 | self.block_number])
            apdu, self.command = self.command, b""
            return self._answer(apdu, result)
        if pcb & 0xE6 == 0xA2:  # R-block
            number, nak = pcb & 0x01, bool(pcb & 0x10)
            if number == self.block_number:
                return self.last_block or None  # rule 11: resend the last block
            if nak:
                return bytes([0xA2 | self.block_number])  # rule 12
            if self.pending:  # rule 13: the reader acknowledged a chained block: go on
                self.block_number = number
                return self._next_chunk()
            return None
        if pcb & 0xF7 == 0xC2:  # S(DESELECT)
            result.ended = "deselect"
            return frame[:1]
        return None  # S(WTX) replies outside a WTX, or RFU blocks: ignore

    def _answer(self, apdu: bytes, result: TapResult) -> bytes | None:
        delay = self.applet.processing_delay(apdu)
        started = time.monotonic()
        rapdu = self.applet.respond(apdu)
        result.apdus += 1
        while True:
            remaining = delay - (time.monotonic() - started)
            if remaining <= 0:
                break
            wtxm = max(1, min(59, math.ceil(remaining / self.fwt) + 1))
            result.wtx_sent += 1
            reply = self._send(bytes([0xF2, wtxm]), result)
            if reply is None or reply[:1] != b"\xf2":
                log.debug("reader did not acknowledge WTX: %r", reply)
                return None
            time.sleep(max(0.0, delay - (time.monotonic() - started)))
        max_inf = self.fsd - 3  # PCB + 2-byte EDC
        self.pending = [rapdu[i : i + max_inf] for i in range(0, len(rapdu), max_inf)] or [b""]
        return self._next_chunk()

    def _next_chunk(self) -> bytes:
        chunk = self.pending.pop(0)
        chaining = 0x10 if self.pending else 0x00
        return bytes([0x02 | chaining | self.block_number]) + chunk
