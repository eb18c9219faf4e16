"""Kernel flows driven by APDU transcripts from an EMV-correct test phone (emv_testcard.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from emv_testcard import TestPhone, kernel_config, removed, tap

from firmware.emv import tlv
from firmware.emv.kernel import Kernel
from firmware.emv.outcome import OutcomeKind, TerminalTransaction, TxnType

WHEN = dt.datetime(2026, 11, 27, 10, 30, 0)
FIELD55_TAGS = "9F26 9F27 9F10 9F37 9F36 95 9A 9C 9F02 9F03 5F2A 82 9F1A 84 9F33 9F34 9F35"
FIELD55_REQUIRED = FIELD55_TAGS.split(" ")


def txn(amount: int, currency: int = 978) -> TerminalTransaction:
    return TerminalTransaction(amount=amount, currency=currency, country=380, when=WHEN)


@pytest.fixture
def kernel(tmp_path) -> Kernel:  # noqa: ANN001
    return Kernel.from_config(kernel_config(tmp_path))


def field55(out) -> dict[str, bytes]:  # noqa: ANN001
    return {t.tag.hex().upper(): t.value for t in tlv.decode(out.icc_data)}


def test_visa_online_payment(kernel: Kernel) -> None:
    phone = TestPhone("visa")
    t = txn(12_345)
    out = kernel.process(tap(phone), t)
    assert out.kind is OutcomeKind.ONLINE_REQUEST, out.reason
    assert out.scheme == "visa" and out.kernel_id == 3
    assert out.pan == phone.pan and out.masked_pan == "476173******0011"
    assert out.track2 == phone.track2
    assert out.cvm == "cdcvm"  # above the CVM limit, the phone verified its owner
    f55 = field55(out)
    for tag in [*FIELD55_REQUIRED, "9F66", "9F6C", "9F6E"]:
        assert tag in f55, tag
    assert f55["9F37"] == t.unpredictable_number
    assert f55["9F02"] == bytes.fromhex("000000012345")
    assert f55["9F27"] == b"\x80"
    assert f55["84"] == bytes.fromhex("A0000000031010")
    # the cryptogram the terminal forwards is the one the phone computed over our PDOL data
    assert f55["9F26"] == phone.ac(phone.pdol_data)


def test_mastercard_online_payment_with_cda(kernel: Kernel) -> None:
    phone = TestPhone("mastercard")
    out = kernel.process(tap(phone), txn(12_345))
    assert out.kind is OutcomeKind.ONLINE_REQUEST, out.reason
    assert out.scheme == "mastercard" and out.oda == "cda"
    assert out.cvm == "cdcvm"
    f55 = field55(out)
    for tag in FIELD55_REQUIRED:
        assert tag in f55, tag
    assert f55["9F27"] == b"\x80"
    assert f55["95"][3] & 0x80  # amount above the floor limit, in the TVR the card signed
    gen_ac = [apdu for step, apdu in phone.log if step == "generate_ac"][0]
    assert gen_ac[2] == 0x90  # ARQC with CDA signature requested
    assert f55["9F26"] == phone.ac(gen_ac[5 : 5 + gen_ac[4]])


def test_visa_offline_approval_with_fdda(kernel: Kernel) -> None:
    out = kernel.process(tap(TestPhone("visa")), txn(1_000))
    assert out.kind is OutcomeKind.APPROVED, out.reason
    assert out.oda == "fdda" and out.cvm == "no_cvm"
    assert field55(out)["9F27"] == b"\x40"


def test_mastercard_offline_approval_with_cda(kernel: Kernel) -> None:
    out = kernel.process(tap(TestPhone("mastercard")), txn(1_000))
    assert out.kind is OutcomeKind.APPROVED, out.reason
    assert out.oda == "cda"


def test_mastercard_see_phone_then_second_tap_completes(kernel: Kernel) -> None:
    phone = TestPhone("mastercard", see_phone_taps=1)
    first = kernel.process(tap(phone), txn(12_345))
    assert first.kind is OutcomeKind.TRY_AGAIN
    assert first.ui_message == "See phone"
    second = kernel.process(tap(phone), txn(12_345))
    assert second.kind is OutcomeKind.ONLINE_REQUEST, second.reason


def test_visa_see_phone_sw6986_then_second_tap_completes(kernel: Kernel) -> None:
    phone = TestPhone("visa", visa_6986_taps=1)
    first = kernel.process(tap(phone), txn(12_345))
    assert (first.kind, first.ui_message) == (OutcomeKind.TRY_AGAIN, "See phone")
    assert kernel.process(tap(phone), txn(12_345)).kind is OutcomeKind.ONLINE_REQUEST


def test_rupay_inr_goes_online_through_generic_path(kernel: Kernel) -> None:
    out = kernel.process(tap(TestPhone("rupay")), txn(50_000, 356))
    assert out.kind is OutcomeKind.ONLINE_REQUEST, out.reason
    assert out.scheme == "rupay" and out.kernel_id == 0
    assert field55(out)["5F2A"] == bytes.fromhex("0356")


@pytest.mark.parametrize("scheme", ["visa", "mastercard"])
def test_forged_signature_never_approves_offline(kernel: Kernel, scheme: str) -> None:
    phone = TestPhone(scheme, corrupt_signature=True)
    out = kernel.process(tap(phone), txn(1_000))
    assert out.kind is OutcomeKind.DECLINED
    assert "signature invalid" in out.reason


@pytest.mark.parametrize("scheme", ["visa", "mastercard"])
def test_expired_issuer_certificate_never_approves_offline(kernel: Kernel, scheme: str) -> None:
    phone = TestPhone(scheme, issuer_expiry="1025")
    out = kernel.process(tap(phone), txn(1_000))
    assert out.kind is not OutcomeKind.APPROVED
    assert "issuer certificate expired" in out.reason


def test_unknown_aid_only_ends_cleanly(kernel: Kernel) -> None:
    phone = TestPhone("visa")
    phone.aid = bytes.fromhex("A0000009991010")
    out = kernel.process(tap(phone), txn(1_000))
    assert out.kind is OutcomeKind.END_APPLICATION
    assert "no application this terminal supports" in out.reason


def test_amount_above_contactless_limit(kernel: Kernel) -> None:
    out = kernel.process(tap(TestPhone("visa")), txn(9_000_000))
    assert out.kind is OutcomeKind.TRY_ANOTHER_INTERFACE


@pytest.mark.parametrize(
    "step", ["select_ppse", "select_aid", "gpo", "read_1_1", "read_2_1", "read_3_1", "generate_ac"]
)
@pytest.mark.parametrize("scheme", ["visa", "mastercard"])
def test_card_removed_at_any_step_is_try_again(kernel: Kernel, scheme: str, step: str) -> None:
    phone = TestPhone(scheme)
    phone.faults[step] = removed
    out = kernel.process(tap(phone), txn(12_345))
    if step == "generate_ac" and scheme == "visa":
        assert out.kind is OutcomeKind.ONLINE_REQUEST  # Visa-style never sends GENERATE AC
    else:
        assert out.kind is OutcomeKind.TRY_AGAIN and "left the field" in out.reason


@pytest.mark.parametrize("scheme", ["visa", "mastercard", "rupay"])
def test_refund_reads_the_phone_for_the_acquirer(kernel: Kernel, scheme: str) -> None:
    phone = TestPhone(scheme)
    t = TerminalTransaction(amount=2_000, currency=978, country=380, when=WHEN,
                            txn_type=TxnType.REFUND)  # fmt: skip
    out = kernel.process(tap(phone), t)
    assert out.kind is OutcomeKind.ONLINE_REQUEST, out.reason
    assert out.reason.startswith("refund")
    assert field55(out)["9C"] == b"\x20"
    if scheme == "mastercard":
        assert out.cid & 0xC0 == 0x00  # the terminal asked for an AAC
        assert [a for step, a in phone.log if step == "generate_ac"][0][2] == 0x00


def test_field55_carries_the_tvr_the_card_signed(kernel: Kernel) -> None:
    """Findings after GENERATE AC must not change the TVR the issuer checks the ARQC with."""
    phone = TestPhone("mastercard")
    out = kernel.process(tap(phone), txn(12_345))
    gen_ac = [a for step, a in phone.log if step == "generate_ac"][0]
    cdol_tvr = gen_ac[5 + 6 + 6 + 2 : 5 + 6 + 6 + 2 + 5]
    assert field55(out)["95"] == cdol_tvr


def test_offline_approvals_are_capped_then_forced_online(tmp_path) -> None:  # noqa: ANN001
    kernel = Kernel.from_config(kernel_config(tmp_path))
    cap = kernel.table.find(bytes.fromhex("A0000000031010")).max_offline_approvals
    kinds = [kernel.process(tap(TestPhone("visa")), txn(1_000)).kind for _ in range(cap + 2)]
    assert kinds[:cap] == [OutcomeKind.APPROVED] * cap
    assert kinds[cap] is OutcomeKind.ONLINE_REQUEST  # counter reached: TTQ asks for online
    assert kinds[cap + 1] is OutcomeKind.APPROVED  # an online transaction resets it


def test_the_offline_approval_cap_survives_a_restart_in_the_journal(tmp_path) -> None:  # noqa: ANN001
    from firmware.journal import Journal

    paths = (tmp_path / "journal.sqlite", tmp_path / "journal.key")
    aid = bytes.fromhex("A0000000031010")
    with Journal.open(*paths) as journal:
        kernel = Kernel.from_config(kernel_config(tmp_path))
        kernel.count_offline_in(journal.offline_approvals)
        cap = kernel.table.find(aid).max_offline_approvals
        for _ in range(cap):
            assert kernel.process(tap(TestPhone("visa")), txn(1_000)).kind is OutcomeKind.APPROVED
    with Journal.open(*paths) as journal:  # a restart: a new kernel, the same journal
        kernel = Kernel.from_config(kernel_config(tmp_path))
        kernel.count_offline_in(journal.offline_approvals)
        assert journal.offline_approvals.get(aid, 0) == cap
        assert kernel.process(tap(TestPhone("visa")), txn(1_000)).kind is OutcomeKind.ONLINE_REQUEST
        assert journal.offline_approvals.get(aid, 0) == 0


@pytest.mark.parametrize(("aip", "method"), [("2000", "dda"), ("4000", "sda")])
def test_generic_path_card_with_dda_or_sda(kernel: Kernel, aip: str, method: str) -> None:
    phone = TestPhone("rupay", gpo_cryptogram=False, aip_override=bytes.fromhex(aip))
    out = kernel.process(tap(phone), txn(50_000, 356))
    assert out.kind is OutcomeKind.ONLINE_REQUEST, out.reason
    assert out.oda == method and out.tsi[0] & 0x80
    assert out.tvr[0] == 0
    steps = [step for step, _ in phone.log]
    assert ("internal_authenticate" in steps) == (method == "dda")
    assert steps[-1] == "generate_ac"


@pytest.mark.parametrize(("aip", "bit"), [("2000", 0x08), ("4000", 0x40)])
def test_generic_path_forged_dda_or_sda_is_flagged_to_the_issuer(
    kernel: Kernel, aip: str, bit: int
) -> None:
    phone = TestPhone("rupay", gpo_cryptogram=False, aip_override=bytes.fromhex(aip),
                      corrupt_signature=True)  # fmt: skip
    out = kernel.process(tap(phone), txn(50_000, 356))
    assert out.kind is OutcomeKind.ONLINE_REQUEST  # RuPay: always online; the issuer decides
    assert out.oda == "" and out.tvr[0] & bit
    assert field55(out)["95"][0] & bit  # given to the card in CDOL1, so the issuer sees it
    assert "offline data authentication failed" in out.reason


def test_visa_aac_after_cdcvm_is_see_phone_and_plain_aac_declines(kernel: Kernel) -> None:
    phone = TestPhone("visa", visa_aac_taps=1)  # CTQ byte 2: CDCVM performed
    first = kernel.process(tap(phone), txn(12_345))
    assert (first.kind, first.ui_message) == (OutcomeKind.TRY_AGAIN, "See phone")
    assert kernel.process(tap(phone), txn(12_345)).kind is OutcomeKind.ONLINE_REQUEST
    plain = TestPhone("visa", visa_aac_taps=1, ctq=bytes.fromhex("0000"))
    assert kernel.process(tap(plain), txn(1_000)).kind is OutcomeKind.DECLINED
