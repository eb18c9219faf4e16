"""The simulated phone's ISO-DEP card side against nfcpy's own reader side (udp: driver):
activation, chaining both ways, R(NAK) recovery, S(DESELECT), and the end of a tap."""

from __future__ import annotations

import socket

import nfc
import nfc.clf
import nfc.tag
import nfc.tag.tt4
import pytest
from run_support import wait_until
from wallet_helpers import PPSE, select, terminal_values, tlvs, visa_gpo

from simulators.demo import free_port
from simulators.wallet.isodep import frame_waiting_time
from simulators.wallet.phone import SimulatedPhone

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning"
)


@pytest.fixture
def phone_at():
    started = []

    def start(
        profile: str, taps: int = 1, **kwargs
    ) -> tuple[SimulatedPhone, nfc.ContactlessFrontend]:
        path = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
        phone = SimulatedPhone(profile, path, **kwargs)
        thread = phone.start(taps=taps, timeout=60)
        assert phone.ready.wait(30)
        clf = nfc.ContactlessFrontend(path)
        started.append((phone, thread, clf))
        return phone, clf

    yield start
    for phone, thread, clf in started:
        clf.close()
        phone.stop()
        thread.join(5)


def sense(clf: nfc.ContactlessFrontend) -> nfc.clf.RemoteTarget:
    for _ in range(5):
        target = clf.sense(nfc.clf.RemoteTarget("106A"), iterations=1, interval=0.05)
        if target is not None:
            return target
    raise AssertionError("phone not found")


def test_phone_activates_as_iso_dep_with_a_random_uid(phone_at):
    phone, clf = phone_at("visa-online")
    target = sense(clf)
    assert target.sel_res[0] & 0x20  # ISO-DEP
    assert len(target.sdd_res) == 4 and target.sdd_res[0] == 0x08  # random single-size UID
    tag = nfc.tag.activate(clf, target)
    assert isinstance(tag, nfc.tag.tt4.Type4Tag)
    assert tag.transceive(PPSE)[-2:] == b"\x90\x00"


def test_command_chaining_to_a_phone_that_takes_small_frames(phone_at):
    phone, clf = phone_at("visa-online", fsci=2)  # 32-byte frames: the GPO needs chaining
    tag = nfc.tag.activate(clf, sense(clf))
    assert tag._dep.miu == 29
    tag.transceive(select("A0000000031010"))
    gpo = tag.transceive(visa_gpo(terminal_values()))
    assert gpo[-2:] == b"\x90\x00"
    assert tlvs(gpo[:-2])[0x9F27] == b"\x80"


def test_response_chaining_to_a_reader_with_small_frames(phone_at):
    phone, clf = phone_at("visa-offline")
    target = sense(clf)
    clf.target = target
    ats = clf.exchange(bytearray.fromhex("E020"), 0.1)  # RATS: FSD 32 bytes
    fwt = frame_waiting_time(ats[3] >> 4)
    dep = nfc.tag.tt4.IsoDepInitiator(clf, 32, fwt)
    dep.exchange(bytearray(select("A0000000031010")))
    values = terminal_values(amount=100)
    values[0x9F66] = bytes.fromhex("36000000")
    gpo = bytes(dep.exchange(bytearray(visa_gpo(values))))  # ~230 bytes in 29-byte blocks
    assert gpo[-2:] == b"\x90\x00"
    assert tlvs(gpo[:-2])[0x9F27] == b"\x40"


def test_nak_makes_the_phone_resend_its_last_block(phone_at):
    phone, clf = phone_at("visa-online")
    target = sense(clf)
    clf.target = target
    clf.exchange(bytearray.fromhex("E080"), 0.1)
    first = clf.exchange(bytearray(b"\x02" + PPSE), 1.0)
    again = clf.exchange(bytearray([0xB2]), 1.0)  # R(NAK), block 0: "did not get that"
    assert again == first
    deselect = clf.exchange(bytearray([0xC2]), 1.0)
    assert deselect == bytearray([0xC2])


def test_tap_ends_when_the_reader_switches_the_field_off(phone_at):
    phone, clf = phone_at("visa-online")
    tag = nfc.tag.activate(clf, sense(clf))
    tag.transceive(PPSE)
    clf.device.mute()  # RFOFF
    phone.stop()
    wait_until(lambda: phone.last_tap is not None, seconds=30, every=0.02)
    assert phone.last_tap.ended == "rf-off"
    assert phone.last_tap.apdus == 1


def test_reader_that_polls_again_without_field_off_finds_the_phone_again(phone_at):
    phone, clf = phone_at("visa-online", taps=2)
    tag = nfc.tag.activate(clf, sense(clf))
    tag.transceive(PPSE)
    # no RFOFF: the reader simply polls again, as after a failed exchange
    tag = nfc.tag.activate(clf, sense(clf))
    assert isinstance(tag, nfc.tag.tt4.Type4Tag)
    assert tag.transceive(PPSE)[-2:] == b"\x90\x00"
