"""The ST7789 / ILI9341 panel emulator under the real SPI display driver (drivers.display).

The driver writes through the emulator's spidev API and toggles DC/RST on the recording GPIO fake;
the emulator decodes the bytes as the controller would. What a person in front of the mounted panel
would see must equal, pixel for pixel, the screen ui/ rendered (at the panel's 16-bit colour).
"""

from __future__ import annotations

import pytest
from PIL import Image, ImageChops

from drivers import display
from firmware.money import Money
from simulators import gpio_fake
from simulators.spi_panel import CASET, RAMWR, RASET, SpiPanelEmulator
from ui import screens
from ui.lang import load

DC, RST, BL = 24, 25, 18


def at_16_bit(image: Image.Image) -> Image.Image:
    """The colours a 16-bit (RGB565) panel can show."""
    r, g, b = image.convert("RGB").split()
    return Image.merge(
        "RGB",
        (r.point(lambda v: v & 0xF8), g.point(lambda v: v & 0xFC), b.point(lambda v: v & 0xF8)),
    )


def same_picture(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a, b).getbbox() is None


def panel(controller: str = "st7789", width: int = 320, height: int = 240, rotate: int = 0):
    gpio = gpio_fake.FakeGPIO()
    turn = (rotate + (90 if width > height else 0)) % 360  # how the panel is mounted
    emulator = SpiPanelEmulator(gpio, controller, dc=DC, rst=RST, mounted_turn=turn)
    driver = display.SpiPanel(
        emulator,
        gpio,
        controller,
        width,
        height,
        dc=DC,
        rst=RST,
        backlight=BL,
        rotate=rotate,
        sleep=lambda s: None,
    )
    return driver, emulator, gpio


def view(lights: int = 1, width: int = 320, height: int = 240):
    return screens.View(width, height, load("en"), merchant="Pitap Shop", lights=lights)


def payment_screens(width: int = 320, height: int = 240) -> list:
    money = Money.of(1250, "EUR")
    return [
        screens.ready_screen(view(0, width, height)),
        screens.present_card_screen(view(1, width, height), money),
        screens.processing_screen(view(2, width, height), money),
        screens.card_read_screen(view(3, width, height)),
        screens.approved_screen(
            view(4, width, height), money, "123456", "476173******0010", "visa"
        ),
    ]


@pytest.mark.parametrize("controller", ["st7789", "ili9341"])
def test_reset_and_init_leave_the_panel_awake_in_16_bit_colour(controller: str) -> None:
    _, emulator, _ = panel(controller)
    assert emulator.resets == 1  # the driver pulsed RST
    assert not emulator.sleeping and emulator.display_on
    assert emulator.colmod == 0x55
    assert emulator.faults == []


@pytest.mark.parametrize("controller", ["st7789", "ili9341"])
@pytest.mark.parametrize("size", [(320, 240), (240, 320)], ids=["landscape", "portrait"])
def test_every_payment_screen_is_seen_exactly_as_ui_drew_it(controller: str, size) -> None:
    driver, emulator, _ = panel(controller, *size)
    for screen in payment_screens(*size):
        driver.show(screen.image, screen.name)
        assert same_picture(emulator.image(), at_16_bit(screen.image)), screen.name


@pytest.mark.parametrize("controller", ["st7789", "ili9341"])
@pytest.mark.parametrize("size", [(320, 240), (240, 320)], ids=["landscape", "portrait"])
def test_a_panel_mounted_upside_down_is_turned_by_rotate_180(controller: str, size) -> None:
    driver, emulator, _ = panel(controller, *size, rotate=180)
    screen = payment_screens(*size)[1]
    driver.show(screen.image)
    assert same_picture(emulator.image(), at_16_bit(screen.image))


@pytest.mark.parametrize("rotate", [90, 270])
def test_a_quarter_turn_setting_that_does_not_fit_the_panel_is_named(rotate: int) -> None:
    # drivers.display turns a landscape size a quarter by itself; rotate=90/270 on top of it
    # sets a MADCTL whose address space does not match the frame: the panel says so.
    driver, emulator, _ = panel("st7789", 320, 240, rotate=rotate)
    driver.show(payment_screens()[1].image)
    assert any("outside 0..239" in fault for fault in emulator.faults)


