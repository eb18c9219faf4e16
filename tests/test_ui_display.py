"""Display drivers: an SPI panel gets only the windows that changed, and what it gets draws the
frame exactly (decoded here from the bytes on the bus and the DC line); the PNG sink numbers
its files. The SPI bus and the GPIO header are the only things simulated."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from drivers.display import (
    CASET,
    MADCTL,
    RAMWR,
    RASET,
    PngSink,
    SpiPanel,
    changed_regions,
    rgb565,
)
from firmware.money import Money
from simulators.gpio_fake import FakeGPIO
from ui import screens
from ui.lang import load

DC, RST, BL = 24, 25, 18


class PanelOnBus:
    """A spidev-like object that decodes what it is sent the way the controller would."""

    def __init__(self, gpio: FakeGPIO, width: int, height: int) -> None:
        self.gpio = gpio
        self.max_speed_hz = 40_000_000
        self.mode = 0
        self.ram = bytearray(width * height * 2)
        self.width = width
        self.command = 0
        self.params = bytearray()
        self.window = (0, 0, 0, 0)
        self.cursor = 0
        self.commands: list[int] = []
        self.pixel_bytes = 0

    def writebytes2(self, data: bytes) -> None:
        if self.gpio.level(DC) == 0:  # command
            for cmd in data:
                self._finish()
                self.command = cmd
                self.commands.append(cmd)
                self.params = bytearray()
                if cmd == RAMWR:
                    self.cursor = 0
            return
        if self.command == RAMWR:
            x0, y0, x1, y1 = self.window
            w = x1 - x0 + 1
            for i in range(0, len(data), 2):
                px = self.cursor
                x, y = x0 + px % w, y0 + px // w
                at = (y * self.width + x) * 2
                self.ram[at:at + 2] = data[i:i + 2]
                self.cursor += 1
            self.pixel_bytes += len(data)
        else:
            self.params += data
            self._finish()

    def _finish(self) -> None:
        p = self.params
        if self.command == CASET and len(p) == 4:
            self.window = (p[0] << 8 | p[1], self.window[1], p[2] << 8 | p[3], self.window[3])
        elif self.command == RASET and len(p) == 4:
            self.window = (self.window[0], p[0] << 8 | p[1], self.window[2], p[2] << 8 | p[3])


def panel(controller: str = "st7789", width: int = 320, height: int = 240):
    gpio = FakeGPIO()
    bus = PanelOnBus(gpio, width, height)
    lcd = SpiPanel(bus, gpio, controller, width, height, dc=DC, rst=RST, backlight=BL,
                   sleep=lambda s: None)
    return lcd, bus, gpio


def frames(width: int = 320, height: int = 240) -> tuple[Image.Image, Image.Image]:
    view = screens.View(width, height, load("en"), merchant="Shop", lights=1)
    present = screens.present_card_screen(view, Money.of(1250, "EUR")).image
    processing = screens.processing_screen(
        screens.View(width, height, load("en"), merchant="Shop", lights=2),
        Money.of(1250, "EUR")).image
    return present, processing


@pytest.mark.parametrize("controller", ["st7789", "ili9341"])
def test_panel_is_reset_and_set_up_for_16_bit_colour(controller: str) -> None:
    lcd, bus, gpio = panel(controller)
    rst = [e.value for e in gpio.history(RST, {"output"})]
    assert rst[:2] == [0, 1]  # a reset pulse first
    assert 0x3A in bus.commands and MADCTL in bus.commands
    assert gpio.level(BL) == 1


def test_first_frame_is_sent_whole_and_draws_it_exactly() -> None:
    lcd, bus, _ = panel()
    image, _ = frames()
    stats = lcd.show(image)
    assert stats.regions == [(0, 0, 320, 240)]
    assert bus.pixel_bytes == 320 * 240 * 2 == stats.full_frame_bytes
    assert bytes(bus.ram) == rgb565(image)


def test_next_frame_sends_only_what_changed_and_still_draws_it_exactly() -> None:
    lcd, bus, _ = panel()
    first, second = frames()
    lcd.show(first)
    before = bus.pixel_bytes
    stats = lcd.show(second)
    assert bytes(bus.ram) == rgb565(second)  # the panel shows the new frame, pixel for pixel
    assert 0 < stats.bytes_sent < stats.full_frame_bytes
    assert bus.pixel_bytes - before < 320 * 240 * 2
    # every window sent lies where the frames differ in some row
    for box in stats.regions:
        a, b = first.crop(box), second.crop(box)
        assert a.tobytes() != b.tobytes()


def test_same_frame_twice_sends_nothing() -> None:
    lcd, bus, _ = panel()
    image, _ = frames()
    lcd.show(image)
    sent = bus.pixel_bytes
    stats = lcd.show(image.copy())
    assert stats.regions == [] and stats.bytes_sent == 0 and bus.pixel_bytes == sent


def test_a_small_change_sends_a_small_window() -> None:
    base = Image.new("RGB", (240, 240), (255, 255, 255))
    changed = base.copy()
    ImageDraw.Draw(changed).rectangle((100, 50, 109, 59), fill=(255, 0, 0))
    lcd, bus, _ = panel("ili9341", 240, 240)
    lcd.show(base)
    stats = lcd.show(changed)
    assert stats.regions == [(100, 50, 110, 60)]
    assert stats.bytes_sent <= 10 * 10 * 2 + 11 + 1  # the pixels, window commands, DC
    assert bytes(bus.ram) == rgb565(changed)


def test_two_distant_changes_go_as_two_windows() -> None:
    base = Image.new("RGB", (320, 240), (255, 255, 255))
    changed = base.copy()
    d = ImageDraw.Draw(changed)
    d.rectangle((0, 0, 9, 9), fill=(0, 0, 0))
    d.rectangle((300, 220, 309, 229), fill=(0, 0, 0))
    regions = changed_regions(base, changed)
    assert len(regions) == 2
    assert sum((r[2] - r[0]) * (r[3] - r[1]) for r in regions) == 200


def test_rgb565_packs_big_endian() -> None:
    image = Image.new("RGB", (2, 1))
    image.putpixel((0, 0), (255, 0, 0))
    image.putpixel((1, 0), (0, 0, 255))
    assert rgb565(image) == bytes([0xF8, 0x00, 0x00, 0x1F])


def test_png_sink_numbers_files_and_continues_after_a_restart(tmp_path: Path) -> None:
    image, _ = frames()
    sink = PngSink(tmp_path, 320, 240)
    sink.show(image, "ready")
    sink.show(image, "present card")
    again = PngSink(tmp_path, 320, 240)
    again.show(image, "approved")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "001-ready.png", "002-present_card.png", "003-approved.png"]
    assert Image.open(tmp_path / "001-ready.png").size == (320, 240)


@pytest.mark.parametrize(("toml", "words"), [
    ('backend = "st7789"\nwidth = 320\nheight = 240\nrotate = 90', "0 or 180"),
    ('backend = "ili9341"\nwidth = 480\nheight = 320', "does not fit"),
    ('backend = "png"\nrotate = 45', "0, 90, 180 or 270"),
])
def test_display_settings_that_cannot_work_are_refused_by_name(toml: str, words: str) -> None:
    from firmware.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=words) as err:
        parse_config(f"[display]\n{toml}\n", Path("site.toml"))
    assert "site.toml" in str(err.value) and "display" in str(err.value)


def test_square_panel_may_be_turned_a_quarter() -> None:
    from firmware.config import parse_config

    cfg = parse_config('[display]\nbackend = "st7789"\nwidth = 240\nheight = 240\nrotate = 90\n',
                       Path("site.toml"))
    assert cfg.display.rotate == 90


@pytest.mark.parametrize("bpp", [16, 32])
def test_framebuffer_gets_changed_rows_at_their_offsets(tmp_path: Path, bpp: int) -> None:
    from drivers.display import FramebufferDisplay

    # A 400x300 framebuffer (stride with padding), described the way the kernel's sysfs does.
    stride = 400 * bpp // 8 + 64
    sysfs = tmp_path / "sys" / "fb7"
    sysfs.mkdir(parents=True)
    (sysfs / "bits_per_pixel").write_text(f"{bpp}\n")
    (sysfs / "stride").write_text(f"{stride}\n")
    (sysfs / "virtual_size").write_text("400,300\n")
    device = tmp_path / "fb7"
    device.write_bytes(bytes(stride * 300))
    fb = FramebufferDisplay(str(device), 320, 240, sysfs_root=tmp_path / "sys")
    first, second = frames()
    fb.show(first)
    stats = fb.show(second)
    fb.close()
    assert 0 < stats.bytes_sent < stats.full_frame_bytes
    memory = device.read_bytes()
    width_bytes = 320 * bpp // 8
    shown = b"".join(memory[y * stride:y * stride + width_bytes] for y in range(240))
    if bpp == 32:
        expected = second.convert("RGBA").tobytes("raw", "BGRA")
        for channel in range(3):  # blue, green, red; the fourth byte is not part of the picture
            assert shown[channel::4] == expected[channel::4]
    else:
        big = rgb565(second)
        little = bytearray(len(big))
        little[0::2], little[1::2] = big[1::2], big[0::2]
        assert shown == bytes(little)
    assert memory[width_bytes:stride].count(0) == stride - width_bytes  # padding untouched
