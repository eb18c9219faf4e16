"""The issuer's side of a cryptogram, for the host simulator: test keys, ARQC check, ARPC.

Issuer master keys come from a keys file (simulators/data/test-issuers.toml: PAN/token prefixes ->
scheme, CVN, IMK-AC). The ICC master key is derived with EMV option A and the ARQC regenerated
with pyemv's CVN classes (there is no "verify": regenerate and compare in constant time). The
ARPC goes back in tag 91. TEST KEYS ONLY: this module is for the simulator, never a real issuer.
"""

from __future__ import annotations

import hmac
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyemv import cvn as pyemv_cvn
from pyemv import tlv as pyemv_tlv

from simulators.keys import TEST_ISSUERS_FILE, IssuerKey, key_for, load_issuer_keys

# pyemv drives two-key 3DES through cryptography, which warns that it is deprecated; EMV still
# mandates it, and the warning would only drown the simulator's own messages.
warnings.filterwarnings("ignore", message=".*TripleDES.*", module="pyemv")

CSU_APPROVED = bytes.fromhex("00800000")  # CVN 18 card status update: issuer approved
CSU_DECLINED = bytes.fromhex("00000000")


@dataclass(frozen=True)
class CryptogramCheck:
    ok: bool
    reason: str  # "" when ok; else what was wrong, for the ledger (no card data)
    key: IssuerKey | None = None
    arqc: bytes = b""
    atc: bytes = b""


def _cvn_object(key: IssuerKey, pan: str, psn: str) -> Any:
    k = key.imk_ac
    if key.cvn == 10:
        return pyemv_cvn.VisaCVN10(k, k, k, pan, psn)
    if key.cvn == 18:
        return pyemv_cvn.VisaCVN18(k, k, k, pan, psn)
    if key.cvn == 16:
        return pyemv_cvn.MasterCardCVN16(k, k, k, pan, psn)
    raise ValueError(f"CVN {key.cvn} not supported")


def parse_icc(icc: bytes) -> dict[str, bytes]:
    """Field 55 BER-TLV -> {tag hex: value}. ValueError on malformed data."""
    try:
        tags = pyemv_tlv.decode(bytes(icc), flatten=True)
    except Exception as exc:  # pyemv raises its own DecodeError (a ValueError) or worse
        raise ValueError(f"ICC data is not BER-TLV: {exc}") from None
    return {str(t).upper(): bytes(v) for t, v in tags.items() if isinstance(v, bytes | bytearray)}


class Issuer:
    """The test issuers the simulator answers for."""

    def __init__(self, keys: tuple[IssuerKey, ...]) -> None:
        self.keys = keys

    @classmethod
    def from_file(cls, path: Path = TEST_ISSUERS_FILE) -> Issuer:
        return cls(load_issuer_keys(path))

    def key_for(self, pan: str) -> IssuerKey | None:
        return key_for(self.keys, pan)

    def check_arqc(self, pan: str, psn: int | None, icc: dict[str, bytes]) -> CryptogramCheck:
        key = self.key_for(pan)
        if key is None:
            return CryptogramCheck(False, "no issuer key for this card range")
        need = ("9F26", "9F02", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36", "9F10")
        missing = [t for t in need if t not in icc]
        if missing:
            return CryptogramCheck(False, f"ICC data lacks {', '.join(missing)}", key)
        iad = icc["9F10"]
        if key.cvn == 10:
            extra = iad[3:7]  # Visa IAD: length, DKI, CVN, then the 4-byte CVR
        elif key.cvn == 16:
            extra = iad[2:8]  # Mastercard IAD: DKI, CVN, then the 6-byte CVR
        else:
            extra = iad  # CVN 18: the whole IAD
        try:
            expected = _cvn_object(key, pan, f"{psn or 0:02d}").generate_ac(
                tag_9f02=icc["9F02"], tag_9f03=icc.get("9F03", bytes(6)), tag_9f1a=icc["9F1A"],
                tag_95=icc["95"], tag_5f2a=icc["5F2A"], tag_9a=icc["9A"], tag_9c=icc["9C"],
                tag_9f37=icc["9F37"], tag_82=icc["82"], tag_9f36=icc["9F36"],
                **({"tag_9f10": extra} if key.cvn == 18 else {"cvr": extra}),
            )
        except (ValueError, TypeError) as exc:
            return CryptogramCheck(False, f"cryptogram inputs unusable: {exc}", key)
        arqc = icc["9F26"]
        if not hmac.compare_digest(expected, arqc):
            return CryptogramCheck(False, "cryptogram does not verify", key, arqc, icc["9F36"])
        return CryptogramCheck(True, "", key, arqc, icc["9F36"])

    def arpc_tlv(self, check: CryptogramCheck, pan: str, psn: int | None,
                 response_code: str) -> bytes:
        """Tag 91 (issuer authentication data) for a verified ARQC, BER-TLV encoded."""
        assert check.key is not None
        obj = _cvn_object(check.key, pan, f"{psn or 0:02d}")
        if check.key.cvn == 18:
            csu = CSU_APPROVED if response_code == "00" else CSU_DECLINED
            value = obj.generate_arpc(tag_9f26=check.arqc, tag_9f36=check.atc, csu=csu) + csu
        else:
            arc = response_code.encode("ascii")[:2].ljust(2, b"0")
            value = obj.generate_arpc(tag_9f26=check.arqc, arpc_rc=arc) + arc
        return pyemv_tlv.encode({"91": value})
