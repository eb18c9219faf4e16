"""Simulated phone wallets on nfcpy's `udp:` driver: the phone a terminal taps in tests and demos.

`SimulatedPhone(profile, "udp:127.0.0.1:PORT").serve(taps)` becomes a Type A ISO-DEP target through
nfcpy's own `clf.listen`, answers the reader's RATS and block protocol (simulators.wallet.isodep),
and hands the APDUs to a `CardApplet` (simulators.wallet.applet) that behaves like the named wallet
profile (simulators/wallet/profiles.toml). `CardApplet` is also what an emulated PN532 puts in its
field. Never imports the kernel (firmware.emv).
"""

from __future__ import annotations

import errno
import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

import nfc
import nfc.clf

from simulators.wallet.applet import CardApplet, PhoneLeftField
from simulators.wallet.isodep import DEFAULT_FWI, IsoDepCard, TapResult
from simulators.wallet.profiles import Profile, ProfileError, get_profile, profile_names

__all__ = [
    "CardApplet",
    "PhoneLeftField",
    "Profile",
    "ProfileError",
    "SimulatedPhone",
    "get_profile",
    "profile_names",
]

log = logging.getLogger(__name__)

ATQA = b"\x04\x00"  # SENS_RES: single-size (4-byte) UID, bit frame anticollision
AWAY_SECONDS = 0.5  # after leaving the field mid-tap, the phone stays away this long


def parse_udp_path(path: str) -> tuple[str, int]:
    """'udp:HOST:PORT' -> (host, port); ValueError for anything else."""
    parts = path.split(":")
    if len(parts) != 3 or parts[0] != "udp" or not parts[1] or not parts[2].isdigit():
        raise ValueError(f"reader path must look like udp:HOST:PORT, not {path!r}")
    port = int(parts[2])
    if not 0 < port < 65536:
        raise ValueError(f"bad port in reader path {path!r}")
    return parts[1], port


def _bind_to_path_host(device: object) -> None:
    """Make nfcpy's udp device listen on the path's host only (it binds 0.0.0.0 by default), and
    keep one bound socket across taps (re-binding is a no-op): the simulated phone is reachable
    from loopback only, and a reader's poll right after a tap is never lost."""

    def bind_socket(time_to_return: float) -> bool:
        sock = device.socket  # type: ignore[attr-defined]
        addr = device.addr  # type: ignore[attr-defined]
        if sock.getsockname()[1] == addr[1]:
            return True  # already listening
        try:
            sock.bind(addr)
            return True
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                log.warning("another phone is already in the field at %s:%d", *addr)
                return False
            raise

    device._bind_socket = bind_socket  # type: ignore[attr-defined]


def _listen(clf: nfc.ContactlessFrontend, target: nfc.clf.LocalTarget, timeout: float):
    """`clf.listen` without its initial mute: on the udp driver mute closes the socket, and a
    reader polling again right after the last tap would wait a whole second for an answer.
    Same driver call (`listen_tta`) and the same bookkeeping (`clf.target`) as clf.listen."""
    with clf.lock:
        clf.target = None
        clf.target = clf.device.listen_tta(target, timeout)
        return clf.target


class SimulatedPhone:
    """A phone wallet that answers taps from a reader on nfcpy's `udp:` driver."""

    def __init__(
        self,
        profile: str,
        reader_path: str,
        *,
        fwi: int = DEFAULT_FWI,
        fsci: int = 8,
        issuer_keys: Path | None = None,
        idle_timeout: float = 5.0,
    ) -> None:
        self.profile = get_profile(profile)
        self.host, self.port = parse_udp_path(reader_path)
        self.applet = CardApplet(self.profile, issuer_keys)
        self.fwi = fwi
        self.fsci = fsci  # ATS FSCI: the largest frame this phone accepts (8 = 256 bytes)
        self.idle_timeout = idle_timeout
        self.served = 0
        self.last_tap: TapResult | None = None
        self.taps: list[TapResult] = []
        self.stop_event = threading.Event()
        self.ready = threading.Event()  # set once the phone listens the first time

    def serve(
        self, taps: int = 1, timeout: float = 30.0, stop: threading.Event | None = None,
        on_tap: Callable[[TapResult], None] | None = None,
    ) -> int:
        """Answer up to `taps` taps within `timeout` seconds (or until `stop` is set).

        A tap counts once the phone answered at least one APDU; `on_tap` hears of each tap as
        it ends. Returns the taps served.
        """
        stop = stop or self.stop_event
        deadline = time.monotonic() + timeout
        clf = nfc.ContactlessFrontend(f"udp:{self.host}:{self.port}")
        _bind_to_path_host(clf.device)
        clf.device._create_socket()  # bind now, so `ready` means a poll will be answered
        if not clf.device._bind_socket(deadline):
            clf.close()
            return 0
        served = 0
        self.ready.set()
        try:
            while served < taps and not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                target = nfc.clf.LocalTarget("106A")
                target.sens_res = bytearray(ATQA)
                target.sdd_res = bytearray(b"\x08" + secrets.token_bytes(3))  # random UID
                target.sel_res = bytearray.fromhex("20")  # ISO-DEP (ISO 14443-4) compliant
                started = time.monotonic()
                activated = _listen(clf, target, min(1.0, remaining))
                if activated is None:
                    if time.monotonic() - started < 0.05:
                        time.sleep(0.1)  # port taken: do not spin
                    continue
                rats = bytes(activated.tt4_cmd or b"")
                if not rats.startswith(b"\xe0"):
                    continue  # not a reader activating us (late frames of an earlier tap)
                self.applet.reset()
                card = IsoDepCard(
                    clf,
                    self.applet,
                    fwi=self.fwi,
                    fsci=self.fsci,
                    atqa=ATQA,
                    idle_timeout=self.idle_timeout,
                    silent_errors=(PhoneLeftField,),
                )
                result = card.run(rats)
                self.last_tap = result
                self.taps.append(result)
                if on_tap is not None:
                    on_tap(result)
                log.debug("%s: tap ended (%s) after %d APDUs", self.profile.name,
                          result.ended, result.apdus)  # fmt: skip
                if result.apdus:
                    served += 1
                    self.served = served
                if result.ended == "left-field":
                    clf.device.mute()  # close the socket: the reader's retries go nowhere
                    if served < taps:
                        stop.wait(AWAY_SECONDS)
        finally:
            clf.close()
        return served

    def start(
        self, taps: int = 1, timeout: float = 30.0, stop: threading.Event | None = None
    ) -> threading.Thread:
        """Serve in a daemon thread; `.stop()` or `stop` ends it early."""
        if stop is not None:
            self.stop_event = stop
        thread = threading.Thread(
            target=self.serve,
            kwargs={"taps": taps, "timeout": timeout, "stop": self.stop_event},
            name=f"phone-{self.profile.name}",
            daemon=True,
        )
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()
