"""Runs one fuzz target under atheris (libFuzzer), seeded from the target's own SEEDS.

`make fuzz` runs every tests/fuzz/fuzz_*.py with -max_total_time; each target module has
`one_input(data: bytes) -> None` (raises only on a real bug) and `SEEDS`. The same targets run
in `make test` on their seeds and on hypothesis inputs (tests/test_fuzz_targets.py), so they
cannot rot between fuzzing sessions. The seeds go to a temporary corpus, never into the repo.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


def fuzz(one_input: Callable[[bytes], None], seeds: list[bytes]) -> None:
    import atheris  # installed by `make fuzz` only

    args = list(sys.argv)
    with tempfile.TemporaryDirectory(prefix="pitap-fuzz-") as corpus:
        if not any(not a.startswith("-") for a in args[1:]):  # no corpus given: our seeds
            for i, seed in enumerate(seeds):
                (Path(corpus) / f"seed-{i:03d}").write_bytes(seed)
            args.append(corpus)
        atheris.instrument_all()
        atheris.Setup(args, one_input)
        atheris.Fuzz()
