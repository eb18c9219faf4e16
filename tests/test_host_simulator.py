"""Terminal <-> host simulator over real TCP/TLS on 127.0.0.1: approvals with verified ARQCs,
declines, the test amounts, reversals, replays, every shipped dialect, TLS with a pinned CA."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from host_support import MC_PAN, VISA18_PAN, VISA_PAN, TestCard, auth_request, write_keys
from pyemv import tlv

from firmware.config import Config, ConfigError, load_config
from firmware.host import connect
from firmware.host.acquirer import HostUnavailable, NoReply
from firmware.host.iso8583_acquirer import Iso8583Acquirer
from simulators.demo import free_port
from simulators.host.issuer import parse_icc
from simulators.host.simulator import HostSimulator
from simulators.host.testpki import make_test_pki

pytestmark = pytest.mark.filterwarnings("ignore:.*TripleDES.*")


def terminal_config(port: int, **host: object) -> Config:
    """Timeouts with room for a loaded machine: the simulator answers at once or not at all."""
    cfg = load_config()
    fields = {"port": port, "response_timeout_s": 10.0, "connect_timeout_s": 10.0, **host}
    return dataclasses.replace(cfg, host=dataclasses.replace(cfg.host, **fields))


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return write_keys(tmp_path)


@pytest.fixture
def sim(tmp_path: Path, keys: Path) -> Iterator[HostSimulator]:
    with HostSimulator(port=0, keys_file=keys, ledger_file=tmp_path / "ledger.sqlite") as s:
        yield s


@pytest.fixture
def acquirer(sim: HostSimulator) -> Iterator[Iso8583Acquirer]:
    acq = connect(terminal_config(sim.port))
    assert isinstance(acq, Iso8583Acquirer)
    yield acq
    acq.close()


@pytest.mark.parametrize("pan", [VISA_PAN, VISA18_PAN, MC_PAN], ids=["visa10", "visa18", "mc16"])
def test_right_cryptogram_is_approved_with_arpc(acquirer: Iso8583Acquirer, pan: str) -> None:
    card = TestCard(pan)
    reply = acquirer.authorize(auth_request(card, 1234, stan=7))
    assert reply.approved and reply.response_code == "00" and reply.message == "Approved"
    assert len(reply.auth_code) == 6 and len(reply.rrn) == 12
    arpc = parse_icc(reply.issuer_data)["91"]
    if card.cvn == 18:  # method 2: 4-byte ARPC + card status update
        csu = arpc[4:]
        assert csu == bytes.fromhex("00800000")
        assert arpc[:4] == card.crypto.generate_arpc(card.last_arqc, card.atc.to_bytes(2, "big"),
                                                     csu)
    else:  # method 1: 8-byte ARPC + ARC "00"
        assert arpc[8:] == b"00"
        assert arpc[:8] == card.crypto.generate_arpc(card.last_arqc, b"00")


def test_wrong_cryptogram_is_declined(acquirer: Iso8583Acquirer) -> None:
    card = TestCard()
    good = auth_request(card, 1000)
    tampered = bytearray(good.icc_data)
    i = tampered.index(bytes.fromhex("9F2608")) + 3
    tampered[i] ^= 0x01
    reply = acquirer.authorize(dataclasses.replace(good, icc_data=bytes(tampered)))
    assert not reply.approved and reply.response_code == "05"
    assert reply.message == "Declined by card issuer"


def test_amount_changed_after_the_card_signed_is_declined(acquirer: Iso8583Acquirer) -> None:
    card = TestCard()
    req = auth_request(card, 1000)
    icc = parse_icc(req.icc_data)
    icc["9F02"] = bytes.fromhex("000000099999")  # 999.99 instead of the 10.00 signed
    reply = acquirer.authorize(dataclasses.replace(req, stan=2, icc_data=tlv.encode(icc)))
    assert reply.response_code == "05"


@pytest.mark.parametrize("tvr", ["0800000000", "0400000000", "4000000000"],
                         ids=["fdda-failed", "cda-failed", "sda-failed"])
def test_card_the_terminal_could_not_authenticate_is_declined(acquirer: Iso8583Acquirer,
                                                              tvr: str) -> None:
    card = TestCard()
    icc = card.icc_data(1000, tvr=bytes.fromhex(tvr))  # the card signed this TVR: ARQC is right
    reply = acquirer.authorize(auth_request(card, 1000, icc=icc))
    assert (reply.approved, reply.response_code) == (False, "05")
    other_bits = card.icc_data(1000, tvr=bytes.fromhex("0000008000"))  # e.g. CVM not successful
    assert acquirer.authorize(auth_request(card, 1000, stan=2, icc=other_bits)).approved


def test_a_verified_tc_or_aac_sent_online_is_approved(acquirer: Iso8583Acquirer) -> None:
    card = TestCard()
    tc = card.icc_data(1000, cid=0x40)  # fDDA failed: the phone's CTQ asked to go online
    assert acquirer.authorize(auth_request(card, 1000, icc=tc)).approved
    aac = card.icc_data(300, txn_type=0x20, cid=0x00)  # refunds: the card answers an AAC
    assert acquirer.authorize(auth_request(card, 300, stan=2, txn_type="refund", icc=aac)).approved


def test_replayed_cryptogram_is_declined(acquirer: Iso8583Acquirer) -> None:
    card = TestCard()
    req = auth_request(card, 1000, stan=1)
    assert acquirer.authorize(req).approved
    again = acquirer.authorize(dataclasses.replace(req, stan=2))
    assert not again.approved and again.response_code == "94"


@pytest.mark.parametrize(("amount", "code", "message"), [
    (1051, "51", "Insufficient funds"),
    (2005, "05", "Declined by card issuer"),
    (391, "91", "Card issuer unavailable, try later"),
])
def test_decline_test_amounts(acquirer: Iso8583Acquirer, amount: int, code: str,
                              message: str) -> None:
    reply = acquirer.authorize(auth_request(TestCard(), amount))
    assert (reply.approved, reply.response_code, reply.message) == (False, code, message)


@pytest.mark.parametrize("amount", [1096, 1097, 1098], ids=["silent", "drop", "garbage"])
def test_misbehaving_amounts_end_as_no_reply_and_reversal_undoes_the_booking(
        sim: HostSimulator, amount: int) -> None:
    # ...96 is waited for until the response timeout: a short one, still room for the answers
    acquirer = connect(terminal_config(sim.port, response_timeout_s=3.0))
    req = auth_request(TestCard(), amount, stan=41)
    with pytest.raises(NoReply):
        acquirer.authorize(req)
    booked = sim.ledger.open_totals("PITAP001", 978)
    assert (booked.sales_count, booked.sales_amount) == (1, amount)
    assert acquirer.reverse(req, "no reply")
    assert acquirer.reverse(req, "no reply", repeat=True)  # a repeat is harmless
    assert sim.ledger.open_totals("PITAP001", 978).sales_count == 0
    # and the link recovers for the next payment
    assert acquirer.authorize(auth_request(TestCard(MC_PAN), 500, stan=42)).approved
    acquirer.close()


def test_host_not_listening_is_host_unavailable() -> None:
    acq = connect(terminal_config(free_port()))
    with pytest.raises(HostUnavailable, match="refused"):
        acq.authorize(auth_request(TestCard(), 1000))


def test_host_stopping_mid_day_then_coming_back(tmp_path: Path, keys: Path) -> None:
    sim = HostSimulator(port=0, keys_file=keys, ledger_file=tmp_path / "l.sqlite").start()
    port = sim.port
    acq = connect(terminal_config(port))
    card = TestCard()
    assert acq.authorize(auth_request(card, 100, stan=1)).approved
    sim.stop()
    with pytest.raises((HostUnavailable, NoReply)):
        acq.authorize(auth_request(card, 100, stan=2))
    with pytest.raises(HostUnavailable):
        acq.authorize(auth_request(card, 100, stan=3))
    sim2 = HostSimulator(port=port, keys_file=keys, ledger_file=tmp_path / "l.sqlite").start()
    try:
        assert acq.authorize(auth_request(card, 100, stan=4)).approved
    finally:
        sim2.stop()


@pytest.mark.parametrize("dialect", ["pitap-default", "bcd-tpdu", "ascii4-binary"])
def test_every_shipped_dialect_round_trips(tmp_path: Path, keys: Path, dialect: str) -> None:
    with HostSimulator(port=0, keys_file=keys, dialect=dialect) as s:
        acq = connect(terminal_config(s.port, dialect=dialect))
        card = TestCard(MC_PAN)
        reply = acq.authorize(auth_request(card, 4321, stan=999999))
        assert reply.approved and "91" in parse_icc(reply.issuer_data)
        assert acq.echo()
        assert not acq.authorize(auth_request(card, 4351, stan=5)).approved
        acq.close()
        # The dialect decides whether a sale is an 0100 authorization or an 0200 financial.
        expected = "0200" if dialect == "bcd-tpdu" else "0100"
        assert {t["mti"] for t in s.ledger.transactions()} == {expected}


def test_many_terminals_at_once(sim: HostSimulator) -> None:
    results: list[bool] = []

    def terminal(n: int) -> None:
        acq = connect(terminal_config(sim.port, response_timeout_s=5.0))
        cfg_tid = f"T{n:07d}"
        for i in range(3):
            req = dataclasses.replace(auth_request(TestCard(), 100 + i, stan=i + 1),
                                      terminal_id=cfg_tid)
            # terminal id comes from the request; the reply must carry it back
            results.append(acq.authorize(req).approved)
        acq.close()

    threads = [threading.Thread(target=terminal, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [True] * 36


def test_tls_with_pinned_ca_and_client_certificate(tmp_path: Path, keys: Path) -> None:
    pki = make_test_pki(tmp_path / "pki")
    with HostSimulator(port=0, keys_file=keys, tls=pki.server_context(True)) as s:
        cfg = terminal_config(s.port, tls=True, ca_file=str(pki.ca_cert),
                              client_cert=str(pki.client_cert), client_key=str(pki.client_key))
        acq = connect(cfg)
        assert acq.authorize(auth_request(TestCard(), 1000)).approved
        acq.close()
        # without the client certificate the host refuses the handshake: nothing was sent
        no_cert = connect(terminal_config(s.port, tls=True, ca_file=str(pki.ca_cert)))
        with pytest.raises(HostUnavailable, match="refused the TLS session"):
            no_cert.authorize(auth_request(TestCard(), 1000, stan=2))


def test_tls_with_an_unpinned_server_fails_as_host_unavailable(tmp_path: Path,
                                                              keys: Path) -> None:
    server_pki = make_test_pki(tmp_path / "server")
    other_ca = make_test_pki(tmp_path / "other")  # the terminal pins a different CA
    with HostSimulator(port=0, keys_file=keys, tls=server_pki.server_context()) as s:
        acq = connect(terminal_config(s.port, tls=True, ca_file=str(other_ca.ca_cert)))
        with pytest.raises(HostUnavailable, match="TLS"):
            acq.authorize(auth_request(TestCard(), 1000))


def test_tls_without_a_ca_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ca_file"):
        connect(terminal_config(1, tls=True))


def test_unknown_acquirer_plugin_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no acquirer named 'nope'"):
        connect(terminal_config(1, acquirer="nope"))


@pytest.mark.parametrize(("text", "fragment"), [
    ("[host]\ntls = true\n", "host.ca_file: required with tls = true"),
    ("[host]\nclient_cert = 'a.pem'\n", "client_cert and client_key"),
    ("[host]\nsaf_interval_s = 0\n", "host.saf_interval_s"),
])
def test_host_config_mistakes_name_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    from firmware.config import parse_config

    with pytest.raises(ConfigError, match=fragment):
        parse_config(text, tmp_path / "terminal.toml")


def test_one_connection_per_message_when_not_persistent(sim: HostSimulator) -> None:
    acq = connect(terminal_config(sim.port, persistent_connection=False))
    assert isinstance(acq, Iso8583Acquirer)
    card = TestCard()
    for stan in (1, 2):
        assert acq.authorize(auth_request(card, 100, stan=stan)).approved
        assert not acq.link.connected


def test_card_data_never_reaches_the_logs(acquirer: Iso8583Acquirer, sim: HostSimulator,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    card = TestCard()
    approved = auth_request(card, 1000, stan=1)
    acquirer.authorize(approved)
    acquirer.reverse(approved, "test", repeat=True)
    acquirer.advise(dataclasses.replace(auth_request(card, 200, stan=2), offline_approved=True))
    with pytest.raises(NoReply):
        acquirer.authorize(auth_request(card, 1098, stan=3))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "476173******0010" in text  # masked: first 6 / last 4
    for secret in (card.pan, card.pan[3:], approved.track2.hex().upper()[:20],
                   approved.icc_data.hex().upper()[:16]):
        assert secret not in text
