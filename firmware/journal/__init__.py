"""The payment journal: one SQLite file that remembers every payment, crash-safe and encrypted.

A package of small stores on one connection (`store.Store`), behind the `Journal` facade:
- `payments`: each payment (amount, currency, type, masked PAN, scheme, application label and
  AID, STAN, RRN, auth code, outcome) and every state change of it, in order (`history`), written
  before the effect it announces and only along firmware.payment.LEGAL_TRANSITIONS; the batch
  totals and "refunded so far" as SQL queries;
- `counters`: the persistent STAN counter (1..999999, wrapping), the settlement batch, the run
  of payments stored offline and the kernel's consecutive offline approvals per AID;
- `vault`: the card data a reversal, an advice or a refund needs, as bytes the acquirer link
  encodes, AES-GCM encrypted under a terminal key kept in a separate 0600 file (`keys`), bound to
  its payment id, and deleted (in one place) as soon as nothing queued needs it any more;
- `outbox`: the ordered store-and-forward queue of reversals and advices, with retry/backoff;
- `settlements`: settlement runs, so that one interrupted by a power cut can be resumed;
- `holds`: pre-authorizations, what each holds, and the completion's one write;
- `api_requests`: the terminal API's Idempotency-Keys and the payments they started.
Readers get frozen records (`records`), never rows or dicts.

SQLite runs in WAL mode with synchronous=FULL: when a method returns, its change survives a power
cut. The schema is versioned and migrated forward at open; an integrity check runs at open.
Clear card data never reaches a column, the history, or a log line.

This package must not touch the network or hardware, and imports nothing of the acquirer link:
it knows payments only as data.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import SupportsBytes

from firmware.journal.api_requests import ApiRequest, ApiRequestStore
from firmware.journal.counters import STAN_MAX, Counters, OfflineApprovals
from firmware.journal.errors import (
    IllegalTransition,
    JournalBusy,
    JournalCorrupt,
    JournalError,
    UnknownPayment,
)
from firmware.journal.holds import Hold, HoldStatus, HoldStore
from firmware.journal.keys import load_or_create_key
from firmware.journal.outbox import BACKOFF_FIRST_S, BACKOFF_MAX_S, Outbox, backoff_seconds
from firmware.journal.payments import FIELD_TYPES, PaymentStore, clean_fields
from firmware.journal.records import HistoryEntry, Payment, QueueItem, Settlement, StoredTotals
from firmware.journal.settlements import Settlements
from firmware.journal.store import MIGRATIONS, SCHEMA_VERSION, Store, scrub
from firmware.journal.tips import TipStore
from firmware.journal.vault import CardVault
from firmware.money import BatchTotals, Currency, Money
from firmware.payment import PaymentState, QueueKind, SettlementState, Tender, TxnType

__all__ = [
    "FIELD_TYPES", "ApiRequest", "MIGRATIONS", "SCHEMA_VERSION", "STAN_MAX", "HistoryEntry", "Hold",
    "HoldStatus",
    "IllegalTransition", "Journal", "JournalBusy", "JournalCorrupt", "JournalError", "Payment",
    "QueueItem", "Settlement", "StoredTotals", "UnknownPayment", "backoff_seconds",
    "load_or_create_key", "scrub",
]


class Journal:
    """The payment journal. Thread-safe; every write is committed (durably) before returning."""

    def __init__(
        self,
        store: Store,
        key: bytes,
        clock: Callable[[], float] = time.time,
        backoff: tuple[float, float] = (BACKOFF_FIRST_S, BACKOFF_MAX_S),
    ) -> None:
        self._store = store
        self._conn = store.conn
        self.path = store.path
        self.payments_store = PaymentStore(store)
        self.counters = Counters(store)
        # the kernel's consecutive offline approvals per AID (Kernel.count_offline_in)
        self.offline_approvals = OfflineApprovals(store)
        self.vault = CardVault(store, key)
        self.outbox = Outbox(store, clock, backoff)
        self.settlement_runs = Settlements(store)
        self.holds = HoldStore(store)  # pre-authorizations (firmware.preauth)
        self.tips = TipStore(store)
        self.api_requests = ApiRequestStore(store)  # the terminal API's (firmware.api)

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
        key = load_or_create_key(Path(key_file), create=create_key)
        return cls(Store.open(Path(path)), key, clock, backoff)

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
        self._store.claim()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def schema_version(self) -> int:
        return self._store.schema_version()

    # ---- payments and their history -------------------------------------------------------
    def new_payment(self, txn_type: TxnType | str, amount: int, currency: int,
                    terminal_id: str, refund_of: int | None = None,
                    created_at: dt.datetime | None = None, part_of: int | None = None,
                    tip: int = 0, tender: Tender = Tender.CARD, upi_reference: str = "") -> int:
        """Start a payment (state "started"); returns its id. A refund may name the payment
        it refunds (`refund_of`), the rest of a partially approved purchase its first part
        (`part_of`); `created_at` is the payment's moment (default now); `tip` is the part of
        `amount` (the total) that is a tip. A UPI payment (`tender` UPI) has our reference
        `upi_reference` (its `tr`, unique in the journal)."""
        return self.payments_store.new(txn_type, amount, currency, terminal_id, refund_of,
                                       created_at, part_of, tip, tender, upi_reference)

    def unfinished_partials(self) -> list[tuple[Payment, list[Payment]]]:
        """Partially approved purchases whose rest was never paid: (first part, later parts)."""
        return self.payments_store.unfinished_partials()

    def partial_sales(self, batch: int | None = None) -> list[tuple[Payment, list[Payment]]]:
        """Partially approved purchases still standing: (first part, its charged parts)."""
        return self.payments_store.partial_sales(batch)

    def asked(self, payment_id: int) -> int:
        """What the payment asked for (a partial approval: more than it was approved for)."""
        return self.payments_store.asked(payment_id)

    def record(self, payment_id: int, state: PaymentState | str, **fields: object) -> None:
        """Record a state change durably, before the effect it announces (PaymentStore.record);
        IllegalTransition for one firmware.payment does not allow."""
        self.payments_store.record(payment_id, state, **fields)

    def payment(self, payment_id: int) -> Payment:
        """One payment; UnknownPayment when there is none."""
        return self.payments_store.get(payment_id)

    def payments(self, last: int | None = None) -> list[Payment]:
        """Every payment (or the `last` n), oldest first (no clear card data)."""
        return self.payments_store.all(last)

    def history(self, payment_id: int) -> list[HistoryEntry]:
        return self.payments_store.history(payment_id)

    def payments_in_state(self, *states: PaymentState | str) -> list[Payment]:
        return self.payments_store.in_state(*states)

    def charged_payments(self, batch: int | None = None) -> list[Payment]:
        """Payments that stand as charged: outcome approved and never reversed."""
        return self.payments_store.charged(batch)

    def open_batch(self) -> int:
        """The batch new payments join (the one the next settlement closes)."""
        return self.payments_store.open_batch()

    def refunded_amount(self, payment_id: int) -> int:
        """What approved refunds of the payment add up to so far (minor units)."""
        return self.payments_store.refunded_amount(payment_id)

    def batch_totals(self, batch: int, currency: Currency) -> BatchTotals:
        """Count and sum of the batch's charged sales and refunds in `currency`."""
        return self.payments_store.batch_totals(batch, currency)

    def scheme_totals(self, batch: int, currency: Currency) -> dict[str, BatchTotals]:
        """The batch's charged payments in `currency`, by scheme."""
        return self.payments_store.scheme_totals(batch, currency)

    def outcome_counts(self, batch: int, tender: Tender = Tender.CARD) -> dict[str, int]:
        """How many of the batch's payments (of `tender`: cards by default) ended how."""
        return self.payments_store.outcome_counts(batch, tender)

    def upi_totals(self, batch: int) -> dict[int, BatchTotals]:
        """The batch's approved UPI payments and refunds by currency (ISO 4217 numeric), for
        the Z-report: in no card total, never sent to the acquirer."""
        return self.payments_store.upi_totals(batch)

    def upi_payment(self, reference: str) -> Payment | None:
        """The UPI payment whose reference (`tr`) is `reference`; None when there is none."""
        return self.payments_store.by_upi_reference(reference)

    def count_in_state(self, batch: int, state: PaymentState) -> int:
        return self.payments_store.count_in_state(batch, state)

    def other_currencies(self, batch: int, currency: Currency) -> dict[int, list[int]]:
        """The batch's charged payments not in `currency`: {currency: [count, net amount]}."""
        return self.payments_store.other_currencies(batch, currency)

    def open_holds(self, currency: Currency) -> tuple[int, int]:
        """(count, held total) of the pre-authorizations still holding funds in `currency`
        (not completed, released or expired): in no settlement total."""
        return self.holds.open_totals(currency.numeric, dt.datetime.now(dt.UTC))

    # ---- STAN -------------------------------------------------------------------------------
    def next_stan(self) -> int:
        """The next system trace audit number, 1..999999 then 1 again; durable before return."""
        return self.counters.next_stan()

    # ---- encrypted card data ----------------------------------------------------------------
    def keep_card_data(self, payment_id: int, data: bytes | SupportsBytes) -> None:
        """Keep what a reversal/advice/refund needs (`bytes(request)`), encrypted."""
        self.vault.keep(payment_id, data)

    def card_data(self, payment_id: int) -> bytes | None:
        """The kept card data (the bytes given to keep_card_data); None when none is kept."""
        return self.vault.get(payment_id)

    def forget_card_data(self, payment_id: int) -> None:
        """Delete the payment's card data now (recording its outcome does it too)."""
        with self._store.write() as c:
            CardVault.forget(c, payment_id)

    # ---- store-and-forward queue ------------------------------------------------------------
    def enqueue(self, kind: QueueKind | str, payment_id: int) -> int:
        return self.outbox.enqueue(kind, payment_id)

    def queue(self, kind: QueueKind | str | None = None) -> list[QueueItem]:
        return self.outbox.pending(kind)

    def queue_done(self, item_id: int) -> None:
        self.outbox.done(item_id)

    def drop_advice(self, payment_id: int, reason: str) -> bool:
        """Void an offline approval whose advice never went: drop the advice, record "voided"
        (one transaction); False when no advice of it is pending."""
        return self.outbox.drop_advice(payment_id, reason)

    def queue_retry_later(self, item_id: int, error: str) -> None:
        self.outbox.retry_later(item_id, error)

    def void_refused(self, item_id: int, reason: str) -> None:
        """The host refused a queued void (it had settled the approval): the item is done and
        the approval stands again (approved, or advised for an offline one), `reason` saying
        so; one transaction."""
        self.outbox.void_refused(item_id, reason)

    # ---- tip adjustments (firmware.tips) ---------------------------------------------------
    def queue_tip(self, payment_id: int, tip: int, stan: int) -> int:
        """Queue a tip adjustment setting the payment's tip to `tip`, sent with STAN `stan`."""
        return self.tips.enqueue(payment_id, tip, stan)

    def tip_answered(self, item_id: int, accepted: bool, reason: str = "") -> None:
        """The host answered a tip adjustment: accepted, the payment's amount and tip amended
        (one transaction); refused, recorded. The item is done either way."""
        self.tips.answered(item_id, accepted, reason)

    def tip_totals(self, batch: int, currency: Currency) -> tuple[int, Money]:
        """The batch's tipped purchases in `currency`: how many, and the tips' sum."""
        return self.tips.totals(batch, currency)

    # ---- payments stored while the acquirer was unreachable ([offline]) ----------------------
    def store_for_forwarding(self, payment_id: int, reason: str) -> int:
        """Accept a payment "awaiting_reply" whose request never left (the host unavailable) as
        stored: outcome approved, state "stored", its deferred authorization queued, the run of
        stored payments one longer; one transaction. The card data stays in the vault until
        the host answers. Returns the queue item id."""
        fields = clean_fields({"outcome": "approved", "reason": reason})
        with self._store.write() as c:
            item = Outbox.enqueue_in(c, QueueKind.DEFERRED, payment_id, fields)
            Counters.bump_offline_run(c)
            return item

    def deferred_answered(self, item_id: int, approved: bool, **fields: object) -> None:
        """The host answered a stored payment's deferred authorization: "forwarded" (approved)
        or "declined_late" (outcome declined: declined after the fact, never retried), with the
        host's `fields` (response_code, auth_code, rrn, reason); the card data goes."""
        if not approved:
            fields["outcome"] = "declined"
        clean = clean_fields(fields)
        state = PaymentState.FORWARDED if approved else PaymentState.DECLINED_LATE
        self.outbox.done(item_id, state, clean)

    def stored_totals(self, currency: int) -> StoredTotals:
        """What is stored for forwarding in `currency`, and the run of consecutive stored
        payments (both survive restarts)."""
        return self.payments_store.stored(currency, self.counters.offline_run())

    def host_answered(self) -> None:
        """The host answered an authorization: the run of consecutive stored payments ends."""
        if self.counters.offline_run():
            self.counters.reset_offline_run()

    # ---- settlement -------------------------------------------------------------------------
    def begin_settlement(self, currency: Currency) -> Settlement:
        """Close the batch and record a settlement run of its totals in `currency`."""
        return self.settlement_runs.begin(currency)

    def record_settlement(self, settlement_id: int, state: SettlementState | str,
                          response_code: str = "", message: str = "") -> None:
        self.settlement_runs.record(settlement_id, state, response_code, message)

    def settlement(self, settlement_id: int) -> Settlement:
        return self.settlement_runs.get(settlement_id)

    def settlements(self) -> list[Settlement]:
        return self.settlement_runs.all()

    def unfinished_settlements(self) -> list[Settlement]:
        return self.settlement_runs.unfinished()
