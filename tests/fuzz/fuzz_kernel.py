"""Fuzz target: the contactless kernel against a phone whose answers the fuzzer bends.

The phone is a real simulated wallet (simulators.wallet's CardApplet: real records, real ARQC, real
fDDA/CDA signatures); the fuzz input decides, answer by answer, whether it is passed on
unchanged, cut short, has a byte changed, is replaced by other bytes, or the phone leaves the
field. `Kernel.process` must return an Outcome with a reason every time, without falling into
its catch-all ("kernel fault").

    python tests/fuzz/fuzz_kernel.py -max_total_time=60
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from drivers.nfc import CardRemoved  # noqa: E402
from firmware.config import load_config  # noqa: E402
from firmware.emv.kernel import Kernel  # noqa: E402
from firmware.emv.outcome import Outcome, TerminalTransaction  # noqa: E402
from simulators.wallet.applet import CardApplet, PhoneLeftField  # noqa: E402

PROFILES = ["visa-online", "visa-offline", "mastercard-online", "mastercard-see-phone",
            "rupay-online"]  # fmt: skip
KERNEL = Kernel.from_config(load_config())
PHONES = {name: CardApplet(name) for name in PROFILES}
WHEN = dt.datetime(2026, 11, 27, 10, 30, 0)

SEEDS = [
    bytes([i, 0, 0]) + bytes(24)
    for i in range(len(PROFILES))  # each phone, unchanged
] + [
    bytes([1, 0, 5]) + bytes([0, 0, 1, 7, 0x55]),  # visa-offline, a byte of the GPO changed
    bytes([2, 200, 0]) + bytes([0, 0, 0, 0, 4, 3]),  # mastercard, a record cut short
    bytes([0, 0, 0]) + bytes([0, 6, 9, 0x6F, 0x00]),  # visa, a status word out of nowhere
]


class FuzzedPhone:
    """A CardApplet behind a link whose every answer the fuzz input may bend."""

    def __init__(self, applet: CardApplet, script: bytes) -> None:
        self.applet = applet
        self.script = script
        self.pos = 0
        self.bent = False

    def _take(self, n: int = 1) -> bytes:
        chunk = self.script[self.pos : self.pos + n]
        self.pos += n
        return chunk.ljust(n, b"\x00")

    def transceive(self, apdu: bytes) -> bytes:
        try:
            answer = self.applet.respond(apdu)
        except PhoneLeftField:
            raise CardRemoved("phone left the field") from None
        op = self._take()[0] % 10
        if op <= 4:  # mostly: the phone's own answer
            return answer
        self.bent = True
        if op == 5:  # cut short
            return answer[: self._take()[0] % (len(answer) + 1)]
        if op == 6:  # one byte changed
            if answer:
                at = self._take()[0] % len(answer)
                value = self._take()[0]
                return answer[:at] + bytes([value]) + answer[at + 1 :]
            return answer
        if op == 7:  # replaced by the fuzzer's bytes, with a 9000
            return self._take(self._take()[0]) + b"\x90\x00"
        if op == 8:  # replaced by the fuzzer's bytes, raw
            return self._take(self._take()[0] % 8)
        raise CardRemoved("fuzz: the phone left the field")


def one_input(data: bytes) -> None:
    if len(data) < 3:
        return
    profile = PROFILES[data[0] % len(PROFILES)]
    amount = 100 + data[1] * 97  # from well under to well over the floor limits
    applet = PHONES[profile]
    applet.reset()
    phone = FuzzedPhone(applet, data[3:] if data[2] else b"")
    txn = TerminalTransaction(amount=amount, currency=978, country=380, when=WHEN,
                              unpredictable_number=bytes(4))  # fmt: skip
    out = KERNEL.process(phone, txn)
    assert isinstance(out, Outcome)
    assert out.reason, out
    assert "kernel fault" not in out.reason, out.reason


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(one_input, SEEDS)
