"""Receipts of a payment: merchant and customer copies for an ESC/POS printer, and the e-receipt
a QR code carries when there is no printer. Built from the journal's payment dict and the
[terminal]/[printer] configuration; the card shows as its last four digits only. Why a payment
was not approved comes as a firmware.reasons.Reason code (from the terminal, or the host's
response code the journal kept); the journal's free-text reason is printed only when the language
has no words for the code.

Nothing here prints by itself: `render_receipt` hands lines to a drivers.printer printer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from drivers.printer import Printer, PrintLine
from firmware.config import Config
from firmware.emv.outcome import CvmMethod
from firmware.host.response_codes import ResponseCode
from firmware.money import Money
from firmware.payment import PaymentState, TxnType
from firmware.reasons import Reason
from ui.lang import Language
from ui.money import Style, format_money
from ui.screens import card_ending, reason_text, scheme_name, txn_wording

OUTCOME_KEYS = {"approved": "approved", "declined": "declined"}
VOIDED_STATES = (PaymentState.VOID_QUEUED.value, PaymentState.VOIDED.value)
# How the cardholder was verified (the journal's cvm, a CvmMethod value) -> the receipt's words;
# a method not listed (none reported, "failed") states that nobody was verified.
CVM_KEYS = {CvmMethod.CDCVM: "cvm_cdcvm", CvmMethod.NO_CVM: "cvm_no_cvm",
            CvmMethod.SIGNATURE: "cvm_signature", CvmMethod.ONLINE_PIN: "cvm_online_pin"}


@dataclass(frozen=True)
class ReceiptBuilder:
    """What every receipt of this terminal carries, and how wide the paper is."""

    merchant_name: str
    merchant_city: str
    merchant_id: str
    terminal_id: str
    columns: int = 32  # characters a line: 32 on 58 mm paper, 48 on 80 mm
    url: str = ""  # e-receipt address template, e.g. "https://r.example/{terminal_id}/{id}"

    @classmethod
    def from_config(cls, cfg: Config) -> ReceiptBuilder:
        return cls(cfg.terminal.merchant_name, cfg.terminal.merchant_city,
                   cfg.terminal.merchant_id, cfg.terminal.terminal_id,
                   columns=cfg.printer.columns,
                   url=cfg.printer.receipt_url)

    def headline(self, text: str) -> PrintLine:
        """Centred, bold, double size when it fits the paper at double width."""
        return PrintLine(text, "center", bold=True, large=2 * len(text) <= self.columns)

    def pair(self, left: str, right: str) -> PrintLine:
        """'Label           value' across the paper's width."""
        space = max(1, self.columns - len(left) - len(right))
        return PrintLine(f"{left}{' ' * space}{right}"[: max(self.columns, len(right) + 1)])


def amount_text(payment: dict, lang: Language, key: str = "amount") -> str:
    """The payment's amount (or another of its amounts: `key`) as printed: 'EUR 1,234.56' (en)
    / 'EUR 1.234,56' (it)."""
    money = Money.of(int(payment.get(key, 0)), int(payment.get("currency", 978)))
    return format_money(money, lang, Style.PAPER)


# A pre-authorization's receipts (firmware.preauth): the hold's headline amount is what it holds
# (`held` in the payment dict when given: after increments), a completion's what it captured;
# an increment and a completion also print the held total on a line of their own.
AMOUNT_LABELS = {TxnType.PREAUTH.value: "held", TxnType.COMPLETION.value: "completed"}
HELD_LINE = (TxnType.INCREMENT.value, TxnType.COMPLETION.value)


def headline_amount(payment: dict, lang: Language) -> str:
    """'Total EUR 12.50', 'Held EUR 120.00' (a hold), 'Completed EUR 115.00' (a completion),
    'Total paid EUR 31.10' (a partially approved sale, its parts grouped)."""
    if grouped_parts(payment):
        paid = Money.of(paid_amount(payment), int(payment.get("currency", 978)))
        return f"{lang.t('total_paid')} {format_money(paid, lang, Style.PAPER)}"
    kind = str(payment.get("txn_type") or TxnType.PURCHASE)
    key = "held" if kind == TxnType.PREAUTH.value and payment.get("held") is not None else "amount"
    return f"{lang.t(AMOUNT_LABELS.get(kind, 'total'))} {amount_text(payment, lang, key)}"
