"""The NFC reader: nfcpy's ContactlessFrontend -> a Card with transceive(apdu) -> rapdu.

The whole choice of hardware is nfcpy's path string: `udp:HOST:PORT` (simulated phones on
loopback), `tty:AMA0:pn532` / `tty:S0:pn532` (a PN532 on the Pi's UART), `usb:...`. All ISO-DEP
work (RATS/ATS, frame waiting time, S(WTX), chaining) is nfcpy's Type4Tag; this module only
polls, activates, exchanges APDUs, counts them and turns nfcpy's failures into exceptions.

A card that stops answering (a phone pulled away mid-tap) is given up quickly: nfcpy's ISO-DEP
initiator retries an unanswered block up to five times, one frame waiting time each, and waits
as long as an S(WTX) asks. Here every block goes through `SilenceLimit`: at most two
retransmissions (as EMV contactless readers do), all of them within `SILENCE_S` of sending the
block that went unanswered, and no waiting-time extension past FWTmax (ISO/IEC 14443-4: FWI 14).

Waiting for a card can be cut short: `wait_for_card(..., cancelled=callable)` asks the callable
(nfcpy's `terminate` convention) before every poll, and returns None once it says True.

Two cards at once (EMV: "Present one card only"): on a reader whose chip lists two targets (a
PN532, e.g. `tty:AMA0:pn532`, or a PN531; nfcpy's `in_list_passive_target_max_target`) each
sensed card is followed by one InListPassiveTarget with MaxTg 2 before activation; when the chip
lists two targets the field is switched off and `MoreThanOneCard` raised. The other readers
(`udp:`, PN533, RC-S956, RC-S380) tell no target count, so there a second card is not noticed:
the reader talks to the one that won anticollision. The module imports nothing from firmware/.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import nfc
import nfc.clf
import nfc.tag
import nfc.tag.tt4

from drivers.errors import PitapError

log = logging.getLogger(__name__)

# Reader faults in a row (polling or activating) before the reader is given up as broken.
MAX_LINE_FAULTS = 3

# A card silent this long after a block was sent to it has left the field (retries included).
SILENCE_S = 1.0
MAX_RETRANSMISSIONS = 2  # of one unanswered block (nfcpy's own default is up to 5)
FWT_MAX_S = 4096 / 13.56e6 * 2**14  # ISO/IEC 14443-4 FWTmax (FWI 14): also caps an S(WTX) wait


class ReaderFault(PitapError):
    """The reader itself cannot be opened or stopped answering."""


class CardRemoved(PitapError):
    """The card or phone left the field (or the link to it broke) during an exchange."""


class UnsupportedCard(PitapError):
    """Something answered in the field that is not an ISO-DEP (Type 4A) payment card."""


class MoreThanOneCard(PitapError):
    """Two cards or phones answered in the field at once; none was activated, the field is off."""


# PN53x InListPassiveTarget (PN532 user manual 7.3.5): MaxTg, BrTy 0 = 106 kbit/s Type A.
IN_LIST_PASSIVE_TARGET = 0x4A
LIST_TWO_AT_106A = bytes([2, 0x00])


class SilenceLimit:
    """The reader as nfcpy's ISO-DEP initiator sees it, giving up on a card that went quiet.

    nfcpy sends every block of an APDU (I-blocks, R(NAK)/R(ACK) retries, S(WTX) replies) through
    `exchange(data, timeout)`. Once a block went unanswered, the retries that follow share what is
    left of `silence_s`, counted from when that block was sent; any answer starts afresh. A wait
    longer than FWTmax (an S(WTX) asking for more) is cut to FWTmax.
    """

    def __init__(self, clf: nfc.ContactlessFrontend, silence_s: float = SILENCE_S) -> None:
        self.clf = clf
        self.silence_s = silence_s
        self.quiet_since: float | None = None

    def exchange(self, data: bytes | bytearray, timeout: float) -> bytearray:
        sent_at = time.monotonic()
        timeout = min(timeout, FWT_MAX_S)
        if self.quiet_since is not None:
            left = self.quiet_since + self.silence_s - sent_at
            if left <= 0:
                raise nfc.clf.TimeoutError(f"card silent for {self.silence_s:g} s")
            timeout = min(timeout, left)
        try:
            answer = self.clf.exchange(data, timeout)
        except nfc.clf.CommunicationError:
            if self.quiet_since is None:
                self.quiet_since = sent_at
            raise
        self.quiet_since = None
        return answer


def limit_silence(tag: nfc.tag.tt4.Type4Tag, silence_s: float = SILENCE_S) -> None:
    """Put `SilenceLimit` between the tag's ISO-DEP initiator and the reader, and cap its
    retries. nfcpy keeps the initiator in `tag._dep` (attributes clf, n_retry_nak, n_retry_ack);
    nothing public reaches them."""
    dep = tag._dep
    dep.clf = SilenceLimit(dep.clf, silence_s)
    dep.n_retry_nak = min(dep.n_retry_nak, MAX_RETRANSMISSIONS)
    dep.n_retry_ack = min(dep.n_retry_ack, MAX_RETRANSMISSIONS)


@dataclass
class Card:
    """An activated ISO-DEP card or phone. The kernel only ever calls `transceive`."""

    tag: nfc.tag.tt4.Type4Tag
    uid: bytes
    activated_at: float  # time.monotonic() when the card was found in the field
    last_exchange_at: float = 0.0
    apdus: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    left_field: bool = False  # the card stopped answering (not a fault on the reader's line)

    def transceive(self, apdu: bytes) -> bytes:
        """Send one command APDU, return the response APDU (data || SW1 SW2)."""
        try:
            rapdu = self.tag.transceive(bytes(apdu))
        except nfc.tag.tt4.Type4TagCommandError as exc:
            self.left_field = True
            raise CardRemoved(f"ISO-DEP exchange failed: {exc}") from None
        except nfc.clf.CommunicationError as exc:
            self.left_field = True
            raise CardRemoved(f"link to card lost: {exc!r}") from None
        except (OSError, IndexError, TypeError) as exc:  # nfcpy on a malformed or missing frame
            raise CardRemoved(f"ISO-DEP frame unusable: {exc!r}") from None
        if rapdu is None:
            raise CardRemoved("no response from card")
        self.last_exchange_at = time.monotonic()
        self.apdus += 1
        self.bytes_sent += len(apdu)
        self.bytes_received += len(rapdu)
        return bytes(rapdu)

    @property
    def in_field_ms(self) -> float:
        """Card-in-field time: activation to the last APDU answered."""
        end = self.last_exchange_at or self.activated_at
        return (end - self.activated_at) * 1000.0


class CardReader(Protocol):
    """What a payment needs of a contactless reader (Reader, on nfcpy, is the real one): wait for
    one card (UnsupportedCard, MoreThanOneCard, ReaderFault), let it go, close."""

    def wait_for_card(self, timeout: float, cancelled: Callable[[], bool] | None = None,
                      poll_interval: float = 0.05) -> Card | None: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


class Reader:
    """A contactless reader opened from an nfcpy path string."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.clf = nfc.ContactlessFrontend(path)
        except OSError as exc:
            raise ReaderFault(f"cannot open NFC reader {path!r}: {exc.strerror or exc}") from None
        except Exception as exc:  # nfcpy raises assorted errors for a bad path or dead chip
            raise ReaderFault(f"cannot open NFC reader {path!r}: {exc}") from None
        if self.clf.device is None:
            raise ReaderFault(f"no NFC reader found at {path!r}")
        self._quiet_until = 0.0

    @property
    def counts_cards(self) -> bool:
        """True when this reader can tell two cards in the field from one (a PN53x chip)."""
        chipset = getattr(self.clf.device, "chipset", None)
        # nfcpy's own table of what each PN53x-family chip can list: PN531 and PN532 two
        # targets (also inside ACR122 and Arygon readers), PN533 and RC-S956 one.
        most = getattr(chipset, "in_list_passive_target_max_target", 1)
        return callable(getattr(chipset, "command", None)) and most >= 2

    def count_targets(self) -> int:
        """How many Type A targets answer now: 0, 1 or 2 (2 = two or more); 1 when unknown.

        On a PN53x one InListPassiveTarget with MaxTg 2 (nfcpy's own `in_list_passive_target`
        always asks for one). The target the chip lists last stays selected, so with one card in
        the field nfcpy's activation (RATS) goes on as after its own sense. Raises OSError for
        a failure on the line to the chip.
        """
        if not self.counts_cards:
            return 1
        chipset = self.clf.device.chipset
        try:
            answer = chipset.command(IN_LIST_PASSIVE_TARGET, bytearray(LIST_TWO_AT_106A), 1.0)
        except chipset.Error as exc:  # an error frame or status: nothing listed
            log.debug("listing targets: %r", exc)
            return 0
        return answer[0] if answer else 0

    @property
    def description(self) -> str:
        dev = self.clf.device
        return f"{dev.vendor_name} {dev.product_name} ({dev.chipset_name})".strip()

    def wait_for_card(
        self, timeout: float, cancelled: Callable[[], bool] | None = None,
        poll_interval: float = 0.05,
    ) -> Card | None:
        """Poll for a Type 4A card or phone until `timeout` seconds pass or `cancelled()` says
        True (asked before every poll); None if no card came."""
        deadline = time.monotonic() + timeout
        stop = cancelled or (lambda: False)
        # After "more than one card" the field stays off one poll interval: the cards reset, and
        # a caller polling again at once does not spin on the same two cards.
        quiet = min(self._quiet_until, deadline) - time.monotonic()
        if quiet > 0:
            time.sleep(quiet)
        target = nfc.clf.RemoteTarget("106A")
        line_faults = 0
        while time.monotonic() < deadline:
            if stop():
                return None
            polled_at = time.monotonic()
            try:
                found = self.clf.sense(target, iterations=1, interval=poll_interval)
            except nfc.clf.CommunicationError as exc:
                log.debug("sense: %r", exc)
                found = None
            except OSError as exc:  # a glitch on the line to the reader: retry, then give up
                line_faults += 1
                log.warning("reader fault while polling (%d): %r", line_faults, exc)
                if line_faults >= MAX_LINE_FAULTS:
                    raise ReaderFault(
                        f"reader {self.path!r} failed while polling: {exc}"
                    ) from None
                continue
            if found is None:
                line_faults = 0  # the reader answered: only faults in a row give up
                # A reader that answers "nothing here" at once is polled at poll_interval, not
                # in a hot loop (nfcpy's sense with one iteration does not wait itself).
                idle = poll_interval - (time.monotonic() - polled_at)
                if idle > 0:
                    time.sleep(min(idle, max(0.0, deadline - time.monotonic())))
                continue
            line_faults = 0
            activated_at = time.monotonic()
            if not (found.sel_res and found.sel_res[0] & 0x20):
                self.release()
                raise UnsupportedCard("card in field does not support ISO-DEP")
            try:
                targets = self.count_targets()
            except OSError as exc:  # the line to the reader; the next poll retries
                log.warning("reader fault while counting cards: %r", exc)
                self.release()
                continue
            # 0: the card left between sensing and counting, or (on a chip that wakes cards with
            # REQA) the selected card did not answer again: activation tells which, so a chip
            # that cannot count never costs a tap.
            if targets > 1:
                self.release()
                self._quiet_until = time.monotonic() + poll_interval
                raise MoreThanOneCard(f"{targets} cards answered in the field")
            try:
                tag = nfc.tag.activate(self.clf, found)
            except nfc.clf.CommunicationError as exc:
                log.info("card left during activation: %r", exc)
                self.release()
                continue
            except (IndexError, TypeError) as exc:  # ATS missing or too short
                log.info("card gave an unusable ATS: %r", exc)
                self.release()
                continue
            except OSError as exc:  # the reader itself (serial line, chip) failed mid-activation
                line_faults += 1
                log.warning("reader fault during activation (%d): %r", line_faults, exc)
                self.release()
                if line_faults >= MAX_LINE_FAULTS:
                    raise ReaderFault(f"reader {self.path!r} keeps failing: {exc}") from None
                continue
            if not isinstance(tag, nfc.tag.tt4.Type4Tag):
                self.release()
                raise UnsupportedCard("card in field is not a Type 4 (ISO-DEP) card")
            limit_silence(tag)
            return Card(tag=tag, uid=bytes(found.sdd_res or b""), activated_at=activated_at)
        return None

    def release(self) -> None:
        """Switch the field off so the card knows the transaction is over."""
        try:
            self.clf.device.mute()
        except Exception as exc:  # noqa: BLE001 - a reader that cannot mute is not our caller's problem
            log.debug("mute failed: %r", exc)

    def close(self) -> None:
        try:
            self.clf.close()
        except Exception as exc:  # noqa: BLE001
            log.debug("close failed: %r", exc)
