"""Fuzz the kernel: any answer at any step of a tap must end in an Outcome, never an exception.

With atheris (`make fuzz`): coverage-guided, `-max_total_time=N` as usual. Without it, runs a
plain random loop (`python tests/fuzz/fuzz_kernel.py [iterations]`). The input picks the
scheme, the step and the bytes that replace the phone's answer there; a crash, a "kernel fault"
outcome, or an offline approval when a signed answer was replaced, is a finding.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (emv_testcard)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout

from emv_testcard import TestPhone, kernel_config, tap  # noqa: E402

from firmware.emv.kernel import Kernel  # noqa: E402
from firmware.emv.outcome import OutcomeKind, TerminalTransaction  # noqa: E402

STEPS = ["select_ppse", "select_aid", "gpo", "read_1_1", "read_2_1", "read_3_1", "generate_ac"]
SCHEMES = ["visa", "mastercard", "rupay"]
# answers whose content offline data authentication covers (ODA record, certificates, CDA)
SIGNED_STEPS = {"read_2_1", "read_3_1", "generate_ac"}
KERNEL = Kernel.from_config(kernel_config(Path(tempfile.mkdtemp(prefix="pitap-fuzz-"))))
WHEN = dt.datetime(2026, 11, 27, 10, 30)


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    scheme = SCHEMES[data[0] % len(SCHEMES)]
    step = STEPS[data[1] % len(STEPS)]
    phone = TestPhone(scheme)
    phone.faults[step] = bytes(data[2:])
    txn = TerminalTransaction(amount=1_000, currency=978, country=380, when=WHEN)
    out = KERNEL.process(tap(phone), txn)
    if "kernel fault" in out.reason:
        raise AssertionError(f"{scheme} {step}: {out.reason}")
    used = any(s == step for s, _ in phone.log)
    if used and step in SIGNED_STEPS and out.kind is OutcomeKind.APPROVED:
        raise AssertionError(f"{scheme} {step}: approved offline on a replaced signed answer")


def main() -> None:
    try:
        import atheris
    except ImportError:
        count = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 2000
        rng = random.Random(int(os.environ.get("FUZZ_SEED", "1")))
        for _ in range(count):
            size = rng.randrange(0, 300)
            one_input(bytes(rng.randrange(256) for _ in range(size)))
        print(f"fuzz_kernel: {count} random inputs, no finding (atheris not installed)")
        return
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
