"""The host simulator's ledger: a SQLite file of what the "acquirer" booked, per terminal.

Authorizations (approved or not), reversals, advices of offline approvals, refunds,
pre-authorizations (kind `preauth`: a hold; `increment`: raised; a completion is a `sale` naming
its hold in `original_stan`; a reversal of a hold drops its increments too; holds and increments
are in no total and never closed into a batch), seen
cryptograms (hashed, for replay detection) and closed batches. Settlement reconciles a terminal's
totals against the open (unsettled) approved and not reversed rows. No PAN is stored: a masked
one for people, a hash for replays. Thread-safe (one lock, one connection).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS txn (
    id INTEGER PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    stan TEXT NOT NULL,
    mti TEXT NOT NULL,
    kind TEXT NOT NULL,            -- sale | refund
    amount INTEGER NOT NULL,
    currency INTEGER NOT NULL,
    response_code TEXT NOT NULL,
    approved INTEGER NOT NULL,
    answered INTEGER NOT NULL DEFAULT 1,
    auth_code TEXT NOT NULL DEFAULT '',
    rrn TEXT NOT NULL DEFAULT '',
    masked_pan TEXT NOT NULL DEFAULT '',
    offline INTEGER NOT NULL DEFAULT 0,
    reversed INTEGER NOT NULL DEFAULT 0,
    batch INTEGER,                 -- NULL while the batch is open
    reason TEXT NOT NULL DEFAULT '',
    tip INTEGER NOT NULL DEFAULT 0, -- part of amount: the tip (field 54), amended by adjustments
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    original_stan TEXT NOT NULL DEFAULT ''  -- an increment or a completion: its hold's STAN
);
CREATE INDEX IF NOT EXISTS txn_terminal_stan ON txn (terminal_id, stan);
CREATE TABLE IF NOT EXISTS cryptogram (digest TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS upload (
    terminal_id TEXT NOT NULL, batch INTEGER NOT NULL, stan TEXT NOT NULL,
    kind TEXT NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (terminal_id, batch, stan)
);
CREATE TABLE IF NOT EXISTS batch (
    terminal_id TEXT NOT NULL, batch INTEGER NOT NULL,
    sales_count INTEGER, sales_amount INTEGER, refunds_count INTEGER, refunds_amount INTEGER,
    uploaded INTEGER NOT NULL, host_agreed INTEGER NOT NULL,
    closed TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (terminal_id, batch)
);
"""


@dataclass(frozen=True)
class Totals:
    sales_count: int = 0
    sales_amount: int = 0
    refunds_count: int = 0
    refunds_amount: int = 0


