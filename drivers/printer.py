"""Receipt printers speaking ESC/POS: a serial thermal printer (python-escpos on pyserial) or a
file that receives the very same bytes (tests, a printer on a pipe).

A document is a list of `PrintLine`s plus an optional QR code; python-escpos encodes it (code
pages, sizes, alignment, cut) on its Dummy printer, and the bytes go to the transport. Before
printing, a serial printer is asked for its status (DLE EOT): offline or out of paper raise
`PrinterProblem` with plain words, and nothing is printed. Nothing here knows what a payment is.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from escpos.constants import RT_MASK_NOPAPER, RT_MASK_ONLINE, RT_STATUS_ONLINE, RT_STATUS_PAPER
from escpos.printer import Dummy

from drivers.errors import PitapError

if TYPE_CHECKING:
    from escpos.printer import Serial

log = logging.getLogger(__name__)


class PrinterProblem(PitapError, RuntimeError):
    """The printer cannot print now; `kind` is "offline", "no_paper" or "error"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Printer(Protocol):
    """A receipt printer: prints one document (lines, then an optional QR), returns the bytes
    sent; PrinterProblem (kind: paper, cover, offline, ...) when it cannot."""

    def print_document(self, lines: list[PrintLine], qr: str = "") -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PrintLine:
    """One line of a receipt: text, alignment, bold, double size."""

    text: str = ""
    align: str = "left"  # left | center | right
    bold: bool = False
    large: bool = False


def encode(lines: list[PrintLine], qr: str = "", cut: bool = True) -> bytes:
    """The ESC/POS bytes of a document (python-escpos does the encoding)."""
    doc = Dummy()
    doc.hw("INIT")
    for line in lines:
        doc.set(align=line.align, bold=line.bold, double_width=line.large,
                double_height=line.large, normal_textsize=not line.large)
        doc.textln(line.text)
    if qr:
        doc.set(align="center", normal_textsize=True, bold=False)
        doc.qr(qr, size=5, native=True)
    if cut:
        doc.cut()
    return doc.output


class FilePrinter:
    """Appends each document's ESC/POS bytes to a file (`printer.backend = "file"`), 0600."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def print_document(self, lines: list[PrintLine], qr: str = "") -> int:
        data = encode(lines, qr)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "ab") as out:
                out.write(data)
        except OSError as exc:
            raise PrinterProblem("error", f"cannot write {self.path}: {exc.strerror}") from None
        return len(data)

    def close(self) -> None:
        return None


class SerialPrinter:
    """A thermal printer on a serial port (`printer.backend = "serial"`), opened per receipt so
    a printer switched off and on again is found again."""

    def __init__(self, port: str, baudrate: int = 19200, timeout: float = 1.0,
                 check_status: bool = True) -> None:
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self.check_status = check_status

    def _open(self) -> Serial:
        from escpos.exceptions import DeviceNotFoundError
        from escpos.printer import Serial

        printer = Serial(devfile=self.port, baudrate=self.baudrate, timeout=self.timeout)
        try:
            printer.open()
        except DeviceNotFoundError:
            raise PrinterProblem("offline", f"printer offline (no {self.port})") from None
        return printer

    @staticmethod
    def _query(printer: Serial, query: bytes) -> int | None:
        """One real-time status byte (DLE EOT n), or None when the printer does not answer.
        Reads one byte, so an answering printer costs no timeout."""
        printer.device.reset_input_buffer()
        printer._raw(query)
        answer = printer.device.read(1)
        return answer[0] if answer else None

    def status(self, printer: Serial) -> None:
        """Raise PrinterProblem when the printer is silent, offline or out of paper."""
        online = self._query(printer, RT_STATUS_ONLINE)
        if online is None or online & RT_MASK_ONLINE:
            raise PrinterProblem("offline", "printer offline")
        paper = self._query(printer, RT_STATUS_PAPER)
        if paper is not None and paper & RT_MASK_NOPAPER == RT_MASK_NOPAPER:
            raise PrinterProblem("no_paper", "printer out of paper")

    def print_document(self, lines: list[PrintLine], qr: str = "") -> int:
        data = encode(lines, qr)
        printer = self._open()
        try:
            if self.check_status:
                self.status(printer)
            printer._raw(data)
        except PrinterProblem:
            raise
        except Exception as exc:  # serial errors, a cable pulled mid-receipt
            raise PrinterProblem("error", f"printer error: {exc}") from None
        finally:
            try:
                printer.close()
            except Exception:
                log.debug("closing the printer port failed", exc_info=True)
        return len(data)

    def close(self) -> None:
        return None


class PrinterSettings(Protocol):
    """What `open_printer` reads of a [printer] section (firmware.config.PrinterSection)."""

    @property
    def backend(self) -> str: ...  # none | serial | file
    @property
    def path(self) -> str: ...  # file: relative to state_dir
    @property
    def port(self) -> str: ...
    @property
    def baudrate(self) -> int: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def check_status(self) -> bool: ...


def open_printer(section: PrinterSettings,
                 state_dir: str | os.PathLike[str] = ".") -> Printer | None:
    """The printer a [printer] section names (serial | file); None for "none"."""
    if section.backend == "none":
        return None
    if section.backend == "file":
        path = Path(section.path)
        return FilePrinter(path if path.is_absolute() else Path(state_dir) / path)
    if section.backend == "serial":
        return SerialPrinter(section.port, section.baudrate,
                             timeout=section.timeout_s,
                             check_status=section.check_status)
    raise ValueError(f"unknown printer backend {section.backend!r}")
