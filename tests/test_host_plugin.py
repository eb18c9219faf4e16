"""Acquirer plug-ins: `firmware.host.connect(cfg)` finds the class named by host.acquirer in the
`pitap.acquirers` entry point group of any installed distribution (here: one installed into a
temporary directory on sys.path, found through importlib.metadata like any other)."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
from host_support import TestCard, auth_request

from firmware.config import load_config
from firmware.host import acquirer_names, connect
from firmware.host.iso8583_acquirer import Iso8583Acquirer

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")

PLUGIN = '''
"""An example acquirer plug-in: the README's, declining everything above a limit."""
from firmware.host.acquirer import AuthResponse, SettlementResult


class LimitAcquirer:
    def __init__(self, cfg, stan_source=None):
        self.cfg = cfg
        self.limit = 5000

    def authorize(self, request):
        ok = request.amount <= self.limit
        return AuthResponse(ok, "00" if ok else "61",
                            "Approved" if ok else "Over the card's amount limit")

    def reverse(self, original, reason, repeat=False):
        return True

    def advise(self, request, repeat=False):
        return True

    def settle(self, totals, batch):
        return SettlementResult(True, "00", "Totals agreed", totals)

    def echo(self):
        return True

    def close(self):
        pass
'''


def install_plugin(site: Path) -> None:
    (site / "limit_acquirer.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    info = site / "limit_acquirer-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: limit-acquirer\n"
                                   "Version: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[pitap.acquirers]\nlimit = limit_acquirer:LimitAcquirer\n", encoding="utf-8")


def test_installed_plugin_is_found_by_name(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert {"iso8583", "limit"} <= set(acquirer_names())
    cfg = load_config()
    acq = connect(dataclasses.replace(cfg, host=dataclasses.replace(cfg.host, acquirer="limit")))
    assert type(acq).__name__ == "LimitAcquirer"
    assert acq.authorize(auth_request(TestCard(), 4999)).approved
    assert acq.authorize(auth_request(TestCard(), 5001)).message == "Over the card's amount limit"


def test_the_shipped_configuration_names_the_iso8583_acquirer() -> None:
    cfg = load_config()
    acq = connect(cfg)
    assert isinstance(acq, Iso8583Acquirer) and acq.dialect.name == "pitap-default"
    acq.close()
