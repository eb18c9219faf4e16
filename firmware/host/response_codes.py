"""ISO 8583 field 39 response codes as an enum: what each means (a `Category`), the short text a
shopkeeper's log line reads, and the `Reason` the customer is told.

Decisions are taken on the code and its category, never on the text: the text is for the logs,
the journal and operators' output.
"""

from __future__ import annotations

from enum import StrEnum

from firmware.reasons import Reason

__all__ = ["Category", "ResponseCode", "message"]


class Category(StrEnum):
    APPROVED = "approved"
    PARTIAL_APPROVAL = "partial_approval"  # approved for less: the amount in field 4
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED = "expired"
    DO_NOT_HONOUR = "do_not_honour"
    REFER_TO_ISSUER = "refer_to_issuer"
    SCA_REQUIRED = "sca_required"  # PIN or chip wanted (strong customer authentication)
    ISSUER_UNAVAILABLE = "issuer_unavailable"
    OVER_LIMIT = "over_limit"
    NOT_PERMITTED = "not_permitted"
    CARD_BLOCKED = "card_blocked"  # lost, stolen, pick up, restricted
    INVALID_REQUEST = "invalid_request"
    TRY_AGAIN = "try_again"
    SYSTEM_ERROR = "system_error"
    OTHER = "other"

    @property
    def reason(self) -> Reason | None:
        """What the customer is told (None: no words of its own, the host's text is shown)."""
        return _REASONS.get(self)


_REASONS: dict[Category, Reason] = {
    Category.INSUFFICIENT_FUNDS: Reason.INSUFFICIENT_FUNDS,
    Category.EXPIRED: Reason.EXPIRED,
    Category.DO_NOT_HONOUR: Reason.DO_NOT_HONOUR,
    Category.SCA_REQUIRED: Reason.PIN_NEEDED,
    Category.ISSUER_UNAVAILABLE: Reason.ISSUER_UNAVAILABLE,
    Category.OVER_LIMIT: Reason.LIMIT,
}


class ResponseCode(StrEnum):
    APPROVED = "00"
    REFER_TO_ISSUER = "01"
    INVALID_MERCHANT = "03"
    PICK_UP = "04"
    DO_NOT_HONOUR = "05"
    APPROVED_WITH_ID = "08"
    PARTIAL_APPROVAL = "10"  # approved for the (smaller) amount in field 4
    APPROVED_VIP = "11"
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD_NUMBER = "14"
    NO_SUCH_ISSUER = "15"
    RE_ENTER = "19"
    FORMAT_ERROR = "30"
    LOST_CARD = "41"
    STOLEN_CARD = "43"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_CARD = "54"
    INCORRECT_PIN = "55"
    NOT_PERMITTED_TO_CARDHOLDER = "57"
    NOT_PERMITTED_TO_TERMINAL = "58"
    EXCEEDS_AMOUNT_LIMIT = "61"
    RESTRICTED_CARD = "62"
    EXCEEDS_FREQUENCY_LIMIT = "65"  # Mastercard's SCA soft decline: the card wants its PIN
    SCA_REQUIRED = "1A"  # Visa: additional customer authentication required
    PIN_DATA_REQUIRED = "70"  # Visa: PIN data required
    PIN_TRIES_EXCEEDED = "75"
    ISSUER_UNAVAILABLE = "91"
    NO_ROUTE_TO_ISSUER = "92"
    DUPLICATE = "94"
    RECONCILE_ERROR = "95"
    SYSTEM_MALFUNCTION = "96"

    @classmethod
    def of(cls, code: str) -> ResponseCode | None:
        """The code as received ('51'), None for one outside this table."""
        try:
            return cls(code)
        except ValueError:
            return None

    @property
    def category(self) -> Category:
        return _INFO[self][1]

    @property
    def approved(self) -> bool:
        """The issuer approved (in full, or for less: `partial`)."""
        return self.category in (Category.APPROVED, Category.PARTIAL_APPROVAL)

    @property
    def partial(self) -> bool:
        """Approved for less than asked: the amount approved is in field 4."""
        return self.category is Category.PARTIAL_APPROVAL

    @property
    def text(self) -> str:
        return _INFO[self][0]


