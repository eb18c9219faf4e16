"""The payment journal: one SQLite file that remembers every payment, crash-safe and encrypted.

What it holds:
- each payment (amount, currency, type, masked PAN, scheme, STAN, RRN, auth code, outcome) and
  every state change of it, in order (`history`), written before the effect it announces;
- the persistent STAN counter (1..999999, wrapping) and the settlement batch counter;
- the card data a reversal, an advice or a refund needs (the whole `AuthRequest`), encrypted with
  AES-GCM under a terminal key kept in a separate 0600 file, bound to its payment id as associated
  data, and deleted as soon as nothing queued needs it any more;
- the ordered store-and-forward queue of reversals and advices, with retry/backoff bookkeeping;
- settlement runs, so that one interrupted by a power cut can be resumed.

SQLite runs in WAL mode with synchronous=FULL: when a method returns, its change survives a power
cut. The schema is versioned (PRAGMA user_version) and migrated forward at open; an integrity
check runs at open. Clear card data never reaches a column, the history, or a log line: string
fields are scrubbed of anything that looks like a card number (first 6 / last 4 only).

This module must not touch the network or hardware; it knows payments only as data.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import fcntl
import json
import logging
import os
import re
import secrets
import sqlite3
import stat
import threading
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from firmware.config import ConfigError, read_data_file
from firmware.emv.outcome import mask_pan
from firmware.host.acquirer import AuthRequest
from firmware.private_files import make_private_dir

log = logging.getLogger(__name__)

STATES = (
    "started",
    "card_read",
    "awaiting_reply",
    "approved",
    "declined",
    "no_card",
    "try_again",
    "cancelled",
    "error",
    "reversal_queued",
    "reversed",
    "advice_queued",
    "advised",
    "refunded",
)
# States that tell the customer something: they also set the payment's `outcome`.
OUTCOME_STATES = ("approved", "declined", "no_card", "try_again", "cancelled", "error")
# After these, card data is no longer needed unless a queued reversal/advice still waits for it.
_DONE_STATES = ("declined", "no_card", "try_again", "cancelled", "error", "reversed", "advised",
                "refunded")

FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "scheme": (str,),
    "masked_pan": (str,),
    "stan": (int,),
    "rrn": (str,),
    "auth_code": (str,),
    "response_code": (str,),
    "reason": (str,),
    "outcome": (str,),
    "card_in_field_ms": (int, float),
    "offline": (bool,),
    "refund_of": (int,),  # a refund: the id of the payment it refunds
}
QUEUE_KINDS = ("reversal", "advice")
STAN_MAX = 999_999
KEY_BYTES = 32  # AES-256-GCM
NONCE_BYTES = 12
BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 300.0

# A run of 13 or more digits (optionally split by single spaces/dashes) is taken for a card
# number (PANs and tokens are 13..19 digits; a 12-digit RRN is not one).
_CARD_NUMBER = re.compile(r"(?<!\d)(?:\d[ -]?){12,}\d(?!\d)")


class JournalError(ConfigError):
    """The journal cannot be used as asked; the message says why in one line.

    A ConfigError, so that a command that cannot open its journal (damaged, key missing or
    readable by others) ends like any setup problem: one line, exit code 2."""


class UnknownPayment(JournalError, ValueError):
    """No payment (or queue item, settlement) with that id."""


class JournalCorrupt(JournalError):
    """The journal file failed its integrity check or is not a journal: refuse to run on it."""


class JournalBusy(JournalError):
    """Another process has claimed the journal (`Journal.claim`): one writer at a time."""


@dataclass(frozen=True)
class QueueItem:
    """One reversal or advice waiting to be sent (store-and-forward), in queue order."""

    id: int
    kind: str  # "reversal" | "advice"
    payment_id: int
    created_at: str
    attempts: int  # failed attempts so far
    next_attempt_at: float  # unix time; 0 = now
    last_error: str

    def due(self, now: float | None = None) -> bool:
        return self.next_attempt_at <= (time.time() if now is None else now)


def backoff_seconds(
    attempts: int, first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S
) -> float:
    """Wait after `attempts` failed attempts: 5 s, 10 s, 20 s ... capped at 5 minutes."""
    if attempts <= 0:
        return 0.0
    return min(first * 2 ** min(attempts - 1, 62), cap)


def scrub(text: str) -> str:
    """Mask anything in `text` that looks like a card number to first 6 / last 4."""
    return _CARD_NUMBER.sub(lambda m: mask_pan(m.group(0)), text)


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

# MIGRATIONS[n] takes a journal from user_version n to n + 1. Append, never edit.
MIGRATIONS: list[str] = [_SCHEMA_V1, _SCHEMA_V2]
SCHEMA_VERSION = len(MIGRATIONS)


def _now_iso() -> str:
    return _iso(dt.datetime.now(dt.UTC))


def _iso(when: dt.datetime) -> str:
    """A moment as the journal keeps it: UTC, ISO 8601 to the millisecond (naive: local)."""
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds")


# ---- card data serialization ----------------------------------------------------------------


def auth_request_to_json(request: AuthRequest) -> bytes:
    """AuthRequest -> JSON bytes: bytes as hex, datetimes as ISO 8601."""
    out: dict[str, object] = {}
    for f in dataclasses.fields(request):
        value = getattr(request, f.name)
        if isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, dt.datetime):
            value = value.isoformat()
        out[f.name] = value
    return json.dumps(out, sort_keys=True).encode()


def auth_request_from_json(data: bytes) -> AuthRequest:
    """The inverse of auth_request_to_json; fields unknown to this version are ignored."""
    raw = json.loads(data)
    hints = typing.get_type_hints(AuthRequest)
    kwargs: dict[str, object] = {}
    for f in dataclasses.fields(AuthRequest):
        if f.name not in raw:
            continue
        value = raw[f.name]
        hint = hints[f.name]
        if hint is bytes:
            value = bytes.fromhex(value)
        elif hint is dt.datetime:
            value = dt.datetime.fromisoformat(value)
        kwargs[f.name] = value
    return AuthRequest(**kwargs)  # type: ignore[arg-type]


def _associated_data(payment_id: int) -> bytes:
    return f"pitap-journal card_data v1 payment {payment_id}".encode()


# ---- the terminal key -----------------------------------------------------------------------


def load_or_create_key(key_file: Path, create: bool = True) -> bytes:
    """Read the 32-byte terminal key; create it (0600, atomically) when missing and allowed.

    Refuses a key file that group or others can read or write, or that has the wrong size."""
    key_file = Path(key_file)
    if not key_file.exists():
        if not create:
            raise JournalError(
                f"{key_file}: journal key missing; provision the terminal key (0600) first"
            )
        make_private_dir(key_file.parent)
        key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        encoded = base64.b64encode(key) + b"\n"
        tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, encoded)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, key_file)  # fails if another process created it meanwhile
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        _fsync_dir(key_file.parent)
        log.info("created a new journal key in %s", key_file)
    mode = key_file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise JournalError(
            f"{key_file}: journal key is accessible by group/others "
            f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {key_file}"
        )
    try:
        key = base64.b64decode(read_data_file(key_file, "journal key", 1024).strip(),
                               validate=True)
    except ConfigError as exc:
        raise JournalError(str(exc)) from None
    except ValueError as exc:
        raise JournalError(f"{key_file}: unreadable journal key: {exc}") from None
    if len(key) != KEY_BYTES:
        raise JournalError(f"{key_file}: journal key must be {KEY_BYTES} bytes (base64)")
    return key


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- the journal ----------------------------------------------------------------------------


class Journal:
    """The payment journal. Thread-safe; every write is committed (durably) before returning."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        key: bytes,
        path: Path,
        clock: Callable[[], float] = time.time,
        backoff: tuple[float, float] = (BACKOFF_FIRST_S, BACKOFF_MAX_S),
    ) -> None:
        self._backoff = backoff
        self._conn = conn
        self._aead = AESGCM(key)
        self._lock = threading.RLock()
        self.path = path
        self._clock = clock
        self._claim: int | None = None  # the lock file's descriptor while claimed

    # ---- opening --------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: Path,
        key_file: Path,
        *,
        create_key: bool = True,
        clock: Callable[[], float] = time.time,
        backoff: tuple[float, float] = (BACKOFF_FIRST_S, BACKOFF_MAX_S),
    ) -> Journal:
        """Open (creating when missing) the journal at `path` with the key in `key_file`.

        Runs the integrity check and the schema migrations. Raises JournalCorrupt for a damaged
        or foreign file, JournalError for a key problem (missing with create_key=False, readable
        by others, wrong size)."""
        path = Path(path)
        key = load_or_create_key(Path(key_file), create=create_key)
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
            _fsync_dir(path.parent)
        return cls(conn, key, path, clock, backoff)

    @classmethod
    def from_config(cls, cfg: object) -> Journal:
        """Open the journal the configuration names; the key is created only in test mode."""
        from firmware.config import Config

        assert isinstance(cfg, Config)
        return cls.open(
            cfg.state_path(cfg.journal.file),
            cfg.state_path(cfg.journal.key_file),
            create_key=cfg.mode != "production",
            backoff=(cfg.journal.retry_first_s, cfg.journal.retry_max_s),
        )

    def claim(self) -> None:
        """Make this process the journal's one writer until `close()`: an exclusive lock on
        `<journal>.lock`, which the kernel drops when the process ends (kill -9 included).

        Recovery needs it: a payment left "awaiting_reply" was interrupted only if no other
        process is still waiting for its reply. JournalBusy (one line, with the holder's pid)
        while another process holds the claim. The lock is a POSIX record lock, so it is the
        process's: a second Journal on the same file in the same process does not conflict."""
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
        with self._lock:
            with suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            if self._claim is not None:
                os.close(self._claim)  # releases the lock
                self._claim = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One durable write transaction (BEGIN IMMEDIATE ... COMMIT).

        A storage failure (disk full, I/O error, locked too long) becomes a JournalError that
        says so in one line; nothing of the transaction is kept."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise JournalError(f"{self.path}: cannot write the journal: {exc}") from None
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    with suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise JournalError(f"{self.path}: cannot write the journal: {exc}") from None
                raise

    # ---- payments and their history -------------------------------------------------------
    def new_payment(
        self,
        txn_type: str,
        amount: int,
        currency: int,
        terminal_id: str,
        refund_of: int | None = None,
        created_at: dt.datetime | None = None,
    ) -> int:
        """Start a payment (state "started"); returns its id. A refund may name the payment
        it refunds (`refund_of`). `created_at`: the payment's moment (default now)."""
        if txn_type not in ("purchase", "refund"):
            raise ValueError(f"txn_type must be 'purchase' or 'refund', not {txn_type!r}")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            raise ValueError(f"amount must be a non-negative int in minor units, not {amount!r}")
        now = _now_iso()
        created = now if created_at is None else _iso(created_at)
        with self._write() as c:
            if refund_of is not None:
                _require_payment(c, refund_of)
            batch = _counter(c, "batch")
            cur = c.execute(
                "INSERT INTO payments (created_at, updated_at, txn_type, amount, currency,"
                " terminal_id, batch, state, refund_of)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'started', ?)",
                (created, now, txn_type, amount, int(currency), scrub(terminal_id), batch,
                 refund_of),
            )
            pid = int(cur.lastrowid or 0)
            started: dict[str, object] = {"amount": amount, "currency": int(currency)}
            if refund_of is not None:
                started["refund_of"] = refund_of
            c.execute(
                "INSERT INTO history (payment_id, at, state, fields) VALUES (?, ?, 'started', ?)",
                (pid, now, json.dumps(started)),
            )
        return pid

    def record(self, payment_id: int, state: str, **fields: object) -> None:
        """Record a state change (and its fields) durably, before the effect it announces.

        An outcome state (approved, declined, no_card, try_again, cancelled, error) also sets
        `outcome`. Card data is deleted once the payment is done and nothing queued needs it."""
        if state not in STATES:
            raise ValueError(f"unknown payment state {state!r} (known: {', '.join(STATES)})")
        clean = _clean_fields(fields)
        if state in OUTCOME_STATES and "outcome" not in clean:
            clean["outcome"] = state
        now = _now_iso()
        with self._write() as c:
            row = c.execute(
                "SELECT state, offline FROM payments WHERE id = ?", (payment_id,)
            ).fetchone()
            if row is None:
                raise UnknownPayment(f"no payment {payment_id}")
            if row["state"] == state and not fields:
                return  # an exact repeat (e.g. enqueue already recorded it)
            if "refund_of" in clean:
                _require_payment(c, int(clean["refund_of"]))  # type: ignore[call-overload]
            self._record_locked(c, payment_id, state, clean, now)
            offline = bool(clean.get("offline", row["offline"]))
            if state in _DONE_STATES or (state == "approved" and not offline):
                self._forget_if_unneeded(c, payment_id)

    @staticmethod
    def _record_locked(
        c: sqlite3.Connection, payment_id: int, state: str, clean: dict[str, object], now: str
    ) -> None:
        sets = ["state = ?", "updated_at = ?"]
        values: list[object] = [state, now]
        for name, value in clean.items():
            sets.append(f"{name} = ?")
            values.append(int(value) if isinstance(value, bool) else value)
        c.execute(f"UPDATE payments SET {', '.join(sets)} WHERE id = ?", (*values, payment_id))
        c.execute(
            "INSERT INTO history (payment_id, at, state, fields) VALUES (?, ?, ?, ?)",
            (payment_id, now, state, json.dumps(clean, sort_keys=True)),
        )

    def payments(self, last: int | None = None) -> list[dict]:
        """Every payment (or the `last` n), oldest first, as plain dicts (no clear card data)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM (SELECT p.*, EXISTS (SELECT 1 FROM card_data d"
                " WHERE d.payment_id = p.id) AS card_data_kept FROM payments p"
                " ORDER BY p.id DESC LIMIT ?) ORDER BY id",
                (-1 if last is None else max(0, last),),
            ).fetchall()
        return [_payment_dict(r) for r in rows]

    def payment(self, payment_id: int) -> dict:
        """One payment as a dict; JournalError when there is none."""
        with self._lock:
            row = self._conn.execute(
                "SELECT p.*, EXISTS (SELECT 1 FROM card_data d WHERE d.payment_id = p.id)"
                " AS card_data_kept FROM payments p WHERE p.id = ?",
                (payment_id,),
            ).fetchone()
        if row is None:
            raise UnknownPayment(f"no payment {payment_id}")
        return _payment_dict(row)

    def history(self, payment_id: int) -> list[dict]:
        """A payment's state changes, oldest first: {"at", "state", **fields}."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT at, state, fields FROM history WHERE payment_id = ? ORDER BY id",
                (payment_id,),
            ).fetchall()
        return [{"at": r["at"], "state": r["state"], **json.loads(r["fields"])} for r in rows]

    def payments_in_state(self, *states: str) -> list[dict]:
        """Payments whose current state is one of `states`, oldest first."""
        marks = ", ".join("?" for _ in states)
        with self._lock:
            rows = self._conn.execute(
                "SELECT p.*, EXISTS (SELECT 1 FROM card_data d WHERE d.payment_id = p.id)"
                f" AS card_data_kept FROM payments p WHERE p.state IN ({marks}) ORDER BY p.id",
                states,
            ).fetchall()
        return [_payment_dict(r) for r in rows]

    def charged_payments(self, batch: int | None = None) -> list[dict]:
        """Payments that stand as charged: outcome approved and never reversed."""
        where = (
            "p.outcome = 'approved' AND NOT EXISTS (SELECT 1 FROM history h"
            " WHERE h.payment_id = p.id AND h.state = 'reversed')"
        )
        params: tuple[object, ...] = ()
        if batch is not None:
            where += " AND p.batch = ?"
            params = (batch,)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT p.*, 0 AS card_data_kept FROM payments p WHERE {where} ORDER BY p.id",
                params,
            ).fetchall()
        return [_payment_dict(r) for r in rows]

    # ---- STAN -------------------------------------------------------------------------------
    def next_stan(self) -> int:
        """The next system trace audit number, 1..999999 then 1 again; durable before return."""
        with self._write() as c:
            c.execute("UPDATE counters SET value = value % ? + 1 WHERE name = 'stan'", (STAN_MAX,))
            return _counter(c, "stan")

    # ---- encrypted card data ----------------------------------------------------------------
    def keep_card_data(self, payment_id: int, request: AuthRequest) -> None:
        """Keep what a reversal/advice/refund needs, AES-GCM encrypted, bound to the payment."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = self._aead.encrypt(
            nonce, auth_request_to_json(request), _associated_data(payment_id)
        )
        with self._write() as c:
            if c.execute("SELECT 1 FROM payments WHERE id = ?", (payment_id,)).fetchone() is None:
                raise UnknownPayment(f"no payment {payment_id}")
            c.execute(
                "INSERT OR REPLACE INTO card_data (payment_id, nonce, ciphertext, created_at)"
                " VALUES (?, ?, ?, ?)",
                (payment_id, nonce, ciphertext, _now_iso()),
            )

    def card_data(self, payment_id: int) -> AuthRequest | None:
        """The kept AuthRequest, decrypted; None when none is kept.

        Raises JournalError when the stored data does not decrypt under this terminal's key
        (wrong key, tampering, or data moved to another payment)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT nonce, ciphertext FROM card_data WHERE payment_id = ?", (payment_id,)
            ).fetchone()
        if row is None:
            return None
        try:
            plain = self._aead.decrypt(
                bytes(row["nonce"]), bytes(row["ciphertext"]), _associated_data(payment_id)
            )
        except InvalidTag:
            raise JournalError(
                f"card data of payment {payment_id} does not decrypt with this terminal's key"
            ) from None
        return auth_request_from_json(plain)

    def forget_card_data(self, payment_id: int) -> None:
        """Delete the payment's card data (the freed pages are zeroed: secure_delete)."""
        with self._write() as c:
            c.execute("DELETE FROM card_data WHERE payment_id = ?", (payment_id,))

    def _forget_if_unneeded(self, c: sqlite3.Connection, payment_id: int) -> None:
        pending = c.execute(
            "SELECT 1 FROM queue WHERE payment_id = ? AND done_at IS NULL", (payment_id,)
        ).fetchone()
        if pending is None:
            c.execute("DELETE FROM card_data WHERE payment_id = ?", (payment_id,))

    # ---- store-and-forward queue ------------------------------------------------------------
    def enqueue(self, kind: str, payment_id: int) -> int:
        """Queue a reversal or an advice for a payment; returns the queue item id.

        Records the payment's "reversal_queued"/"advice_queued" state in the same transaction.
        Queuing the same kind twice for a payment returns the pending item (never two
        reversals). The payment needs its card data kept or at least a STAN recorded: without
        card data, store-and-forward builds the message from the payment row (original data
        elements: STAN, amount, terminal, time)."""
        if kind not in QUEUE_KINDS:
            raise ValueError(f"queue kind must be 'reversal' or 'advice', not {kind!r}")
        now = _now_iso()
        with self._write() as c:
            if c.execute("SELECT 1 FROM payments WHERE id = ?", (payment_id,)).fetchone() is None:
                raise UnknownPayment(f"no payment {payment_id}")
            row = c.execute(
                "SELECT id FROM queue WHERE kind = ? AND payment_id = ? AND done_at IS NULL",
                (kind, payment_id),
            ).fetchone()
            if row is not None:
                return int(row["id"])
            has_card_data = c.execute(
                "SELECT 1 FROM card_data WHERE payment_id = ?", (payment_id,)
            ).fetchone()
            has_stan = c.execute(
                "SELECT 1 FROM payments WHERE id = ? AND stan IS NOT NULL", (payment_id,)
            ).fetchone()
            if has_card_data is None and has_stan is None:
                raise JournalError(
                    f"payment {payment_id}: neither card data nor a STAN, cannot queue a {kind}"
                )
            cur = c.execute(
                "INSERT INTO queue (kind, payment_id, created_at) VALUES (?, ?, ?)",
                (kind, payment_id, now),
            )
            self._record_locked(c, payment_id, f"{kind}_queued", {}, now)
            return int(cur.lastrowid or 0)

    def queue(self, kind: str | None = None) -> list[QueueItem]:
        """Pending reversals/advices in queue order (oldest first), due or not."""
        sql = "SELECT * FROM queue WHERE done_at IS NULL"
        params: tuple[object, ...] = ()
        if kind is not None:
            if kind not in QUEUE_KINDS:
                raise ValueError(f"queue kind must be 'reversal' or 'advice', not {kind!r}")
            sql += " AND kind = ?"
            params = (kind,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id", params).fetchall()
        return [_queue_item(r) for r in rows]

    def queue_done(self, item_id: int) -> None:
        """The host acknowledged the item: mark it done, record "reversed"/"advised" on its
        payment, and delete the card data when nothing else is queued for it."""
        now = _now_iso()
        with self._write() as c:
            row = c.execute("SELECT * FROM queue WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                raise UnknownPayment(f"no queue item {item_id}")
            if row["done_at"] is not None:
                return
            c.execute("UPDATE queue SET done_at = ? WHERE id = ?", (now, item_id))
            state = "reversed" if row["kind"] == "reversal" else "advised"
            self._record_locked(c, int(row["payment_id"]), state, {}, now)
            self._forget_if_unneeded(c, int(row["payment_id"]))

    def queue_retry_later(self, item_id: int, error: str) -> None:
        """A send failed: count the attempt, keep the error, back off (5 s doubling to 5 min)."""
        with self._write() as c:
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

    # ---- settlement -------------------------------------------------------------------------
    def begin_settlement(
        self, totals: dict[str, int] | None = None, currency: int | None = None
    ) -> dict:
        """Close the current batch (new payments go to the next one) and record a settlement
        run in state "started". `totals` defaults to the batch's charged payments (in
        `currency` when given). Returns the settlement as a dict (id, batch, state, totals)."""
        with self._write() as c:
            batch = _counter(c, "batch")
            if totals is None:
                totals = _batch_totals(c, batch, currency)
            c.execute("UPDATE counters SET value = value + 1 WHERE name = 'batch'")
            cur = c.execute(
                "INSERT INTO settlements (batch, state, totals, started_at)"
                " VALUES (?, 'started', ?, ?)",
                (batch, json.dumps(totals, sort_keys=True), _now_iso()),
            )
            sid = int(cur.lastrowid or 0)
        return self.settlement(sid)

    def record_settlement(
        self, settlement_id: int, state: str, response_code: str = "", message: str = ""
    ) -> None:
        """Move a settlement run to "sent", "done" or "failed" (or back to "started")."""
        if state not in ("started", "sent", "done", "failed"):
            raise ValueError("settlement state must be 'started', 'sent', 'done' or 'failed'")
        finished = _now_iso() if state in ("done", "failed") else None
        with self._write() as c:
            c.execute(
                "UPDATE settlements SET state = ?, finished_at = ?, response_code = ?,"
                " message = ? WHERE id = ?",
                (state, finished, response_code, scrub(message), settlement_id),
            )

    def settlement(self, settlement_id: int) -> dict:
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM settlements WHERE id = ?", (settlement_id,)
            ).fetchone()
        if row is None:
            raise UnknownPayment(f"no settlement {settlement_id}")
        return _settlement_dict(row)

    def settlements(self) -> list[dict]:
        """Every settlement run, oldest first."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM settlements ORDER BY id").fetchall()
        return [_settlement_dict(r) for r in rows]

    def unfinished_settlements(self) -> list[dict]:
        """Settlement runs left "started" or "sent" (a power cut mid-settlement)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM settlements WHERE state IN ('started', 'sent') ORDER BY id"
            ).fetchall()
        return [_settlement_dict(r) for r in rows]

    def batch_totals(self, batch: int, currency: int | None = None) -> dict[str, int]:
        """Count and sum of the batch's charged sales and refunds (SettlementTotals' fields)."""
        with self._lock:
            return _batch_totals(self._conn, batch, currency)

    # ---- maintenance ------------------------------------------------------------------------
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])


