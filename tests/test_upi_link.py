"""The UPI link: exactly the fields NPCI's linking specification names, in order, amounts with
two decimals, values percent-encoded so that no name or note can break the link apart; every
bad field refused with its name. The link is parsed back here with urllib, not with our code."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.upi.link import (
    MAX_AMOUNT,
    PaymentLink,
    UpiLinkError,
    build_link,
    new_reference,
    rupees,
)

SHOP = dict(payee_vpa="pitapdemo@okaxis", payee_name="Pitap Demo Shop", mcc="5411")


def fields(link: str) -> list[tuple[str, str]]:
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("upi", "pay", "")
    return parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)


def test_a_sale_of_250_rupees() -> None:
    link = build_link(PaymentLink(**SHOP, amount=25000, reference="PITAP001A1B2", note="Sale 7"))
    assert link == ("upi://pay?pa=pitapdemo@okaxis&pn=Pitap%20Demo%20Shop&am=250.00&cu=INR"
                    "&tr=PITAP001A1B2&tn=Sale%207&mc=5411")


@pytest.mark.parametrize(("paise", "am"), [(1, "0.01"), (5, "0.05"), (100, "1.00"),
                                           (123456, "1234.56"), (MAX_AMOUNT, "100000.00")])
def test_amount_has_two_decimals(paise: int, am: str) -> None:
    assert rupees(paise) == am
    assert dict(fields(build_link(PaymentLink(**SHOP, amount=paise, reference="R1"))))["am"] == am


def test_no_note_no_tn() -> None:
    keys = [k for k, _ in fields(build_link(PaymentLink(**SHOP, amount=100, reference="R1")))]
    assert keys == ["pa", "pn", "am", "cu", "tr", "mc"]


@given(name=st.text(min_size=1, max_size=50).filter(
           lambda s: s.strip() and all(ord(c) >= 0x20 and ord(c) != 0x7F for c in s)),
       note=st.text(max_size=50).filter(lambda s: all(ord(c) >= 0x20 and ord(c) != 0x7F
                                                      for c in s)))
def test_any_name_and_note_come_back_whole(name: str, note: str) -> None:
    link = build_link(PaymentLink(payee_vpa="a.b-c_d@ybl", payee_name=name, mcc="5999",
                                  amount=999, reference="X9", note=note))
    got = fields(link)
    assert dict(got)["pn"] == name and dict(got).get("tn", "") == note
    assert len(got) == (7 if note else 6)  # no '&' or '=' in a value split the link
    assert " " not in link and "+" not in link.split("?", 1)[1].replace("%2B", "")


def test_reserved_characters_are_encoded() -> None:
    link = build_link(PaymentLink(payee_vpa="shop@ybl", payee_name="A&B=C+D%E#F?", mcc="5411",
                                  amount=100, reference="R1"))
    assert "pn=A%26B%3DC%2BD%25E%23F%3F&" in link


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"payee_vpa": "no-at-sign"}, "pa"),
        ({"payee_vpa": "two@@ybl"}, "pa"),
        ({"payee_vpa": "shop@"}, "pa"),
        ({"payee_vpa": "@ybl"}, "pa"),
        ({"payee_vpa": "sh op@ybl"}, "pa"),
        ({"payee_vpa": "shop@ybl&am=1"}, "pa"),
        ({"payee_name": ""}, "pn"),
        ({"payee_name": "   "}, "pn"),
        ({"payee_name": "x" * 51}, "pn"),
        ({"payee_name": "Shop\nTwo"}, "pn"),
        ({"note": "n" * 51}, "tn"),
        ({"amount": 0}, "am"),
        ({"amount": -100}, "am"),
        ({"amount": MAX_AMOUNT + 1}, "am"),
        ({"amount": 2.5}, "am"),
        ({"amount": True}, "am"),
        ({"reference": ""}, "tr"),
        ({"reference": "R" * 36}, "tr"),
        ({"reference": "R-1"}, "tr"),
        ({"mcc": ""}, "mc"),
        ({"mcc": "541"}, "mc"),
        ({"mcc": "54111"}, "mc"),
        ({"mcc": "54a1"}, "mc"),
    ],
)
def test_bad_fields_are_refused_by_name(change: dict[str, object], field: str) -> None:
    args: dict[str, object] = {**SHOP, "amount": 100, "reference": "R1", **change}
    with pytest.raises(UpiLinkError) as err:
        PaymentLink(**args)  # type: ignore[arg-type]
    assert err.value.field == field
    assert str(err.value).startswith(f"UPI link: {field} ") and "\n" not in str(err.value)


def test_a_lower_merchant_limit_holds() -> None:
    PaymentLink(**SHOP, amount=5000, reference="R1", max_amount=5000)
    with pytest.raises(UpiLinkError, match="am"):
        PaymentLink(**SHOP, amount=5001, reference="R1", max_amount=5000)


def test_references_are_fresh_and_fit_tr() -> None:
    refs = {new_reference("PITAP-001") for _ in range(1000)}
    assert len(refs) == 1000
    for ref in refs:
        assert ref.startswith("PITAP001")
        PaymentLink(**SHOP, amount=100, reference=ref)


def test_a_reference_never_looks_like_a_card_number() -> None:
    import re

    for _ in range(2000):  # ~2% of raw draws would hold 13 digits in a row with this prefix
        assert not re.search(r"\d{13}", new_reference("0000000000"))
