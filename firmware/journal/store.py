"""The journal's SQLite file: opening (integrity check, migrations), one writer, durable writes.

SQLite runs in WAL mode with synchronous=FULL: when a write returns, its change survives a power
cut. The schema is versioned (PRAGMA user_version) and migrated forward at open. Every store of
the journal (payments, counters, card vault, outbox, settlements) works on the one `Store`
connection, so that one transaction can span them (a state change and its queue item).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from firmware.emv.outcome import mask_pan
from firmware.journal.errors import JournalBusy, JournalCorrupt, JournalError
from firmware.journal.keys import fsync_dir
from firmware.private_files import make_private_dir

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Store", "now_iso", "scrub"]

log = logging.getLogger(__name__)

# A run of 13 or more digits (optionally split by single spaces/dashes) is taken for a card
# number (PANs and tokens are 13..19 digits; a 12-digit RRN is not one).
_CARD_NUMBER = re.compile(r"(?<!\d)(?:\d[ -]?){12,}\d(?!\d)")


def scrub(text: str) -> str:
    """Mask anything in `text` that looks like a card number to first 6 / last 4."""
    return _CARD_NUMBER.sub(lambda m: mask_pan(m.group(0)), text)


def now_iso() -> str:
    return iso(dt.datetime.now(dt.UTC))


def iso(when: dt.datetime) -> str:
    """A moment as the journal keeps it: UTC, ISO 8601 to the millisecond (naive: local)."""
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds")


# ---- schema and migrations ------------------------------------------------------------------

_SCHEMA_V1 = """
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('stan', 0), ('batch', 1);
CREATE TABLE payments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    txn_type         TEXT NOT NULL,
    amount           INTEGER NOT NULL,
    currency         INTEGER NOT NULL,
    terminal_id      TEXT NOT NULL,
    batch            INTEGER NOT NULL,
    state            TEXT NOT NULL,
    outcome          TEXT NOT NULL DEFAULT '',
    scheme           TEXT NOT NULL DEFAULT '',
    masked_pan       TEXT NOT NULL DEFAULT '',
    stan             INTEGER,
    rrn              TEXT NOT NULL DEFAULT '',
    auth_code        TEXT NOT NULL DEFAULT '',
    response_code    TEXT NOT NULL DEFAULT '',
    reason           TEXT NOT NULL DEFAULT '',
    card_in_field_ms REAL,
    offline          INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id INTEGER NOT NULL REFERENCES payments(id),
    at         TEXT NOT NULL,
    state      TEXT NOT NULL,
    fields     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX history_payment ON history(payment_id, id);
CREATE TABLE card_data (
    payment_id INTEGER PRIMARY KEY REFERENCES payments(id),
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE queue (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL CHECK (kind IN ('reversal', 'advice')),
    payment_id      INTEGER NOT NULL REFERENCES payments(id),
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    done_at         TEXT
);
CREATE INDEX queue_pending ON queue(done_at, id);
CREATE TABLE settlements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    batch       INTEGER NOT NULL,
    state       TEXT NOT NULL,   -- started | sent | done | failed
    totals      TEXT NOT NULL,   -- JSON of SettlementTotals' fields
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    response_code TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL DEFAULT ''
);
"""

# v2: a refund names the payment it refunds.
_SCHEMA_V2 = """
ALTER TABLE payments ADD COLUMN refund_of INTEGER REFERENCES payments(id);
"""

# v3: the card's application label and AID (the receipt prints the label, not the scheme).
_SCHEMA_V3 = """
ALTER TABLE payments ADD COLUMN application_label TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN aid TEXT NOT NULL DEFAULT '';
"""

# v4 ([offline]): the queue also holds deferred authorizations (a payment stored while the
# acquirer was unreachable), so its kind CHECK is widened (SQLite rebuilds the table for that);
# and a counter of consecutive stored payments that survives restarts.
_SCHEMA_V4 = """
CREATE TABLE queue_v4 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL CHECK (kind IN ('reversal', 'advice', 'deferred')),
    payment_id      INTEGER NOT NULL REFERENCES payments(id),
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    done_at         TEXT
);
INSERT INTO queue_v4 SELECT id, kind, payment_id, created_at, attempts, next_attempt_at,
    last_error, done_at FROM queue;
DROP TABLE queue;
ALTER TABLE queue_v4 RENAME TO queue;
CREATE INDEX queue_pending ON queue(done_at, id);
INSERT OR IGNORE INTO counters (name, value) VALUES ('offline_run', 0);
"""

# v5: the queue holds voids too (a reversal the shopkeeper asked for). SQLite cannot change a
# CHECK constraint in place: the table is rebuilt with its rows, ids and index. And the
# cardholder verification the card reported (a CvmMethod value), which the receipt states; and
# the rest of a partially approved purchase names its first part (`part_of`).
_SCHEMA_V5 = """
ALTER TABLE payments ADD COLUMN cvm TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN part_of INTEGER REFERENCES payments(id);
CREATE TABLE queue_v5 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL CHECK (kind IN ('reversal', 'advice', 'deferred', 'void')),
    payment_id      INTEGER NOT NULL REFERENCES payments(id),
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    done_at         TEXT
);
INSERT INTO queue_v5 (id, kind, payment_id, created_at, attempts, next_attempt_at, last_error,
                      done_at)
    SELECT id, kind, payment_id, created_at, attempts, next_attempt_at, last_error, done_at
    FROM queue;
