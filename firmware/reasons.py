"""Why a payment was not approved, as the customer is told: a code, never English.

The terminal picks a `Reason` from what it knows for certain (the host's response code, the
kernel's prompt, which exception the acquirer link raised) and hands it to the screens and the
receipt, which translate it (ui language key `reason_<value>`). The free text of the same event
goes to the logs and the journal only. A reason the language has no words for is shown as the
free text it came with.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason"]


class Reason(StrEnum):
    INSUFFICIENT_FUNDS = "insufficient_funds"
    DO_NOT_HONOUR = "do_not_honour"
    EXPIRED = "expired"
    # SCA soft decline (Mastercard 65, Visa 1A / 70; also 55, 75): the issuer wants the card's
    # PIN, which a phone-only terminal cannot take; a phone wallet verifies its owner itself
    PIN_NEEDED = "pin_needed"
    ISSUER_UNAVAILABLE = "issuer_unavailable"
    LIMIT = "limit"
    NOT_SUPPORTED = "not_supported"
    CARD_DECLINED = "card_declined"
    HOST_UNAVAILABLE = "host_unavailable"  # the request never left: nothing charged
    NO_REPLY = "no_reply"  # no answer, reversed: nothing charged
    OFFLINE_LIMIT = "offline_limit"  # host unreachable, not storable ([offline]): not charged
    UPI_FAILED = "upi_failed"  # UPI: the payer declined, or the request expired or was withdrawn
    UPI_UNKNOWN = "upi_unknown"  # UPI: the PSP did not answer; asked again (never approved)
    ERROR = "error"

    @property
    def not_charged(self) -> bool:
        """The host never decided: "Not charged", not a decline."""
        return self in (Reason.HOST_UNAVAILABLE, Reason.NO_REPLY, Reason.OFFLINE_LIMIT)