def grouped_parts(payment: dict) -> list[dict]:
    """The parts of a partially approved sale the receipt groups (`parts` in the payment dict:
    each part's payment dict, the first first); [] for any other payment."""
    parts = payment.get("parts")
    return list(parts) if isinstance(parts, list) and len(parts) > 1 else []


def paid_amount(payment: dict) -> int:
    """What the receipt's payment charged in all (minor units): a partially approved sale's
    parts together, else its amount."""
    parts = grouped_parts(payment)
    return sum(int(p.get("amount", 0)) for p in parts) if parts else int(payment.get("amount", 0))


def part_lines(builder: ReceiptBuilder, payment: dict, lang: Language) -> list[PrintLine]:
    """A partially approved sale: "Approved X of Y" (the first part, of what was asked), then a
    line a part (its card's last four, amount) with its approval code and STAN, its card's own
    application label and AID, RRN, response code and cardholder verification: each part was a
    card of its own, so none of these is the sale's; none for any other payment."""
    parts = grouped_parts(payment)
    if not parts:
        return []
    code = int(payment.get("currency", 978))

    def paper(amount: int) -> str:
        return format_money(Money.of(amount, code), lang, Style.PAPER)

    first = int(parts[0].get("amount", 0))
    asked = int(payment.get("asked") or paid_amount(payment))
    lines = [PrintLine(lang.t("partial_approved", paid=paper(first), total=paper(asked)))]
    for n, part in enumerate(parts, start=1):
        ending = card_ending(str(part.get("masked_pan") or "")).replace("••••", "****")
        lines.append(builder.pair(f"{lang.t('part')} {n} {ending}".strip(),
                                  paper(int(part.get("amount", 0)))))
        stan = part.get("stan")
        refs = [f"{lang.t('auth_code')} {part['auth_code']}" if part.get("auth_code") else "",
                f"STAN {stan:06d}" if isinstance(stan, int) else ""]
        lines.append(PrintLine("  " + "  ".join(r for r in refs if r)))
        lines += [builder.pair(f"  {lang.t(key)}", value)
                  for key, value in card_details(part, lang)]
        if part.get("rrn"):
            lines.append(builder.pair("  RRN", str(part["rrn"])))
        if part.get("response_code"):
            lines.append(builder.pair(f"  {lang.t('response')}", str(part["response_code"])))
        if part.get("outcome", "approved") == "approved" and not voided(part):
            lines.append(PrintLine(f"  {cvm_statement(part, lang)}"))
    return lines


def card_details(payment: dict, lang: Language) -> list[tuple[str, str]]:
    """(label key, value) of the card's application label (its own, 50 / 9F12; the scheme's
    name only when the card gave none) and AID, as far as the journal has them."""
    scheme = scheme_name(str(payment.get("scheme") or ""))
    label = str(payment.get("application_label") or scheme)
    details = [("application", label)] if label else []
    if payment.get("aid"):
        details.append(("aid", str(payment["aid"])))
    return details


def tip_lines(builder: ReceiptBuilder, payment: dict, lang: Language) -> list[PrintLine]:
    """A tipped payment's subtotal and tip lines (before its total); none without a tip."""
    tip = int(payment.get("tip") or 0)
    if not tip:
        return []
    code = int(payment.get("currency", 978))
    base = Money.of(paid_amount(payment) - tip, code)
    return [builder.pair(lang.t("subtotal"), format_money(base, lang, Style.PAPER)),
            builder.pair(lang.t("tip"), format_money(Money.of(tip, code), lang, Style.PAPER))]


def when_text(payment: dict) -> str:
    raw = str(payment.get("created_at") or "")
    try:
        when = dt.datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if when.tzinfo is not None:  # the journal keeps UTC; the customer reads local time
        when = when.astimezone()
    return when.strftime("%d/%m/%Y %H:%M:%S")


def decline_reason(payment: dict, reason: Reason | None = None) -> Reason | None:
    """`reason` when given, else the one the host's response code (39) names, else None."""
    if reason is not None:
        return reason
    code = ResponseCode.of(str(payment.get("response_code") or ""))
    return code.category.reason if code is not None else None


def outcome_key(payment: dict, reason: Reason | None = None) -> str:
    """'approved', 'declined', 'not_charged' (an error because the host never decided) or ''."""
    outcome = str(payment.get("outcome") or payment.get("state") or "")
    if outcome == "error" and reason is not None and reason.not_charged:
        return "not_charged"
    return OUTCOME_KEYS.get(outcome, "")