def _require_payment(c: sqlite3.Connection, payment_id: int) -> None:
    if c.execute("SELECT 1 FROM payments WHERE id = ?", (payment_id,)).fetchone() is None:
        raise UnknownPayment(f"no payment {payment_id}")


def _counter(c: sqlite3.Connection, name: str) -> int:
    return int(c.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0])


def _batch_totals(c: sqlite3.Connection, batch: int, currency: int | None) -> dict[str, int]:
    rows = c.execute(
        "SELECT txn_type, COUNT(*) AS n, COALESCE(SUM(amount), 0) AS total FROM payments p"
        " WHERE p.batch = ? AND (? IS NULL OR p.currency = ?) AND p.outcome = 'approved'"
        " AND NOT EXISTS (SELECT 1 FROM history h"
        " WHERE h.payment_id = p.id AND h.state = 'reversed') GROUP BY txn_type",
        (batch, currency, currency),
    ).fetchall()
    totals = {
        "currency": currency or 0,
        "batch_number": batch,
        "sales_count": 0,
        "sales_amount": 0,
        "refunds_count": 0,
        "refunds_amount": 0,
    }
    for r in rows:
        prefix = "sales" if r["txn_type"] == "purchase" else "refunds"
        totals[f"{prefix}_count"] = int(r["n"])
        totals[f"{prefix}_amount"] = int(r["total"])
    return totals


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


