"""Settlement runs: closing a batch here, then with the host; resumable after a power cut."""

from __future__ import annotations

import json

from firmware.journal.counters import Counters
from firmware.journal.errors import UnknownPayment
from firmware.journal.payments import batch_totals
from firmware.journal.records import Settlement, totals_as_dict
from firmware.journal.store import Store, now_iso, scrub
from firmware.money import Currency
from firmware.payment import SettlementState

__all__ = ["Settlements"]


class Settlements:
    def __init__(self, store: Store) -> None:
        self._store = store

    def begin(self, currency: Currency) -> Settlement:
        """Close the open batch (new payments go to the next one) and record a settlement run
        in state "started", with the batch's totals: its charged payments in `currency` (the
        terminal's; a batch settles one currency, the others are listed, not sent)."""
        with self._store.write() as c:
            batch = Counters.close_batch(c)
            totals = batch_totals(c, batch, currency)
            cur = c.execute(
                "INSERT INTO settlements (batch, state, totals, started_at) VALUES (?, ?, ?, ?)",
                (batch, SettlementState.STARTED.value,
                 json.dumps(totals_as_dict(totals), sort_keys=True), now_iso()),
            )
            sid = int(cur.lastrowid or 0)
        return self.get(sid)

    def record(self, settlement_id: int, state: SettlementState | str, response_code: str = "",
               message: str = "") -> None:
        """Move a settlement run to "sent", "done" or "failed" (or back to "started")."""
        try:
            new = SettlementState(state)
        except ValueError:
            raise ValueError(
                "settlement state must be 'started', 'sent', 'done' or 'failed'"
            ) from None
        finished = now_iso() if new.finished else None
        with self._store.write() as c:
            c.execute(
                "UPDATE settlements SET state = ?, finished_at = ?, response_code = ?,"
                " message = ? WHERE id = ?",
                (new.value, finished, response_code, scrub(message), settlement_id),
            )

    def get(self, settlement_id: int) -> Settlement:
        row = self._store.read_one("SELECT * FROM settlements WHERE id = ?", (settlement_id,))
        if row is None:
            raise UnknownPayment(f"no settlement {settlement_id}")
        return Settlement.from_row(row)

    def all(self) -> list[Settlement]:
        """Every settlement run, oldest first."""
        return [Settlement.from_row(r)
                for r in self._store.read("SELECT * FROM settlements ORDER BY id")]

    def unfinished(self) -> list[Settlement]:
        """Settlement runs left "started" or "sent" (a power cut mid-settlement)."""
        rows = self._store.read(
            "SELECT * FROM settlements WHERE state IN ('started', 'sent') ORDER BY id"
        )
        return [Settlement.from_row(r) for r in rows]
