"""Property tests (hypothesis) of the kernel's BER-TLV decoder and DOL builder.

Well-formed TLV built from random trees decodes back to the same tree; any bytes decode or fail
with TlvError; a DOL's data always has the lengths the DOL asked for, numeric values padded and
cut on the left, the others on the right (EMV Book 3, 5.4).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.emv import dol, tlv


def _tag(constructed: bool) -> st.SearchStrategy[bytes]:
    first_low = st.integers(1, 30)  # one-byte tag numbers (0 would be padding, 31 = more)
    cls = st.sampled_from([0x00, 0x40, 0x80, 0xC0])
    one = st.builds(lambda c, n: bytes([c | (0x20 if constructed else 0) | n]), cls, first_low)
    two = st.builds(
        lambda c, n: bytes([c | (0x20 if constructed else 0) | 0x1F, n]),
        cls,
        st.integers(0x1F, 0x7F),
    )
    return (one | two).filter(lambda t: t[0] != 0xFF)


primitive = st.builds(lambda t, v: (t, v, ()), _tag(False), st.binary(max_size=300))
trees = st.recursive(
    primitive,
    lambda kids: st.builds(lambda t, c: (t, b"", tuple(c)), _tag(True), st.lists(kids, max_size=4)),
    max_leaves=12,
)


def _encode(node: tuple) -> bytes:
    tag, value, kids = node
    if tag[0] & 0x20:
        value = b"".join(_encode(k) for k in kids)
    return tlv.encode(tag, value)


def _shape(obj: tlv.Tlv) -> tuple:
    if obj.constructed:
        return (obj.tag, b"", tuple(_shape(c) for c in obj.children))
    return (obj.tag, obj.value, ())


@settings(max_examples=200, deadline=None)
@given(st.lists(trees, min_size=1, max_size=4))
def test_well_formed_tlv_round_trips(nodes: list) -> None:
    data = b"".join(_encode(n) for n in nodes)
    objs = tlv.decode(data)
    assert [_shape(o) for o in objs] == nodes
    assert b"".join(o.raw for o in objs) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_tlv_error(data: bytes) -> None:
    try:
        objs = tlv.decode(data)
    except tlv.TlvError as exc:
        assert str(exc)
        return
    assert all(o.raw and o.raw in data for o in objs)


dols = st.lists(
    st.tuples(
        st.sampled_from([b"\x9f\x02", b"\x9f\x03", b"\x5f\x2a", b"\x9a", b"\x9f\x37",
                         b"\x9f\x66", b"\x95", b"\x9f\x1a", b"\x9f\x7f", b"\xdf\x01"]),
        st.integers(0, 20),
    ),
    max_size=10,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(dols, st.dictionaries(st.sampled_from([b"\x9f\x02", b"\x9f\x37", b"\x9f\x66"]),
                             st.binary(max_size=30)))  # fmt: skip
def test_dol_data_has_the_asked_lengths(pairs: list, values: dict) -> None:
    encoded = b"".join(tag + bytes([n]) for tag, n in pairs)
    assert dol.parse(encoded) == pairs
    data = dol.build(encoded, values)
    assert len(data) == sum(n for _, n in pairs)
    pos = 0
    for tag, n in pairs:
        part = data[pos : pos + n]
        pos += n
        value = values.get(tag, b"")
        if tag in dol.NUMERIC_TAGS:
            assert part == (bytes(n) + value)[-n:] if n else part == b""
        else:
            assert part == (value + bytes(n))[:n]
