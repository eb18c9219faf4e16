"""Payments and their history: every state change, in order, written before the effect it
announces, and only along firmware.payment.LEGAL_TRANSITIONS. Also the questions asked of the
payments as a whole (a batch's totals, what is left to refund), answered by SQL.

Clear card data never reaches a column or the history: string fields are scrubbed of anything
that looks like a card number (first 6 / last 4 only), the masked PAN is masked again.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import replace

from firmware.emv.outcome import mask_pan
from firmware.journal.counters import Counters
from firmware.journal.errors import IllegalTransition, UnknownPayment
from firmware.journal.records import HistoryEntry, Payment, StoredTotals
from firmware.journal.store import Store, iso, now_iso, scrub
from firmware.journal.vault import CardVault
from firmware.money import BatchTotals, Currency
from firmware.payment import (
    STANDING,
    PaymentOutcome,
    PaymentState,
    Tender,
    TxnType,
    transition_problem,
)

__all__ = ["FIELD_TYPES", "PaymentStore"]

# The standing states as an SQL list (their values are fixed identifiers, not input).
_STANDING_SQL = ", ".join(f"'{state.value}'" for state in sorted(STANDING))

FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "scheme": (str,),
    "masked_pan": (str,),
    "stan": (int,),
    "rrn": (str,),
    "auth_code": (str,),
    "response_code": (str,),
    "reason": (str,),
    "outcome": (str,),  # a PaymentOutcome value
    "card_in_field_ms": (int, float),
    "offline": (bool,),
    "refund_of": (int,),  # a refund: the id of the payment it refunds
    "application_label": (str,),  # the card's label (50 / 9F12)
    "aid": (str,),  # the application identifier, hex
    "amount": (int,),  # a partial approval: the amount charged (less than the one asked)
    "cvm": (str,),  # how the cardholder was verified: a firmware.emv CvmMethod value
    "hold_of": (int,),  # an increment or a completion: the hold (pre-authorization) it is of
    "expires_at": (str,),  # a hold: when it expires (ISO 8601, UTC)
    "tip": (int,),  # the part of the amount that is a tip (firmware.tips), minor units
    "payer_vpa": (str,),  # UPI: the payer's VPA, masked (ra*****@okicici)
    "psp_reference": (str,),  # UPI: the PSP's reference of the payment (its RRN / txn id)
}
# Where a UPI payment goes from "started": its request at the PSP, or it ends before that.
_UPI_FROM_STARTED = frozenset({PaymentState.UPI_PENDING, PaymentState.ERROR,
                               PaymentState.CANCELLED})
# A UPI reference (`tr`): letters and digits, ours, never a card number (kept as it is).
_UPI_REFERENCE = re.compile(r"[A-Za-z0-9]{1,35}")
# A masked VPA: at most two characters of the handle in the clear, then stars.
_MASKED_VPA = re.compile(r"[^@*]{0,2}\*{3,}@[A-Za-z0-9.-]{1,64}")

S = PaymentState
# After these, card data is no longer needed unless a queued reversal/advice still waits for it
# (an offline approval keeps it for its advice).
_CARD_DATA_DONE = frozenset({S.DECLINED, S.NO_CARD, S.TRY_AGAIN, S.CANCELLED, S.ERROR,
                             S.REVERSED, S.ADVISED, S.REFUNDED, S.VOIDED})
del S

# A card payment stands as charged when approved and never reversed or voided since; a hold and
# its increments hold funds and charge nothing (TxnType.holds_funds; only a completion charges).
# UPI payments are in no card total (Journal.upi_totals counts them apart) and never go to the
# acquirer.
_HOLDING_SQL = ", ".join(f"'{kind.value}'" for kind in TxnType if kind.holds_funds)
_CHARGED = (
    f"p.tender = 'card' AND p.outcome = 'approved' AND p.txn_type NOT IN ({_HOLDING_SQL})"
    " AND NOT EXISTS"
    " (SELECT 1 FROM history h WHERE h.payment_id = p.id AND h.state IN ('reversed', 'voided'))"
)
_WITH_VAULT = (
    "SELECT p.*, EXISTS (SELECT 1 FROM card_data d WHERE d.payment_id = p.id) AS card_data_kept"
    " FROM payments p"
)


class PaymentStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    # ---- writing --------------------------------------------------------------------------
    def new(self, txn_type: TxnType | str, amount: int, currency: int, terminal_id: str,
            refund_of: int | None = None, created_at: dt.datetime | None = None,
            part_of: int | None = None, tip: int = 0, tender: Tender = Tender.CARD,
            upi_reference: str = "") -> int:
        """Start a payment (state "started"); returns its id. `created_at`: the payment's
        moment (default now); `part_of`: the first part of the partially approved purchase
        whose rest this pays; `tip`: the part of `amount` (the total) that is a tip; `tender`
        UPI with its `upi_reference` (our `tr`, unique in the journal)."""
        tender = Tender(tender)
        if (tender is Tender.UPI) != bool(upi_reference) or (
                upi_reference and not _UPI_REFERENCE.fullmatch(upi_reference)):
            raise ValueError("a UPI payment has a reference of 1..35 letters and digits, a card "
                             f"payment none, not {upi_reference[:40]!r}")
        try:
            kind = TxnType(txn_type)
        except ValueError:
            known = ", ".join(repr(t.value) for t in TxnType)
            raise ValueError(f"txn_type must be one of {known}, not {txn_type!r}") from None
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            raise ValueError(f"amount must be a non-negative int in minor units, not {amount!r}")
        if not isinstance(tip, int) or isinstance(tip, bool) or not 0 <= tip <= amount:
            raise ValueError(f"tip must be an int in minor units, 0..amount, not {tip!r}")
        now = now_iso()
        created = now if created_at is None else iso(created_at)
        with self._store.write() as c:
            for other in (refund_of, part_of):
                if other is not None:
                    require(c, other)
            cur = c.execute(
                "INSERT INTO payments (created_at, updated_at, txn_type, amount, currency,"
                " terminal_id, batch, state, refund_of, part_of, tip, tender, upi_reference)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'started', ?, ?, ?, ?, ?)",
                (created, now, kind.value, amount, int(currency), scrub(terminal_id),
                 Counters.batch(c), refund_of, part_of, tip, tender.value, upi_reference),
            )
            pid = int(cur.lastrowid or 0)
            started: dict[str, object] = {"amount": amount, "currency": int(currency)}
            if refund_of is not None:
                started["refund_of"] = refund_of
            if part_of is not None:
                started["part_of"] = part_of
            if tip:
                started["tip"] = tip
            if tender is Tender.UPI:
                started["tender"], started["upi_reference"] = tender.value, upi_reference
            c.execute(
                "INSERT INTO history (payment_id, at, state, fields) VALUES (?, ?, 'started', ?)",
                (pid, now, json.dumps(started)),
            )
        return pid

    def record(self, payment_id: int, state: PaymentState | str, **fields: object) -> None:
        """Record a state change (and its fields) durably, before the effect it announces.

        IllegalTransition (nothing written) for a change the lifecycle does not allow. An
        outcome state also sets `outcome`. The card data goes, in the same transaction, once
        the payment is done and nothing queued needs it."""
        new = _state(state)
        clean = clean_fields(fields)
        if new.outcome is not None and "outcome" not in clean:
            clean["outcome"] = new.outcome.value
        with self._store.write() as c:
            row = c.execute(
                "SELECT state, offline, tender FROM payments WHERE id = ?", (payment_id,)
            ).fetchone()
            if row is None:
                raise UnknownPayment(f"no payment {payment_id}")
            if row["state"] == PaymentState.STARTED.value and (
                    new not in _UPI_FROM_STARTED if row["tender"] == Tender.UPI.value
                    else new is PaymentState.UPI_PENDING):
                raise IllegalTransition(f"payment {payment_id}: a {row['tender']} payment "
                                        f"cannot go to {new.value!r}")
            if row["state"] == new.value and not fields:
                return  # an exact repeat (e.g. enqueue already recorded it)
            for ref in ("refund_of", "hold_of"):
                if ref in clean:
                    require(c, int(clean[ref]))  # type: ignore[call-overload]
            self.transition(c, payment_id, new, clean, current=PaymentState(row["state"]))
            offline = bool(clean.get("offline", row["offline"]))
            if new in _CARD_DATA_DONE or (new is PaymentState.APPROVED and not offline):
                CardVault.forget_if_unneeded(c, payment_id)

    @staticmethod
    def transition(c: sqlite3.Connection, payment_id: int, new: PaymentState,
                   clean: Mapping[str, object], current: PaymentState | None = None) -> None:
        """Move the payment to `new` inside the caller's transaction, with its history entry.
        IllegalTransition when the lifecycle does not allow it."""
        if current is None:
            row = c.execute("SELECT state FROM payments WHERE id = ?", (payment_id,)).fetchone()
            if row is None:
                raise UnknownPayment(f"no payment {payment_id}")
            current = PaymentState(row["state"])
        problem = transition_problem(current, new)
        if problem:
            raise IllegalTransition(f"payment {payment_id}: {problem}")
        now = now_iso()
        sets = ["state = ?", "updated_at = ?"]
        values: list[object] = [new.value, now]
        for name, value in clean.items():
            sets.append(f"{name} = ?")
            values.append(int(value) if isinstance(value, bool) else value)
        c.execute(f"UPDATE payments SET {', '.join(sets)} WHERE id = ?", (*values, payment_id))
        c.execute(
            "INSERT INTO history (payment_id, at, state, fields) VALUES (?, ?, ?, ?)",
            (payment_id, now, new.value, json.dumps(dict(clean), sort_keys=True)),
        )

    # ---- reading --------------------------------------------------------------------------
    def all(self, last: int | None = None) -> list[Payment]:
        """Every payment (or the `last` n), oldest first."""
        rows = self._store.read(
            f"SELECT * FROM ({_WITH_VAULT} ORDER BY p.id DESC LIMIT ?) ORDER BY id",
            (-1 if last is None else max(0, last),),
        )
        return [Payment.from_row(r) for r in rows]

    def get(self, payment_id: int) -> Payment:
        """One payment; UnknownPayment when there is none."""
        row = self._store.read_one(f"{_WITH_VAULT} WHERE p.id = ?", (payment_id,))
        if row is None:
            raise UnknownPayment(f"no payment {payment_id}")
        return Payment.from_row(row)

    def history(self, payment_id: int) -> list[HistoryEntry]:
        """A payment's state changes, oldest first."""
        rows = self._store.read(
            "SELECT at, state, fields FROM history WHERE payment_id = ? ORDER BY id",
            (payment_id,),
        )
        return [HistoryEntry.from_row(r) for r in rows]

    def in_state(self, *states: PaymentState | str) -> list[Payment]:
        """Payments whose current state is one of `states`, oldest first."""
        values = tuple(_state(s).value for s in states)
        marks = ", ".join("?" for _ in values)
        rows = self._store.read(
            f"{_WITH_VAULT} WHERE p.state IN ({marks}) ORDER BY p.id", values
        )
        return [Payment.from_row(r) for r in rows]

    def charged(self, batch: int | None = None) -> list[Payment]:
        """Payments that stand as charged: outcome approved and never reversed or voided."""
        rows = self._store.read(
            f"SELECT p.*, 0 AS card_data_kept FROM payments p WHERE {_CHARGED}"
            " AND (? IS NULL OR p.batch = ?) ORDER BY p.id",
            (batch, batch),
        )
        return [Payment.from_row(r) for r in rows]

    def _partial_firsts(self, batch: int | None = None) -> list[Payment]:
        """The first parts of the partially approved purchases (response code 10) still
        standing, in `batch` when given, oldest first."""
        rows = self._store.read(
            f"{_WITH_VAULT} WHERE p.response_code = '10' AND p.part_of IS NULL"
            f" AND p.txn_type = 'purchase' AND p.state IN ({_STANDING_SQL})"
            " AND (? IS NULL OR p.batch = ?) ORDER BY p.id", (batch, batch))
        return [Payment.from_row(r) for r in rows]

    def _later_parts(self, first: Payment) -> list[Payment]:
        """Every payment that took the rest of `first` (charged or not), in order."""
        return [Payment.from_row(r) for r in self._store.read(
            "SELECT p.*, 0 AS card_data_kept FROM payments p WHERE p.part_of = ?"
            " ORDER BY p.id", (first.id,))]

    def asked(self, payment_id: int) -> int:
        """The amount the payment asked for (its "started" entry): a partial approval's total,
        more than the part it was approved for."""
        return int(str(self.history(payment_id)[0].get("amount", 0)))

    def unfinished_partials(self) -> list[tuple[Payment, list[Payment]]]:
        """Partially approved purchases (response code 10) still standing whose rest was never
        paid in full (the terminal was stopped while asking for it): each first part with its
        charged later parts. Recovery voids them all. A purchase one of whose parts the
        shopkeeper voided is theirs to finish, not an interrupted one."""
        out = []
        for first in self._partial_firsts():
            later = self._later_parts(first)
            if any(p.voided for p in later):
                continue
            parts = [p for p in later if p.charged]
            if first.amount + sum(p.amount for p in parts) < self.asked(first.id):
                out.append((first, parts))
        return out

    def partial_sales(self, batch: int | None = None) -> list[tuple[Payment, list[Payment]]]:
        """The partially approved purchases still standing (in `batch` when given): each first
        part with all its parts that stand charged, itself first (a receipt's and the
        Z-report's grouping)."""
        return [(first, [first, *(p for p in self._later_parts(first) if p.charged)])
                for first in self._partial_firsts(batch)]

    def open_batch(self) -> int:
        """The batch new payments join (the one the next settlement closes)."""
        with self._store.lock:
            return Counters.batch(self._store.conn)

    def refunded_amount(self, payment_id: int) -> int:
        """What approved refunds of the payment add up to so far (minor units); a voided
        refund gave nothing back (one whose void is still queued counts until it is done)."""
        row = self._store.read_one(
            "SELECT COALESCE(SUM(amount), 0) FROM payments"
            " WHERE refund_of = ? AND outcome = 'approved' AND state != ?",
            (payment_id, PaymentState.VOIDED.value),
        )
        return int(row[0]) if row is not None else 0

    def batch_totals(self, batch: int, currency: Currency) -> BatchTotals:
        """Count and sum of the batch's charged purchases and refunds in `currency`."""
        with self._store.lock:
            return batch_totals(self._store.conn, batch, currency)

    def scheme_totals(self, batch: int, currency: Currency) -> dict[str, BatchTotals]:
        """The batch's charged payments in `currency`, by scheme ("unknown" when none)."""
        rows = self._store.read(
            "SELECT COALESCE(NULLIF(p.scheme, ''), 'unknown') AS scheme, p.txn_type,"
            " COUNT(*) AS n, COALESCE(SUM(p.amount), 0) AS total FROM payments p"
            f" WHERE p.batch = ? AND p.currency = ? AND {_CHARGED}"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            (batch, currency.numeric),
        )
        out: dict[str, BatchTotals] = {}
        for r in rows:
            out[r["scheme"]] = _add(out.get(r["scheme"], BatchTotals(batch, currency)), r)
        return out

    def outcome_counts(self, batch: int, tender: Tender = Tender.CARD) -> dict[str, int]:
        """How many of the batch's payments of `tender` ended how (their state where no
        outcome; a voided payment counts as "voided", not as the approval it was)."""
        rows = self._store.read(
            "SELECT CASE WHEN state = 'voided' THEN state ELSE"
            " COALESCE(NULLIF(outcome, ''), NULLIF(state, ''), 'unknown') END AS o,"
            " COUNT(*) AS n FROM payments WHERE batch = ? AND tender = ? GROUP BY 1",
            (batch, Tender(tender).value),
        )
        return {r["o"]: int(r["n"]) for r in rows}

    def upi_totals(self, batch: int) -> dict[int, BatchTotals]:
        """The batch's approved UPI payments and refunds, by currency (ISO 4217 numeric): apart
        from every card total, never sent to the acquirer."""
        from firmware.money import currency as currency_of

        rows = self._store.read(
            "SELECT currency, txn_type, COUNT(*) AS n, COALESCE(SUM(amount), 0) AS total"
            " FROM payments WHERE batch = ? AND tender = 'upi' AND outcome = 'approved'"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            (batch,),
        )
        out: dict[int, BatchTotals] = {}
        for r in rows:
            number = int(r["currency"])
            out[number] = _add(out.get(number, BatchTotals(batch, currency_of(number))), r)
        return out

    def by_upi_reference(self, reference: str) -> Payment | None:
        """The UPI payment with our reference `tr`, if the journal has it."""
        row = self._store.read_one(f"{_WITH_VAULT} WHERE p.upi_reference = ?", (reference,))
        return Payment.from_row(row) if row is not None else None

    def stored(self, currency: int, run: int) -> StoredTotals:
        """Count, sum and oldest of the payments stored for forwarding ([offline])."""
        row = self._store.read_one(
            "SELECT COUNT(*) AS n, COALESCE(SUM(amount), 0) AS total,"
            " COALESCE(MIN(created_at), '') AS oldest FROM payments"
            " WHERE state = ? AND currency = ?",
            (PaymentState.STORED.value, currency),
        )
        late = self._store.read_one(
            "SELECT COUNT(*) FROM payments WHERE state = ? AND currency = ? AND batch ="
            " (SELECT value FROM counters WHERE name = 'batch')",
            (PaymentState.DECLINED_LATE.value, currency),
        )
        assert row is not None and late is not None
        return StoredTotals(currency, int(row["n"]), int(row["total"]), str(row["oldest"]), run,
                            int(late[0]))

    def count_in_state(self, batch: int, state: PaymentState) -> int:
        row = self._store.read_one(
            "SELECT COUNT(*) FROM payments WHERE batch = ? AND state = ?", (batch, state.value)
        )
        return int(row[0]) if row is not None else 0

    def other_currencies(self, batch: int, currency: Currency) -> dict[int, list[int]]:
        """The batch's charged payments not in `currency`: {currency: [count, net amount]}."""
        rows = self._store.read(
            "SELECT p.currency, COUNT(*) AS n, COALESCE(SUM(CASE p.txn_type WHEN 'refund'"
            " THEN -p.amount ELSE p.amount END), 0) AS net FROM payments p"
            f" WHERE p.batch = ? AND p.currency != ? AND {_CHARGED} GROUP BY 1",
            (batch, currency.numeric),
        )
        return {int(r["currency"]): [int(r["n"]), int(r["net"])] for r in rows}


