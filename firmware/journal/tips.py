"""Tip adjustments in the journal: queued in the outbox (kind "tip", with the tip it sets and
the STAN of its own message) and, once the host acknowledged one, the payment's amount and tip
amended in the same transaction. A tip adjustment does not change the payment's state: its
history gets an entry in the state it is in, with the fields that changed. Also the batch's tip
total (the Z-report's tip line). Knows payments only as data: no network here.
"""

from __future__ import annotations

import json
import sqlite3

from firmware.journal.errors import UnknownPayment
from firmware.journal.payments import _CHARGED, require
from firmware.journal.store import Store, now_iso, scrub
from firmware.journal.vault import CardVault
from firmware.money import Currency, Money
from firmware.payment import QueueKind

__all__ = ["TipStore"]


class TipStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def enqueue(self, payment_id: int, tip: int, stan: int) -> int:
        """Queue a tip adjustment of `payment_id` setting its tip to `tip` (minor units), sent
        with STAN `stan`; returns the queue item id. A history entry records it."""
        if tip < 0:
            raise ValueError(f"tip must not be negative, not {tip!r}")
        with self._store.write() as c:
            require(c, payment_id)
            cur = c.execute(
                "INSERT INTO queue (kind, payment_id, created_at, amount, stan)"
                " VALUES (?, ?, ?, ?, ?)",
                (QueueKind.TIP.value, payment_id, now_iso(), tip, stan),
            )
            item = int(cur.lastrowid or 0)
            _history(c, payment_id, {"tip_queued": tip, "tip_stan": stan})
            return item

    def answered(self, item_id: int, accepted: bool, reason: str = "") -> None:
        """The host answered a tip adjustment: accepted, the payment's tip becomes the item's
        and its amount base + tip; refused, nothing changes but the history. Either way the
        item is done (never sent again)."""
        with self._store.write() as c:
            row = c.execute("SELECT * FROM queue WHERE id = ?", (item_id,)).fetchone()
            if row is None or row["kind"] != QueueKind.TIP.value:
                raise UnknownPayment(f"no tip adjustment {item_id} in the queue")
            if row["done_at"] is not None:
                return
            c.execute("UPDATE queue SET done_at = ?, last_error = ? WHERE id = ?",
                      (now_iso(), "" if accepted else scrub(reason)[:500], item_id))
            pid, tip = int(row["payment_id"]), int(row["amount"])
            if accepted:
                c.execute("UPDATE payments SET amount = amount - tip + ?, tip = ?,"
                          " updated_at = ? WHERE id = ?", (tip, tip, now_iso(), pid))
                amount = c.execute("SELECT amount FROM payments WHERE id = ?",
                                   (pid,)).fetchone()[0]
                _history(c, pid, {"tip": tip, "amount": int(amount), "reason": "tip adjusted"})
            else:
                _history(c, pid, {"tip_refused": tip, "reason": scrub(reason)})
            CardVault.forget_if_unneeded(c, pid)  # an offline approval kept it for its advice

    def totals(self, batch: int, currency: Currency) -> tuple[int, Money]:
        """How many of the batch's charged purchases in `currency` carry a tip, and the tips'
        sum (part of the sales total)."""
        row = self._store.read_one(
            "SELECT COUNT(*), COALESCE(SUM(p.tip), 0) FROM payments p WHERE p.batch = ?"
            f" AND p.currency = ? AND p.tip > 0 AND p.txn_type = 'purchase' AND {_CHARGED}",
            (batch, currency.numeric),
        )
        assert row is not None
        return int(row[0]), Money(int(row[1]), currency)


def _history(c: sqlite3.Connection, payment_id: int, fields: dict[str, object]) -> None:
    """A history entry in the payment's current state (a tip changes no state)."""
    state = c.execute("SELECT state FROM payments WHERE id = ?", (payment_id,)).fetchone()[0]
    c.execute("INSERT INTO history (payment_id, at, state, fields) VALUES (?, ?, ?, ?)",
              (payment_id, now_iso(), state, json.dumps(fields, sort_keys=True)))
