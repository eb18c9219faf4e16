"""An acquirer that requires a client certificate and refuses ours: "host unavailable", no
reversal. Under TLS 1.3 the refusal (an alert) arrives only after the terminal has written its
request; the host's TLS layer never passed that request on, so there is nothing to reverse.

Against the real `pitap host --tls --client-certs` with `pitap pay` and a simulated phone, and
in-process against the simulator's TLS server, all on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_support import TestCard, auth_request, write_keys
from run_support import run_pitap, start_pitap

from firmware.config import Config, load_config
from firmware.host import connect
from firmware.host.acquirer import HostUnavailable, NoReply
from firmware.journal import Journal
from simulators.demo import free_port
from simulators.host.simulator import HostSimulator
from simulators.host.testpki import TestPki, make_test_pki
from simulators.wallet.phone import SimulatedPhone

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


def tls_config(port: int, pki: TestPki, **host: object) -> Config:
    cfg = load_config()
    fields = {"port": port, "tls": True, "ca_file": str(pki.ca_cert), "response_timeout_s": 5.0,
              "connect_timeout_s": 5.0, **host}
    return dataclasses.replace(cfg, host=dataclasses.replace(cfg.host, **fields))


@pytest.fixture
def pitap_host(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """`pitap host --tls --client-certs` in its own process: (port, TLS directory)."""
    tls_dir = tmp_path / "host-tls"
    proc = start_pitap("host", "--port", "0", "--tls", "--client-certs", "--tls-dir",
                       str(tls_dir), "--ledger", str(tmp_path / "ledger.sqlite"),
                       cwd=tmp_path, PYTHONWARNINGS="ignore")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("host simulator listening on 127.0.0.1:"), line
        yield int(line.split("127.0.0.1:")[1].split()[0]), tls_dir
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_pay_without_a_client_certificate_is_host_unavailable(
        tmp_path: Path, pitap_host: tuple[int, Path]) -> None:
    port, tls_dir = pitap_host
    state = tmp_path / "state"
    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    site = tmp_path / "site.toml"
    site.write_text(f'[terminal]\nstate_dir = "{state}"\n[reader]\npath = "{reader}"\n'
                    f'[host]\nport = {port}\ntls = true\nca_file = "{tls_dir / "test-ca.pem"}"\n'
                    "connect_timeout_s = 10.0\nresponse_timeout_s = 30.0\n"
                    '[display]\nbackend = "none"\n', encoding="utf-8")
    phone = SimulatedPhone("visa-online", reader)
    phone.start(taps=1, timeout=120.0)
    try:
        run = run_pitap("pay", "10.00", "--json", "--config", str(site))
    finally:
        phone.stop()
    assert run.returncode == 1 and "Traceback" not in run.stderr
    result = json.loads(run.stdout)
    assert result["outcome"] == "error" and result["taps"] == 1
    assert result["reason"].startswith("host unavailable: ")
    assert "TLSV13_ALERT_CERTIFICATE_REQUIRED" in result["reason"]
    assert "reversal" not in result["reason"]

    with Journal.from_config(load_config(site)) as journal:
        (payment,) = journal.payments()
        assert payment.state == "error" and journal.queue() == []
        states = [h.state for h in journal.history(payment.id)]
        assert "awaiting_reply" in states and "reversal_queued" not in states
        assert journal.card_data(payment.id) is None
    ledger = sqlite3.connect(f"file:{tmp_path / 'ledger.sqlite'}?mode=ro", uri=True)
    try:
        assert ledger.execute("SELECT COUNT(*) FROM txn").fetchone()[0] == 0  # never processed
    finally:
        ledger.close()


@pytest.fixture
def pki(tmp_path: Path) -> TestPki:
    return make_test_pki(tmp_path / "pki")


@pytest.fixture
def tls_host(tmp_path: Path, pki: TestPki) -> Iterator[HostSimulator]:
    with HostSimulator(port=0, keys_file=write_keys(tmp_path),
                       tls=pki.server_context(require_client_cert=True)) as sim:
        yield sim


def test_every_refused_connection_is_host_unavailable(tls_host: HostSimulator,
                                                      pki: TestPki) -> None:
    """The alert may be read after the request was written, or make the write itself fail:
    each new connection takes one of the two ways, and both end the same."""
    acquirer = connect(tls_config(tls_host.port, pki))
    try:
        for stan in range(1, 31):
            with pytest.raises(HostUnavailable, match="CERTIFICATE_REQUIRED"):
                acquirer.authorize(auth_request(TestCard(), 1000, stan=stan))
    finally:
        acquirer.close()
    assert tls_host.ledger.transactions() == []


def test_a_certificate_from_another_ca_is_host_unavailable(tmp_path: Path, tls_host: HostSimulator,
                                                           pki: TestPki) -> None:
    stranger = make_test_pki(tmp_path / "other")  # a client certificate the host does not trust
    acquirer = connect(tls_config(tls_host.port, pki, client_cert=str(stranger.client_cert),
                                  client_key=str(stranger.client_key)))
    try:
        with pytest.raises(HostUnavailable, match="refused the TLS session"):
            acquirer.authorize(auth_request(TestCard(), 1000))
    finally:
        acquirer.close()
    assert tls_host.ledger.transactions() == []


def test_an_accepted_session_that_drops_is_still_no_reply(tls_host: HostSimulator,
                                                          pki: TestPki) -> None:
    """Once the host took the certificate, a lost answer is an unknown outcome: reverse."""
    acquirer = connect(tls_config(tls_host.port, pki, client_cert=str(pki.client_cert),
                                  client_key=str(pki.client_key)))
    try:
        with pytest.raises(NoReply):
            acquirer.authorize(auth_request(TestCard(), 1097))  # books it, then hangs up
        assert acquirer.authorize(auth_request(TestCard(), 1000, stan=2)).approved
    finally:
        acquirer.close()
    assert [t["amount"] for t in tls_host.ledger.transactions()] == [1097, 1000]
