"""The store-and-forward queue (the outbox): reversals and advices in order, with backoff.

Queuing an item records the payment's "reversal_queued"/"advice_queued" state in the same
transaction; the host's acknowledgement records "reversed"/"advised" and lets the card vault
forget the card data, again in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping

from firmware.journal.errors import JournalError, UnknownPayment
from firmware.journal.payments import PaymentStore, require
from firmware.journal.records import QueueItem
from firmware.journal.store import Store, now_iso, scrub
from firmware.journal.vault import CardVault
from firmware.payment import PaymentState, QueueKind

__all__ = ["BACKOFF_FIRST_S", "BACKOFF_MAX_S", "Outbox", "backoff_seconds"]

BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 300.0


def backoff_seconds(
    attempts: int, first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S
) -> float:
    """Wait after `attempts` failed attempts: 5 s, 10 s, 20 s ... capped at 5 minutes."""
    if attempts <= 0:
        return 0.0
    return float(min(first * 2 ** min(attempts - 1, 62), cap))


def _kind(kind: QueueKind | str) -> QueueKind:
    try:
        return QueueKind(kind)
    except ValueError:
        known = ", ".join(repr(k.value) for k in QueueKind)
        raise ValueError(f"queue kind must be one of {known}, not {kind!r}") from None


def _unrefund(c: sqlite3.Connection, refund_id: int) -> None:
    """A refund voided: the purchase (or completion) it had refunded in full stands again, in
    the caller's transaction; nothing when it was not a refund of one or not in full."""
    row = c.execute("SELECT o.id, o.state, o.offline FROM payments r JOIN payments o"
                    " ON o.id = r.refund_of WHERE r.id = ?", (refund_id,)).fetchone()
    if row is None or PaymentState(row["state"]) is not PaymentState.REFUNDED:
        return
    standing = PaymentState.ADVISED if row["offline"] else PaymentState.APPROVED
    PaymentStore.transition(c, int(row["id"]), standing,
                            {"reason": f"its refund #{refund_id} voided"})


