"""The kernel against every simulated wallet profile, over nfcpy's `udp:` driver end to end.

The phones (simulators/wallet, written separately from the kernel) listen as ISO-DEP cards on a free
UDP port on 127.0.0.1; the kernel reads them through drivers.nfc.Reader exactly as the terminal
does. Each profile must end the way EMV says, for the right reason.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from run_support import wait_until

from drivers.nfc import Reader
from firmware.config import load_config
from firmware.emv.kernel import Kernel
from firmware.emv.outcome import Outcome, OutcomeKind, TerminalTransaction
from simulators.demo import free_port
from simulators.wallet.phone import SimulatedPhone, profile_names

EUR, INR = 978, 356

# profile -> (amount, currency, expected kinds tap by tap, fragment of the last reason)
EXPECTED: dict[str, tuple[int, int, list[OutcomeKind], str]] = {
    "visa-online": (12_345, EUR, [OutcomeKind.ONLINE_REQUEST], "ARQC"),
    "visa-offline": (1_000, EUR, [OutcomeKind.APPROVED], "fDDA verified"),
    "mastercard-online": (12_345, EUR, [OutcomeKind.ONLINE_REQUEST], "ARQC"),
    "mastercard-see-phone": (
        12_345, EUR, [OutcomeKind.TRY_AGAIN, OutcomeKind.ONLINE_REQUEST], "ARQC",
    ),
    "rupay-online": (50_000, INR, [OutcomeKind.ONLINE_REQUEST], "ARQC"),
    "bad-signature": (1_000, EUR, [OutcomeKind.ONLINE_REQUEST], "fDDA failed"),
    "expired-cert": (1_000, EUR, [OutcomeKind.ONLINE_REQUEST], "certificate expired"),
    "malformed-tlv": (12_345, EUR, [OutcomeKind.END_APPLICATION], "malformed card data"),
    "wrong-sw": (12_345, EUR, [OutcomeKind.END_APPLICATION], "SW 6F00"),
    "leaves-field": (12_345, EUR, [OutcomeKind.TRY_AGAIN], "left the field"),
    "slow-wtx": (12_345, EUR, [OutcomeKind.ONLINE_REQUEST], "ARQC"),
    "unknown-aid": (12_345, EUR, [OutcomeKind.END_APPLICATION], "no application"),
}  # fmt: skip


@pytest.fixture(scope="module")
def kernel() -> Kernel:
    return Kernel.from_config(load_config())  # shipped config: the wallets' test CA keys


@pytest.fixture
def link(request: pytest.FixtureRequest) -> Iterator[tuple[SimulatedPhone, Reader]]:
    profile = request.param
    taps = len(EXPECTED[profile][2])
    path = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    phone = SimulatedPhone(profile, path)
    thread = phone.start(taps=taps, timeout=60.0)
    assert phone.ready.wait(30.0)
    time.sleep(0.05)  # polling before the phone has bound its port costs nfcpy a 1 s timeout
    reader = Reader(path)
    try:
        yield phone, reader
    finally:
        reader.close()
        phone.stop()
        thread.join(5.0)


def tap_once(
    kernel: Kernel, phone: SimulatedPhone, reader: Reader, txn: TerminalTransaction
) -> Outcome:
    served = phone.served
    card = reader.wait_for_card(timeout=30.0)  # the phone is there: ends when it is read
    assert card is not None, "no phone in the field"
    try:
        return kernel.process(card, txn)
    finally:
        reader.release()
        # let the phone see the field go and listen again
        wait_until(lambda: phone.served != served, seconds=2.0, every=0.002)
        time.sleep(0.01)


def test_every_profile_has_an_expectation() -> None:
    assert set(profile_names()) == set(EXPECTED)


@pytest.mark.parametrize("link", sorted(EXPECTED), indirect=True)
def test_profile_over_udp(kernel: Kernel, link: tuple[SimulatedPhone, Reader]) -> None:
    phone, reader = link
    amount, currency, kinds, fragment = EXPECTED[phone.profile.name]
    txn = TerminalTransaction(amount=amount, currency=currency, country=380)
    outcomes = [tap_once(kernel, phone, reader, txn) for _ in kinds]
    assert [o.kind for o in outcomes] == kinds, [o.reason for o in outcomes]
    last = outcomes[-1]
    assert fragment in last.reason
    if OutcomeKind.TRY_AGAIN in kinds[:-1]:
        assert outcomes[0].ui_message == "See phone"
    if last.kind in (OutcomeKind.ONLINE_REQUEST, OutcomeKind.APPROVED):
        assert last.pan.startswith(phone.profile.token[:6])
        assert last.icc_data and last.cryptogram
    if phone.profile.name == "mastercard-online":
        assert last.oda == "cda"