def test_bytes_per_screen_change_are_counted_and_only_changes_are_sent() -> None:
    driver, emulator, _ = panel()
    emulator.take_counts()  # the init sequence
    full = 320 * 240 * 2
    costs = []
    for screen in payment_screens():
        stats = driver.show(screen.image)
        counts = emulator.take_counts()
        assert (
            counts.pixel_bytes + counts.command_bytes + counts.parameter_bytes == stats.bytes_sent
        )
        assert counts.commands[RAMWR] == counts.windows == len(stats.regions)
        assert counts.commands[CASET] == counts.commands[RASET] == len(stats.regions)
        costs.append(counts)
    assert costs[0].pixel_bytes == full  # the first frame goes whole
    assert all(c.pixel_bytes < full for c in costs[1:])  # later ones only what changed
    assert all(c.pixels_changed > 0 for c in costs)
    driver.show(payment_screens()[-1].image)  # the same screen again
    assert emulator.take_counts().bytes_total == 0


def test_a_panel_without_reset_and_init_shows_nothing() -> None:
    gpio = gpio_fake.FakeGPIO()
    gpio.setmode(gpio.BCM)
    gpio.setup(DC, gpio.OUT, initial=gpio.HIGH)
    emulator = SpiPanelEmulator(gpio, "st7789", dc=DC, rst=RST)
    emulator.writebytes2(b"\x12\x34" * 100)
    assert emulator.image().getbbox() is None  # asleep, display off: dark
    assert "data (DC high) before any command" in emulator.faults


def test_wiring_mistakes_have_names() -> None:
    gpio = gpio_fake.FakeGPIO()
    gpio.setmode(gpio.BCM)
    emulator = SpiPanelEmulator(gpio, "ili9341", dc=DC, rst=RST)
    emulator.max_speed_hz = 40_000_000
    emulator.writebytes([0x29])
    assert f"DC pin {DC} is not set up" in emulator.faults
    assert any("above the controller's maximum" in f for f in emulator.faults)
    with pytest.raises(OverflowError):
        emulator.writebytes([0] * 4097)  # spidev's own limit


def _awake_panel(madctl: int) -> tuple[SpiPanelEmulator, gpio_fake.FakeGPIO]:
    gpio = gpio_fake.FakeGPIO()
    gpio.setmode(gpio.BCM)
    gpio.setup(DC, gpio.OUT, initial=gpio.LOW)
    emulator = SpiPanelEmulator(gpio, "st7789", dc=DC, rst=RST)
    for command, params in ((0x11, b""), (0x29, b""), (0x21, b""), (0x36, bytes([madctl]))):
        gpio.output(DC, 0)
        emulator.writebytes2(bytes([command]))
        if params:
            gpio.output(DC, 1)
            emulator.writebytes2(params)
    return emulator, gpio


def _send(emulator, gpio, command: int, data: bytes, chunk: int) -> None:
    gpio.output(DC, 0)
    emulator.writebytes2(bytes([command]))
    gpio.output(DC, 1)
    for i in range(0, len(data), chunk):
        emulator.writebytes2(data[i : i + chunk])


@pytest.mark.parametrize("madctl", [0x00, 0x60, 0xC0, 0xA0])
@pytest.mark.parametrize("colmod", [0x55, 0x66])
def test_pixels_land_in_the_same_place_however_the_bytes_are_split(madctl, colmod) -> None:
    size = 2 if colmod == 0x55 else 3
    window_w, window_h = 37, 23  # odd sizes; 1.5 windows of data: the address wraps
    pixels = bytes((i * 13 + 7) & 0xFF for i in range(int(window_w * window_h * 1.5) * size))
    width = 320 if madctl & 0x20 else 240
    pictures = []
    for chunk in (len(pixels), 7):
        emulator, gpio = _awake_panel(madctl)
        _send(emulator, gpio, 0x3A, bytes([colmod]), 1)
        _send(
            emulator,
            gpio,
            CASET,
            (width - 40).to_bytes(2, "big") + (width - 4).to_bytes(2, "big"),
            4,
        )
        _send(emulator, gpio, RASET, (5).to_bytes(2, "big") + (27).to_bytes(2, "big"), 4)
        _send(emulator, gpio, RAMWR, pixels, chunk)
        assert emulator.faults == []
        pictures.append(emulator.image())
    assert ImageChops.difference(*pictures).getbbox() is None
    assert pictures[0].getbbox() is not None
