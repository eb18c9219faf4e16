"""The journal's counters: the STAN (1..999999, wrapping), the open settlement batch, and the
run of consecutive payments stored while the acquirer was unreachable ([offline]), and the
kernel's consecutive offline approvals per AID (`OfflineApprovals`), so that a restart resets
neither."""

from __future__ import annotations

import sqlite3

from firmware.journal.store import Store

__all__ = ["STAN_MAX", "Counters", "OfflineApprovals"]

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

    def offline_run(self) -> int:
        """Payments stored offline since the host last answered an authorization."""
        with self._store.lock:
            return value(self._store.conn, "offline_run")

    def reset_offline_run(self) -> None:
        """The host answered an authorization: the run of stored payments ends."""
        with self._store.write() as c:
            c.execute("UPDATE counters SET value = 0 WHERE name = 'offline_run'")

    @staticmethod
    def bump_offline_run(c: sqlite3.Connection) -> int:
        """One more stored payment, inside the caller's transaction; returns the run's length."""
        c.execute("UPDATE counters SET value = value + 1 WHERE name = 'offline_run'")
        return value(c, "offline_run")

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


class OfflineApprovals:
    """The kernel's consecutive offline approvals per AID (firmware.emv.kernel.OfflineCounts),
    one counters row per AID ("offline_approvals:<AID hex>"), durable when set."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @staticmethod
    def _name(aid: bytes) -> str:
        return f"offline_approvals:{aid.hex().upper()}"

    def get(self, aid: bytes, default: int = 0) -> int:
        row = self._store.read_one("SELECT value FROM counters WHERE name = ?", (self._name(aid),))
        return default if row is None else int(row[0])

    def __setitem__(self, aid: bytes, count: int) -> None:
        with self._store.write() as c:
            c.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)",
                      (self._name(aid), int(count)))