def voided(payment: dict) -> bool:
    """Voided (or its void queued for the host): the receipt says VOID, not the sale."""
    return str(payment.get("state") or "") in VOIDED_STATES


def cvm_method(payment: dict) -> CvmMethod:
    """How the cardholder was verified, as the journal kept it (none reported: no CVM)."""
    try:
        return CvmMethod(str(payment.get("cvm") or ""))
    except ValueError:
        return CvmMethod.NO_CVM


def cvm_statement(payment: dict, lang: Language) -> str:
    """'Verified by device', 'No cardholder verification', 'Signature', ..."""
    return lang.t(CVM_KEYS.get(cvm_method(payment), "cvm_no_cvm"))


def cvm_lines(builder: ReceiptBuilder, payment: dict, lang: Language) -> list[PrintLine]:
    """The cardholder verification statement; a signature line when the CVM was signature."""
    method = cvm_method(payment)
    lines = [PrintLine(cvm_statement(payment, lang), "center")]
    if method is CvmMethod.SIGNATURE:
        lines += [PrintLine(), PrintLine("x" + "_" * (builder.columns - 2), "center")]
    return lines


def outcome_text(payment: dict, lang: Language, reason: Reason | None = None) -> str:
    """'Approved' / 'Declined' / 'Not charged' ('Refund approved' ... for a refund), 'Voided'."""
    if voided(payment):
        return lang.t("released" if payment.get("txn_type") == TxnType.PREAUTH else "voided")
    key = outcome_key(payment, reason)
    if not key:
        return str(payment.get("outcome") or payment.get("state") or "")
    return lang.t(txn_wording(TxnType(payment.get("txn_type") or TxnType.PURCHASE), key, lang))


def receipt_lines(builder: ReceiptBuilder, payment: dict, copy: str,
                  lang: Language, reason: Reason | None = None) -> list[PrintLine]:
    """One copy ("merchant" or "customer") of a payment's receipt; `reason` why it was not
    approved (default: what the host's response code says)."""
    t = lang.t
    reason = decline_reason(payment, reason)
    approved = payment.get("outcome") == "approved"
    rule = PrintLine("-" * builder.columns)
    lines = [
        builder.headline(builder.merchant_name),
        PrintLine(builder.merchant_city, "center"),
        rule,
        builder.pair(t("merchant"), builder.merchant_id),
        builder.pair(t("terminal"), str(payment.get("terminal_id") or builder.terminal_id)),
        builder.pair(t("date"), when_text(payment)),
        rule,
        PrintLine(t("void" if voided(payment) and payment.get("txn_type") != TxnType.PREAUTH
                    else TxnType(payment.get("txn_type") or TxnType.PURCHASE)).upper(),
                  "center", bold=True),
    ]
    upi = payment.get("tender") == "upi"
    # A sale paid in parts: each part's card, references and answer go with its line (below).
    grouped = bool(grouped_parts(payment))
    if upi:
        lines += [builder.pair(left, right) for left, right in upi_refs(payment, lang)]
    elif not grouped:
        lines += [builder.pair(t(key), value) for key, value in card_details(payment, lang)]
        ending = card_ending(str(payment.get("masked_pan") or ""))
        if ending:
            lines.append(builder.pair(t("card"), ending.replace("••••", "****")))
    if not upi:
        lines.append(PrintLine(t("contactless")))
    if not upi and not grouped:
        stan = payment.get("stan")
        lines.append(builder.pair("STAN", f"{stan:06d}" if isinstance(stan, int) else "-"))
        if payment.get("rrn"):
            lines.append(builder.pair("RRN", str(payment["rrn"])))
    if payment.get("txn_type") in HELD_LINE and payment.get("held") is not None:
        lines.append(builder.pair(t("held"), amount_text(payment, lang, "held")))
    lines.append(PrintLine())
    lines += part_lines(builder, payment, lang)
    lines += tip_lines(builder, payment, lang)
    lines += [
        builder.headline(headline_amount(payment, lang)),
        PrintLine(),
        builder.headline(outcome_text(payment, lang, reason).upper()),
    ]
    if approved and payment.get("offline"):
        lines.append(PrintLine(t("approved_offline"), "center"))  # not its Y1 code
    elif approved and payment.get("auth_code") and not grouped:
        lines.append(builder.pair(t("auth_code"), str(payment["auth_code"])))
    if payment.get("response_code") and not grouped:
        lines.append(builder.pair(t("response"), str(payment["response_code"])))
    if approved and not voided(payment):
        if not grouped:
            lines += cvm_lines(builder, payment, lang)
        elif any(cvm_method(p) is CvmMethod.SIGNATURE for p in grouped_parts(payment)):
            lines += [PrintLine(), PrintLine("x" + "_" * (builder.columns - 2), "center")]
    why = "" if approved else reason_text(lang, reason or "", str(payment.get("reason") or ""))
    if why:
        lines.append(PrintLine(why[: builder.columns], "center"))
    lines += [
        rule,
        PrintLine(t("merchant_copy" if copy == "merchant" else "customer_copy"), "center",
                  bold=True),
    ]
    if copy == "customer":
        lines += [PrintLine(t("keep_receipt"), "center"), PrintLine(t("thank_you"), "center")]
    return lines


