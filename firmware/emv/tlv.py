"""Strict BER-TLV (EMV Book 3 Annex B): the one place the kernel decodes and encodes TLV.

Decoding refuses anything a well-formed card would never send: a tag or length running past the
end, indefinite or over-long lengths, values larger than a response APDU can carry, nesting too
deep. Each refusal is a `TlvError` naming the tag and the offset. Padding bytes 00 between
objects are skipped as EMV allows. This module knows nothing about cards or outcomes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from firmware.errors import PitapError

MAX_VALUE_LEN = 0xFFFF  # nothing a phone sends in one APDU (<= 65 kB extended) is larger
MAX_DEPTH = 8


class TlvError(PitapError, ValueError):
    """Malformed BER-TLV; the message names the tag and offset where decoding stopped."""


@dataclass(frozen=True)
class Tlv:
    """One data object: tag bytes (e.g. b'\\x9f\\x26'), value bytes, and children if constructed."""

    tag: bytes
    value: bytes
    children: tuple[Tlv, ...] = ()
    raw: bytes = b""  # the object exactly as the card encoded it (CDA hashes these bytes)

    @property
    def constructed(self) -> bool:
        return bool(self.tag[0] & 0x20)

    def encode(self) -> bytes:
        return encode(self.tag, self.value)


def read_tag(data: bytes, pos: int) -> tuple[bytes, int]:
    start = pos
    if pos >= len(data):
        raise TlvError(f"tag missing at offset {pos}")
    first = data[pos]
    pos += 1
    if first & 0x1F == 0x1F:
        while True:
            if pos >= len(data):
                raise TlvError(f"tag {data[start:pos].hex().upper()} truncated at offset {start}")
            b = data[pos]
            pos += 1
            if pos - start > 4:
                raise TlvError(f"tag longer than 4 bytes at offset {start}")
            if not b & 0x80:
                break
    return data[start:pos], pos


def read_length(data: bytes, pos: int, tag: bytes) -> tuple[int, int]:
    name = tag.hex().upper()
    if pos >= len(data):
        raise TlvError(f"tag {name}: length missing at offset {pos}")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0:
        raise TlvError(f"tag {name}: indefinite length not allowed (offset {pos - 1})")
    if count > 3:
        raise TlvError(f"tag {name}: {count}-byte length field too long (offset {pos - 1})")
    if pos + count > len(data):
        raise TlvError(f"tag {name}: length field truncated at offset {pos - 1}")
    length = int.from_bytes(data[pos : pos + count], "big")
    return length, pos + count


def decode(data: bytes, depth: int = 0) -> list[Tlv]:
    """Decode a sequence of BER-TLV objects (constructed ones recursively); raise TlvError."""
    if depth > MAX_DEPTH:
        raise TlvError("TLV nested too deep")
    out: list[Tlv] = []
    pos = 0
    data = bytes(data)
    while pos < len(data):
        if data[pos] == 0x00:  # inter-object padding (EMV Book 3 Annex B)
            pos += 1
            continue
        if data[pos] == 0xFF and all(b == 0xFF for b in data[pos:]):
            break  # trailing FF padding
        tag_start = pos
        tag, pos = read_tag(data, pos)
        length, pos = read_length(data, pos, tag)
        if length > MAX_VALUE_LEN:
            raise TlvError(f"tag {tag.hex().upper()}: value of {length} bytes is oversized")
        if pos + length > len(data):
            raise TlvError(
                f"tag {tag.hex().upper()} at offset {tag_start}: {length}-byte value "
                f"runs past the end ({len(data) - pos} bytes left)"
            )
        value = data[pos : pos + length]
        pos += length
        children: tuple[Tlv, ...] = ()
        if tag[0] & 0x20:
            try:
                children = tuple(decode(value, depth + 1))
            except TlvError as exc:
                raise TlvError(f"inside {tag.hex().upper()}: {exc}") from None
        out.append(Tlv(tag, value, children, data[tag_start:pos]))
    return out


def walk(objs: Iterable[Tlv]) -> Iterator[Tlv]:
    """Every object, depth first, constructed ones before their children."""
    for obj in objs:
        yield obj
        yield from walk(obj.children)


def flatten(objs: Iterable[Tlv]) -> dict[bytes, bytes]:
    """Primitive objects by tag (first occurrence wins) — the card's data in one dictionary."""
    out: dict[bytes, bytes] = {}
    for obj in walk(objs):
        if not obj.constructed:
            out.setdefault(obj.tag, obj.value)
    return out


def find(objs: Iterable[Tlv], tag: bytes) -> Tlv | None:
    for obj in walk(objs):
        if obj.tag == tag:
            return obj
    return None


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return b"\x81" + bytes([n])
    if n <= 0xFFFF:
        return b"\x82" + n.to_bytes(2, "big")
    raise ValueError(f"TLV value of {n} bytes too long")


def encode(tag: bytes | int, value: bytes) -> bytes:
    """Encode one object; `tag` as bytes or an int like 0x9F26."""
    if isinstance(tag, int):
        tag = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    return bytes(tag) + encode_length(len(value)) + bytes(value)