# code -> (what the shopkeeper reads, kept short for a 320x240 screen; its category)
_INFO: dict[ResponseCode, tuple[str, Category]] = {
    ResponseCode.APPROVED: ("Approved", Category.APPROVED),
    ResponseCode.REFER_TO_ISSUER: ("Refer to card issuer", Category.REFER_TO_ISSUER),
    ResponseCode.INVALID_MERCHANT: ("Invalid merchant", Category.INVALID_REQUEST),
    ResponseCode.PICK_UP: ("Card not accepted (pick up)", Category.CARD_BLOCKED),
    ResponseCode.DO_NOT_HONOUR: ("Declined by card issuer", Category.DO_NOT_HONOUR),
    ResponseCode.APPROVED_WITH_ID: ("Approved (with identification)", Category.APPROVED),
    ResponseCode.PARTIAL_APPROVAL: ("Partially approved", Category.PARTIAL_APPROVAL),
    ResponseCode.APPROVED_VIP: ("Approved", Category.APPROVED),
    ResponseCode.INVALID_TRANSACTION: ("Invalid transaction", Category.INVALID_REQUEST),
    ResponseCode.INVALID_AMOUNT: ("Invalid amount", Category.INVALID_REQUEST),
    ResponseCode.INVALID_CARD_NUMBER: ("Card number not recognised", Category.INVALID_REQUEST),
    ResponseCode.NO_SUCH_ISSUER: ("Unknown card issuer", Category.INVALID_REQUEST),
    ResponseCode.RE_ENTER: ("Please try again", Category.TRY_AGAIN),
    ResponseCode.FORMAT_ERROR: ("Message format error", Category.SYSTEM_ERROR),
    ResponseCode.LOST_CARD: ("Card reported lost", Category.CARD_BLOCKED),
    ResponseCode.STOLEN_CARD: ("Card reported stolen", Category.CARD_BLOCKED),
    ResponseCode.INSUFFICIENT_FUNDS: ("Insufficient funds", Category.INSUFFICIENT_FUNDS),
    ResponseCode.EXPIRED_CARD: ("Card expired", Category.EXPIRED),
    ResponseCode.INCORRECT_PIN: ("Incorrect PIN", Category.SCA_REQUIRED),
    ResponseCode.NOT_PERMITTED_TO_CARDHOLDER: ("Not allowed for this card",
                                               Category.NOT_PERMITTED),
    ResponseCode.NOT_PERMITTED_TO_TERMINAL: ("Not allowed on this terminal",
                                             Category.NOT_PERMITTED),
    ResponseCode.EXCEEDS_AMOUNT_LIMIT: ("Over the card's amount limit", Category.OVER_LIMIT),
    ResponseCode.RESTRICTED_CARD: ("Restricted card", Category.CARD_BLOCKED),
    ResponseCode.EXCEEDS_FREQUENCY_LIMIT: ("Card wants its PIN (SCA)", Category.SCA_REQUIRED),
    ResponseCode.SCA_REQUIRED: ("Card wants its PIN (SCA)", Category.SCA_REQUIRED),
    ResponseCode.PIN_DATA_REQUIRED: ("Card wants its PIN (SCA)", Category.SCA_REQUIRED),
    ResponseCode.PIN_TRIES_EXCEEDED: ("PIN tries exceeded", Category.SCA_REQUIRED),
    ResponseCode.ISSUER_UNAVAILABLE: ("Card issuer unavailable, try later",
                                      Category.ISSUER_UNAVAILABLE),
    ResponseCode.NO_ROUTE_TO_ISSUER: ("Card issuer unknown to the network",
                                      Category.SYSTEM_ERROR),
    ResponseCode.DUPLICATE: ("Duplicate transaction", Category.INVALID_REQUEST),
    ResponseCode.RECONCILE_ERROR: ("Totals do not agree", Category.OTHER),
    ResponseCode.SYSTEM_MALFUNCTION: ("Acquirer system error", Category.SYSTEM_ERROR),
}


def message(code: str) -> str:
    """'51' -> 'Insufficient funds'; a code outside the table -> 'Declined (code 99)'."""
    known = ResponseCode.of(code)
    return known.text if known is not None else f"Declined (code {code})"
