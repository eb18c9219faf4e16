"""The terminal API's requests in the journal: which payment an Idempotency-Key started.

A till that lost the answer to `POST /v1/payments` sends it again with the same key; the key
names the payment the first request started (kept durably in the same journal as the payment,
so a restart of the terminal between the two changes nothing), and the second request gets that
payment back instead of a new charge. `reference` is the till's own name for the sale (the
status query `GET /v1/payments?reference=`); `fingerprint` a hash of the request, so that the
same key with a different request is refused rather than answered with the wrong payment.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.journal.payments import require
from firmware.journal.store import Store, now_iso

__all__ = ["ApiRequest", "ApiRequestStore"]


@dataclass(frozen=True)
class ApiRequest:
    """One till request that started a payment."""

    idempotency_key: str
    payment_id: int
    reference: str
    fingerprint: str
    created_at: str


class ApiRequestStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def remember(self, key: str, payment_id: int, reference: str, fingerprint: str) -> None:
        """Record that the request with Idempotency-Key `key` started `payment_id`."""
        with self._store.write() as c:
            require(c, payment_id)
            c.execute(
                "INSERT INTO api_requests (idempotency_key, payment_id, reference, fingerprint,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (key, payment_id, reference, fingerprint, now_iso()),
            )

    def by_key(self, key: str) -> ApiRequest | None:
        row = self._store.read_one("SELECT * FROM api_requests WHERE idempotency_key = ?", (key,))
        return None if row is None else ApiRequest(**dict(row))

    def by_payment(self, payment_id: int) -> ApiRequest | None:
        row = self._store.read_one("SELECT * FROM api_requests WHERE payment_id = ?",
                                   (payment_id,))
        return None if row is None else ApiRequest(**dict(row))

    def by_reference(self, reference: str) -> list[ApiRequest]:
        rows = self._store.read("SELECT * FROM api_requests WHERE reference = ? "
                                "ORDER BY payment_id", (reference,))
        return [ApiRequest(**dict(r)) for r in rows]
