"""The journal's errors: one line each, and ConfigErrors, so a command ends with exit code 2."""

from __future__ import annotations

from firmware.config import ConfigError

__all__ = ["IllegalTransition", "JournalBusy", "JournalCorrupt", "JournalError", "UnknownPayment"]


class JournalError(ConfigError):
    """The journal cannot be used as asked; the message says why in one line.

    A ConfigError, so that a command that cannot open its journal (damaged, key missing or
    readable by others) ends like any setup problem: one line, exit code 2."""


class UnknownPayment(JournalError, ValueError):
    """No payment (or queue item, settlement) with that id."""


class JournalCorrupt(JournalError):
    """The journal file failed its integrity check or is not a journal: refuse to run on it."""


class JournalBusy(JournalError):
    """Another process has claimed the journal (`Journal.claim`): one writer at a time."""


class IllegalTransition(JournalError, ValueError):
    """A state change firmware.payment.LEGAL_TRANSITIONS does not allow; nothing was written."""