class Ledger:
    def __init__(self, path: Path | str = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            # A simulator's ledger: a power cut may lose the last commits, never corrupt it.
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(txn)")}
        if "tip" not in columns:  # a ledger written before tips
            self._db.execute("ALTER TABLE txn ADD COLUMN tip INTEGER NOT NULL DEFAULT 0")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- authorizations -----------------------------------------------------------------
    def book(self, *, terminal_id: str, stan: str, mti: str, kind: str, amount: int,
             currency: int, response_code: str, approved: bool, answered: bool = True,
             auth_code: str = "", rrn: str = "", masked_pan: str = "", offline: bool = False,
             reason: str = "", original_stan: str = "", tip: int = 0) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO txn (terminal_id, stan, mti, kind, amount, currency, response_code,"
                " approved, answered, auth_code, rrn, masked_pan, offline, reason, original_stan,"
                " tip) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (terminal_id, stan, mti, kind, amount, currency, response_code, int(approved),
                 int(answered), auth_code, rrn, masked_pan, int(offline), reason, original_stan,
                 tip),
            )
            return int(cur.lastrowid or 0)

    def answer_of(self, terminal_id: str, stan: str, mti: str,
                  amount: int) -> tuple[str, str, str] | None:
        """(response code, auth code, RRN) of an open booking of this request, if any: a
        deferred authorization sent again gets its first answer and is booked once."""
        with self._lock:
            row = self._db.execute(
                "SELECT response_code, auth_code, rrn FROM txn WHERE terminal_id=? AND stan=?"
                " AND mti=? AND amount=? AND batch IS NULL ORDER BY id DESC LIMIT 1",
                (terminal_id, stan, mti, amount)).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

    def has_advice(self, terminal_id: str, stan: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM txn WHERE terminal_id=? AND stan=? AND offline=1 AND batch IS NULL",
                (terminal_id, stan)).fetchone()
            return row is not None

    def reverse(self, terminal_id: str, stan: str, why: str = "reversal") -> bool:
        """Cancel the open approval (or advice) with this STAN; False when there was none (or
        already). `why` ("reversal", "void") is added to the row's reason."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE txn SET reversed=1, reason = CASE reason WHEN '' THEN ? ELSE"
                " reason || '; ' || ? END WHERE id = (SELECT id FROM txn WHERE terminal_id=?"
                " AND stan=? AND approved=1 AND reversed=0 AND batch IS NULL"
                " ORDER BY id DESC LIMIT 1)",
                (why, why, terminal_id, stan))
            if cur.rowcount and self._db.execute(
                    "SELECT 1 FROM txn WHERE terminal_id=? AND stan=? AND kind='preauth'"
                    " AND reversed=1", (terminal_id, stan)).fetchone():
                self._db.execute(  # a hold released: its increments go with it
                    "UPDATE txn SET reversed=1 WHERE terminal_id=? AND kind='increment'"
                    " AND original_stan=? AND reversed=0", (terminal_id, stan))
            return cur.rowcount > 0

    def settled(self, terminal_id: str, stan: str) -> bool:
        """The latest approval with this STAN is standing in a closed batch: too late to
        reverse it (a void of it is refused)."""
        with self._lock:
            row = self._db.execute(
                "SELECT batch FROM txn WHERE terminal_id=? AND stan=? AND approved=1"
                " AND reversed=0 ORDER BY id DESC LIMIT 1", (terminal_id, stan)).fetchone()
        return row is not None and row[0] is not None

    # ---- pre-authorizations -------------------------------------------------------------
    def hold(self, terminal_id: str, stan: str) -> dict[str, object] | None:
        """The standing hold booked with this STAN (approved, not released, not completed):
        its row with `held` (its amount plus its increments); None when there is none."""
        with self._lock:
            cur = self._db.execute(
                "SELECT * FROM txn WHERE terminal_id=? AND stan=? AND kind='preauth'"
                " AND approved=1 AND reversed=0 ORDER BY id DESC LIMIT 1", (terminal_id, stan))
            row = cur.fetchone()
            if row is None:
                return None
            hold = dict(zip([d[0] for d in cur.description], row, strict=True))
            if self._db.execute(
                    "SELECT 1 FROM txn WHERE terminal_id=? AND kind='sale' AND original_stan=?"
                    " AND approved=1 AND reversed=0", (terminal_id, stan)).fetchone():
                return None  # completed
            more = self._db.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM txn WHERE terminal_id=? AND"
                " kind='increment' AND original_stan=? AND approved=1 AND reversed=0",
                (terminal_id, stan)).fetchone()[0]
        hold["held"] = int(hold["amount"]) + int(more)
        return hold

    def has_completion(self, terminal_id: str, stan: str) -> bool:
        """A completion with this STAN is booked (a repeated 0221 is acknowledged, not
        booked again)."""
        with self._lock:
            return self._db.execute(
                "SELECT 1 FROM txn WHERE terminal_id=? AND stan=? AND kind='sale'"
                " AND original_stan != ''", (terminal_id, stan)).fetchone() is not None
    def adjust_tip(self, terminal_id: str, stan: str, tip: int) -> int | None:
        """A tip adjustment: the open approval with this (original) STAN gets `tip` as its tip
        and base + `tip` as its amount (absolute: a repeat changes nothing more). Its new
        amount; None when there is no such approval (not booked, reversed, settled)."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, amount - tip FROM txn WHERE terminal_id=? AND stan=? AND approved=1"
                " AND reversed=0 AND batch IS NULL AND kind='sale' ORDER BY id DESC LIMIT 1",
                (terminal_id, stan)).fetchone()
            if row is None:
                return None
            amount = int(row[1]) + tip
            self._db.execute(
                "UPDATE txn SET amount=?, tip=?, reason = CASE reason WHEN '' THEN ? ELSE"
                " reason || '; ' || ? END WHERE id=?",
                (amount, tip, f"tip {tip}", f"tip {tip}", int(row[0])))
            return amount

    def tip_total(self, terminal_id: str, currency: int) -> tuple[int, int]:
        """(count, sum) of the tips of the terminal's open approved sales in `currency`."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(tip), 0) FROM txn WHERE terminal_id=? AND"
                " currency=? AND approved=1 AND reversed=0 AND batch IS NULL AND tip > 0",
                (terminal_id, currency)).fetchone()
        return int(row[0]), int(row[1])

    def seen_cryptogram(self, pan: str, atc: bytes, arqc: bytes) -> bool:
        """Record a (card, ATC, cryptogram); True if it was already seen (a replay)."""
        digest = hashlib.sha256(pan.encode() + b"|" + atc + b"|" + arqc).hexdigest()
        with self._lock:
            try:
                self._db.execute("INSERT INTO cryptogram (digest) VALUES (?)", (digest,))
            except sqlite3.IntegrityError:
                return True
            return False

    # ---- settlement ---------------------------------------------------------------------
    def open_totals(self, terminal_id: str, currency: int) -> Totals:
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, COUNT(*), COALESCE(SUM(amount), 0) FROM txn WHERE terminal_id=?"
                " AND currency=? AND approved=1 AND reversed=0 AND batch IS NULL GROUP BY kind",
                (terminal_id, currency)).fetchall()
        by_kind = {kind: (int(n), int(total)) for kind, n, total in rows}
        s = by_kind.get("sale", (0, 0))
        r = by_kind.get("refund", (0, 0))
        return Totals(s[0], s[1], r[0], r[1])

    def add_upload(self, terminal_id: str, batch: int, stan: str, kind: str, amount: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO upload (terminal_id, batch, stan, kind, amount)"
                " VALUES (?,?,?,?,?)", (terminal_id, batch, stan, kind, amount))

    def upload_totals(self, terminal_id: str, batch: int) -> Totals:
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, COUNT(*), COALESCE(SUM(amount), 0) FROM upload WHERE terminal_id=?"
                " AND batch=? GROUP BY kind", (terminal_id, batch)).fetchall()
        by_kind = {kind: (int(n), int(total)) for kind, n, total in rows}
        s = by_kind.get("sale", (0, 0))
        r = by_kind.get("refund", (0, 0))
        return Totals(s[0], s[1], r[0], r[1])

    def close_batch(self, terminal_id: str, batch: int, totals: Totals, uploaded: bool,
                    host_agreed: bool, currency: int) -> None:
        """Close the terminal's open rows in `currency` (other currencies settle on their own)."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE txn SET batch=? WHERE terminal_id=? AND currency=?"
                             " AND batch IS NULL AND kind NOT IN ('preauth', 'increment')",
                             (batch, terminal_id, currency))  # a hold outlives a batch
            self._db.execute(
                "INSERT OR REPLACE INTO batch (terminal_id, batch, sales_count, sales_amount,"
                " refunds_count, refunds_amount, uploaded, host_agreed) VALUES (?,?,?,?,?,?,?,?)",
                (terminal_id, batch, totals.sales_count, totals.sales_amount,
                 totals.refunds_count, totals.refunds_amount, int(uploaded), int(host_agreed)))
            self._db.execute("COMMIT")

    # ---- reading ------------------------------------------------------------------------
    def transactions(self, terminal_id: str | None = None) -> list[dict[str, object]]:
        with self._lock:
            cur = self._db.execute(
                "SELECT * FROM txn" + (" WHERE terminal_id=?" if terminal_id else "")
                + " ORDER BY id", (terminal_id,) if terminal_id else ())
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def batches(self, terminal_id: str | None = None) -> list[dict[str, object]]:
        with self._lock:
            cur = self._db.execute(
                "SELECT * FROM batch" + (" WHERE terminal_id=?" if terminal_id else "")
                + " ORDER BY closed", (terminal_id,) if terminal_id else ())
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
