"""End of day: close the journal's batch with the acquirer and write the Z-report.

Order of work: drain store-and-forward (reversals and advices must reach the host first), resume
a settlement a power cut interrupted, close the batch in the journal (new payments go to the
next), send the totals (0500); on disagreement the acquirer uploads the batch (0320) and closes
it. A batch is never closed while a payment waits for its reply or anything stays queued: the
host would close it with a charge the terminal is about to reverse (BatchNotClosed instead).
The Z-report is what a shopkeeper keeps: counts and amounts of sales and refunds, by scheme,
what did not go through, and whether the host agreed; and, apart, the batch's UPI payments
(firmware.upi.tender), which the acquirer never sees (the PSP settles them with the shop's bank).
No card data appears in it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from firmware.config import Config
from firmware.errors import PitapError
from firmware.host.acquirer import (
    Acquirer,
    AuthRequest,
    HostUnavailable,
    NoReply,
    PaymentData,
    SettlementResult,
)
from firmware.host.saf import Outbox, StoreAndForward
from firmware.money import BatchTotals, Currency, Money, UnknownCurrency
from firmware.payment import PaymentState, QueueKind, SettlementState, Tender, TxnType
from ui.lang import load as load_language
from ui.money import Style, format_money

log = logging.getLogger(__name__)


class SettlementRun(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def batch(self) -> int: ...
    @property
    def totals(self) -> BatchTotals: ...


class PaymentRef(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def batch(self) -> int: ...
    @property
    def amount(self) -> int: ...
    @property
    def currency(self) -> int: ...
    @property
    def txn_type(self) -> TxnType: ...


class Batches(Outbox, Protocol):
    """What settlement needs of the journal (firmware.journal.Journal is one)."""

    def charged_payments(self, batch: int | None = None) -> Sequence[PaymentData]: ...
    def payments_in_state(self, *states: PaymentState) -> Sequence[PaymentRef]: ...
    def unfinished_settlements(self) -> Sequence[SettlementRun]: ...
    def begin_settlement(self, currency: Currency) -> SettlementRun: ...
    def record_settlement(self, settlement_id: int, state: SettlementState,
                          response_code: str = "", message: str = "") -> None: ...
    def scheme_totals(self, batch: int, currency: Currency) -> Mapping[str, BatchTotals]: ...
    def outcome_counts(self, batch: int, tender: Tender = Tender.CARD) -> dict[str, int]: ...
    def upi_totals(self, batch: int) -> Mapping[int, BatchTotals]: ...
    def count_in_state(self, batch: int, state: PaymentState) -> int: ...
    def other_currencies(self, batch: int, currency: Currency) -> dict[int, list[int]]: ...
    def open_holds(self, currency: Currency) -> tuple[int, int]: ...
    def tip_totals(self, batch: int, currency: Currency) -> tuple[int, Money]: ...
    def partial_sales(self, batch: int | None = None) -> Sequence[
        tuple[PaymentRef, Sequence[PaymentRef]]]: ...
    def asked(self, payment_id: int) -> int: ...


class BatchNotClosed(PitapError):
    """Settlement did not start: a payment still waits for its reply, or a reversal or advice
    could not be sent. Nothing went to the host for the batch; settle again later."""


@dataclass(frozen=True)
class PartialSale:
    """A partially approved sale on the Z-report: its first part, every part that paid it (the
    first first), what was asked and what the parts paid (minor units)."""

    id: int
    parts: list[int]
    asked: int
    paid: int


@dataclass
class ZReport:
    terminal_id: str
    merchant_id: str
    merchant_name: str
    batch: int
    currency: Currency
    closed_at: str
    totals: BatchTotals
    host_totals: BatchTotals | None
    closed: bool  # the host accepted the batch (agreed, or after the upload)
    agreed_first_time: bool
    response_code: str
    message: str
    uploaded: int = 0
    by_scheme: dict[str, BatchTotals] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    reversed: int = 0
    # stored while the host was unreachable ([offline]) and declined by it when forwarded
    declined_late: int = 0
    declined_late_amount: int = 0  # minor units, in the batch's currency
    voided: int = 0  # sales voided before settlement: in no total
    released: int = 0  # holds of the batch released (never charged): a line of their own
    queue_pending: int = 0
    # charged payments of this batch in other currencies: {currency: [count, amount]}; a batch
    # settles one currency (the terminal's), these are listed, not sent
    other_currencies: dict[int, list[int]] = field(default_factory=dict)
    # pre-authorizations: completions are sales (in the totals); holds still open are not
    completions: int = 0
    completions_amount: int = 0
    open_holds: int = 0
    open_holds_amount: int = 0
    tips_count: int = 0  # sales of the batch with a tip (firmware.tips)
    tips_amount: int = 0  # minor units: their tips, part of the sales total
    # partially approved sales (response code 10), their parts grouped (each part is one of the
    # sales counted)
    partial_sales: list[PartialSale] = field(default_factory=list)
    # UPI (India): the batch's approved UPI payments and refunds by currency, in no card total
    # and never sent to the acquirer; and how its UPI payments ended
    upi: dict[int, BatchTotals] = field(default_factory=dict)
    upi_outcomes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Plain data (`pitap settle --json`): the currency by its number, totals by figure."""
        d = asdict(self)
        d["currency"] = self.currency.numeric
        d["totals"] = self.totals.counts()
        d["host_totals"] = None if self.host_totals is None else self.host_totals.counts()
        d["by_scheme"] = {name: t.counts() for name, t in self.by_scheme.items()}
        d["upi"] = {str(number): t.counts() for number, t in self.upi.items()}
        return d


