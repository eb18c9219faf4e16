"""The independent end-of-day script (tests/reconcile_day.py) reconciles a whole shop day:
sales, a decline, a void, a partial approval finished by a second tap, a refund, a tipped sale
and a tip adjustment, a pre-authorization raised and completed and one released, through the
command line against the host simulator; host ledger, journal and Z-report agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("reconcile_day.py")

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


def test_a_shop_day_reconciles_to_the_minor_unit(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "reconciled to the minor unit" in done.stdout
    assert "MISMATCH" not in done.stdout
