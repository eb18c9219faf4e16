"""The terminal's one error root, `PitapError`, as the firmware imports it.

Every exception class in firmware/, drivers/ and ui/ derives from it (directly or through its
current base); `pitap` (firmware/cli.py, EXIT_CODES) maps error classes to an exit code and a
one-line message. The class itself is defined in drivers.errors, the lowest layer, so that the
drivers can derive from it without importing firmware.
"""

from __future__ import annotations

from drivers.errors import PitapError

__all__ = ["PitapError"]
