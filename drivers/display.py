"""Displays fed PIL images: ST7789 / ILI9341 SPI panels, a Linux framebuffer, a PNG sink.

Every backend has `show(image, name) -> FrameStats` and `close()`; `open_display(section)`
picks one from the [display] configuration (any `DisplaySettings`, firmware.config's section
among them: drivers never import firmware). Only the regions that changed since the previous
frame are sent to a panel or written to a framebuffer.

The SPI driver is our own on the spidev API rather than luma.lcd's: luma's st7789 sends every
frame whole in 18-bit colour (3 bytes a pixel); here frames go as 16-bit RGB565 and only the
changed windows (CASET/RASET/RAMWR). It writes through any object with spidev's API
(`writebytes2` or `writebytes`, `max_speed_hz`, `mode`) and toggles DC/RST through an RPi.GPIO-
compatible module, so a panel emulator or the recording GPIO fake can sit below it unchanged.
Nothing here knows what a screen means.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from PIL import Image, ImageChops

from drivers.errors import PitapError
from drivers.gpio import Gpio, prepare

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive)


class DisplayError(PitapError, RuntimeError):
    """The configured display cannot be opened or written."""


@dataclass
class FrameStats:
    """What showing one frame cost: the windows sent and their bytes against a full frame."""

    regions: list[Box] = field(default_factory=list)
    bytes_sent: int = 0
    full_frame_bytes: int = 0


class Display(Protocol):
    width: int
    height: int

    def show(self, image: Image.Image, name: str = "screen") -> FrameStats: ...

    def close(self) -> None: ...


# ---- what changed ------------------------------------------------------------------------
WINDOW_OVERHEAD_BYTES = 11  # CASET + 4, RASET + 4, RAMWR: the cost of opening a window


def changed_regions(previous: Image.Image | None, image: Image.Image, band: int = 8,
                    bytes_per_pixel: int = 2) -> list[Box]:
    """Windows covering every pixel that differs between two frames of the same size.

    The frame is cut into horizontal bands of `band` rows; each band's changed columns form a
    window; neighbouring windows merge when one window costs fewer bytes than two."""
    width, height = image.size
    if previous is None or previous.size != image.size:
        return [(0, 0, width, height)]
    diff = ImageChops.difference(previous.convert("RGB"), image.convert("RGB"))
    whole = diff.getbbox()
    if whole is None:
        return []
    boxes: list[Box] = []
    for top in range(whole[1] - whole[1] % band, whole[3], band):
        bottom = min(top + band, height)
        bbox = diff.crop((0, top, width, bottom)).getbbox()
        if bbox is None:
            continue
        box = (bbox[0], top + bbox[1], bbox[2], top + bbox[3])
        if boxes:
            last = boxes[-1]
            union = (min(last[0], box[0]), last[1], max(last[2], box[2]), box[3])
            cost_apart = (_area(last) + _area(box)) * bytes_per_pixel + WINDOW_OVERHEAD_BYTES
            if _area(union) * bytes_per_pixel <= cost_apart:
                boxes[-1] = union
                continue
        boxes.append(box)
    return boxes


def _area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def rgb565(image: Image.Image) -> bytes:
    """Big-endian RGB565 bytes of an RGB image (what ST7789/ILI9341 take with COLMOD 0x55)."""
    r, g, b = image.convert("RGB").split()
    high = ImageChops.add(r.point(lambda v: v & 0xF8), g.point(lambda v: v >> 5))
    low = ImageChops.add(g.point(lambda v: (v & 0x1C) << 3), b.point(lambda v: v >> 3))
    return Image.merge("LA", (high, low)).tobytes()


# ---- PNG sink ----------------------------------------------------------------------------
class PngSink:
    """Writes each frame as `NNN-<name>.png` into a directory (simulated terminals, tests);
    the directory is made 0700 and the files 0600 (a screen shows a card's last digits)."""

    def __init__(self, directory: str | os.PathLike[str], width: int, height: int) -> None:
        self.directory = Path(directory)
        self.width = width
        self.height = height
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        numbers = [int(p.name[:3]) for p in self.directory.glob("[0-9][0-9][0-9]-*.png")]
        self.counter = max(numbers, default=0)
        self.last_path: Path | None = None

    def show(self, image: Image.Image, name: str = "screen") -> FrameStats:
        self.counter = self.counter % 999 + 1
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "screen"
        path = self.directory / f"{self.counter:03d}-{safe}.png"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            image.save(out, format="PNG")
        self.last_path = path
        full = self.width * self.height * 3
        return FrameStats([(0, 0, self.width, self.height)], full, full)

    def close(self) -> None:
        return None


class NullDisplay:
    """No display (headless service, tests that do not look)."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        self.width = width
        self.height = height
        self.last_image: Image.Image | None = None

    def show(self, image: Image.Image, name: str = "screen") -> FrameStats:
        self.last_image = image
        return FrameStats()

    def close(self) -> None:
        return None


# ---- SPI panels --------------------------------------------------------------------------
# Controller commands (ST7789V / ILI9341 datasheets).
SWRESET, SLPOUT, NORON, INVON, DISPON = 0x01, 0x11, 0x13, 0x21, 0x29
CASET, RASET, RAMWR, MADCTL, COLMOD = 0x2A, 0x2B, 0x2C, 0x36, 0x3A

# MADCTL per rotation of the native portrait panel (MY 0x80, MX 0x40, MV 0x20, BGR 0x08).
MADCTL_BY_ROTATION: dict[str, dict[int, int]] = {
    "st7789": {0: 0x00, 90: 0x60, 180: 0xC0, 270: 0xA0},
    "ili9341": {0: 0x48, 90: 0x28, 180: 0x88, 270: 0xE8},
}

# (command, parameters, milliseconds to wait after) run once after a hardware reset.
INIT_SEQUENCES: dict[str, tuple[tuple[int, bytes, int], ...]] = {
    "st7789": (
        (SWRESET, b"", 150),
        (SLPOUT, b"", 120),
        (COLMOD, b"\x55", 10),  # 16 bits a pixel
        (INVON, b"", 10),  # the IPS panels sold for the Pi need inversion on
        (NORON, b"", 10),
        (DISPON, b"", 10),
    ),
    "ili9341": (
        (SWRESET, b"", 150),
        (0xC0, b"\x23", 0),  # PWCTR1: GVDD 4.6 V
        (0xC1, b"\x10", 0),  # PWCTR2
        (0xC5, b"\x3e\x28", 0),  # VMCTR1: VCOMH / VCOML
        (0xC7, b"\x86", 0),  # VMCTR2
        (0xB1, b"\x00\x18", 0),  # FRMCTR1: 79 Hz
        (0xB6, b"\x08\x82\x27", 0),  # DFUNCTR
        (0x26, b"\x01", 0),  # gamma curve 1
        (COLMOD, b"\x55", 0),
        (SLPOUT, b"", 120),
        (NORON, b"", 10),
        (DISPON, b"", 10),
    ),
}


# The serial write clock each controller's datasheet allows (ST7789: 16 ns cycle, run at 40 MHz;
# ILI9341: 100 ns). Many ILI9341 modules work faster: set display.spi_speed_hz to overclock.
DATASHEET_SPI_HZ = {"st7789": 40_000_000, "ili9341": 10_000_000}


class Spi(Protocol):
    """An SPI bus as py-spidev's SpiDev offers it (or a panel emulator below the driver)."""

    max_speed_hz: int
    mode: int

    def writebytes(self, data: list[int]) -> None: ...


@runtime_checkable
class BulkSpi(Protocol):
    """An optional capability of an Spi: one write of any length (spidev >= 3.4's writebytes2),
    instead of chunks of a list."""

    def writebytes2(self, data: bytes) -> None: ...


@runtime_checkable
class ClosableSpi(Protocol):
    """An optional capability of an Spi: close() (a real SpiDev has it)."""

    def close(self) -> None: ...


def open_spidev(port: int, device: int, speed_hz: int) -> Spi:
    """A spidev.SpiDev on /dev/spidevPORT.DEVICE, mode 0 at `speed_hz`."""
    try:
        import spidev
    except ImportError:
        raise DisplayError(
            "spidev is not installed: install pitap[pi] on the Pi, or use display.backend = "
            "\"png\" on a desktop") from None
    spi = spidev.SpiDev()
    try:
        spi.open(port, device)
    except OSError as exc:
        raise DisplayError(f"cannot open /dev/spidev{port}.{device}: {exc.strerror} "
                           "(enable SPI: dtparam=spi=on)") from None
    spi.max_speed_hz = speed_hz
    spi.mode = 0
    opened: Spi = spi
    return opened


class SpiPanel:
    """An ST7789 or ILI9341 panel on SPI, with DC / RST / backlight on GPIO (BCM numbers)."""

    def __init__(self, spi: Spi, gpio: Gpio, controller: str, width: int, height: int, *,
                 dc: int, rst: int, backlight: int | None = None, rotate: int = 0,
                 x_offset: int = 0, y_offset: int = 0, chunk: int = 4096,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if controller not in INIT_SEQUENCES:
            raise DisplayError(f"unknown panel controller {controller!r} (st7789 or ili9341)")
        self.spi = spi
        self._bulk = spi if isinstance(spi, BulkSpi) else None  # asked once, not every write
        self.gpio = gpio
        self.controller = controller
        self.width = width
        self.height = height
        self.dc = dc
        self.rst = rst
        self.backlight = backlight
        self.x_offset = x_offset
        self.y_offset = y_offset
        self.chunk = chunk
        self.sleep = sleep
        self.previous: Image.Image | None = None
        self.bytes_sent = 0
        # A panel wider than tall is the native portrait panel turned a quarter.
        turn = (rotate + (90 if width > height else 0)) % 360
        if turn not in MADCTL_BY_ROTATION[controller]:
            raise DisplayError(f"display rotate must be 0, 90, 180 or 270, not {rotate}")
        self.madctl = MADCTL_BY_ROTATION[controller][turn]
        prepare(gpio)
        gpio.setup(dc, gpio.OUT, initial=gpio.LOW)
        gpio.setup(rst, gpio.OUT, initial=gpio.HIGH)
        if backlight is not None:
            gpio.setup(backlight, gpio.OUT, initial=gpio.LOW)
        self.reset()

    # ---- bus -------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._bulk is not None:
            self._bulk.writebytes2(data)
        else:
            for i in range(0, len(data), self.chunk):
                self.spi.writebytes(list(data[i:i + self.chunk]))
        self.bytes_sent += len(data)

    def command(self, cmd: int, params: bytes = b"") -> None:
        self.gpio.output(self.dc, self.gpio.LOW)
        self._write(bytes([cmd]))
        if params:
            self.gpio.output(self.dc, self.gpio.HIGH)
            self._write(params)

    def reset(self) -> None:
        """Hardware reset pulse, the controller's init sequence, orientation, backlight on."""
        self.gpio.output(self.rst, self.gpio.LOW)
        self.sleep(0.01)
        self.gpio.output(self.rst, self.gpio.HIGH)
        self.sleep(0.12)
        for cmd, params, wait_ms in INIT_SEQUENCES[self.controller]:
            self.command(cmd, params)
            if wait_ms:
                self.sleep(wait_ms / 1000)
        self.command(MADCTL, bytes([self.madctl]))
        if self.backlight is not None:
            self.gpio.output(self.backlight, self.gpio.HIGH)
        self.previous = None

    def window(self, box: Box) -> None:
        x0, y0, x1, y1 = box
        x0, x1 = x0 + self.x_offset, x1 + self.x_offset - 1
        y0, y1 = y0 + self.y_offset, y1 + self.y_offset - 1
        self.command(CASET, bytes([x0 >> 8, x0 & 0xFF, x1 >> 8, x1 & 0xFF]))
        self.command(RASET, bytes([y0 >> 8, y0 & 0xFF, y1 >> 8, y1 & 0xFF]))
        self.command(RAMWR)

    # ---- frames ----------------------------------------------------------------------
    def show(self, image: Image.Image, name: str = "screen") -> FrameStats:
        """Send the windows that changed since the last frame (all of it the first time)."""
        if image.size != (self.width, self.height):
            image = image.resize((self.width, self.height))
        image = image.convert("RGB")
        before = self.bytes_sent
        regions = changed_regions(self.previous, image)
        for box in regions:
            self.window(box)
            self.gpio.output(self.dc, self.gpio.HIGH)
            self._write(rgb565(image.crop(box)))
        self.previous = image
        return FrameStats(regions, self.bytes_sent - before, self.width * self.height * 2)

    def close(self) -> None:
        if self.backlight is not None:
            self.gpio.output(self.backlight, self.gpio.LOW)
        if isinstance(self.spi, ClosableSpi):
            self.spi.close()


# ---- Linux framebuffer -------------------------------------------------------------------
class FramebufferDisplay:
    """/dev/fbN (HDMI, DSI or a DRM panel's fbdev emulation), 16 or 32 bits a pixel.

    Only the changed windows' rows are written, at their offsets in the device."""

    def __init__(self, path: str, width: int, height: int,
                 sysfs_root: str | os.PathLike[str] = "/sys/class/graphics") -> None:
        self.path = path
        self.width = width
        self.height = height
        name = Path(path).name
        sysfs = Path(sysfs_root) / name
        try:
            self.bpp = int((sysfs / "bits_per_pixel").read_text())
            self.stride = int((sysfs / "stride").read_text())
            vw, vh = (int(v) for v in (sysfs / "virtual_size").read_text().split(","))
            self.fd = os.open(path, os.O_RDWR)
        except (OSError, ValueError) as exc:
            raise DisplayError(f"cannot use framebuffer {path}: {exc}") from None
        if self.bpp not in (16, 32):
            os.close(self.fd)
            raise DisplayError(f"framebuffer {path}: {self.bpp} bits a pixel is not supported")
        self.width, self.height = min(width, vw), min(height, vh)
        self.previous: Image.Image | None = None

    def _pixels(self, image: Image.Image) -> bytes:
        if self.bpp == 32:
            return image.convert("RGBA").tobytes("raw", "BGRA")
        data = rgb565(image)  # big-endian; fbdev wants the CPU's (little-endian) order
        swapped = bytearray(len(data))
        swapped[0::2], swapped[1::2] = data[1::2], data[0::2]
        return bytes(swapped)

    def show(self, image: Image.Image, name: str = "screen") -> FrameStats:
        image = image.convert("RGB").crop((0, 0, self.width, self.height))
        regions = changed_regions(self.previous, image, bytes_per_pixel=self.bpp // 8)
        sent = 0
        for box in regions:
            data = self._pixels(image.crop(box))
            row_bytes = (box[2] - box[0]) * self.bpp // 8
            for i, y in enumerate(range(box[1], box[3])):
                offset = y * self.stride + box[0] * self.bpp // 8
                os.pwrite(self.fd, data[i * row_bytes:(i + 1) * row_bytes], offset)
            sent += len(data)
        self.previous = image
        return FrameStats(regions, sent, self.width * self.height * self.bpp // 8)

    def close(self) -> None:
        os.close(self.fd)


# ---- choice by configuration ---------------------------------------------------------------
class DisplaySettings(Protocol):
    """What `open_display` reads of a [display] section (firmware.config.DisplaySection)."""

    @property
    def backend(self) -> str: ...  # png | st7789 | ili9341 | framebuffer | none
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def directory(self) -> str: ...  # png: relative to state_dir
    @property
    def framebuffer(self) -> str: ...
    @property
    def spi_port(self) -> int: ...
    @property
    def spi_device(self) -> int: ...
    @property
    def spi_speed_hz(self) -> int: ...  # 0: the datasheet rate
    @property
    def gpio_dc(self) -> int: ...
    @property
    def gpio_rst(self) -> int: ...
    @property
    def gpio_backlight(self) -> int: ...  # -1: wired on
    @property
    def rotate(self) -> int: ...
    @property
    def x_offset(self) -> int: ...
    @property
    def y_offset(self) -> int: ...


def open_display(section: DisplaySettings, state_dir: str | os.PathLike[str] = ".",
                 gpio: Gpio | None = None, spi: Spi | None = None) -> Display:
    """The display a [display] section names (backend png | st7789 | ili9341 | framebuffer |
    none). `gpio` (an RPi.GPIO-compatible module) and `spi` (a spidev-like object) may be given
    to put a simulator below an SPI panel; otherwise the real ones are opened."""
    backend = section.backend
    width, height = section.width, section.height
    if backend == "png":
        directory = Path(section.directory)
        if not directory.is_absolute():
            directory = Path(state_dir) / directory
        return PngSink(directory, width, height)
    if backend == "none":
        return NullDisplay(width, height)
    if backend == "framebuffer":
        return FramebufferDisplay(section.framebuffer, width, height)
    if backend in ("st7789", "ili9341"):
        if gpio is None:
            from drivers.gpio import gpio_module

            gpio = gpio_module("rpi")
        if spi is None:
            speed = section.spi_speed_hz or DATASHEET_SPI_HZ[backend]
            spi = open_spidev(section.spi_port, section.spi_device, speed)
        backlight = section.gpio_backlight if section.gpio_backlight >= 0 else None
        return SpiPanel(spi, gpio, backend, width, height, dc=section.gpio_dc,
                        rst=section.gpio_rst, backlight=backlight, rotate=section.rotate,
                        x_offset=section.x_offset,
                        y_offset=section.y_offset)
    raise DisplayError(f"unknown display backend {backend!r}")
