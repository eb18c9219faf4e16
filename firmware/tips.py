"""Tips: what a tip may be ([tips] in the configuration), the tip screen's choices, and the tip
adjustment of an approved payment (`pitap tip ID AMOUNT`, restaurant style).

A tip travels with its sale: the total (the amount before the tip plus the tip) is EMV 9F02 and
ISO 8583 field 4, the tip is field 54 (firmware.host.messages), and the journal keeps the total
as the payment's `amount` and the tip apart (`tip`; base = amount - tip).

A tip adjustment changes the tip of an approved purchase of the open batch, before settlement:
it is queued in the journal (kind "tip", with the tip it sets and the STAN of its own message)
before anything is sent, then sent through store-and-forward (0220 with processing code 02 by
default, the dialect says); the host's answer amends the payment's amount and tip. The host
away: it stays queued (sent with the queue; `pitap settle` sends it before closing the batch).
A kill in between leaves it queued; sent again, it sets the same tip (absolute, never added).

Refused (TipRefused, one line, nothing sent or written): tips off, an unknown payment, a refund,
one not approved, voided (or its void queued), refunded, settled, stored and not yet forwarded,
part of a partially approved purchase, in another currency, a tip over the tolerance
(`tips.max_percent` of the amount before the tip), a negative or malformed tip, the same tip.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum

from firmware.config import TipsSection
from firmware.host.saf import StoreAndForward
from firmware.journal import HistoryEntry, Journal, Payment
from firmware.money import Currency, Money, UnknownCurrency
from firmware.money import currency as currency_of
from firmware.payment import BOOKED, QueueKind, TxnType
from firmware.standing import Refused, Standing, standing_approval
from ui.money import operator_text

__all__ = [
    "CUSTOM_KEY", "NO_TIP_KEY", "TipChoice", "TipProblem", "TipRefused", "TipResult",
    "adjust_tip", "check_adjustable", "check_tip", "choose_tip", "max_tip", "parse_tip",
    "preset_tip", "tip_presets",
]

log = logging.getLogger(__name__)

_TIP = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
MAX_DIGITS = 12  # EMV 9F02 / ISO 8583 field 4: the total holds at most 12 digits


class TipProblem(StrEnum):
    """Why a tip is refused (the screens' key `tip_refused_<value>`)."""

    OFF = "off"
    MALFORMED = "malformed"
    NEGATIVE = "negative"
    OVER_TOLERANCE = "over_tolerance"
    UNKNOWN = "unknown"
    NOT_PURCHASE = "not_purchase"
    NOT_APPROVED = "not_approved"
    VOIDED = "voided"
    REFUNDED = "refunded"
    SETTLED = "settled"
    STORED = "stored"
    PARTIAL = "partial"
    UPI = "upi"
    OTHER_CURRENCY = "other_currency"
    UNCHANGED = "unchanged"


class TipRefused(Refused):
    """A tip refused before anything was sent or written; `why` says which, as a code."""

    why: TipProblem


class TipChoice(StrEnum):
    """What the customer chose on the tip screen."""

    PRESET = "preset"
    CUSTOM = "custom"
    NONE = "none"


# The tip screen's keys ([tips] mode = "prompt"): 1..3 the presets (config.MAX_TIP_PRESETS),
# these two the other choices.
CUSTOM_KEY = "4"
NO_TIP_KEY = "0"


def tip_presets(tips: TipsSection, base: int) -> list[tuple[int, int]]:
    """(percent, tip in minor units) of each preset on `base`; a tip rounded up past the
    tolerance is held to it."""
    most = max_tip(tips, base)
    return [(pct, min(preset_tip(base, pct), most)) for pct in tips.presets]


def choose_tip(key: str, presets: list[tuple[int, int]]) -> tuple[TipChoice, int] | None:
    """What `key` chooses on the tip screen: a preset (its tip), another amount (to key next),
    no tip; None for a key that chooses nothing."""
    if key == NO_TIP_KEY:
        return TipChoice.NONE, 0
    if key == CUSTOM_KEY:
        return TipChoice.CUSTOM, 0
    if len(key) == 1 and "1" <= key <= str(len(presets)):
        return TipChoice.PRESET, presets[int(key) - 1][1]
    return None


def _money(amount: int, cur: Currency) -> str:
    return operator_text(Money(amount, cur))


def parse_tip(text: str, cur: Currency) -> int:
    """'2.50' in EUR -> 250 minor units; '0' is no tip. TipRefused (one line) for a sign, an
    exponent, too many decimals or digits: no arithmetic on a number nobody typed."""
    shown = repr(text if len(text) <= 24 else text[:24] + "...")
    if text.strip().startswith("-"):
        raise TipRefused(f"tip {shown}: must not be negative", TipProblem.NEGATIVE)
    match = _TIP.fullmatch(text)
    if match is None:
        raise TipRefused(f"tip {shown}: digits with an optional decimal point, e.g. 2.50",
                         TipProblem.MALFORMED)
    whole, decimals = match.group(1), match.group(2) or ""
    if len(decimals) > cur.exponent:
        raise TipRefused(f"tip {shown}: at most {cur.exponent} decimals in {cur}",
                         TipProblem.MALFORMED)
    digits = (whole + decimals.ljust(cur.exponent, "0")).lstrip("0") or "0"
    if len(digits) > MAX_DIGITS:
        raise TipRefused(f"tip {shown}: far more than any tip can be", TipProblem.OVER_TOLERANCE)
    return int(digits)


def max_tip(tips: TipsSection, base: int) -> int:
    """The largest tip the tolerance allows on `base` (minor units, rounded down)."""
    return base * tips.max_percent // 100


def preset_tip(base: int, percent: int) -> int:
    """`percent` of `base`, rounded half up to the minor unit."""
    return (base * percent + 50) // 100


def check_tip(tips: TipsSection, base: int, tip: int, cur: Currency) -> None:
    """TipRefused when tips are off, or `tip` is negative or over the tolerance on `base`, or
    the total would not fit 12 digits."""
    if not tips.on:
        raise TipRefused("tips are off on this terminal ([tips] mode = \"off\")", TipProblem.OFF)
    if tip < 0:
        raise TipRefused("a tip must not be negative", TipProblem.NEGATIVE)
    most = max_tip(tips, base)
    if tip > most:
        raise TipRefused(f"tip {_money(tip, cur)} is over the tolerance: at most "
                         f"{tips.max_percent}% of {_money(base, cur)} ({_money(most, cur)}, "
                         "tips.max_percent)", TipProblem.OVER_TOLERANCE)
    if len(str(base + tip)) > MAX_DIGITS:
        raise TipRefused("the amount with its tip is over 12 digits of minor units",
                         TipProblem.OVER_TOLERANCE)


@dataclass(frozen=True)
class TipResult:
    """How a tip adjustment ended: `adjusted` once the host accepted it; else queued (host not
    reachable: `pending` says why) or refused by the host (`refused`)."""

    payment: Payment
    tip: int
    adjusted: bool
    refused: str = ""  # the host refused it: why (the payment stays as it was)
    pending: str = ""  # not yet answered: why

    def line(self) -> str:
        p = self.payment
        try:
            cur = currency_of(p.currency)
        except UnknownCurrency:
            return f"#{p.id} tip {self.tip} (currency {p.currency})"
        tip = _money(self.tip, cur)
        if self.adjusted:
            return (f"#{p.id} tip adjusted: subtotal {_money(p.base, cur)}, tip {tip}, total "
                    f"{_money(p.amount, cur)} (acknowledged by the host)")
        if self.refused:
            return f"#{p.id} tip {tip} refused by the host ({self.refused}); payment unchanged"
        return (f"#{p.id} tip {tip} queued: the host has not acknowledged it yet "
                f"({self.pending}); it is sent again with the queue, and `pitap settle` sends it "
                "before closing the batch")


_SAY: dict[Standing, tuple[str, TipProblem]] = {
    Standing.UNKNOWN: ("no payment {id} in the journal", TipProblem.UNKNOWN),
    Standing.UPI: ("payment {id} was paid by UPI: no tip adjustment (the acquirer never saw it)",
                   TipProblem.UPI),
    Standing.OTHER_KIND: ("payment {id} is a {kind}: only a purchase takes a tip",
                          TipProblem.NOT_PURCHASE),
    Standing.VOIDED: ("payment {id} is voided", TipProblem.VOIDED),
    Standing.VOID_QUEUED: ("payment {id} is voided", TipProblem.VOIDED),
    Standing.REFUNDED: ("payment {id} is refunded: its tip cannot change", TipProblem.REFUNDED),
    Standing.STORED: ("payment {id} is stored, not yet forwarded to the bank: adjust its tip "
                      "once the bank has approved it", TipProblem.STORED),
    Standing.NOT_APPROVED: ("payment {id} was not approved ({state}): no tip to adjust",
                            TipProblem.NOT_APPROVED),
    Standing.SETTLED: ("payment {id} is settled: its tip can no longer change",
                       TipProblem.SETTLED),
    Standing.OTHER_CURRENCY: ("payment {id} is in {paid_in}, this terminal settles {settles}",
                              TipProblem.OTHER_CURRENCY),
}


def check_adjustable(journal: Journal, payment_id: int, tip: int, tips: TipsSection,
                     settles_in: Currency) -> Payment:
    """The payment, when its tip may become `tip`; TipRefused (one line) saying why not."""
    if tips.mode != "adjust":
        raise TipRefused(f"tip adjustments are off on this terminal ([tips] mode = "
                         f"\"{tips.mode}\"; \"adjust\" allows them)", TipProblem.OFF)
    p = standing_approval(journal, payment_id, settles_in, _SAY, TipRefused,
                          kind=TxnType.PURCHASE, states=BOOKED)
    if p.part_of is not None or _partially_approved(journal, p):
        raise TipRefused(f"payment {payment_id} is part of a partially approved purchase: "
                         "its tip cannot change", TipProblem.PARTIAL)
    check_tip(tips, p.base, tip, settles_in)
    if tip == _tip_asked(journal, p):
        raise TipRefused(f"payment {payment_id} has that tip already ({_money(tip, settles_in)})"
                         ": nothing to change", TipProblem.UNCHANGED)
    return p


def _partially_approved(journal: Journal, p: Payment) -> bool:
    """Whether the payment was approved for less than asked (its "started" entry says)."""
    history = journal.history(p.id)
    asked = history[0].get("amount") if history else None
    return isinstance(asked, int) and asked != p.amount - p.tip + _started_tip(history)


def _started_tip(history: list[HistoryEntry]) -> int:
    tip = history[0].get("tip", 0) if history else 0
    return int(tip) if isinstance(tip, int) else 0


def _tip_asked(journal: Journal, p: Payment) -> int:
    """The tip the payment will have: the last queued adjustment's, else its own."""
    queued = [q for q in journal.queue(QueueKind.TIP) if q.payment_id == p.id]
    return queued[-1].amount if queued and queued[-1].amount is not None else p.tip


def adjust_tip(journal: Journal, saf: StoreAndForward, payment_id: int, tip: int,
               tips: TipsSection, settles_in: Currency) -> TipResult:
    """Set the tip of `payment_id` to `tip` (see the module's docstring). Store-and-forward is
    held meanwhile, so that the checks and the queuing see one queue."""
    with saf.held():
        check_adjustable(journal, payment_id, tip, tips, settles_in)
        # Durably queued first (with the STAN of its own message), then sent with the queue.
        item = journal.queue_tip(payment_id, tip, journal.next_stan())
        report = saf.drain(include_not_due=True)
        done = journal.payment(payment_id)
        pending = [q for q in journal.queue(QueueKind.TIP) if q.id == item]
        if pending:
            log.info("payment %d tip adjustment queued", payment_id)
            return TipResult(done, tip, adjusted=False,
                             pending=report.failed or "not sent yet")
        if done.tip == tip:
            log.info("payment %d tip adjusted to %d", payment_id, tip)
            return TipResult(done, tip, adjusted=True)
        refused = next((h.get("reason") for h in reversed(journal.history(payment_id))
                        if h.get("tip_refused") is not None), "refused")
        return TipResult(done, tip, adjusted=False, refused=str(refused))
