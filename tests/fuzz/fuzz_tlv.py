"""Fuzz target: the kernel's BER-TLV decoder and DOL builder (firmware.emv.tlv / .dol).

Any bytes either decode or raise TlvError; a decoded object's own bytes decode to the same
object, and re-encoding its tag and value gives them back. Read as a DOL, any bytes either
parse or raise TlvError, and the data built for it has exactly the lengths it asked for.

    python tests/fuzz/fuzz_tlv.py -max_total_time=60
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from firmware.emv import dol, tlv  # noqa: E402

SEEDS = [
    bytes.fromhex("770D9F2701809F3602000782022000"),
    bytes.fromhex(
        "6F2A840E325041592E5359532E4444463031A518BF0C1561134F07A0000000031010870101500456495341"
    ),  # fmt: skip
    bytes.fromhex("9F66049F02069F03069F1A0295055F2A029A039C019F3704"),
    bytes.fromhex("5A0847617390010100105F24032812319F4681B0") + bytes(0xB0),
    bytes.fromhex("00005A0112FFFF"),
]


def one_input(data: bytes) -> None:
    try:
        objs = tlv.decode(data)
    except tlv.TlvError:
        objs = []
    for obj in objs:
        assert tlv.decode(obj.raw) == [obj], obj.raw.hex()
        (again,) = tlv.decode(obj.encode())
        assert (again.tag, again.value) == (obj.tag, obj.value), obj.raw.hex()
    try:
        pairs = dol.parse(data)
    except tlv.TlvError:
        return
    values = {tag: data[: n + 1] for tag, n in pairs}  # too long, fitted by the builder
    built = dol.build(pairs, values)
    assert len(built) == sum(n for _, n in pairs)
    assert dol.build(data, {}) == bytes(len(built))  # nothing known: all zeros


if __name__ == "__main__":
    from tests.fuzz.runner import fuzz

    fuzz(one_input, SEEDS)
