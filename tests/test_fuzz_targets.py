"""The atheris fuzz targets (tests/fuzz/) run here too: on their seeds and on hypothesis bytes.

`make fuzz` runs them under libFuzzer for minutes; this keeps them working (and finding the
easy cases) in every `make test`.
"""

from __future__ import annotations

import pytest
from fuzz import fuzz_iso8583_reply, fuzz_kernel, fuzz_oda, fuzz_tlv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TARGETS = {
    "tlv": fuzz_tlv, "iso8583_reply": fuzz_iso8583_reply, "kernel": fuzz_kernel, "oda": fuzz_oda,
}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_pass(name: str) -> None:
    target = TARGETS[name]
    assert target.SEEDS
    for seed in target.SEEDS:
        target.one_input(seed)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_tlv_target_on_random_bytes(data: bytes) -> None:
    fuzz_tlv.one_input(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_iso8583_reply_target_on_random_bytes(data: bytes) -> None:
    fuzz_iso8583_reply.one_input(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_oda_target_on_random_bytes(data: bytes) -> None:
    fuzz_oda.one_input(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profile=st.integers(0, 255),
    amount=st.integers(0, 255),
    script=st.binary(min_size=1, max_size=60),
)
def test_kernel_target_on_bent_phone_answers(profile: int, amount: int, script: bytes) -> None:
    fuzz_kernel.one_input(bytes([profile, amount, 1]) + script)


def test_the_kernel_target_can_fail() -> None:
    """The check is real: an outcome from the kernel's catch-all is reported as a bug."""

    class Boom:
        def process(self, card, txn):  # noqa: ANN001, ANN202
            from firmware.emv.outcome import Outcome, OutcomeKind

            return Outcome(OutcomeKind.END_APPLICATION, "kernel fault (KeyError)")

    real = fuzz_kernel.KERNEL
    fuzz_kernel.KERNEL = Boom()  # type: ignore[assignment]
    try:
        with pytest.raises(AssertionError, match="kernel fault"):
            fuzz_kernel.one_input(fuzz_kernel.SEEDS[0])
    finally:
        fuzz_kernel.KERNEL = real


def test_the_oda_target_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is real: a recovery that accepts a changed certificate is reported."""
    monkeypatch.setattr(fuzz_oda.oda, "recover_issuer_key", lambda *args, **kw: None)
    with pytest.raises(AssertionError, match="changed certificate recovered"):
        fuzz_oda.one_input(fuzz_oda.SEEDS[0])
