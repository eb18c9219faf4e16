"""Command APDUs the kernel sends and the one function that exchanges them with a card.

`exchange` turns everything a card can do wrong at this level into `CardError` (unusable answer)
or `drivers.nfc.CardRemoved` (gone): a response shorter than a status word, too long, or a
61xx chain that never ends. It never interprets the data: that is the kernel steps' job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from firmware.errors import PitapError

log = logging.getLogger(__name__)

PPSE = b"2PAY.SYS.DDF01"
MAX_RESPONSE = 4096  # a phone's answer to one command is a few hundred bytes
MAX_GET_RESPONSE = 8


class CardLink(Protocol):
    def transceive(self, apdu: bytes) -> bytes: ...


class CardError(PitapError):
    """The card answered, but not in a way the kernel can use."""


@dataclass(frozen=True)
class Response:
    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    @property
    def sw_hex(self) -> str:
        return f"{self.sw:04X}"


def select(name: bytes, first: bool = True) -> bytes:
    p2 = 0x00 if first else 0x02
    return bytes([0x00, 0xA4, 0x04, p2, len(name)]) + name + b"\x00"


def get_processing_options(pdol_data: bytes) -> bytes:
    body = b"\x83" + bytes([len(pdol_data)]) + pdol_data
    return bytes([0x80, 0xA8, 0x00, 0x00, len(body)]) + body + b"\x00"


def read_record(sfi: int, record: int) -> bytes:
    return bytes([0x00, 0xB2, record, (sfi << 3) | 0x04, 0x00])


def generate_ac(p1: int, cdol_data: bytes) -> bytes:
    return bytes([0x80, 0xAE, p1, 0x00, len(cdol_data)]) + cdol_data + b"\x00"


def internal_authenticate(ddol_data: bytes) -> bytes:
    return bytes([0x00, 0x88, 0x00, 0x00, len(ddol_data)]) + ddol_data + b"\x00"


def get_response(length: int) -> bytes:
    return bytes([0x00, 0xC0, 0x00, 0x00, length])


def exchange(card: CardLink, command: bytes) -> Response:
    """Send one command; follow 61xx / 6Cxx as ISO 7816-4 says; return data and status word."""
    rapdu = bytes(card.transceive(command))
    data = b""
    for _ in range(MAX_GET_RESPONSE):
        if len(rapdu) < 2:
            raise CardError(f"response of {len(rapdu)} bytes has no status word")
        if len(rapdu) > MAX_RESPONSE:
            raise CardError(f"response of {len(rapdu)} bytes is oversized")
        sw1, sw2 = rapdu[-2], rapdu[-1]
        data += rapdu[:-2]
        if len(data) > MAX_RESPONSE:
            raise CardError("response chain is oversized")
        if sw1 == 0x61:
            rapdu = bytes(card.transceive(get_response(sw2)))
            continue
        if sw1 == 0x6C and not data:
            rapdu = bytes(card.transceive(command[:-1] + bytes([sw2])))
            continue
        return Response(data, (sw1 << 8) | sw2)
    raise CardError("card kept asking for GET RESPONSE")
