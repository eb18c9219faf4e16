"""The payment's vocabulary: transaction types, states, outcomes, queue kinds, legal transitions.

One module owns the lifecycle of a payment; it imports nothing of the terminal, so that the
kernel, the journal, the acquirer link, the screens' callers and the commands can all read it.
Every value is the string the journal already keeps in SQLite (a journal written before these
enums existed reads unchanged), and the code the screens' language files are keyed by
(`PaymentOutcome.APPROVED.key == "approved"`).

The life of one payment, as the journal records it:

    started -> [try_again ...] -> card_read -> awaiting_reply -> approved | declined | error
                                            -> approved (offline) -> advice_queued -> advised
            -> no_card | cancelled | try_again | error            (nothing was read or sent)
    awaiting_reply -> reversal_queued -> error -> reversed         (no reply: outcome unknown)
    approved | advised | advice_queued -> refunded                 (refunded in full)
    awaiting_reply -> stored -> forwarded | declined_late          (host unavailable: deferred
                                                                    authorization, [offline])
    approved | advised -> void_queued -> voided     (voided: a reversal the shopkeeper asked for)
    advice_queued -> voided                         (voided before its advice went: dropped)

A UPI payment (tender "upi", firmware.upi.tender) has no card and no host:

    started -> upi_pending -> approved (the PSP said SUCCESS) | declined (FAILURE, EXPIRED)
                              | cancelled (withdrawn at the PSP) | error (the PSP unavailable:
                              nothing created there)
    approved -> refunded                            (refunded in full through the PSP)

A pre-authorization (firmware.preauth) is three kinds of payment on the same states: the hold
(`preauth`, a tap, approved online; released = its void), each `increment` (no tap: started ->
card_read -> awaiting_reply -> approved | declined | error) and the `completion` (no tap:
started -> card_read -> approved -> advice_queued -> advised, its 0220 advice).

`LEGAL_TRANSITIONS` is that picture as data; the journal refuses any other state change.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BOOKED",
    "LEGAL_TRANSITIONS",
    "PaymentOutcome",
    "PaymentState",
    "QueueKind",
    "SettlementState",
    "Tender",
    "TxnType",
    "is_legal",
    "transition_problem",
]


class TxnType(StrEnum):
    """What a payment is: a purchase (a sale) or a refund; a pre-authorization's hold, an
    increment of it and its completion (firmware.preauth). One word each, everywhere."""

    PURCHASE = "purchase"
    REFUND = "refund"
    PREAUTH = "preauth"  # funds held (0100), never in a settlement total
    INCREMENT = "increment"  # the hold raised (0100 referencing it), never in a total
    COMPLETION = "completion"  # the hold captured (0220 advice): counts as a sale

    @property
    def holds_funds(self) -> bool:
        """A hold or an increment of one: funds held, not charged (in no settlement total)."""
        return self in (TxnType.PREAUTH, TxnType.INCREMENT)

    @property
    def emv_code(self) -> int:
        """9C transaction type: 00 purchase, 20 refund."""
        return 0x20 if self is TxnType.REFUND else 0x00

    @property
    def key(self) -> str:
        """The screens' and receipts' translation key ("purchase", "refund")."""
        return self.value


class Tender(StrEnum):
    """How a payment is paid: a card (or phone) tapped, or UPI by dynamic QR (India). UPI is in
    no card settlement total and never goes to the acquirer."""

    CARD = "card"
    UPI = "upi"


class PaymentState(StrEnum):
    """Where a payment is in its life; the journal's `state` column and its history."""

    STARTED = "started"
    CARD_READ = "card_read"
    AWAITING_REPLY = "awaiting_reply"
    APPROVED = "approved"
    DECLINED = "declined"
    NO_CARD = "no_card"
    TRY_AGAIN = "try_again"
    CANCELLED = "cancelled"
    ERROR = "error"
    REVERSAL_QUEUED = "reversal_queued"
    REVERSED = "reversed"
    ADVICE_QUEUED = "advice_queued"
    ADVISED = "advised"
    REFUNDED = "refunded"
    # Accepted while the acquirer was unreachable ([offline]), queued as a deferred authorization
    STORED = "stored"
    FORWARDED = "forwarded"  # the host approved the deferred authorization
    DECLINED_LATE = "declined_late"  # ... or declined it: "declined after the fact"
    VOID_QUEUED = "void_queued"  # voided by the shopkeeper; the reversal waits for the host
    VOIDED = "voided"  # cancelled before settlement: in no total
    UPI_PENDING = "upi_pending"  # a UPI request at the PSP, QR shown: not paid until SUCCESS

    @property
    def key(self) -> str:
        return self.value

    @property
    def outcome(self) -> PaymentOutcome | None:
        """The outcome this state tells the customer, when it tells one."""
        try:
            return PaymentOutcome(self.value)
        except ValueError:
            return None


#: An approval that still stands: the money is the merchant's and a void or a partial's rest may
#: still follow (a stored payment is not yet approved; a forwarded one is kept apart).
STANDING: frozenset[PaymentState] = frozenset(
    {PaymentState.APPROVED, PaymentState.ADVICE_QUEUED, PaymentState.ADVISED})