DROP TABLE queue;
ALTER TABLE queue_v5 RENAME TO queue;
CREATE INDEX queue_pending ON queue(done_at, id);
"""

# v6: pre-authorization (firmware.preauth): an increment or a completion names its hold
# (`hold_of`); a hold keeps when it expires (`expires_at`, ISO 8601 UTC; "" for anything else).
_SCHEMA_V6 = """
ALTER TABLE payments ADD COLUMN hold_of INTEGER REFERENCES payments(id);
ALTER TABLE payments ADD COLUMN expires_at TEXT NOT NULL DEFAULT '';
"""

# v7 (tips): the part of a payment's amount that is a tip (`amount` stays the total charged:
# base = amount - tip); and the queue holds tip adjustments (`pitap tip`), each with the tip it
# sets (`amount`) and the STAN of its own 0220 (`stan`); the CHECK is widened by a rebuild.
_SCHEMA_V7 = """
ALTER TABLE payments ADD COLUMN tip INTEGER NOT NULL DEFAULT 0;
CREATE TABLE queue_v7 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL CHECK (kind IN ('reversal', 'advice', 'deferred', 'void',
                                                  'tip')),
    payment_id      INTEGER NOT NULL REFERENCES payments(id),
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    done_at         TEXT,
    amount          INTEGER,
    stan            INTEGER
);
INSERT INTO queue_v7 (id, kind, payment_id, created_at, attempts, next_attempt_at, last_error,
                      done_at)
    SELECT id, kind, payment_id, created_at, attempts, next_attempt_at, last_error, done_at
    FROM queue;
DROP TABLE queue;
ALTER TABLE queue_v7 RENAME TO queue;
CREATE INDEX queue_pending ON queue(done_at, id);
"""

# v8 (UPI): a payment's tender ('card' or 'upi'); a UPI payment's own reference (`tr`, unique),
# the payer's VPA as the PSP reported it, masked, and the PSP's reference of the payment.
_SCHEMA_V8 = """
ALTER TABLE payments ADD COLUMN tender TEXT NOT NULL DEFAULT 'card';
ALTER TABLE payments ADD COLUMN upi_reference TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN payer_vpa TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN psp_reference TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX payments_upi_reference ON payments(upi_reference) WHERE upi_reference != '';
"""

# v9 (the terminal API, firmware.api): a till's payment, by the Idempotency-Key it came with,
# so that a retried POST (also after a restart) answers with the same payment, never a second
# charge; `reference` is the till's own, `fingerprint` a hash of the request it made.
_SCHEMA_V9 = """
CREATE TABLE api_requests (
    idempotency_key TEXT PRIMARY KEY,
    payment_id      INTEGER NOT NULL UNIQUE REFERENCES payments(id),
    reference       TEXT NOT NULL DEFAULT '',
    fingerprint     TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX api_requests_reference ON api_requests(reference);
"""

# MIGRATIONS[n] takes a journal from user_version n to n + 1. Append, never edit.
MIGRATIONS: list[str] = [_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4, _SCHEMA_V5,
                       _SCHEMA_V6, _SCHEMA_V7, _SCHEMA_V8, _SCHEMA_V9]
SCHEMA_VERSION = len(MIGRATIONS)


class Store:
    """The one connection of a journal, its lock, and durable write transactions."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.lock = threading.RLock()
        self._claim: int | None = None  # the lock file's descriptor while claimed

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating when missing) the SQLite file; integrity check and migrations.

        JournalCorrupt for a damaged or foreign file, JournalError when it cannot be opened."""
        path = Path(path)
        make_private_dir(path.parent)
        new_file = not path.exists()
        if new_file:
            # Create the file 0600 ourselves so that SQLite never makes it world-readable.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        try:
            conn = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot open journal: {exc}") from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 10000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"{path}: SQLite refused WAL mode ({mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")  # freed pages (forgotten card data) zeroed
            check = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if check != ["ok"]:
                raise JournalCorrupt(
                    f"{path}: journal failed its integrity check ({'; '.join(check[:3])}); "
                    "keep the file for recovery and start with a new one"
                )
            _migrate(conn, path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalCorrupt(f"{path}: not a usable journal: {exc}") from None
        except JournalError:
            conn.close()
            raise
        if new_file:
            fsync_dir(path.parent)
        return cls(conn, path)

    def claim(self) -> None:
        """Make this process the journal's one writer until `close()` (see Journal.claim)."""
        if self._claim is not None:
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise JournalError(f"{lock_path}: cannot open: {exc.strerror or exc}") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 16, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise JournalBusy(
                f"{self.path}: in use by another pitap process (pid {holder}); let it finish, "
                "or stop it first (the service: sudo systemctl stop pitap)"
            ) from None
        with suppress(OSError):  # the pid is for the message above, nothing depends on it
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._claim = fd

    def close(self) -> None:
        with self.lock:
            with suppress(sqlite3.Error):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.close()
            if self._claim is not None:
                os.close(self._claim)  # releases the lock
                self._claim = None

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One durable write transaction (BEGIN IMMEDIATE ... COMMIT).

        A storage failure (disk full, I/O error, locked too long) becomes a JournalError that
        says so in one line; nothing of the transaction is kept."""
        with self.lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise JournalError(f"{self.path}: cannot write the journal: {exc}") from None
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException as exc:
                if self.conn.in_transaction:
                    with suppress(sqlite3.Error):
                        self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise JournalError(f"{self.path}: cannot write the journal: {exc}") from None
                raise

    def read(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def read_one(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Row | None:
        with self.lock:
            row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
            return row

    def schema_version(self) -> int:
        with self.lock:
            return int(self.conn.execute("PRAGMA user_version").fetchone()[0])


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"{path}: journal schema version {version} is newer than this pitap "
            f"({SCHEMA_VERSION}); update pitap"
        )
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version < SCHEMA_VERSION:
                for statement in _statements(MIGRATIONS[version]):
                    conn.execute(statement)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
                log.info("journal %s migrated to schema version %d", path, version)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return [s for s in out if s]
