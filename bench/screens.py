"""Screen speed: render time of every screen at each layout; bytes an SPI panel is sent for each
screen change of a payment against a full frame, and how long a 40 MHz SPI bus needs for them;
the whole cost of one screen change on the way to the panel (render + diff + RGB565 + write).

Prints figures; asserts nothing. Runs in well under a minute on the 2-core CI machine.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path

from drivers.display import SpiPanel
from firmware.money import CURRENCIES, BatchTotals, Money
from simulators.gpio_fake import FakeGPIO
from ui import screens
from ui.lang import load
from ui.theme import LAYOUTS

SPI_HZ = 40_000_000
REPEATS = 9
EUR = Money.of(1250, "EUR")


class CountingBus:
    """spidev-like: counts what would go on the wire."""

    def __init__(self) -> None:
        self.max_speed_hz = SPI_HZ
        self.mode = 0
        self.bytes = 0

    def writebytes2(self, data: bytes) -> None:
        self.bytes += len(data)


def view(w: int, h: int, lights: int = 1) -> screens.View:
    return screens.View(w, h, load("en"), merchant="Pitap Demo Shop", lights=lights,
                        clock="14:05")


def payment_screens(w: int, h: int) -> list[tuple[str, screens.Screen]]:
    """The screens of one payment in order, as the terminal shows them."""
    out = [("ready", screens.ready_screen(view(w, h)))]
    for minor in (1, 12, 125, 1250):
        out.append((f"amount {minor}", screens.amount_entry_screen(view(w, h),
                                                                   Money.of(minor, "EUR"))))
    out += [
        ("present_card", screens.present_card_screen(view(w, h), EUR)),
        ("processing", screens.processing_screen(view(w, h, 2), EUR)),
        ("card_read", screens.card_read_screen(view(w, h, 4))),
        ("approved", screens.approved_screen(view(w, h, 0), EUR, "123456",
                                             "476173******0010", "visa")),
        ("receipt_qr", screens.receipt_qr_screen(view(w, h, 0), "PITAP001 12 EUR 12.50", EUR,
                                                 outcome="approved")),
        ("ready", screens.ready_screen(view(w, h))),
    ]
    return out


def all_renderers(w: int, h: int) -> dict[str, object]:
    v = view(w, h)
    summary = BatchTotals(7, CURRENCIES["EUR"], 128, 1234567, 3, 4500)
    return {
        "ready": lambda: screens.ready_screen(v),
        "amount_entry": lambda: screens.amount_entry_screen(v, Money.of(123456, "EUR")),
        "present_card": lambda: screens.present_card_screen(v, EUR),
        "processing": lambda: screens.processing_screen(v, EUR),
        "card_read": lambda: screens.card_read_screen(v),
        "approved": lambda: screens.approved_screen(v, EUR, "123456", "476173******0010", "visa"),
        "declined": lambda: screens.declined_screen(v, "insufficient_funds", EUR),
        "see_phone": lambda: screens.message_screen(v, "see_phone"),
        "one_card_only": lambda: screens.message_screen(v, "one_card_only"),
        "try_again": lambda: screens.message_screen(v, "try_again"),
        "out_of_service": lambda: screens.message_screen(v, "out_of_service"),
        "settlement": lambda: screens.settlement_screen(v, summary, True),
        "receipt_qr": lambda: screens.receipt_qr_screen(v, "PITAP001 12 EUR 12.50", EUR),
    }


def render_times() -> None:
    print(f"render time per screen, best / median of {REPEATS} (ms; the best is the cost, "
          "the median shows how busy the machine was)")
    header = f"{'screen':<16}" + "".join(f"{f'{w}x{h}':<14}" for w, h in LAYOUTS)
    print(header)
    for name in all_renderers(320, 240):
        row = f"{name:<16}"
        for w, h in LAYOUTS:
            render = all_renderers(w, h)[name]
            render()  # fonts cached, as in a running terminal
            samples = []
            for _ in range(REPEATS):
                t = time.perf_counter()
                render()
                samples.append((time.perf_counter() - t) * 1000)
            row += f"{f'{min(samples):.1f} / {statistics.median(samples):.1f}':<14}"
        print(row)


def spi_traffic() -> None:
    for w, h in LAYOUTS:
        bus = CountingBus()
        panel = SpiPanel(bus, FakeGPIO(), "st7789", w, h, dc=24, rst=25, backlight=18,
                         sleep=lambda s: None)
        full = w * h * 2
        print(f"\nSPI panel {w}x{h}: full frame {full} bytes = {full * 8 / SPI_HZ * 1000:.1f} ms "
              f"at {SPI_HZ // 1_000_000} MHz")
        print(f"{'screen change':<16}{'windows':>8}{'bytes':>9}{'of full':>9}{'bus ms':>8}"
              f"{'push ms':>9}")
        total_sent = total_full = 0
        for name, screen in payment_screens(w, h):
            bus.bytes = 0
            t = time.perf_counter()
            stats = panel.show(screen.image)
            push_ms = (time.perf_counter() - t) * 1000
            total_sent += bus.bytes
            total_full += full
            print(f"{name:<16}{len(stats.regions):>8}{bus.bytes:>9}"
                  f"{bus.bytes / full * 100:>8.0f}%{bus.bytes * 8 / SPI_HZ * 1000:>8.2f}"
                  f"{push_ms:>9.1f}")
        print(f"{'one payment':<16}{'':>8}{total_sent:>9}{total_sent / total_full * 100:>8.0f}%"
              f"{total_sent * 8 / SPI_HZ * 1000:>8.1f}   (full frames: "
              f"{total_full * 8 / SPI_HZ * 1000:.1f} ms)")


def screen_change_latency() -> None:
    """From 'the card was read' to the last byte on the bus: render + diff + convert + write."""
    w, h = 320, 240
    bus = CountingBus()
    panel = SpiPanel(bus, FakeGPIO(), "st7789", w, h, dc=24, rst=25, sleep=lambda s: None)
    processing = screens.processing_screen(view(w, h, 2), EUR).image
    samples = []
    for _ in range(REPEATS):
        panel.show(processing)
        bus.bytes = 0
        t = time.perf_counter()
        panel.show(screens.card_read_screen(view(w, h, 4)).image)
        cpu = time.perf_counter() - t
        samples.append((cpu + bus.bytes * 8 / SPI_HZ) * 1000)
    print(f"\nprocessing -> card read at 320x240 on ST7789, CPU + 40 MHz bus: "
          f"{statistics.median(samples):.1f} ms median (on this machine's CPU)")


def gallery_screens(v: screens.View) -> list[screens.Screen]:
    """Every screen once, for looking at them side by side."""
    summary = BatchTotals(7, CURRENCIES["EUR"], 128, 1234567, 3, 4500)
    lit = dataclasses.replace
    return [
        screens.ready_screen(v),
        screens.amount_entry_screen(v, Money.of(123456, "EUR")),
        screens.present_card_screen(v, EUR),
        screens.processing_screen(lit(v, lights=2), EUR),
        screens.card_read_screen(lit(v, lights=4)),
        screens.approved_screen(lit(v, lights=0), EUR, "123456", "476173******0010", "visa"),
        screens.declined_screen(lit(v, lights=0), "insufficient_funds", EUR),
        *(screens.message_screen(v, kind) for kind in screens.MESSAGES),
        screens.settlement_screen(v, summary, True, "27/11/2026 18:00"),
        screens.receipt_qr_screen(lit(v, lights=0), "Pitap Demo Shop\nTotal EUR 12.50\nApproved",
                                  EUR, outcome="approved"),
        screens.receipt_qr_screen(lit(v, lights=0), "Pitap Demo Shop", EUR,
                                  v.lang.t("printer_problem",
                                           problem=v.lang.t("printer_no_paper")), "approved"),
        screens.present_card_screen(v, EUR, "refund"),
        screens.processing_screen(lit(v, lights=2), EUR, "refund"),
        screens.approved_screen(lit(v, lights=0), EUR, "123456", "476173******0010", "visa",
                                "refund"),
        screens.message_screen(v, "cancelled", txn_type="refund"),
        screens.not_charged_screen(lit(v, lights=0), "host_unavailable", EUR),
        screens.approved_screen(lit(v, lights=0), EUR, "Y1", "476173******0017", "visa",
                                offline=True),
    ]


def write_gallery(out: Path) -> None:
    """Every screen at every layout in every language: PNGs plus one contact sheet each."""
    from PIL import Image

    from ui.lang import available

    out.mkdir(parents=True, exist_ok=True)
    for code in available():
        for w, h in LAYOUTS:
            v = screens.View(w, h, load(code), merchant="Pitap Demo Shop", lights=1,
                             clock="14:05")
            shots = gallery_screens(v)
            cols = 4
            sheet = Image.new("RGB", (cols * (w + 8), -(-len(shots) // cols) * (h + 8)),
                              (90, 90, 90))
            for i, shot in enumerate(shots):
                shot.image.save(out / f"{code}-{w}x{h}-{i:02d}-{shot.name}.png")
                sheet.paste(shot.image, ((i % cols) * (w + 8), (i // cols) * (h + 8)))
            sheet.save(out / f"sheet-{code}-{w}x{h}.png")
    print(f"screens written to {out}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", metavar="DIR", type=Path,
                        help="also write every screen at every size and language as PNG")
    args = parser.parse_args()
    render_times()
    spi_traffic()
    screen_change_latency()
    if args.gallery:
        write_gallery(args.gallery)
