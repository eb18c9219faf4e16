"""The journal's counters: the STAN (1..999999, wrapping) and the open settlement batch."""

from __future__ import annotations

import sqlite3

from firmware.journal.store import Store

__all__ = ["STAN_MAX", "Counters"]

STAN_MAX = 999_999


class Counters:
    def __init__(self, store: Store) -> None:
        self._store = store

    def next_stan(self) -> int:
        """The next system trace audit number, 1..999999 then 1 again; durable before return.

        The terminal's one source of STANs: authorizations and offline approvals take theirs
        here, and the acquirer is handed this method for the messages it originates."""
        with self._store.write() as c:
            c.execute("UPDATE counters SET value = value % ? + 1 WHERE name = 'stan'", (STAN_MAX,))
            return value(c, "stan")

    @staticmethod
    def batch(c: sqlite3.Connection) -> int:
        """The open batch (new payments join it)."""
        return value(c, "batch")

    @staticmethod
    def close_batch(c: sqlite3.Connection) -> int:
        """Close the open batch inside the caller's transaction; returns the closed one."""
        closed = value(c, "batch")
        c.execute("UPDATE counters SET value = value + 1 WHERE name = 'batch'")
        return closed


def value(c: sqlite3.Connection, name: str) -> int:
    return int(c.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0])
