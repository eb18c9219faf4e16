"""A pre-authorization's messages in every shipped dialect, through the ISO 8583 acquirer and the
host simulator on 127.0.0.1: the hold (0100, field 25 06), an increment (0100 naming the hold in
90 and 37), its completion (0220, repeated 0221 booked once) and a release (0400 of a hold);
and the default dialect read back by Wireshark's dissector (where tshark is installed)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from host_support import TestCard, auth_request, write_keys
from test_host_wireshark import RecordingRelay, dissected

from firmware.config import load_config
from firmware.host import connect
from firmware.host.acquirer import AuthRequest
from firmware.host.dialect import load_dialect
from firmware.host.messages import advice, preauthorization
from firmware.payment import TxnType
from simulators.host.simulator import HostSimulator

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")
DIALECTS = ("pitap-default", "bcd-tpdu", "ascii4-binary")


def reference(hold: AuthRequest, stan: int, amount: int, kind: TxnType, rrn: str,
              auth_code: str) -> AuthRequest:
    """An increment's or completion's request as firmware.preauth builds it: no card data."""
    return AuthRequest(stan=stan, amount=amount, currency=978, txn_type=kind, pan="",
                       pan_sequence=None, expiry="", track2=b"", icc_data=b"",
                       terminal_id="PITAP001", merchant_id="000000000000001", when=hold.when,
                       auth_code=auth_code, rrn=rrn, original_stan=hold.stan,
                       original_at=hold.when.isoformat())


def run_the_messages(port: int, dialect: str) -> None:
    cfg = load_config()
    cfg = dataclasses.replace(cfg, host=dataclasses.replace(
        cfg.host, port=port, dialect=dialect, response_timeout_s=10.0))
    acq = connect(cfg)
    try:
        card = TestCard()
        hold = dataclasses.replace(auth_request(card, 4000, stan=21), txn_type=TxnType.PREAUTH)
        held = acq.authorize(hold)
        assert held.approved and held.rrn and held.auth_code
        more = reference(hold, 22, 1020, TxnType.INCREMENT, held.rrn, "")
        raised = acq.authorize(more)
        assert raised.approved and raised.rrn == held.rrn
        done = reference(hold, 23, 5500, TxnType.COMPLETION, held.rrn, held.auth_code)
        assert acq.advise(done) and acq.advise(done, repeat=True)
        other = dataclasses.replace(auth_request(card, 3000, stan=24),
                                    txn_type=TxnType.PREAUTH)
        assert acq.authorize(other).approved
        released = dataclasses.replace(other, icc_data=b"", track2=b"")
        assert acq.reverse(released, "void")
        # an increment of the released hold: the host finds nothing to raise
        late = acq.authorize(reference(other, 25, 500, TxnType.INCREMENT, "", ""))
        assert not late.approved and late.response_code == "25"
    finally:
        acq.close()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_carries_a_pre_authorization(tmp_path: Path, dialect: str) -> None:
    keys = write_keys(tmp_path)
    with HostSimulator(port=0, keys_file=keys, dialect=dialect) as sim:
        run_the_messages(sim.port, dialect)
        rows = sim.ledger.transactions("PITAP001")
        sales = sim.ledger.open_totals("PITAP001", 978).sales_amount
    kinds = [(r["kind"], r["stan"], r["amount"], r["reversed"]) for r in rows]
    assert kinds == [("preauth", "000021", 4000, 0), ("increment", "000022", 1020, 0),
                     ("sale", "000023", 5500, 0), ("preauth", "000024", 3000, 1),
                     ("increment", "000025", 500, 0)]
    assert [r["original_stan"] for r in rows] == ["", "000021", "000021", "", "000024"]
    assert rows[4]["approved"] == 0
    assert sales == 5500  # holds and increments: in no total


@pytest.mark.parametrize("dialect", DIALECTS)
def test_fields_25_and_90_survive_each_encoding(dialect: str) -> None:
    d = load_dialect(dialect, Path("config"))
    hold = dataclasses.replace(auth_request(TestCard(), 4000, stan=21), txn_type=TxnType.PREAUTH)
    more = reference(hold, 22, 1020, TxnType.INCREMENT, "612345000001", "")
    for doc in (preauthorization(hold, d), preauthorization(more, d),
                advice(reference(hold, 23, 5500, TxnType.COMPLETION, "612345000001",
                                 "123456"), d)):
        back = d.decode(d.encode(doc))
        assert back["25"] == "06" and back["3"] == "000000"
        if "90" in doc:
            assert back["90"] == doc["90"] and back["90"][:10] == "0100000021"
            assert back["37"] == "612345000001" and "2" not in back and "55" not in back
    assert preauthorization(hold, d)["t"] == "0100"  # bcd-tpdu sells with 0200: a hold is 0100


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_wireshark_reads_a_pre_authorization(tmp_path: Path) -> None:
    keys = write_keys(tmp_path)
    with HostSimulator(port=0, keys_file=keys) as sim:
        relay = RecordingRelay(sim.port)
        run_the_messages(relay.port, "pitap-default")
    rows = out = dissected(relay, tmp_path / "preauth.pcap", "bit25", "bit90")
    assert [r[0] for r in rows] == ["0100", "0110", "0100", "0110", "0220", "0230", "0221",
                                    "0230", "0100", "0110", "0400", "0410", "0100", "0110"]
    assert all(r[3] == "" for r in rows), f"tshark flagged: {out}"
    assert rows[2][1] == "06" and rows[2][2].startswith("0100000021")