def batch_totals(c: sqlite3.Connection, batch: int, currency: Currency) -> BatchTotals:
    """The batch's charged purchases and refunds in `currency`, counted and summed."""
    rows = c.execute(
        "SELECT txn_type, COUNT(*) AS n, COALESCE(SUM(amount), 0) AS total FROM payments p"
        f" WHERE p.batch = ? AND p.currency = ? AND {_CHARGED} GROUP BY txn_type",
        (batch, currency.numeric),
    ).fetchall()
    totals = BatchTotals(batch, currency)
    for r in rows:
        totals = _add(totals, r)
    return totals


def _add(totals: BatchTotals, row: sqlite3.Row) -> BatchTotals:
    """`totals` with a row of (txn_type, n, total) added: its purchases or its refunds."""
    if row["txn_type"] == TxnType.REFUND.value:
        return replace(totals, refunds_count=totals.refunds_count + int(row["n"]),
                       refunds_amount=totals.refunds_amount + int(row["total"]))
    return replace(totals, sales_count=totals.sales_count + int(row["n"]),
                   sales_amount=totals.sales_amount + int(row["total"]))


def require(c: sqlite3.Connection, payment_id: int) -> None:
    if c.execute("SELECT 1 FROM payments WHERE id = ?", (payment_id,)).fetchone() is None:
        raise UnknownPayment(f"no payment {payment_id}")


