"""Pre-authorization: hold funds with a tap, raise the hold, capture it, or release it; no tap
after the first.

- the hold (`Terminal.preauth`, `pitap preauth`): a tap, an 0100 authorization with field 25 the
  dialect's `preauth_condition`, online only (never stored offline); approved, the journal keeps
  it with its expiry (`[preauth] hold_days`). A hold counts in no settlement total.
- an increment (`increment`): an 0100 without card data naming the hold (field 90: its MTI,
  STAN and time; 37 its RRN), field 4 the amount added. Journalled "awaiting_reply" before it
  leaves: no reply (or a kill) queues its reversal, so the host never keeps an increment the
  terminal does not know of. With the host away nothing is sent and nothing queued (exit 1).
- the completion (`complete`): captures up to the held total plus `[preauth] tolerance_pct`
  (default: the held total) as an 0220 advice naming the hold (90, 37, 38 its approval code).
  It is the terminal's decision within what the issuer approved, so it is journalled approved
  and its advice queued in one transaction before it is sent; with the host away it waits in the
  queue (exit 1) and `pitap settle` sends it first. Only completions count in settlement.
- the release (`release`): the hold's reversal (0400, field 25 the dialect's `void_reason`, 90
  the hold), queued like a void before it is sent; the host away: queued (exit 1).

Refused in one line (HoldRefused, nothing written or sent): an unknown id, a payment that is not
a pre-authorization, one not approved, already released (or its release queued), completed,
expired, in another currency than the terminal settles, a completion over the tolerance.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from enum import StrEnum

from firmware.config import Config
from firmware.host.acquirer import Acquirer, AuthRequest, HostUnavailable, NoReply
from firmware.host.saf import StoreAndForward
from firmware.journal import Hold, HoldStatus, Journal, Payment
from firmware.money import Currency, Money, UnknownCurrency
from firmware.money import currency as currency_of
from firmware.payment import PaymentOutcome, PaymentState, QueueKind, TxnType
from firmware.standing import Refused, Standing, standing_approval
from ui.money import operator_text

__all__ = ["HoldProblem", "HoldRefused", "HoldResult", "check_hold", "complete_hold",
           "completion_limit", "increment_hold", "release_hold"]

log = logging.getLogger(__name__)


class HoldProblem(StrEnum):
    """Why an increment, a completion or a release is refused."""

    UNKNOWN = "unknown"
    NOT_PREAUTH = "not_preauth"
    NOT_APPROVED = "not_approved"
    RELEASED = "released"
    COMPLETED = "completed"
    EXPIRED = "expired"
    OTHER_CURRENCY = "other_currency"
    OVER_TOLERANCE = "over_tolerance"


class HoldRefused(Refused):
    """Refused before anything was written or sent; `why` says which problem, as a code."""

    why: HoldProblem


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _money(amount: int, code: int) -> str:
    try:
        return operator_text(Money(amount, currency_of(code)))
    except UnknownCurrency:
        return f"{amount} (currency {code})"


@dataclass(frozen=True)
class HoldResult:
    """How an increment, completion or release ended. `done`: the host acknowledged it (an
    increment: approved); else `pending` says why not (queued, declined, not sent)."""

    action: str  # "increment", "completion", "release"
    payment: Payment  # the increment's or completion's payment; the hold for a release
    hold: Hold  # the hold as it stands afterwards
    done: bool
    pending: str = ""

    def line(self) -> str:
        h, p = self.hold, self.payment
        held = _money(h.held, h.payment.currency)
        if self.action == "increment":
            added = _money(p.amount, p.currency)
            if self.done:
                return f"#{p.id} increment of hold #{h.id} by {added} approved: {held} held"
            return f"#{p.id} increment of hold #{h.id} by {added} not approved ({self.pending})"
        if self.action == "completion":
            captured = _money(p.amount, p.currency)
            if self.done:
                return (f"#{p.id} completion of hold #{h.id}: {captured} captured of {held} "
                        "held (advice acknowledged)")
            return (f"#{p.id} completion of hold #{h.id}: {captured} captured, queued: the host "
                    f"has not acknowledged it yet ({self.pending}); `pitap settle` sends it "
                    "before closing the batch")
        if self.done:
            return f"#{h.id} hold of {held} released (reversal acknowledged by the host)"
        return (f"#{h.id} release queued: the host has not acknowledged it yet ({self.pending}); "
                "it is sent again with the queue, and `pitap settle` sends it first")

    def as_dict(self, now: dt.datetime | None = None) -> dict[str, object]:
        return {"action": self.action, "id": self.payment.id, "hold": self.hold.id,
                "done": self.done, "pending": self.pending, "state": self.payment.state.value,
                "amount": self.payment.amount, "held": self.hold.held,
                "status": self.hold.status(now or utc_now()).value}


_SAY: dict[Standing, tuple[str, HoldProblem]] = {
    Standing.UNKNOWN: ("no payment {id} in the journal", HoldProblem.UNKNOWN),
    Standing.UPI: ("payment {id} was paid by UPI, not a pre-authorization",
                   HoldProblem.NOT_PREAUTH),
    Standing.OTHER_KIND: ("payment {id} is a {kind}, not a pre-authorization",
                          HoldProblem.NOT_PREAUTH),
    Standing.VOIDED: ("pre-authorization {id} is released", HoldProblem.RELEASED),
    Standing.VOID_QUEUED: ("pre-authorization {id} is released (its reversal is queued for the "
                           "host)", HoldProblem.RELEASED),
    # Never met by a hold, said all the same: refunded or stored (refunds are of purchases,
    # holds online only), settled (check_hold asks nothing of the batch: a hold outlives it).
    Standing.REFUNDED: ("pre-authorization {id} was not approved ({state}): nothing is held",
                        HoldProblem.NOT_APPROVED),
    Standing.STORED: ("pre-authorization {id} was not approved ({state}): nothing is held",
                      HoldProblem.NOT_APPROVED),
    Standing.NOT_APPROVED: ("pre-authorization {id} was not approved ({state}): nothing is held",
                            HoldProblem.NOT_APPROVED),
    Standing.SETTLED: ("pre-authorization {id} is settled", HoldProblem.NOT_APPROVED),
    Standing.OTHER_CURRENCY: ("pre-authorization {id} is in {paid_in}, this terminal settles "
                              "{settles}", HoldProblem.OTHER_CURRENCY),
}


def check_hold(journal: Journal, hold_id: int, settles_in: Currency,
               now: dt.datetime | None = None) -> Hold:
    """The hold, when it is open (may be increased, completed or released): its approval stands
    (firmware.standing; a hold outlives its batch), it is not completed nor expired;
    HoldRefused (one line) saying why not."""
    standing_approval(journal, hold_id, settles_in, _SAY, HoldRefused, kind=TxnType.PREAUTH,
                      open_batch=False)
    hold = journal.holds.get(hold_id)
    assert hold is not None  # an approved pre-authorization is a hold
    status = hold.status(now or utc_now())
    if status is HoldStatus.COMPLETED:
        assert hold.completed_by is not None
        raise HoldRefused(f"pre-authorization {hold_id} is completed (#{hold.completed_by.id})",
                          HoldProblem.COMPLETED)
    if status is HoldStatus.EXPIRED:
        raise HoldRefused(f"pre-authorization {hold_id} expired at "
                          f"{hold.payment.expires_at[:16]} UTC: take a new one",
                          HoldProblem.EXPIRED)
    return hold


def completion_limit(hold: Hold, tolerance_pct: float) -> int:
    """The most a completion of `hold` may capture: the held total plus the tolerance (down)."""
    return hold.held + int(hold.held * tolerance_pct // 100)


def _reference(hold: Hold, stan: int, amount: int, kind: TxnType, when: dt.datetime,
               cfg: Config) -> AuthRequest:
    """An increment's or completion's request: no card data, the hold named (90, 37, 38)."""
    h = hold.payment
    return AuthRequest(
        stan=stan, amount=amount, currency=h.currency, txn_type=kind, pan="", pan_sequence=None,
        expiry="", track2=b"", icc_data=b"", terminal_id=cfg.terminal.terminal_id,
        merchant_id=cfg.terminal.merchant_id, when=when, auth_code=h.auth_code, rrn=h.rrn,
        original_stan=h.stan or 0, original_at=h.created_at)


def _start(journal: Journal, hold: Hold, kind: TxnType, amount: int, when: dt.datetime,
           cfg: Config) -> tuple[int, AuthRequest]:
    """Journal an increment or a completion of `hold` up to "card_read" (the hold's card, no
    tap), with its STAN and its request kept in the vault."""
    h = hold.payment
    pid = journal.new_payment(kind, amount, h.currency, cfg.terminal.terminal_id,
                              created_at=when)
    journal.record(pid, PaymentState.CARD_READ, hold_of=h.id, scheme=h.scheme or None,
                   masked_pan=h.masked_pan or None, application_label=h.application_label or None,
                   aid=h.aid or None, reason=f"{kind.value} of hold #{h.id}: no tap")
    stan = journal.next_stan()
    request = _reference(hold, stan, amount, kind, when, cfg)
    journal.keep_card_data(pid, request)
    return pid, request


def increment_hold(journal: Journal, acquirer: Acquirer, saf: StoreAndForward, hold_id: int,
                   amount: int, cfg: Config) -> HoldResult:
    """Raise hold `hold_id` by `amount` (see the module's docstring)."""
    hold = check_hold(journal, hold_id, cfg.currency)
    when = dt.datetime.now().astimezone()
    pid, request = _start(journal, hold, TxnType.INCREMENT, amount, when, cfg)
    journal.record(pid, PaymentState.AWAITING_REPLY, stan=request.stan)
    pending = ""
    try:
        response = acquirer.authorize(request)
    except HostUnavailable as exc:  # nothing left: nothing to undo, nothing queued
        pending = f"host unavailable, nothing sent: {exc}"
        journal.record(pid, PaymentState.ERROR, reason=pending)
    except NoReply as exc:  # the host may have raised it: reversed
        journal.enqueue(QueueKind.REVERSAL, pid)
        pending = f"no reply from host ({exc}); its reversal is queued"
        journal.record(pid, PaymentState.ERROR, reason=pending)
        saf.drain(include_not_due=True)
    else:
        outcome = PaymentOutcome.APPROVED if response.approved else PaymentOutcome.DECLINED
        if not response.approved:
            pending = f"declined: {response.message} ({response.response_code})"
        journal.record(pid, outcome.state, reason=response.message,
                       response_code=response.response_code,
                       auth_code=response.auth_code or None, rrn=response.rrn or None)
    done = journal.payment(pid)
    log.info("hold %d increment %d: %s", hold_id, pid, done.state.value)
    after = journal.holds.get(hold_id)
    assert after is not None
    return HoldResult("increment", done, after, done.outcome is PaymentOutcome.APPROVED, pending)


def complete_hold(journal: Journal, saf: StoreAndForward, hold_id: int, amount: int | None,
                  cfg: Config) -> HoldResult:
    """Capture `amount` (default: the held total) of hold `hold_id` (the module's docstring)."""
    with saf.held():
        hold = check_hold(journal, hold_id, cfg.currency)
        capture = hold.held if amount is None else amount
        most = completion_limit(hold, cfg.preauth.tolerance_pct)
        if capture > most:
            h = hold.payment
            raise HoldRefused(
                f"completion of {_money(capture, h.currency)} is over what hold {hold_id} "
                f"allows: {_money(hold.held, h.currency)} held + "
                f"{cfg.preauth.tolerance_pct:g}% = {_money(most, h.currency)}",
                HoldProblem.OVER_TOLERANCE)
        when = dt.datetime.now().astimezone()
        pid, request = _start(journal, hold, TxnType.COMPLETION, capture, when, cfg)
        journal.holds.approve_completion(
            pid, stan=request.stan, auth_code=hold.payment.auth_code or None,
            rrn=hold.payment.rrn or None,
            reason=f"completion of hold #{hold_id}; its advice is queued")
        report = saf.drain(include_not_due=True)
    done = journal.payment(pid)
    after = journal.holds.get(hold_id)
    assert after is not None
    advised = done.state is PaymentState.ADVISED
    log.info("hold %d completed by %d: %s", hold_id, pid, done.state.value)
    return HoldResult("completion", done, after, advised,
                      "" if advised else report.failed or "not sent yet")


def release_hold(journal: Journal, saf: StoreAndForward, hold_id: int,
                 cfg: Config) -> HoldResult:
    """Release hold `hold_id`: its reversal queued durably first, then sent with the queue."""
    with saf.held():
        check_hold(journal, hold_id, cfg.currency)
        journal.enqueue(QueueKind.VOID, hold_id)
        report = saf.drain(include_not_due=True)
    after = journal.holds.get(hold_id)
    assert after is not None
    released = after.payment.state is PaymentState.VOIDED
    log.info("hold %d release %s", hold_id, "acknowledged" if released else "queued")
    return HoldResult("release", after.payment, after, released,
                      "" if released else report.failed or "not sent yet")
