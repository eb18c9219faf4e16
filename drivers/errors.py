"""The one error root of the terminal: every exception pitap raises derives from `PitapError`.

It lives here, at the lowest layer, so that the drivers can derive from it without importing
firmware (the arrows run firmware -> drivers only); `firmware.errors` is where the rest of the
terminal takes it from. Existing bases (ValueError, RuntimeError) are kept beside it, so every
`except ValueError` that caught an error before still catches it.
"""

from __future__ import annotations

__all__ = ["PitapError"]


class PitapError(Exception):
    """The root of every error the terminal (firmware, drivers, ui) raises on purpose."""