def _clean_fields(fields: dict[str, object]) -> dict[str, object]:
    clean: dict[str, object] = {}
    for name, value in fields.items():
        if name not in FIELD_TYPES:
            raise ValueError(f"unknown journal field {name!r} (known: {', '.join(FIELD_TYPES)})")
        if value is None:
            continue
        allowed = FIELD_TYPES[name]
        if not isinstance(value, allowed) or (bool not in allowed and isinstance(value, bool)):
            raise ValueError(f"journal field {name!r} must be {allowed[0].__name__}")
        if name == "masked_pan" and isinstance(value, str):
            value = mask_pan(value) if re.fullmatch(r"[\d ]+", value) else scrub(value)
        elif isinstance(value, str):
            value = scrub(value)
        clean[name] = value
    return clean


def _payment_dict(row: sqlite3.Row) -> dict:
    d = dict(row)
    d["offline"] = bool(d["offline"])
    d["card_data_kept"] = bool(d.get("card_data_kept", 0))
    return d


def _queue_item(row: sqlite3.Row) -> QueueItem:
    return QueueItem(
        id=int(row["id"]),
        kind=row["kind"],
        payment_id=int(row["payment_id"]),
        created_at=row["created_at"],
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        last_error=row["last_error"],
    )


def _settlement_dict(row: sqlite3.Row) -> dict:
    d = dict(row)
    d["totals"] = json.loads(d["totals"])
    return d