class Outbox:
    def __init__(self, store: Store, clock: Callable[[], float],
                 backoff: tuple[float, float] = (BACKOFF_FIRST_S, BACKOFF_MAX_S)) -> None:
        self._store = store
        self._clock = clock
        self._backoff = backoff

    def enqueue(self, kind: QueueKind | str, payment_id: int) -> int:
        """Queue a reversal, an advice or a deferred authorization for a payment; returns the
        queue item id.

        Queuing the same kind twice for a payment returns the pending item (never two
        reversals). The payment needs its card data kept or at least a STAN recorded: without
        card data, store-and-forward builds the message from the payment (original data
        elements: STAN, amount, terminal, time)."""
        with self._store.write() as c:
            return self.enqueue_in(c, kind, payment_id)

    @staticmethod
    def enqueue_in(c: sqlite3.Connection, kind: QueueKind | str, payment_id: int,
                   fields: Mapping[str, object] | None = None) -> int:
        """`enqueue` inside the caller's transaction; `fields` (clean) go with the state change."""
        kind = _kind(kind)
        if not kind.changes_state:
            raise ValueError(f"a {kind.value} is queued with its amount (Journal.queue_tip)")
        require(c, payment_id)
        row = c.execute(
            "SELECT id FROM queue WHERE kind = ? AND payment_id = ? AND done_at IS NULL",
            (kind.value, payment_id),
        ).fetchone()
        if row is not None:
            return int(row["id"])
        has_stan = c.execute(
            "SELECT 1 FROM payments WHERE id = ? AND stan IS NOT NULL", (payment_id,)
        ).fetchone()
        if not CardVault.kept(c, payment_id) and has_stan is None:
            raise JournalError(
                f"payment {payment_id}: neither card data nor a STAN, cannot queue a "
                f"{kind.value}"
            )
        cur = c.execute(
            "INSERT INTO queue (kind, payment_id, created_at) VALUES (?, ?, ?)",
            (kind.value, payment_id, now_iso()),
        )
        PaymentStore.transition(c, payment_id, kind.queued_state, fields or {})
        return int(cur.lastrowid or 0)

    def pending(self, kind: QueueKind | str | None = None) -> list[QueueItem]:
        """Pending reversals/advices in queue order (oldest first), due or not."""
        sql = "SELECT * FROM queue WHERE done_at IS NULL"
        params: tuple[object, ...] = ()
        if kind is not None:
            sql += " AND kind = ?"
            params = (_kind(kind).value,)
        return [QueueItem.from_row(r) for r in self._store.read(sql + " ORDER BY id", params)]

    def done(self, item_id: int, state: PaymentState | None = None,
             fields: Mapping[str, object] | None = None) -> None:
        """The host acknowledged the item: mark it done, record "reversed"/"advised"/"forwarded"
        (or `state`: a deferred authorization declined) with `fields` (clean) on its payment,
        and forget the card data when nothing else is queued for it."""
        with self._store.write() as c:
            row = c.execute("SELECT * FROM queue WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                raise UnknownPayment(f"no queue item {item_id}")
            if row["done_at"] is not None:
                return
            if not QueueKind(row["kind"]).changes_state:
                raise ValueError(f"queue item {item_id} is a {row['kind']}: its answer is "
                                 "recorded with its amount (Journal.tip_answered)")
            c.execute("UPDATE queue SET done_at = ? WHERE id = ?", (now_iso(), item_id))
            pid = int(row["payment_id"])
            new = state or QueueKind(row["kind"]).done_state
            PaymentStore.transition(c, pid, new, fields or {})
            if new is PaymentState.VOIDED:
                _unrefund(c, pid)
            CardVault.forget_if_unneeded(c, pid)

    def void_refused(self, item_id: int, reason: str) -> None:
        """A void the host refused: done, its payment back to the approval it voided."""
        with self._store.write() as c:
            row = c.execute("SELECT q.kind, q.done_at, p.offline FROM queue q JOIN payments p"
                            " ON p.id = q.payment_id WHERE q.id = ?", (item_id,)).fetchone()
            if row is None:
                raise UnknownPayment(f"no queue item {item_id}")
            if QueueKind(row["kind"]) is not QueueKind.VOID:
                raise ValueError(f"queue item {item_id} is a {row['kind']}, not a void")
        standing = PaymentState.ADVISED if row["offline"] else PaymentState.APPROVED
        self.done(item_id, standing, {"reason": scrub(reason)})

    def drop_advice(self, payment_id: int, reason: str) -> bool:
        """Void an offline approval whose advice has not gone yet: in one transaction the
        pending advice is dropped (done, never sent), the payment recorded "voided" and its card
        data forgotten. False (nothing written) when no advice of it is pending."""
        with self._store.write() as c:
            row = c.execute(
                "SELECT id FROM queue WHERE kind = ? AND payment_id = ? AND done_at IS NULL",
                (QueueKind.ADVICE.value, payment_id),
            ).fetchone()
            if row is None:
                return False
            c.execute("UPDATE queue SET done_at = ?, last_error = ? WHERE id = ?",
                      (now_iso(), "dropped: voided before it was sent", int(row["id"])))
            PaymentStore.transition(c, payment_id, PaymentState.VOIDED, {"reason": scrub(reason)})
            CardVault.forget_if_unneeded(c, payment_id)
            return True

    def retry_later(self, item_id: int, error: str) -> None:
        """A send failed: count the attempt, keep the error, back off (5 s doubling to 5 min)."""
        with self._store.write() as c:
            row = c.execute(
                "SELECT attempts, done_at FROM queue WHERE id = ?", (item_id,)
            ).fetchone()
            if row is None:
                raise UnknownPayment(f"no queue item {item_id}")
            if row["done_at"] is not None:
                return
            attempts = int(row["attempts"]) + 1
            c.execute(
                "UPDATE queue SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
                (
                    attempts,
                    self._clock() + backoff_seconds(attempts, *self._backoff),
                    scrub(error)[:500],
                    item_id,
                ),
            )
