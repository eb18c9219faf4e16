"""The simulated phones' own minimal BER-TLV: build responses, read DOL lists and command data.

Deliberately separate from the kernel's TLV code (firmware.emv): the phones and the kernel must not
share a code path that could hide a mistake on both sides. Only what a card needs is here.
"""

from __future__ import annotations


class TlvError(ValueError):
    """Data that is not well-formed BER-TLV (or a DOL that is not a list of tag/length pairs)."""


def tag_bytes(tag: int) -> bytes:
    """Tag number as written on the wire (0x9F02 -> b'\\x9f\\x02')."""
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def length_bytes(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    if length < 0x100:
        return bytes([0x81, length])
    if length < 0x10000:
        return bytes([0x82]) + length.to_bytes(2, "big")
    raise TlvError(f"length {length} too long for a card")


def tlv(tag: int, value: bytes) -> bytes:
    """One encoded data object."""
    return tag_bytes(tag) + length_bytes(len(value)) + bytes(value)


def encode(items: list[tuple[int, bytes]]) -> bytes:
    """Data objects in the given order."""
    return b"".join(tlv(tag, value) for tag, value in items)


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError("tag missing")
    start = pos
    first = data[pos]
    pos += 1
    if first & 0x1F == 0x1F:
        while True:
            if pos >= len(data):
                raise TlvError("tag truncated")
            pos += 1
            if not data[pos - 1] & 0x80:
                break
    return int.from_bytes(data[start:pos], "big"), pos


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError("length missing")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0 or count > 2 or pos + count > len(data):
        raise TlvError("bad length")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def decode(data: bytes) -> list[tuple[int, bytes]]:
    """Top-level data objects of `data` (templates are not opened)."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        if data[pos] in (0x00, 0xFF):  # padding between objects
            pos += 1
            continue
        tag, pos = _read_tag(data, pos)
        length, pos = _read_length(data, pos)
        if pos + length > len(data):
            raise TlvError(f"value of tag {tag:X} truncated")
        out.append((tag, bytes(data[pos : pos + length])))
        pos += length
    return out


def parse_dol(dol: bytes) -> list[tuple[int, int]]:
    """A data object list (PDOL, CDOL1, DDOL): [(tag, length), ...]."""
    out: list[tuple[int, int]] = []
    pos = 0
    while pos < len(dol):
        tag, pos = _read_tag(dol, pos)
        length, pos = _read_length(dol, pos)
        out.append((tag, length))
    return out


def split_dol_data(dol: list[tuple[int, int]], data: bytes) -> dict[int, bytes]:
    """Cut the concatenated values a terminal sent for `dol` into {tag: value}.

    Raises TlvError when the data is not exactly as long as the DOL asks.
    """
    expected = sum(length for _tag, length in dol)
    if len(data) != expected:
        raise TlvError(f"DOL data is {len(data)} bytes, expected {expected}")
    values: dict[int, bytes] = {}
    pos = 0
    for tag, length in dol:
        values[tag] = bytes(data[pos : pos + length])
        pos += length
    return values
