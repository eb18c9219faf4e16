"""Server-sent events (`GET /v1/events`): what the terminal's screen shows, as it shows it.

The events come from the terminal's feedback (firmware.feedback listeners), so a payment keyed
on the terminal is told like one a till started. A screen becomes an event (EventType) with the
payment it belongs to; the outcome event carries the payment as the API shows it. Listeners run
on the service loop's thread; each subscriber (one open /v1/events response) has an asyncio queue
on the API's event loop, fed thread-safely. A subscriber too slow to keep up loses its oldest
events, never stalls the terminal.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
from collections.abc import Callable

__all__ = ["EventHub", "EventType"]

log = logging.getLogger(__name__)

MAX_QUEUED = 256


class EventType(enum.StrEnum):
    WAITING_FOR_CARD = "waiting_for_card"
    CARD_READ = "card_read"
    PROCESSING = "processing"
    SEE_PHONE = "see_phone"
    UPI_QR = "upi_qr"  # a UPI payment's QR is on the screen: the payer scans it
    TRY_AGAIN = "try_again"
    OUTCOME = "outcome"
    READY = "ready"
    SETTLEMENT = "settlement"


# the feedback's screen (or event) names -> the API's events; other screens are not told
SCREENS = {
    "present_card": EventType.WAITING_FOR_CARD,
    "partial": EventType.WAITING_FOR_CARD,
    "processing": EventType.PROCESSING,
    "card_read": EventType.CARD_READ,
    "see_phone": EventType.SEE_PHONE,
    "upi_qr": EventType.UPI_QR,
    "try_again": EventType.TRY_AGAIN,
    "outcome": EventType.OUTCOME,
    "ready": EventType.READY,
    "settlement": EventType.SETTLEMENT,
}

Event = tuple[int, str, dict[str, object]]  # (sequence number, type, data)


class EventHub:
    """Feedback listener -> every subscriber's queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 view: Callable[[int], dict[str, object]]) -> None:
        self.loop = loop
        self.view = view  # payment id -> its API view
        self.subscribers: set[asyncio.Queue[Event | None]] = set()
        self._seq = itertools.count(1)

    def listener(self, name: str, payment_id: int | None, data: dict[str, object]) -> None:
        """firmware.feedback.Listener: on the service loop's thread."""
        kind = SCREENS.get(name)
        if kind is None:
            return
        body: dict[str, object] = {"type": kind.value, "payment_id": payment_id}
        if kind is EventType.OUTCOME and payment_id is not None:
            body["payment"] = self.view(payment_id)
        body.update({k: v for k, v in data.items() if isinstance(v, str | int | bool)})
        self.loop.call_soon_threadsafe(self._publish, kind.value, body)

    def _publish(self, kind: str, body: dict[str, object]) -> None:
        event = (next(self._seq), kind, body)
        for q in list(self.subscribers):
            if q.full():
                q.get_nowait()
            q.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[Event | None]:
        q: asyncio.Queue[Event | None] = asyncio.Queue(MAX_QUEUED)
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event | None]) -> None:
        self.subscribers.discard(q)

    def close(self) -> None:
        """End every subscriber's stream (on the event loop: the server stops)."""
        for q in list(self.subscribers):
            if q.full():
                q.get_nowait()
            q.put_nowait(None)
