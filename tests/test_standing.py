"""The one "approval still standing" check (firmware.standing): every caller words every rung of
the ladder, so that no refusal can end in a KeyError instead of its one line."""

from __future__ import annotations

import pytest

from firmware import preauth, tips, void
from firmware.standing import Standing


@pytest.mark.parametrize("caller", [void, tips, preauth], ids=lambda m: m.__name__)
def test_every_rung_is_worded_by_every_caller(caller: object) -> None:
    say = caller._SAY  # type: ignore[attr-defined]
    assert set(say) == set(Standing)
    for template, _problem in say.values():
        assert "\n" not in template and template.format(
            id=7, kind="refund", state="declined", paid_in="JPY", settles="EUR")
