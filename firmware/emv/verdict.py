"""How a kernel step concludes a tap: a `Verdict` (kind, reason, prompt), or `FlowEnd` carrying one.

A step returns a Verdict when it decides the tap, or raises FlowEnd when the tap cannot go on
(wrong status word, missing data, the phone asks to be looked at). The kernel turns either into
the Outcome. Reasons are for the logs and the journal; the screen reads the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.emv.outcome import OutcomeKind, Prompt
from firmware.errors import PitapError


@dataclass(frozen=True)
class Verdict:
    kind: OutcomeKind
    reason: str
    prompt: Prompt | None = None  # None: the kind's usual prompt (outcome.DEFAULT_PROMPT)


class FlowEnd(PitapError):  # noqa: N818 - control flow inside the kernel, never escapes it
    """Ends the tap with this verdict."""

    def __init__(self, kind: OutcomeKind, reason: str, prompt: Prompt | None = None) -> None:
        super().__init__(reason)
        self.verdict = Verdict(kind, reason, prompt)


def card_error(reason: str) -> FlowEnd:
    """The card's data or answer is unusable: end the application, show "Card error"."""
    return FlowEnd(OutcomeKind.END_APPLICATION, reason, Prompt.CARD_ERROR)
