"""Simulated phones over nfcpy's real udp: driver, read by the project's own Reader (as the
terminal does): raw APDUs, cryptograms checked against the TEST issuer keys with pyemv."""

from __future__ import annotations

import socket

import pytest
from run_support import wait_until
from wallet_helpers import (
    PPSE,
    generate_ac,
    issuer_ac,
    select,
    terminal_values,
    tlvs,
    visa_gpo,
)

from drivers.nfc import Card, CardRemoved, Reader
from simulators.demo import free_port
from simulators.wallet.phone import SimulatedPhone, profile_names

pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")


@pytest.fixture
def tap():
    """tap(profile, taps=1) -> (phone, reader) with the phone serving in a thread."""
    started = []

    def start(profile: str, taps: int = 1):
        path = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
        phone = SimulatedPhone(profile, path)
        thread = phone.start(taps=taps, timeout=60)
        assert phone.ready.wait(30)
        reader = Reader(path)
        started.append((phone, thread, reader))
        return phone, reader

    yield start
    for phone, thread, reader in started:
        reader.release()
        reader.close()
        phone.stop()
        thread.join(5)


def ok(rapdu: bytes) -> dict[int, bytes]:
    assert rapdu[-2:] == b"\x90\x00", rapdu.hex()
    return tlvs(rapdu[:-2])


def read_records(card: Card, afl: bytes) -> dict[int, bytes]:
    """READ RECORD every record the AFL names (each must answer 9000); their data objects."""
    records: dict[int, bytes] = {}
    for i in range(0, len(afl), 4):
        sfi, first, last = afl[i] >> 3, afl[i + 1], afl[i + 2]
        for rec in range(first, last + 1):
            records.update(ok(card.transceive(bytes([0x00, 0xB2, rec, (sfi << 3) | 4, 0x00]))))
    return records


def test_visa_online_arqc_over_udp(tap):
    phone, reader = tap("visa-online")
    card = reader.wait_for_card(30)
    assert card is not None
    ppse = ok(card.transceive(PPSE))
    assert ppse[0x4F] == bytes.fromhex("A0000000031010")
    assert ppse[0x9F2A] == b"\x03"
    fci = ok(card.transceive(select("A0000000031010")))
    assert fci[0x9F38].startswith(bytes.fromhex("9F6604"))
    values = terminal_values(amount=1234)
    gpo = ok(card.transceive(visa_gpo(values)))
    assert gpo[0x9F27] == b"\x80"  # ARQC
    token = gpo[0x57].hex().upper().split("D")[0]
    assert token == "4761731000000019"
    expected = issuer_ac(token, "01", values, gpo[0x82], gpo[0x9F36], gpo[0x9F10])
    assert gpo[0x9F26] == expected
    assert gpo[0x9F6C][1] & 0x80  # on-device CVM performed
    read_records(card, gpo[0x94])
    # a record the AFL does not name is refused (phones have an error budget: never probe)
    assert card.transceive(bytes.fromhex("00B2051C00"))[-2:] == b"\x6a\x83"
    reader.release()


def test_mastercard_online_arqc_with_cda_over_udp(tap):
    phone, reader = tap("mastercard-online")
    card = reader.wait_for_card(30)
    assert card is not None
    ok(card.transceive(PPSE))
    ok(card.transceive(select("A0000000041010")))
    gpo = ok(card.transceive(bytes.fromhex("80A8000002830000")))
    records = read_records(card, gpo[0x94])
    assert records[0x8C]  # CDOL1
    token = records[0x5A].hex().upper().rstrip("F")
    values = terminal_values(amount=4200)
    genac = ok(card.transceive(generate_ac(values, p1=0x80 | 0x10)))  # ARQC, CDA requested
    assert genac[0x9F27] == b"\x80"
    assert 0x9F4B in genac and 0x9F26 not in genac  # with CDA the AC is inside the signature
    assert token.startswith("541333")


def test_mastercard_without_cda_answers_ac_in_clear(tap):
    phone, reader = tap("mastercard-online")
    card = reader.wait_for_card(30)
    ok(card.transceive(PPSE))
    ok(card.transceive(select("A0000000041010")))
    gpo = ok(card.transceive(bytes.fromhex("80A8000002830000")))
    rec = ok(card.transceive(bytes.fromhex("00B2011400")))
    values = terminal_values(amount=999)
    genac = ok(card.transceive(generate_ac(values, p1=0x80)))
    token = rec[0x5A].hex().upper().rstrip("F")
    expected = issuer_ac(token, "00", values, gpo[0x82], genac[0x9F36], genac[0x9F10])
    assert genac[0x9F26] == expected


def test_leaves_field_ends_as_card_removed(tap):
    phone, reader = tap("leaves-field")
    card = reader.wait_for_card(30)
    ok(card.transceive(PPSE))
    ok(card.transceive(select("A0000000041010")))
    ok(card.transceive(bytes.fromhex("80A8000002830000")))
    with pytest.raises(CardRemoved):
        card.transceive(generate_ac(terminal_values(), p1=0x80))


def test_slow_phone_sends_wtx_and_still_answers(tap):
    phone, reader = tap("slow-wtx")
    card = reader.wait_for_card(30)
    ok(card.transceive(PPSE))
    ok(card.transceive(select("A0000000031010")))
    gpo = ok(card.transceive(visa_gpo(terminal_values())))
    assert gpo[0x9F27] == b"\x80"
    reader.release()
    phone.stop()
    wait_until(lambda: phone.last_tap and phone.last_tap.ended, seconds=30, every=0.02)
    assert phone.last_tap.wtx_sent >= 1


def test_see_phone_then_second_tap_completes(tap):
    phone, reader = tap("mastercard-see-phone", taps=2)
    results = []
    for _ in range(2):
        card = reader.wait_for_card(30)
        assert card is not None
        ok(card.transceive(PPSE))
        ok(card.transceive(select("A0000000041010")))
        gpo = ok(card.transceive(bytes.fromhex("80A8000002830000")))
        read_records(card, gpo[0x94])
        results.append(ok(card.transceive(generate_ac(terminal_values(), p1=0x90))))
        reader.release()
    assert results[0][0x9F27] == b"\x00" and results[0][0xDF4B][1] & 0x03  # see phone
    assert results[1][0x9F27] == b"\x80"  # the unlocked phone completes


def test_every_profile_is_tapped_over_udp(tap):
    for name in profile_names():
        phone, reader = tap(name)
        card = reader.wait_for_card(30)
        assert card is not None, name
        ppse = ok(card.transceive(PPSE))
        fci = ok(card.transceive(select(ppse[0x4F].hex())))
        assert fci[0x84] == ppse[0x4F], name
        reader.release()
