"""EMV dates: the 3-byte BCD YYMMDD of 5F24/5F25 and the month-granular expiry checks.

One rule for "expired by month", used by processing restrictions (track 2's YYMM), offline data
authentication (certificates' MMYY) and the offline acceptance policy (the kernel's YYMM).
"""

from __future__ import annotations

import datetime as dt

__all__ = ["month_passed", "yymm_passed", "yymmdd"]


def yymmdd(value: bytes) -> dt.date | None:
    """A 3-byte BCD date (5F24, 5F25); None when it is not one."""
    text = value.hex()
    if len(value) != 3 or not text.isdigit():
        return None
    try:
        return dt.date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        return None


def month_passed(year: int, month: int, on: dt.date) -> bool | None:
    """True when month `month` of 2000 + `year` ended before `on`; None when `month` is no month."""
    if not 1 <= month <= 12:
        return None
    return (2000 + year, month) < (on.year, on.month)


def yymm_passed(yymm: str, on: dt.date) -> bool | None:
    """A four-digit YYMM expiry (track 2, the kernel's `expiry`) before `on`'s month; None when
    `yymm` is not one."""
    if len(yymm) != 4 or not yymm.isdigit():
        return None
    return month_passed(int(yymm[:2]), int(yymm[2:]), on)
