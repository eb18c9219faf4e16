"""Read application data: READ RECORD for each record the AFL names, never more (Book 3 10.2).

Each AFL entry (SFI, first, last, how many of them are signed for ODA) is checked before any
command is sent; records of SFI 1-10 must be record templates (70). The records the AFL marks
for offline data authentication are kept, as the card encoded them, in s.static_data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

from firmware.emv import apdu, tlv
from firmware.emv.outcome import OutcomeKind
from firmware.emv.tags import Tag
from firmware.emv.verdict import FlowEnd, card_error

if TYPE_CHECKING:
    from firmware.emv.session import Session

MAX_RECORDS = 64


class AflEntry(NamedTuple):
    sfi: int
    first: int
    last: int
    oda_count: int  # records from `first` on that are signed static data


def afl_entries(afl: bytes) -> Iterator[AflEntry]:
    """The AFL's entries, each checked as it comes (the records of the ones before are read by
    then); FlowEnd ("Card error") where it is malformed."""
    if len(afl) % 4:
        raise card_error("AFL malformed (length)")
    for i in range(0, len(afl), 4):
        sfi, first, last, oda_count = afl[i] >> 3, afl[i + 1], afl[i + 2], afl[i + 3]
        if sfi in (0, 31) or afl[i] & 7 or first == 0 or last < first:
            raise card_error("AFL malformed (entry)")
        if oda_count > last - first + 1:
            raise card_error("AFL malformed (ODA count)")
        yield AflEntry(sfi, first, last, oda_count)


def _read_one(card: apdu.CardLink, s: Session, entry: AflEntry, number: int) -> None:
    sfi = entry.sfi
    resp = apdu.exchange(card, apdu.read_record(sfi, number))
    if not resp.ok:
        raise card_error(f"READ RECORD SFI {sfi} record {number} refused (SW {resp.sw_hex})")
    objs = tlv.decode(resp.data)
    template = len(objs) == 1 and objs[0].tag == Tag.READ_RECORD_TEMPLATE
    if sfi <= 10 and not template:
        raise card_error(f"record SFI {sfi} #{number} is not a record template (70)")
    if number - entry.first < entry.oda_count:
        if sfi <= 10:
            s.static_data += objs[0].value
        else:
            s.static_data += resp.data
            s.oda_records_ok = s.oda_records_ok and template
    s.add_card_data(list(objs[0].children) if template else objs, "records")


def read_records(card: apdu.CardLink, s: Session, afl: bytes) -> None:
    """READ RECORD for every record of `afl`, in order, at most MAX_RECORDS."""
    count = 0
    for entry in afl_entries(afl):
        for number in range(entry.first, entry.last + 1):
            count += 1
            if count > MAX_RECORDS:
                raise FlowEnd(OutcomeKind.END_APPLICATION, "AFL names too many records")
            _read_one(card, s, entry, number)
