"""The CDA check of a GENERATE AC answer (EMV Book 2 6.6): the SDAD signs the cryptogram.

The signature (9F4B) must verify with the ICC key recovered before GENERATE AC, name the CID the
card answered, and carry the hash of the PDOL data, the CDOL1 data and the answer's other TLVs.
Then the cryptogram is the one inside the signature. Raises OdaError with the reason.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from firmware.emv import oda
from firmware.emv.tags import Tag

if TYPE_CHECKING:
    from firmware.emv.session import Session


def verify(s: Session, icc_key: oda.IccKey, signed_tlvs: bytes) -> None:
    """Check the CDA signature; on success s.cryptogram is the one it signed."""
    sdad = s.card.get(Tag.SIGNED_DYNAMIC_APPLICATION_DATA)
    if sdad is None:
        raise oda.OdaError("CDA signature (9F4B) missing")
    sig = oda.verify_sdad(icc_key, sdad, s.term[Tag.UNPREDICTABLE_NUMBER], "CDA")
    if sig.cid != s.cid:
        raise oda.OdaError("CDA signature names another cryptogram type")
    tdhc = oda.transaction_data_hash(s.pdol_data, s.cdol1_data, signed_tlvs)
    if not hmac.compare_digest(tdhc, sig.transaction_data_hash):
        raise oda.OdaError("CDA transaction data hash does not match")
    s.cryptogram = sig.cryptogram
