"""Application selection: SELECT PPSE, the candidates entry point keeps, SELECT AID and its FCI.

`read_directory` selects the PPSE and parses its entries; `choose` turns entry point's
candidate list into the ones to try, or ends the tap (amount not allowed contactless: try
another interface; nothing supported: end). `select_application` selects one candidate and
keeps its FCI; a refusal moves on to the next candidate (SELECT_NEXT).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware.emv import apdu, tlv
from firmware.emv.aids import AidTable
from firmware.emv.entry_point import (
    Candidate,
    DirectoryEntry,
    PpseError,
    candidates,
    parse_ppse,
)
from firmware.emv.outcome import OutcomeKind, Prompt, TerminalTransaction
from firmware.emv.tags import Tag
from firmware.emv.verdict import FlowEnd, card_error

if TYPE_CHECKING:
    from firmware.emv.session import Session

SW_NOT_FOUND = (0x6A82, 0x6A81)  # file not found, function not supported


def read_directory(card: apdu.CardLink) -> list[DirectoryEntry]:
    resp = apdu.exchange(card, apdu.select(apdu.PPSE))
    if resp.sw in SW_NOT_FOUND:
        raise FlowEnd(OutcomeKind.END_APPLICATION, "no payment directory (PPSE) on the card")
    if not resp.ok:
        raise FlowEnd(OutcomeKind.END_APPLICATION, f"SELECT PPSE refused (SW {resp.sw_hex})")
    try:
        return parse_ppse(resp.data)
    except (tlv.TlvError, PpseError) as exc:
        raise card_error(f"PPSE answer malformed: {exc}") from None


def choose(
    entries: list[DirectoryEntry],
    table: AidTable,
    txn: TerminalTransaction,
    offline_exhausted: dict[bytes, bool],
) -> list[Candidate]:
    """The candidates to try, in order; FlowEnd when there is none."""
    cands, skipped = candidates(entries, table, txn, offline_exhausted)
    if cands:
        return cands
    if any(s.why.amount for s in skipped):
        raise FlowEnd(
            OutcomeKind.TRY_ANOTHER_INTERFACE,
            "amount not allowed contactless for the card's applications",
            Prompt.AMOUNT_TOO_HIGH,
        )
    listed = "; ".join(map(str, skipped)) or "directory empty"
    raise FlowEnd(OutcomeKind.END_APPLICATION, f"no application this terminal supports ({listed})")


def _next(s: Session, why: str) -> FlowEnd:
    return FlowEnd(OutcomeKind.SELECT_NEXT, f"{s.candidate.config.label}: {why}")


def select_application(card: apdu.CardLink, s: Session) -> None:
    """SELECT the candidate's AID; keep the FCI if it names the application asked for."""
    cand = s.candidate
    resp = apdu.exchange(card, apdu.select(cand.entry.aid))
    if not resp.ok:
        raise _next(s, f"SELECT refused (SW {resp.sw_hex})")
    try:
        objs = tlv.decode(resp.data)
    except tlv.TlvError as exc:
        raise _next(s, f"FCI malformed: {exc}") from None
    if len(objs) != 1 or objs[0].tag != Tag.FCI_TEMPLATE:
        raise _next(s, "SELECT answer is not an FCI")
    s.fci = tlv.flatten(objs)
    if not cand.config.matches(s.fci.get(Tag.DF_NAME, b"")):
        raise _next(s, "FCI names another application")
