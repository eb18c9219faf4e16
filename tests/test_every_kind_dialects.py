"""Every message kind pitap sends, in every shipped dialect, through the ISO 8583 acquirer to the
host simulator on 127.0.0.1, and booked there: a sale (0100, or 0200 where the dialect says), a
tipped sale (field 54), a refund (processing code 20), a void (0400, field 25 the void reason),
an offline approval's advice (0220), a tip adjustment (0220, 020000, field 54), and a
pre-authorization's hold, increment, completion and release (test_preauth_dialects); and the
default dialect's capture of all of them read back by Wireshark's dissector with no field
flagged (where tshark is installed), fields 3, 25, 54 and 90 as the README's message table says."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from host_support import MC_PAN, TestCard, auth_request, write_keys
from test_host_wireshark import RecordingRelay, dissected
from test_preauth_dialects import run_the_messages

from firmware.config import load_config
from firmware.host import connect
from firmware.host.acquirer import ReversalReason
from simulators.host.simulator import HostSimulator

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")
DIALECTS = ("pitap-default", "bcd-tpdu", "ascii4-binary")


def send_every_kind(port: int, dialect: str) -> None:
    """The sale kinds (STANs 31..36), then the pre-authorization's (21..25)."""
    cfg = load_config()
    cfg = dataclasses.replace(cfg, host=dataclasses.replace(
        cfg.host, port=port, dialect=dialect, response_timeout_s=10.0))
    acq = connect(cfg)
    try:
        visa, mc = TestCard(), TestCard(MC_PAN)
        assert acq.authorize(auth_request(visa, 1500, stan=31)).approved
        tipped = dataclasses.replace(auth_request(mc, 2300, stan=32), tip=300)
        sold = acq.authorize(tipped)
        assert sold.approved
        assert acq.authorize(auth_request(visa, 700, stan=33, txn_type="refund")).approved
        mistake = auth_request(mc, 900, stan=34)
        assert acq.authorize(mistake).approved
        assert acq.reverse(mistake, ReversalReason.VOID)
        offline = dataclasses.replace(auth_request(visa, 800, stan=35), offline_approved=True,
                                      auth_code="Y1")
        assert acq.advise(offline)
        adjusted = acq.adjust_tip(dataclasses.replace(
            tipped, auth_code=sold.auth_code, rrn=sold.rrn), 500, 36)
        assert adjusted.approved and adjusted.response_code == "00"
    finally:
        acq.close()
    run_the_messages(port, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_kind_is_booked_in_every_dialect(tmp_path: Path, dialect: str) -> None:
    keys = write_keys(tmp_path)
    with HostSimulator(port=0, keys_file=keys, dialect=dialect) as sim:
        send_every_kind(sim.port, dialect)
        rows = {str(r["stan"]): r for r in sim.ledger.transactions("PITAP001")}
        totals = sim.ledger.open_totals("PITAP001", 978)
    sale_mti = "0200" if dialect == "bcd-tpdu" else "0100"
    got = {stan: (r["mti"], r["kind"], r["amount"], r["tip"], r["approved"], r["reversed"],
                  r["offline"]) for stan, r in rows.items() if stan.startswith("00003")}
    assert got == {
        "000031": (sale_mti, "sale", 1500, 0, 1, 0, 0),
        "000032": (sale_mti, "sale", 2500, 500, 1, 0, 0),  # 2000 + the adjusted tip
        "000033": (sale_mti, "refund", 700, 0, 1, 0, 0),
        "000034": (sale_mti, "sale", 900, 0, 1, 1, 0),  # voided
        "000035": ("0220", "sale", 800, 0, 1, 0, 1),
    }
    assert "void" in str(rows["000034"]["reason"])
    # sales 1500 + 2500 + 800 and the completion 5500; the refund 700; void and holds: none
    assert (totals.sales_count, totals.sales_amount) == (4, 10300)
    assert (totals.refunds_count, totals.refunds_amount) == (1, 700)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_wireshark_reads_every_kind(tmp_path: Path) -> None:
    keys = write_keys(tmp_path)
    with HostSimulator(port=0, keys_file=keys) as sim:
        relay = RecordingRelay(sim.port)
        send_every_kind(relay.port, "pitap-default")
    rows = dissected(relay, tmp_path / "every-kind.pcap", "bit3", "bit11", "bit25", "bit54",
                     "bit90", "bit39")
    assert all(r[7] == "" for r in rows), f"tshark flagged: {rows}"
    requests = [r[:6] for r in rows if r[0][2] in "02"]  # 0100, 0220, 0400...: not replies
    by_stan = {r[2]: r for r in requests}
    assert by_stan["000031"][:2] == ["0100", "000000"]
    assert by_stan["000032"][4] == "0044978C000000000300"  # the tip: type 44, EUR, credit
    assert by_stan["000033"][:2] == ["0100", "200000"]
    assert [r[:4] for r in requests if r[2] == "000034"] == [
        ["0100", "000000", "000034", "00"], ["0400", "000000", "000034", "17"]]
    void = [r for r in requests if r[0] == "0400" and r[2] == "000034"][0]
    assert void[5].startswith("0100000034")
    assert by_stan["000035"][:2] == ["0220", "000000"]
    adjust = by_stan["000036"]
    assert adjust[:2] == ["0220", "020000"] and adjust[4] == "0044978C000000000500"
    assert adjust[5].startswith("0100000032")
    assert by_stan["000021"][3] == "06"  # the hold; its increment, completion, release
    assert [r[0] for r in requests if r[2] in ("000022", "000023")] == ["0100", "0220", "0221"]
    assert [r[0] for r in requests if r[2] == "000024"] == ["0100", "0400"]
    replies = [r for r in rows if r[0][2] in "13"]
    assert len(replies) == len(requests) == 14