def upi_refs(payment: dict, lang: Language) -> list[tuple[str, str]]:
    """A UPI payment's lines (firmware.upi.tender): the tender, the payer's masked VPA, the
    PSP's reference and ours (`tr`); no card lines."""
    refs = [("UPI", lang.t("refund" if payment.get("txn_type") == TxnType.REFUND
                           else "purchase"))]
    if payment.get("payer_vpa"):
        refs.append((lang.t("upi_payer"), str(payment["payer_vpa"])))
    if payment.get("psp_reference"):
        refs.append(("PSP ref", str(payment["psp_reference"])))
    refs.append(("UPI ref", str(payment.get("upi_reference") or "-")))
    return refs


def render_receipt(printer: Printer, builder: ReceiptBuilder, payment: dict, copy: str,
                   lang: Language, reason: Reason | None = None) -> int:
    """Print one copy; drivers.printer.PrinterProblem when the printer cannot."""
    return printer.print_document(receipt_lines(builder, payment, copy, lang, reason))


def receipt_qr_payload(builder: ReceiptBuilder | None, payment: dict, lang: Language,
                       reason: Reason | None = None) -> str:
    """What the on-screen QR code carries: the e-receipt address when one is configured,
    otherwise the receipt's essentials as text a phone's camera shows."""
    if builder is not None and builder.url:
        return builder.url.format(terminal_id=builder.terminal_id, id=payment.get("id", ""),
                                  stan=payment.get("stan") or "")
    parts = []
    if builder is not None:
        parts += [builder.merchant_name, builder.merchant_city,
                  f"{lang.t('terminal')} {builder.terminal_id}"]
    kind = str(payment.get("txn_type") or TxnType.PURCHASE)
    kind = "void" if voided(payment) and kind != TxnType.PREAUTH else kind
    parts += [when_text(payment), lang.t(kind)]
    paper = builder or ReceiptBuilder("", "", "", "")
    parts += [line.text.strip() for line in part_lines(paper, payment, lang)
              + tip_lines(paper, payment, lang)]
    parts += [headline_amount(payment, lang),
              outcome_text(payment, lang, decline_reason(payment, reason))]
    if payment.get("offline"):
        parts.append(lang.t("approved_offline"))
    if payment.get("tender") == "upi":
        parts += [f"{left} {right}" for left, right in upi_refs(payment, lang)]
    elif not grouped_parts(payment):  # else each part's own, with its line above
        parts += qr_card_lines(payment, lang)
    parts.append(lang.t("customer_copy"))
    return "\n".join(p for p in parts if p)


def qr_card_lines(payment: dict, lang: Language) -> list[str]:
    """The e-receipt's card lines of a payment of one card: approval code, label and last four,
    AID, STAN and RRN, response code, cardholder verification."""
    lines = []
    if payment.get("auth_code") and not payment.get("offline"):
        lines.append(f"{lang.t('auth_code')} {payment['auth_code']}")
    ending = card_ending(str(payment.get("masked_pan") or ""))
    details = dict(card_details(payment, lang))
    if ending:
        lines.append(f"{details.get('application', '')} {ending}".strip())
    if "aid" in details:
        lines.append(f"{lang.t('aid')} {details['aid']}")
    refs = [f"STAN {payment['stan']:06d}" if isinstance(payment.get("stan"), int) else "",
            f"RRN {payment['rrn']}" if payment.get("rrn") else ""]
    lines.append(" ".join(r for r in refs if r))
    if payment.get("response_code"):
        lines.append(f"{lang.t('response')} {payment['response_code']}")
    if payment.get("outcome") == "approved" and not voided(payment):
        lines.append(cvm_statement(payment, lang))
    return lines