#: What the host has booked or will be told of: a standing approval, or a deferred authorization
#: the host approved since (forwarded); a tip adjustment may still amend it (firmware.tips).
BOOKED: frozenset[PaymentState] = STANDING | {PaymentState.FORWARDED}


class PaymentOutcome(StrEnum):
    """What a payment ended as, for the customer: the one outcome vocabulary of the terminal
    (`PaymentResult.outcome`, the journal's `outcome` column, the screens' keys).

    The kernel's verdict (`firmware.emv.outcome.OutcomeKind`) is a different thing: it says what
    to do next (go online, try again); the terminal loop turns it into one of these."""

    APPROVED = "approved"
    DECLINED = "declined"
    NO_CARD = "no_card"
    TRY_AGAIN = "try_again"
    CANCELLED = "cancelled"
    ERROR = "error"

    @property
    def key(self) -> str:
        return self.value

    @property
    def state(self) -> PaymentState:
        """The journal state that records this outcome."""
        return PaymentState(self.value)


class QueueKind(StrEnum):
    """What store-and-forward holds for a payment."""

    REVERSAL = "reversal"
    ADVICE = "advice"
    DEFERRED = "deferred"  # a stored payment's deferred authorization ([offline])
    VOID = "void"  # a reversal the shopkeeper asked for (`pitap void`), of a standing approval
    TIP = "tip"  # a tip adjustment (`pitap tip`): the payment's state does not change

    @property
    def changes_state(self) -> bool:
        """Whether queuing and acknowledging an item of this kind moves its payment's state (a
        tip adjustment amends the amount and tip instead)."""
        return self in _QUEUED

    @property
    def queued_state(self) -> PaymentState:
        """The payment's state once an item of this kind is queued for it."""
        return _QUEUED[self]

    @property
    def done_state(self) -> PaymentState:
        """The payment's state once the host acknowledged the item."""
        return _DONE[self]


class SettlementState(StrEnum):
    """A settlement run: started (batch closed here), sent (0500 out), done, failed."""

    STARTED = "started"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (SettlementState.DONE, SettlementState.FAILED)


S = PaymentState
_QUEUED = {QueueKind.REVERSAL: S.REVERSAL_QUEUED, QueueKind.ADVICE: S.ADVICE_QUEUED,
           QueueKind.DEFERRED: S.STORED, QueueKind.VOID: S.VOID_QUEUED}
_DONE = {QueueKind.REVERSAL: S.REVERSED, QueueKind.ADVICE: S.ADVISED,
         QueueKind.DEFERRED: S.FORWARDED, QueueKind.VOID: S.VOIDED}
_NOTHING_READ = frozenset({S.TRY_AGAIN, S.CARD_READ, S.NO_CARD, S.CANCELLED, S.ERROR})

# state -> the states it may go to. A state not listed as a key is final.
LEGAL_TRANSITIONS: dict[PaymentState, frozenset[PaymentState]] = {
    S.STARTED: _NOTHING_READ | {S.UPI_PENDING},
    S.UPI_PENDING: frozenset({S.APPROVED, S.DECLINED, S.CANCELLED, S.ERROR}),
    S.TRY_AGAIN: _NOTHING_READ,  # another tap; a second try_again names a new reason
    S.CARD_READ: frozenset({S.AWAITING_REPLY, S.APPROVED, S.DECLINED, S.ERROR}),
    S.AWAITING_REPLY: frozenset({S.APPROVED, S.DECLINED, S.ERROR, S.REVERSAL_QUEUED,
                                 S.STORED}),
    S.STORED: frozenset({S.FORWARDED, S.DECLINED_LATE}),
    S.FORWARDED: frozenset({S.REFUNDED}),
    S.REVERSAL_QUEUED: frozenset({S.ERROR, S.REVERSED}),
    S.ERROR: frozenset({S.REVERSAL_QUEUED, S.REVERSED}),  # a reversal queued before the error
    S.APPROVED: frozenset({S.ADVICE_QUEUED, S.REFUNDED, S.VOID_QUEUED, S.VOIDED}),
    S.ADVICE_QUEUED: frozenset({S.ADVISED, S.REFUNDED, S.VOIDED}),  # voided: advice dropped
    S.ADVISED: frozenset({S.REFUNDED, S.VOID_QUEUED}),
    # the host refused the void (it had settled the approval already): the approval stands
    S.VOID_QUEUED: frozenset({S.VOIDED, S.APPROVED, S.ADVISED}),
    # an offline payment refunded before its advice went; the refund voided: standing again
    S.REFUNDED: frozenset({S.ADVISED, S.APPROVED}),
}
del S


def is_legal(current: PaymentState, new: PaymentState) -> bool:
    """Whether a payment in `current` may go to `new`."""
    return new in LEGAL_TRANSITIONS.get(current, frozenset())


def transition_problem(current: PaymentState, new: PaymentState) -> str:
    """"" when a payment in `current` may go to `new`; otherwise one line saying why not."""
    if is_legal(current, new):
        return ""
    allowed = ", ".join(sorted(LEGAL_TRANSITIONS.get(current, frozenset()))) or "none: it is final"
    return f"a payment in state {current.value!r} cannot go to {new.value!r} (allowed: {allowed})"

