"""Terminal risk management (EMV Book 3 10.6): floor limit and consecutive offline approvals.

Entry point already weighed the amount against the floor limit (`Candidate.online_required`);
the kernel knows how many offline approvals this AID has had. Both become TVR bits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware.emv.flags import Tsi, Tvr

if TYPE_CHECKING:
    from firmware.emv.session import Session


def manage(s: Session, offline_exhausted: bool) -> None:
    if s.candidate.online_required:
        s.tvr |= Tvr.FLOOR_LIMIT_EXCEEDED
    if offline_exhausted:
        s.tvr |= Tvr.LOWER_CONSECUTIVE_OFFLINE_LIMIT_EXCEEDED
    s.tsi |= Tsi.TERMINAL_RISK_MANAGEMENT_PERFORMED
