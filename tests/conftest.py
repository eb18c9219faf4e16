"""Shared fixtures: a host simulator on loopback, terminal configs on free ports, phones, the
emulated PN532 and a reader on it."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware.config import Config, load_config
from simulators.demo import free_port


@pytest.fixture
def unused_tcp_port() -> int:
    return free_port()


@pytest.fixture
def shipped_config() -> Config:
    return load_config()


@pytest.fixture
def host_sim(tmp_path: Path, shipped_config: Config) -> Iterator[object]:
    """The host simulator, a real TCP server on 127.0.0.1, in this process."""
    from simulators.host.simulator import HostSimulator

    sim = HostSimulator(
        host="127.0.0.1",
        port=0,
        ledger_file=tmp_path / "ledger.sqlite",
    )
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def make_config(tmp_path: Path, shipped_config: Config) -> Callable[..., Config]:
    """A terminal config on a fresh UDP reader port, with state in tmp_path. The presentment
    timeout is the shipped one: a test's phone taps at once, however loaded the machine, and a
    test that wants "nobody taps" sets a short one."""

    def make(host_port: int, presentment_timeout_s: float = 15.0, **host: object) -> Config:
        from simulators.demo import demo_config

        cfg = demo_config(shipped_config, tmp_path / "state", tmp_path / "screens",
                          free_port(socket.SOCK_DGRAM), host_port)
        return dataclasses.replace(
            cfg,
            terminal=dataclasses.replace(cfg.terminal, presentment_timeout_s=presentment_timeout_s),
            host=dataclasses.replace(cfg.host, **host),
        )

    return make


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[object]:
    """The emulated PN532 on a link nfcpy opens (emul_support.emulator)."""
    from emul_support import emulator

    with emulator(tmp_path) as emu:
        yield emu


@pytest.fixture
def reader(emu) -> Iterator[object]:
    """drivers.nfc's Reader on the emulated PN532, closed at the end of the test."""
    from drivers.nfc import Reader

    reader = Reader(emu.nfcpy_path)
    yield reader
    reader.close()


@pytest.fixture
def phone() -> Iterator[Callable[..., threading.Thread]]:
    """Start a simulated phone wallet on the udp: link; stopped at the end of the test."""
    from simulators.wallet.phone import SimulatedPhone

    started: list[tuple[SimulatedPhone, threading.Thread]] = []

    def start(profile: str, reader_path: str, taps: int = 1) -> threading.Thread:
        phone = SimulatedPhone(profile, reader_path)
        thread = phone.start(taps=taps, timeout=60.0)
        started.append((phone, thread))
        return thread

    yield start
    for phone, thread in started:
        phone.stop()
        thread.join(timeout=5)


@pytest.fixture
def api(make_config, host_sim) -> Iterator[object]:
    """The terminal API on 127.0.0.1 (api_support.serve) before a real terminal whose reader is
    on a udp: link (phones tap there) and whose host is the host simulator."""
    from api_support import serve

    with serve(make_config(host_sim.port, presentment_timeout_s=60.0)) as running:
        yield running


@pytest.fixture
def psp_clock() -> object:
    """The UPI PSP simulator's clock, moved by the test (api_support.StoppedClock)."""
    from api_support import StoppedClock

    return StoppedClock()


@pytest.fixture
def upi_psp(psp_clock) -> Iterator[object]:
    """The UPI PSP simulator on 127.0.0.1, its payer paying when the test moves `psp_clock`."""
    from simulators.upi.psp import PspSimulator

    with PspSimulator(pay_delay_s=psp_clock.pay_delay_s, clock=psp_clock) as sim:
        yield sim


@pytest.fixture
def upi_api(make_config, host_sim, upi_psp) -> Iterator[object]:
    """The terminal API (as `api`) of an INR terminal with [upi] configured, its PSP
    `upi_psp`."""
    from api_support import serve, with_upi

    with serve(with_upi(make_config(host_sim.port, presentment_timeout_s=60.0),
                        upi_psp.url)) as running:
        yield running