def _state(state: PaymentState | str) -> PaymentState:
    try:
        return PaymentState(state)
    except ValueError:
        known = ", ".join(s.value for s in PaymentState)
        raise ValueError(f"unknown payment state {state!r} (known: {known})") from None


def clean_fields(fields: Mapping[str, object]) -> dict[str, object]:
    """The fields of a state change, checked and scrubbed (ValueError for a wrong one)."""
    clean: dict[str, object] = {}
    for name, value in fields.items():
        if name not in FIELD_TYPES:
            raise ValueError(f"unknown journal field {name!r} (known: {', '.join(FIELD_TYPES)})")
        if value is None:
            continue
        allowed = FIELD_TYPES[name]
        if not isinstance(value, allowed) or (bool not in allowed and isinstance(value, bool)):
            raise ValueError(f"journal field {name!r} must be {allowed[0].__name__}")
        if name in ("amount", "tip") and isinstance(value, int) and value < 0:
            raise ValueError(f"journal field {name!r} must not be negative, not {value!r}")
        if name == "outcome":
            try:
                value = PaymentOutcome(str(value)).value
            except ValueError:
                known = ", ".join(o.value for o in PaymentOutcome)
                raise ValueError(f"unknown outcome {value!r} (known: {known})") from None
        elif name == "aid":
            assert isinstance(value, str)
            if not re.fullmatch(r"(?:[0-9A-Fa-f]{2}){0,16}", value):
                raise ValueError(f"journal field 'aid' must be hex (up to 16 bytes), not {value!r}")
            value = value.upper()  # an AID is no card number: kept as it is
        elif name == "cvm":
            assert isinstance(value, str)
            if not re.fullmatch(r"[a-z_]{0,20}", value):
                raise ValueError(f"journal field 'cvm' must be a CVM method name, not {value!r}")
        elif name == "payer_vpa":
            assert isinstance(value, str)
            if value and not _MASKED_VPA.fullmatch(value):
                raise ValueError("journal field 'payer_vpa' must be a masked VPA "
                                 "(firmware.upi.psp.mask_vpa)")
        elif name == "psp_reference":
            assert isinstance(value, str)
            if not re.fullmatch(r"[A-Za-z0-9._-]{0,64}", value):
                raise ValueError("journal field 'psp_reference' must be 0..64 letters, digits, "
                                 "'.', '_' or '-'")
            value = scrub(value)
        elif name == "masked_pan":
            assert isinstance(value, str)
            value = mask_pan(value) if re.fullmatch(r"[\d ]+", value) else scrub(value)
        elif isinstance(value, str):
            value = scrub(value)
        clean[name] = value
    return clean