def _money(money: Money) -> str:
    return format_money(money, load_language("en"), Style.PAPER)


def _other_money(amount: int, currency: int) -> str:
    try:
        return _money(Money.of(amount, currency))
    except UnknownCurrency:
        return f"{amount} (minor units, currency {currency})"


def batch_items(journal: Batches, batch: int, merchant_id: str) -> list[AuthRequest]:
    """The batch's charged payments as upload items (no card data: amounts and references)."""
    return [AuthRequest.from_payment(p, merchant_id) for p in journal.charged_payments(batch)]


def settle_day(journal: Batches, acquirer: Acquirer, cfg: Config) -> ZReport:
    """Drain the queue, close the batch with the host, return the Z-report.

    Raises BatchNotClosed, before anything of the batch is sent, while a payment is
    "awaiting_reply" or the queue does not drain completely. Raises HostUnavailable / NoReply
    when the host cannot be reached for the totals; the settlement then stays recorded as
    unfinished in the journal and the next run resumes it with the same batch."""
    saf = StoreAndForward(journal, acquirer, cfg.terminal.merchant_id)
    try:
        drained = saf.drain(include_not_due=True)
    finally:
        saf.stop()
    _refuse_while_open(journal, drained.failed)
    unfinished = journal.unfinished_settlements()
    # A run a power cut interrupted goes first: same batch, same totals.
    s = unfinished[0] if unfinished else journal.begin_settlement(cfg.currency)
    batch, totals = s.batch, s.totals
    items = batch_items(journal, batch, cfg.terminal.merchant_id)
    journal.record_settlement(s.id, SettlementState.SENT)
    try:
        result: SettlementResult = acquirer.settle(totals, items)
    except (HostUnavailable, NoReply) as exc:
        journal.record_settlement(s.id, SettlementState.STARTED, message=str(exc))
        raise
    journal.record_settlement(s.id, SettlementState.DONE if result.agreed
                              else SettlementState.FAILED, result.response_code, result.message)
    by_scheme = dict(journal.scheme_totals(batch, totals.currency))
    completed = [p for p in journal.charged_payments(batch)
                 if p.txn_type == TxnType.COMPLETION and p.currency == totals.currency.numeric]
    holds = journal.open_holds(totals.currency)
    tips_count, tips = journal.tip_totals(batch, totals.currency)
    late = [p for p in journal.payments_in_state(PaymentState.DECLINED_LATE)
            if p.batch == batch and p.currency == totals.currency.numeric]
    voids = [p.txn_type for p in journal.payments_in_state(PaymentState.VOIDED)
             if p.batch == batch]  # a released hold is a voided preauth: never charged
    partials = [PartialSale(first.id, [p.id for p in parts], journal.asked(first.id),
                            sum(p.amount for p in parts))
                for first, parts in journal.partial_sales(batch)
                if first.currency == totals.currency.numeric]
    return ZReport(
        terminal_id=cfg.terminal.terminal_id, merchant_id=cfg.terminal.merchant_id,
        merchant_name=cfg.terminal.merchant_name, batch=batch, currency=totals.currency,
        closed_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        totals=totals, host_totals=result.host_totals,
        closed=result.agreed, agreed_first_time=result.agreed and "first_response" not in
        result.extra, response_code=result.response_code, message=result.message,
        uploaded=int(result.extra.get("uploaded", "0") or 0), by_scheme=by_scheme,
        outcomes=journal.outcome_counts(batch),
        reversed=journal.count_in_state(batch, PaymentState.REVERSED),
        declined_late=len(late), declined_late_amount=sum(p.amount for p in late),
        voided=sum(kind is not TxnType.PREAUTH for kind in voids),
        released=voids.count(TxnType.PREAUTH),
        queue_pending=len(journal.queue()),
        other_currencies=journal.other_currencies(batch, totals.currency),
        completions=len(completed), completions_amount=sum(p.amount for p in completed),
        open_holds=holds[0], open_holds_amount=holds[1],
        tips_count=tips_count, tips_amount=tips.minor, partial_sales=partials,
        upi=dict(journal.upi_totals(batch)), upi_outcomes=journal.outcome_counts(batch, Tender.UPI),
    )


