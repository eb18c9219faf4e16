"""Figures for the emulated hardware: what one APDU and one payment cost on the PN532's serial
line through nfcpy, and what each payment screen costs on the SPI bus. Prints; asserts nothing."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

# tests/ has the tiny applet the figures use.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from emul_support import PPSE_FCI, SELECT_PPSE, TinyApplet, emulator  # noqa: E402

from drivers.nfc import Reader  # noqa: E402


def pn532(line_timing: bool, apdus: int = 60) -> None:
    with emulator(Path("."), line_timing=line_timing) as emu:
        started = time.perf_counter()
        reader = Reader(emu.nfcpy_path)
        opened = time.perf_counter() - started
        emu.place_phone(TinyApplet())
        started = time.perf_counter()
        card = reader.wait_for_card(2.0)
        assert card is not None
        found = time.perf_counter() - started
        frames, bytes_in, bytes_out = emu.stats.frames_in, emu.stats.bytes_in, emu.stats.bytes_out
        times = []
        for _ in range(apdus):
            t = time.perf_counter()
            assert card.transceive(SELECT_PPSE) == PPSE_FCI
            times.append(time.perf_counter() - t)
        baud = emu.chip.baud
        per = (emu.stats.frames_in - frames) / apdus
        host_bytes = (emu.stats.bytes_in - bytes_in) / apdus
        chip_bytes = (emu.stats.bytes_out - bytes_out) / apdus
        reader.close()
    label = f"line and air timing, {baud} baud" if line_timing else "no line timing"
    print(f"PN532 over pty ({label}):")
    print(f"  nfcpy open (init, baud change, line test): {opened * 1000:7.1f} ms")
    print(f"  poll to activated card (sense + RATS):     {found * 1000:7.1f} ms")
    print(
        f"  SELECT PPSE ({len(SELECT_PPSE)} B -> {len(PPSE_FCI)} B), {apdus} times: "
        f"median {statistics.median(times) * 1000:.2f} ms, max {max(times) * 1000:.2f} ms"
    )
    print(
        f"  per APDU: {per:.0f} host commands, {host_bytes:.0f} B host->chip, "
        f"{chip_bytes:.0f} B chip->host"
    )


def spi_panel() -> None:
    try:
        from PIL import Image  # noqa: F401

        from drivers.display import SpiPanel
        from firmware.money import Money
        from simulators import gpio_fake
        from simulators.spi_panel import SpiPanelEmulator
        from ui import screens
        from ui.lang import load
    except ImportError as exc:
        print(f"SPI panel: skipped ({exc})")
        return
    gpio = gpio_fake.FakeGPIO()
    panel = SpiPanelEmulator(gpio, "st7789", dc=24, rst=25, mounted_turn=90)
    driver = SpiPanel(panel, gpio, "st7789", 320, 240, dc=24, rst=25, sleep=lambda s: None)
    init = panel.take_counts()
    print(f"SPI panel ST7789 320x240, 16-bit; init sequence {init.bytes_total} B")
    money = Money.of(1250, "EUR")

    def view(lights: int) -> screens.View:
        return screens.View(320, 240, load("en"), merchant="Pitap Shop", lights=lights)

    shown = [
        screens.ready_screen(view(0)),
        screens.present_card_screen(view(1), money),
        screens.processing_screen(view(2), money),
        screens.card_read_screen(view(3)),
        screens.approved_screen(view(4), money, "123456", "476173******0010", "visa"),
        screens.ready_screen(view(0)),
    ]
    for screen in shown:
        t = time.perf_counter()
        driver.show(screen.image, screen.name)
        driver_ms = (time.perf_counter() - t) * 1000
        c = panel.take_counts()
        print(
            f"  {screen.name:14s} {c.bytes_total:7d} B in {c.windows:2d} windows "
            f"({c.bytes_total / (320 * 240 * 2):4.0%} of a frame), "
            f"{c.seconds_at(40_000_000) * 1000:5.1f} ms at 40 MHz, "
            f"{c.pixels_changed:6d} px changed; driver+emulator {driver_ms:5.0f} ms"
        )


def payments(line_timing: bool) -> None:
    """Whole payments through the emulated PN532 (terminal, kernel, host simulator, journal)."""
    import dataclasses
    import logging
    import tempfile

    from firmware.config import load_config
    from firmware.terminal import Terminal
    from simulators.demo import demo_config
    from simulators.host.simulator import HostSimulator
    from simulators.wallet.phone import CardApplet

    logging.disable(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="pitap-bench-"))
    shipped = load_config()
    host = HostSimulator(
        host="127.0.0.1",
        port=0,
        ledger_file=tmp / "ledger.sqlite",
    )
    host.start()
    label = "line and air timing" if line_timing else "no line timing"
    print(f"Payments over the emulated PN532 ({label}):")
    try:
        with emulator(tmp, line_timing=line_timing) as emu:
            cfg = demo_config(shipped, tmp / "state", tmp / "screens", 1, host.port)
            cfg = dataclasses.replace(
                cfg, reader=dataclasses.replace(cfg.reader, path=emu.nfcpy_path)
            )
            terminal = Terminal.from_config(cfg)
            try:
                emu.queue_taps(CardApplet("visa-online"), 1, gap=0.0)
                terminal.pay(1250)  # warm-up: imports, first connection
                for profile in ("visa-online", "visa-offline", "mastercard-online", "rupay-online"):
                    emu.queue_taps(CardApplet(profile), 1, gap=0.0)
                    frames = emu.stats.frames_in
                    line = emu.stats.bytes_in + emu.stats.bytes_out
                    result = terminal.pay(1250)
                    print(
                        f"  {profile:18s} {result.outcome:9s} card in field "
                        f"{result.card_in_field_ms:6.1f} ms, payment {result.total_ms:5.0f} ms, "
                        f"{emu.stats.frames_in - frames} host commands, "
                        f"{emu.stats.bytes_in + emu.stats.bytes_out - line} B on the line"
                    )
            finally:
                terminal.close()
    finally:
        host.stop()


if __name__ == "__main__":
    pn532(line_timing=False)
    pn532(line_timing=True)
    payments(line_timing=False)
    payments(line_timing=True)
    spi_panel()
