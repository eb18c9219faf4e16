"""An emulated ST7789 / ILI9341 panel on the SPI bus: the byte stream in, a picture out.

Holds the controller model below drivers/display.py's SPI driver: an object with spidev's API
(`writebytes`, `writebytes2`, `xfer*`, `max_speed_hz`, `mode`, ...) that reads the DC line and
watches RST on an RPi.GPIO-compatible object (simulators.gpio_fake.FakeGPIO), and decodes what it
is sent as the controller would: hardware and software reset, sleep and display on/off, COLMOD
(16- or 18-bit pixels), MADCTL (row/column exchange, mirrors, BGR), inversion, CASET/RASET
windows and RAMWR/RAMWRC pixel writes into the panel's own frame memory. `image()` is what a
person in front of the mounted panel sees. Bytes are counted per command and per screen change.
It knows nothing of screens or payments, and never imports the display driver.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageChops

log = logging.getLogger(__name__)

SWRESET, SLPIN, SLPOUT, NORON = 0x01, 0x10, 0x11, 0x13
INVOFF, INVON, DISPOFF, DISPON = 0x20, 0x21, 0x28, 0x29
CASET, RASET, RAMWR, MADCTL, COLMOD, RAMWRC = 0x2A, 0x2B, 0x2C, 0x36, 0x3A, 0x3C
NOP = 0x00

MY, MX, MV, BGR = 0x80, 0x40, 0x20, 0x08
SPIDEV_WRITEBYTES_LIMIT = 4096  # spidev refuses longer lists in writebytes/xfer


@dataclass(frozen=True)
class PanelModel:
    """One controller on one kind of glass, as sold for the Pi."""

    controller: str
    width: int = 240  # native, portrait
    height: int = 320
    mirrored_columns: bool = False  # the glass is wired right to left (most ILI9341 modules)
    bgr_glass: bool = False  # the colour filters are B-G-R: MADCTL BGR must be set
    inverted_glass: bool = False  # IPS glass: INVON is needed for true colours
    max_clock_hz: int = 62_500_000  # the datasheet's serial write cycle


PANELS = {
    "st7789": PanelModel("st7789", inverted_glass=True, max_clock_hz=62_500_000),
    "ili9341": PanelModel(
        "ili9341", mirrored_columns=True, bgr_glass=True, max_clock_hz=10_000_000
    ),
}


@dataclass
class BusCounts:
    """What crossed the bus since the last `take_counts()`."""

    bytes_total: int = 0
    pixel_bytes: int = 0
    command_bytes: int = 0
    parameter_bytes: int = 0
    commands: Counter[int] = field(default_factory=Counter)
    windows: int = 0
    pixels_changed: int = 0

    def seconds_at(self, clock_hz: int) -> float:
        """Time on the wire at `clock_hz` (8 clocks a byte, no gaps)."""
        return self.bytes_total * 8 / clock_hz if clock_hz else 0.0


class SpiPanelEmulator:
    """The panel at the end of the SPI bus. Pass it to the display driver as its `spi`."""

    def __init__(
        self,
        gpio: Any,
        controller: str = "st7789",
        dc: int = 24,
        rst: int | None = 25,
        mounted_turn: int = 0,
    ) -> None:
        if controller not in PANELS:
            raise ValueError(f"unknown panel controller {controller!r}")
        self.model = PANELS[controller]
        self.gpio = gpio
        self.dc = dc
        self.rst = rst
        self.mounted_turn = mounted_turn % 360
        # spidev attributes the driver may set
        self.max_speed_hz = 500_000
        self.mode = 0
        self.bits_per_word = 8
        self.lsbfirst = False
        self.cshigh = False
        self.threewire = False
        self.opened: tuple[int, int] | None = None
        self.closed = False
        self.faults: list[str] = []  # wiring and protocol mistakes, named
        self.counts = BusCounts()
        w, h = self.model.width, self.model.height
        self.gram = Image.new("RGB", (w, h), (0xA5, 0x5A, 0xA5))  # undefined after power-up
        self._shown_last: Image.Image | None = None
        self.in_reset = False
        self.resets = 0
        self._reset_registers()
        self._command: int | None = None
        self._params = bytearray()
        self._pixel_carry = bytearray()
        self._cursor = 0
        add_listener = getattr(gpio, "add_listener", None)
        if rst is not None and callable(add_listener):
            add_listener(self._on_pin_event)

    # --- controller state ----------------------------------------------------------------------

    def _reset_registers(self) -> None:
        self.sleeping = True
        self.display_on = False
        self.inverted = False
        self.madctl = 0x00
        self.colmod = 0x66  # 18 bits a pixel after reset
        self.columns = (0, self.model.width - 1)
        self.rows = (0, self.model.height - 1)

    def _on_pin_event(self, event: Any) -> None:
        if event.pin != self.rst or event.kind not in ("output", "setup"):
            return
        if event.value == 0 and not self.in_reset:
            self.in_reset = True
        elif event.value == 1 and self.in_reset:  # reset released: registers to defaults
            self.in_reset = False
            self.resets += 1
            self._reset_registers()
            self._command = None

    # --- the spidev API ------------------------------------------------------------------------

    def open(self, bus: int, device: int) -> None:
        self.opened = (bus, device)
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def writebytes(self, data: list[int]) -> None:
        if len(data) > SPIDEV_WRITEBYTES_LIMIT:
            raise OverflowError("Argument list size exceeds 4096 bytes.")
        self._receive(bytes(data))

    def writebytes2(self, data: Any) -> None:
        self._receive(bytes(data))

    def xfer(self, data: list[int], *args: int) -> list[int]:
        self.writebytes(data)
        return [0] * len(data)  # the panel's MISO is not wired

    xfer2 = xfer

    def xfer3(self, data: Any, *args: int) -> list[int]:
        self.writebytes2(data)
        return [0] * len(bytes(data))

    def readbytes(self, n: int) -> list[int]:
        return [0] * n

    # --- decoding ------------------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        if self.closed:
            self.faults.append("write on a closed SPI device")
            return
        if self.max_speed_hz > self.model.max_clock_hz:
            self._fault(f"SPI clock {self.max_speed_hz} Hz above the controller's maximum")
        self.counts.bytes_total += len(data)
        if self.in_reset:
            self._fault("bytes sent while RST is held low")
            return
        if self._dc_level() == 0:
            for byte in data:
                self._start_command(byte)
            return
        if self._command in (RAMWR, RAMWRC):
            self._pixels(data)
            return
        if self._command is None:
            self._fault("data (DC high) before any command")
            return
        self.counts.parameter_bytes += len(data)
        self._params += data
        self._apply_parameters()

    def _dc_level(self) -> int:
        try:
            return int(self.gpio.input(self.dc))
        except RuntimeError:
            self._fault(f"DC pin {self.dc} is not set up")
            return 0

    def _fault(self, message: str) -> None:
        if message not in self.faults:
            log.info("SPI panel: %s", message)
            self.faults.append(message)

    def _start_command(self, code: int) -> None:
        self.counts.command_bytes += 1
        self.counts.commands[code] += 1
        self._flush_pixels()
        self._command, self._params = code, bytearray()
        if code == SWRESET:
            self._reset_registers()
        elif code == SLPIN:
            self.sleeping = True
        elif code == SLPOUT:
            self.sleeping = False
        elif code == INVOFF:
            self.inverted = False
        elif code == INVON:
            self.inverted = True
        elif code == DISPOFF:
            self.display_on = False
        elif code == DISPON:
            self.display_on = True
        elif code == RAMWR:
            self._cursor = 0
            self.counts.windows += 1

    def _apply_parameters(self) -> None:
        p = self._params
        if self._command == MADCTL and len(p) >= 1:
            self.madctl = p[0]
        elif self._command == COLMOD and len(p) >= 1:
            if p[0] & 0x07 not in (0x05, 0x06):
                self._fault(f"COLMOD {p[0]:#04x}: only 16 and 18 bits a pixel are emulated")
            self.colmod = p[0]
        elif self._command in (CASET, RASET) and len(p) == 4:
            start, end = p[0] << 8 | p[1], p[2] << 8 | p[3]
            limit = self._logical_size()[0 if self._command == CASET else 1]
            if start > end or end >= limit:
                self._fault(
                    f"{'CASET' if self._command == CASET else 'RASET'} {start}..{end} outside "
                    f"0..{limit - 1}"
                )
            if self._command == CASET:
                self.columns = (start, end)
            else:
                self.rows = (start, end)

    def _logical_size(self) -> tuple[int, int]:
        w, h = self.model.width, self.model.height
        return (h, w) if self.madctl & MV else (w, h)

    # --- frame memory --------------------------------------------------------------------------

    def _bytes_per_pixel(self) -> int:
        return 2 if self.colmod & 0x07 == 0x05 else 3

    def _pixels(self, data: bytes) -> None:
        self.counts.pixel_bytes += len(data)
        self._pixel_carry += data
        size = self._bytes_per_pixel()
        usable = len(self._pixel_carry) - len(self._pixel_carry) % size
        if usable:
            self._write_pixels(bytes(self._pixel_carry[:usable]), size)
            del self._pixel_carry[:usable]

    def _flush_pixels(self) -> None:
        if self._pixel_carry:
            self._fault("a pixel write ended in the middle of a pixel")
            self._pixel_carry.clear()

    def _write_pixels(self, data: bytes, size: int) -> None:
        """Store pixels at the address counters, wrapping inside the CASET/RASET window."""
        x0, x1 = self.columns
        y0, y1 = self.rows
        if x0 > x1 or y0 > y1:
            return
        w, h = x1 - x0 + 1, y1 - y0 + 1
        count, done = len(data) // size, 0
        while done < count:
            at = self._cursor % (w * h)
            if at % w == 0 and count - done >= w:  # whole rows: decode and place them at once
                rows = min((count - done) // w, h - at // w)
                block = data[done * size : (done + rows * w) * size]
                if self._place_rows(block, size, x0, y0 + at // w, w, rows):
                    self._cursor += rows * w
                    done += rows * w
                    continue
            self._place_pixel(data[done * size : (done + 1) * size], x0 + at % w, y0 + at // w)
            self._cursor += 1
            done += 1

    def _place_pixel(self, raw: bytes, x: int, y: int) -> None:
        col, row = self._physical(x, y)
        if not (0 <= col < self.model.width and 0 <= row < self.model.height):
            return  # outside the frame memory: lost, as on the chip
        if len(raw) == 2:
            value = raw[0] << 8 | raw[1]
            rgb = ((value >> 11) << 3, ((value >> 5) & 0x3F) << 2, (value & 0x1F) << 3)
        else:
            rgb = (raw[0] & 0xFC, raw[1] & 0xFC, raw[2] & 0xFC)
        self.gram.putpixel((col, row), rgb)

    def _place_rows(self, raw: bytes, size: int, x: int, y: int, w: int, rows: int) -> bool:
        """Rows x..x+w-1, y..y+rows-1 (address space) into frame memory; False if they do not
        fit in it (the caller then goes pixel by pixel, dropping what falls outside)."""
        block = _decode(raw, size, w, rows)
        (c0, r0), (c1, r1) = self._physical(x, y), self._physical(x + w - 1, y + rows - 1)
        left, top, right, bottom = min(c0, c1), min(r0, r1), max(c0, c1), max(r0, r1)
        if left < 0 or top < 0 or right >= self.model.width or bottom >= self.model.height:
            return False
        if self.madctl & MV:
            block = block.transpose(Image.Transpose.TRANSPOSE)
        if self.madctl & MX:
            block = block.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.madctl & MY:
            block = block.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        self.gram.paste(block, (left, top))
        return True

    def _physical(self, x: int, y: int) -> tuple[int, int]:
        """Frame-memory column/row for the address counters (x from CASET, y from RASET)."""
        col, row = (y, x) if self.madctl & MV else (x, y)
        if self.madctl & MX:
            col = self.model.width - 1 - col
        if self.madctl & MY:
            row = self.model.height - 1 - row
        return col, row

    # --- what is seen --------------------------------------------------------------------------

    def glass(self) -> Image.Image:
        """The native-orientation picture on the glass (portrait, as the panel is made)."""
        if self.in_reset or self.sleeping or not self.display_on:
            return Image.new("RGB", self.gram.size, (0, 0, 0))  # backlight on a dark panel
        picture = self.gram
        if self.model.mirrored_columns:
            picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if bool(self.madctl & BGR) != self.model.bgr_glass:
            r, g, b = picture.split()
            picture = Image.merge("RGB", (b, g, r))
        if self.inverted != self.model.inverted_glass:
            picture = ImageChops.invert(picture)
        return picture.copy()

    def image(self) -> Image.Image:
        """What a person sees: the glass turned as the panel is mounted (counter-clockwise)."""
        return self.glass().rotate(self.mounted_turn, expand=True)

    def take_counts(self) -> BusCounts:
        """The bus counts since the last call (one screen change), and how many pixels of the
        seen picture changed over it."""
        counts, self.counts = self.counts, BusCounts()
        seen = self.image()
        if self._shown_last is not None and self._shown_last.size == seen.size:
            r, g, b = ImageChops.difference(self._shown_last, seen).split()
            largest = ImageChops.lighter(ImageChops.lighter(r, g), b)
            counts.pixels_changed = seen.width * seen.height - largest.histogram()[0]
        else:
            counts.pixels_changed = seen.width * seen.height
        self._shown_last = seen
        return counts


_KEEP_5_BITS = [v & 0xF8 for v in range(256)]
_KEEP_6_BITS = [v & 0xFC for v in range(256)]


def _decode(raw: bytes, size: int, w: int, rows: int) -> Image.Image:
    """Pixels as the controller stores them: RGB565 big-endian (COLMOD 55) or 6 bits a colour in
    three bytes (COLMOD 66), as 8-bit RGB with the low bits the panel does not have cleared."""
    if size == 2:
        swapped = bytearray(len(raw))  # Pillow's 5-6-5 unpacker reads little-endian words
        swapped[0::2], swapped[1::2] = raw[1::2], raw[0::2]
        image = Image.frombytes("RGB", (w, rows), bytes(swapped), "raw", "BGR;16")
        r, g, b = image.split()
        return Image.merge(
            "RGB", (r.point(_KEEP_5_BITS), g.point(_KEEP_6_BITS), b.point(_KEEP_5_BITS))
        )
    image = Image.frombytes("RGB", (w, rows), bytes(raw))
    return image.point(_KEEP_6_BITS * 3)
