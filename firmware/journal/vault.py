"""The card vault: what a reversal, an advice or a refund needs of the card, encrypted at rest.

The vault stores bytes it cannot read: the acquirer link encodes its request
(`bytes(AuthRequest)`) and decodes it again (`AuthRequest.from_bytes`); the journal never knows
the request's shape. AES-GCM under the terminal key, bound to the payment id as associated data
(data moved to another payment does not decrypt). This module is the one place card data is
deleted: `forget`, in the transaction that records what made it unneeded.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import SupportsBytes

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from firmware.journal.errors import JournalError, UnknownPayment
from firmware.journal.store import Store, now_iso

__all__ = ["NONCE_BYTES", "CardVault"]

NONCE_BYTES = 12


def _associated_data(payment_id: int) -> bytes:
    return f"pitap-journal card_data v1 payment {payment_id}".encode()


class CardVault:
    def __init__(self, store: Store, key: bytes) -> None:
        self._store = store
        self._aead = AESGCM(key)

    def keep(self, payment_id: int, data: bytes | SupportsBytes) -> None:
        """Keep `data` (bytes, or what `bytes()` turns into bytes) encrypted for the payment."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = self._aead.encrypt(nonce, bytes(data), _associated_data(payment_id))
        with self._store.write() as c:
            if c.execute("SELECT 1 FROM payments WHERE id = ?", (payment_id,)).fetchone() is None:
                raise UnknownPayment(f"no payment {payment_id}")
            c.execute(
                "INSERT OR REPLACE INTO card_data (payment_id, nonce, ciphertext, created_at)"
                " VALUES (?, ?, ?, ?)",
                (payment_id, nonce, ciphertext, now_iso()),
            )

    def get(self, payment_id: int) -> bytes | None:
        """The kept bytes, decrypted; None when none are kept.

        JournalError when they do not decrypt under this terminal's key (wrong key, tampering,
        or data moved to another payment)."""
        row = self._store.read_one(
            "SELECT nonce, ciphertext FROM card_data WHERE payment_id = ?", (payment_id,)
        )
        if row is None:
            return None
        try:
            return self._aead.decrypt(
                bytes(row["nonce"]), bytes(row["ciphertext"]), _associated_data(payment_id)
            )
        except InvalidTag:
            raise JournalError(
                f"card data of payment {payment_id} does not decrypt with this terminal's key"
            ) from None

    @staticmethod
    def kept(c: sqlite3.Connection, payment_id: int) -> bool:
        return c.execute(
            "SELECT 1 FROM card_data WHERE payment_id = ?", (payment_id,)
        ).fetchone() is not None

    @staticmethod
    def forget(c: sqlite3.Connection, payment_id: int) -> None:
        """Delete the payment's card data in the caller's transaction (secure_delete zeroes
        the freed pages)."""
        c.execute("DELETE FROM card_data WHERE payment_id = ?", (payment_id,))

    @classmethod
    def forget_if_unneeded(cls, c: sqlite3.Connection, payment_id: int) -> None:
        """Delete the card data unless a reversal or advice still waits for it."""
        pending = c.execute(
            "SELECT 1 FROM queue WHERE payment_id = ? AND done_at IS NULL", (payment_id,)
        ).fetchone()
        if pending is None:
            cls.forget(c, payment_id)
