"""Whatever a phone sends, the kernel ends in a defined outcome with a reason, and never raises.

Each step of each flow gets a broken answer (truncated, empty, oversized, garbage, wrong status
word, malformed TLV) and random bytes (hypothesis); the kernel must answer with an Outcome that
names the problem, never approve offline on broken data, and never fall into its catch-all.
"""

from __future__ import annotations

import datetime as dt

import pytest
from emv_testcard import TestPhone, kernel_config, tap
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.emv.kernel import Kernel
from firmware.emv.outcome import OutcomeKind, TerminalTransaction

WHEN = dt.datetime(2026, 11, 27, 10, 30, 0)
STEPS = {
    "visa": ["select_ppse", "select_aid", "gpo", "read_1_1", "read_2_1", "read_3_1"],
    "mastercard": ["select_ppse", "select_aid", "gpo", "read_1_1", "read_2_1", "read_3_1",
                   "generate_ac"],
}  # fmt: skip


def _overlong_length(r: bytes) -> bytes:
    return r[:1] + b"\x84\xff\xff\xff\xff" + r[2:]


FAULTS = {
    "truncated": lambda r: r[: max(0, len(r) // 2)],
    "truncated_keeps_sw": lambda r: r[: len(r) // 2] + b"\x90\x00",
    "empty": b"",
    "one_byte": b"\x90",
    "sw_only_6F00": b"\x6f\x00",
    "sw_6A82": b"\x6a\x82",
    "sw_6985": b"\x69\x85",
    "oversized": b"\x70\x82\x13\x88" + b"\x00" * 5000 + b"\x90\x00",
    "length_past_end": lambda r: r[:1] + bytes([0x7F]) + r[2:],
    "overlong_length": _overlong_length,
    "indefinite_length": lambda r: r[:1] + b"\x80" + r[2:],
    "garbage": bytes(range(256))[:200] + b"\x90\x00",
    "wrong_template": lambda r: b"\xa5" + r[1:],
    "get_response_forever": b"\x61\x10",
}


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Kernel:
    return Kernel.from_config(kernel_config(tmp_path_factory.mktemp("k")))


def txn(amount: int) -> TerminalTransaction:
    return TerminalTransaction(amount=amount, currency=978, country=380, when=WHEN)


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize(
    ("scheme", "step"), [(s, st_) for s, steps in STEPS.items() for st_ in steps]
)
def test_broken_answer_at_any_step_ends_cleanly(
    kernel: Kernel, scheme: str, step: str, fault: str
) -> None:
    phone = TestPhone(scheme)
    phone.faults[step] = FAULTS[fault]
    out = kernel.process(tap(phone), txn(1_000))  # under the floor limit: would approve offline
    assert out.reason
    assert "kernel fault" not in out.reason
    assert out.kind is not OutcomeKind.APPROVED


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    step=st.sampled_from(STEPS["mastercard"]),
    scheme=st.sampled_from(["visa", "mastercard"]),
    data=st.binary(max_size=300),
)
def test_random_answers_never_escape(kernel: Kernel, step: str, scheme: str, data: bytes) -> None:
    phone = TestPhone(scheme)
    phone.faults[step] = data + b"\x90\x00"
    out = kernel.process(tap(phone), txn(1_000))
    assert out.reason and "kernel fault" not in out.reason
    if step != "generate_ac" or scheme == "mastercard":
        assert out.kind is not OutcomeKind.APPROVED


def test_exception_from_the_link_is_contained(kernel: Kernel) -> None:
    class Broken:
        def transceive(self, apdu: bytes) -> bytes:
            raise RuntimeError("driver bug")

    out = kernel.process(Broken(), txn(1_000))
    assert out.kind is OutcomeKind.END_APPLICATION
    assert "kernel fault" in out.reason


def test_a_phone_too_slow_for_the_tap_budget_is_asked_again(kernel: Kernel) -> None:
    import time

    phone = TestPhone("mastercard")

    def slow(resp: bytes) -> bytes:
        time.sleep(0.06)
        return resp

    phone.faults["read_1_1"] = slow
    kernel.tap_budget_s = 0.05
    try:
        out = kernel.process(tap(phone), txn(12_345))
    finally:
        kernel.tap_budget_s = 5.0
    assert out.kind is OutcomeKind.TRY_AGAIN
    assert "too slow" in out.reason
    assert not any(step == "generate_ac" for step, _ in phone.log)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_broken_internal_authenticate_ends_cleanly(kernel: Kernel, fault: str) -> None:
    phone = TestPhone("rupay", gpo_cryptogram=False, aip_override=bytes.fromhex("2000"))
    phone.faults["internal_authenticate"] = FAULTS[fault]
    out = kernel.process(tap(phone), txn(1_000))
    assert out.reason and "kernel fault" not in out.reason
    assert out.kind is not OutcomeKind.APPROVED
    assert out.oda != "dda"