def _refuse_while_open(journal: Batches, why_not_sent: str) -> None:
    """BatchNotClosed when a payment's outcome is still open: waiting for its reply (another
    thread's payment; a crashed one recovery has turned into a queued reversal) or queued."""
    waiting = journal.payments_in_state(PaymentState.AWAITING_REPLY)
    if waiting:
        ids = ", ".join(f"#{p.id}" for p in waiting)
        raise BatchNotClosed(f"payment {ids} is still waiting for the host's reply")
    pending = journal.queue()
    stored = [q.payment_id for q in pending if q.kind is QueueKind.DEFERRED]
    if stored:  # [offline]: the batch waits for them; the shopkeeper sees which
        ids = ", ".join(f"#{pid}" for pid in stored)
        raise BatchNotClosed(f"{len(stored)} stored payment(s) not yet forwarded ({ids})"
                             + (f" ({why_not_sent})" if why_not_sent else ""))
    if pending:
        kinds = Counter(q.kind.value for q in pending)
        what = " and ".join(f"{n} {kind}(s)" for kind, n in sorted(kinds.items(), reverse=True))
        raise BatchNotClosed(f"{what} not acknowledged by the host"
                             + (f" ({why_not_sent})" if why_not_sent else ""))


def format_z_report(z: ZReport) -> str:
    """The end-of-day report as plain text, 40 columns (fits a receipt printer)."""
    t = z.totals
    lines = [
        "Z-REPORT".center(40),
        z.merchant_name.center(40),
        f"Terminal {z.terminal_id}  Merchant {z.merchant_id}",
        f"Batch {z.batch:06d}   {z.closed_at}",
        "-" * 40,
        f"{'Sales':<12}{t.sales_count:>6}  {_money(t.sales):>20}",
        f"{'Refunds':<12}{t.refunds_count:>6}  {_money(t.refunds):>20}",
        f"{'Net':<20}{_money(t.net):>20}",
    ]
    if z.tips_count:  # part of the sales above, listed apart
        lines.append(f"{'  of which tips':<14}{z.tips_count:>4}  "
                     f"{_money(Money(z.tips_amount, z.currency)):>20}")
    lines.append("-" * 40)
    for scheme, row in sorted(z.by_scheme.items()):
        lines.append(f"{scheme:<12}{row.sales_count:>6}  {_money(row.sales):>20}")
        if row.refunds_count:
            lines.append(f"{'  refunds':<12}{row.refunds_count:>6}  {_money(row.refunds):>20}")
    counted = ("approved", PaymentState.VOIDED.value)  # charged, or on a line of their own
    if z.outcomes:
        lines.append("Not charged: " + ", ".join(
            f"{name} {n}" for name, n in sorted(z.outcomes.items()) if name not in counted)
            if any(name not in counted for name in z.outcomes) else "Not charged: none")
    for sale in z.partial_sales:  # in the sales above, a part each
        paid = _money(Money(sale.paid, z.currency))
        lines.append(f"  partial #{sale.id:<6}{len(sale.parts):>2} parts {paid:>18}")
    if z.completions:
        done = Money(z.completions_amount, z.currency)
        lines.append(f"{'  completions':<12}{z.completions:>6}  {_money(done):>20}")
    if z.voided:
        lines.append(f"Voided (in no total): {z.voided}")
    if z.released:
        lines.append(f"Holds released (never charged): {z.released}")
    if z.reversed:
        lines.append(f"Reversed (no reply in time): {z.reversed}")
    if z.declined_late:
        late = Money(z.declined_late_amount, z.currency)
        lines.append(f"Declined after the fact: {z.declined_late} {_money(late):>14}")
    lines.append("-" * 40)
    if z.closed and z.agreed_first_time:
        lines.append("Host: totals agreed, batch closed")
    elif z.closed:
        lines.append(f"Host: totals disagreed; batch uploaded ({z.uploaded}) and closed")
    else:
        lines.append(f"Host: batch NOT closed ({z.response_code} {z.message})")
    if z.host_totals and z.host_totals.counts() != z.totals.counts():
        h = z.host_totals
        lines.append(f"Host counted sales {h.sales_count} {_money(h.sales)},"
                     f" refunds {h.refunds_count} {_money(h.refunds)}")
    for cur_other, (count, net) in sorted(z.other_currencies.items()):
        lines.append(f"Not settled here: {count} in {_other_money(net, cur_other)} (net)")
    if z.open_holds:
        held = Money(z.open_holds_amount, z.currency)
        lines.append(f"Open holds (in no total): {z.open_holds} {_money(held):>14}")
    if z.queue_pending:
        lines.append(f"Still queued for the host: {z.queue_pending}")
    lines += upi_lines(z.upi, z.upi_outcomes)
    return "\n".join(lines)


def upi_lines(upi: Mapping[int, BatchTotals], outcomes: Mapping[str, int]) -> list[str]:
    """The Z-report's UPI part: per currency the UPI sales, refunds and net, and how many UPI
    payments were not paid (none of it in the card totals above, nor sent to the acquirer)."""
    if not upi and not outcomes:
        return []
    lines = ["-" * 40, "UPI (settled by the PSP, not the host)"]
    for _number, t in sorted(upi.items()):
        lines += [f"{'UPI sales':<12}{t.sales_count:>6}  {_money(t.sales):>20}",
                  f"{'UPI refunds':<12}{t.refunds_count:>6}  {_money(t.refunds):>20}",
                  f"{'UPI net':<20}{_money(t.net):>20}"]
    unpaid = {name: n for name, n in sorted(outcomes.items()) if name != "approved"}
    lines.append("UPI not paid: " + (", ".join(f"{name} {n}" for name, n in unpaid.items())
                                     if unpaid else "none"))
    return lines
