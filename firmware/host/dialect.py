"""ISO 8583 dialects: a TOML file in config/dialects/ -> a pyiso8583 spec plus framing settings.

A dialect says how each field is encoded (pyiso8583 spec dicts, bitmap hex or binary), the
length header in front of every message (2-byte binary, 4 ASCII digits, none) and an optional
TPDU. Encoding and decoding one message (no framing) is here too, so every other module sees a
message only as a dict of strings. Nothing here touches the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import iso8583
from iso8583.decoder import DecodeError
from iso8583.encoder import EncodeError

from firmware.config import ConfigError, find_data_file, read_toml
from firmware.errors import PitapError

LENGTH_HEADERS = ("binary2", "ascii4", "none")
_SPEC_KEYS = {"data_enc", "len_enc", "len_type", "max_len", "desc", "len_count", "left_pad",
              "right_pad"}
_TOP_KEYS = {
    "description", "length_header", "tpdu", "nii", "max_message", "sale_message", "void_reason",
    "defaults", "fields", "deferred_message", "deferred_condition", "preauth_condition",
    "tip_amount_type", "adjust_message", "adjust_processing_code",
}
DEFAULT_VOID_REASON = "17"  # field 25 of a void's 0400: customer cancellation
# Field 25 of a pre-authorization's messages (ISO 8583:1987 06: pre-authorized request); the
# hold and its increments go as 0100, its completion as 0220 (firmware.preauth)
DEFAULT_PREAUTH_CONDITION = "06"
DEFAULT_TIP_AMOUNT_TYPE = "44"  # field 54's amount type of a tip (gratuity)
DEFAULT_ADJUST_MESSAGE = "0220"  # a tip adjustment: an advice amending the approved sale
DEFAULT_ADJUST_PROCESSING = "020000"  # field 3 of a tip adjustment: 02 adjustment


class MessageError(PitapError, ValueError):
    """A message could not be encoded or decoded with this dialect (names the field)."""


@dataclass(frozen=True)
class Dialect:
    name: str
    spec: dict[str, dict[str, Any]]
    length_header: str = "binary2"
    tpdu: bytes = b""
    nii: str = ""
    max_message: int = 4096
    sale_message: str = "0100"  # a sale as 0100 authorization or 0200 financial request
    # A stored payment forwarded later ([offline]): its MTI and field 25 (POS condition code)
    deferred_message: str = "0200"
    deferred_condition: str = "06"
    void_reason: str = DEFAULT_VOID_REASON  # field 25 of a void's 0400 (2 digits)
    preauth_condition: str = DEFAULT_PREAUTH_CONDITION  # field 25 of a hold, increment, completion
    # Tips: field 54's amount type for a tip; a tip adjustment's MTI and processing code (3)
    tip_amount_type: str = DEFAULT_TIP_AMOUNT_TYPE
    adjust_message: str = DEFAULT_ADJUST_MESSAGE
    adjust_processing_code: str = DEFAULT_ADJUST_PROCESSING
    description: str = ""
    source: Path | None = field(default=None, compare=False)

    def binary(self, field_id: str) -> bool:
        """True when the field's data is carried as raw bytes (hex strings in the dict)."""
        return self.spec.get(field_id, {}).get("data_enc") == "b"

    def encode(self, doc: dict[str, str]) -> bytes:
        """One message dict ("t" MTI, "2".."128" fields as strings) -> bytes, without framing."""
        doc = dict(doc)
        if self.tpdu:
            doc["h"] = self.tpdu.hex().upper()
        try:
            raw, _ = iso8583.encode(doc, self.spec)
        except EncodeError as exc:
            raise MessageError(f"dialect {self.name}: cannot encode: {exc}") from None
        return bytes(raw)

    def decode(self, data: bytes) -> dict[str, str]:
        """Bytes without framing -> message dict. Raises MessageError on anything malformed."""
        if len(data) > self.max_message:
            raise MessageError(f"message of {len(data)} bytes is longer than {self.max_message}")
        try:
            doc, _ = iso8583.decode(bytearray(data), self.spec)
        except DecodeError as exc:
            raise MessageError(f"dialect {self.name}: undecodable: {exc}") from None
        except (ValueError, TypeError, IndexError, KeyError) as exc:  # belt and braces
            raise MessageError(f"dialect {self.name}: undecodable: {exc}") from None
        doc.pop("p", None)
        doc.pop("1", None)
        doc.pop("h", None)
        return {k: v for k, v in doc.items() if isinstance(v, str)}


def dialect_path(name: str, config_dir: Path) -> Path:
    """A dialect name (config/dialects/<name>.toml) or a path to a .toml file."""
    p = Path(name)
    relative = p if p.suffix == ".toml" or "/" in name else Path("dialects") / f"{name}.toml"
    return find_data_file(relative, config_dir)


def load_dialect(name: str, config_dir: Path) -> Dialect:
    """Load and check a dialect; any mistake is a ConfigError naming the file and key."""
    path = dialect_path(name, config_dir)
    return parse_dialect(read_toml(path, f"dialect file (host.dialect = {name!r})"), path)


def parse_dialect(data: dict[str, Any], path: Path) -> Dialect:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key '{sorted(unknown)[0]}'")
    header = data.get("length_header", "binary2")
    if header not in LENGTH_HEADERS:
        raise ConfigError(f"{path}: 'length_header' must be one of {', '.join(LENGTH_HEADERS)}")
    try:
        tpdu = bytes.fromhex(str(data.get("tpdu", "")))
    except ValueError:
        raise ConfigError(f"{path}: 'tpdu' must be hex digits") from None
    max_message = data.get("max_message", 4096)
    if not isinstance(max_message, int) or not 64 <= max_message <= 65535:
        raise ConfigError(f"{path}: 'max_message' must be an integer 64..65535")
    defaults = data.get("defaults", {})
    fields = data.get("fields", {})
    if not isinstance(fields, dict) or "t" not in fields or "p" not in fields:
        raise ConfigError(f"{path}: [fields] must define at least 't' and 'p'")
    spec: dict[str, dict[str, Any]] = {}
    for fid, fspec in fields.items():
        if not isinstance(fspec, dict):
            raise ConfigError(f"{path}: 'fields.{fid}' must be a table")
        merged = {"len_enc": "ascii", "len_type": 0, "desc": f"Field {fid}"}
        merged.update(defaults)
        merged.update(fspec)
        bad = set(merged) - _SPEC_KEYS
        if bad:
            raise ConfigError(f"{path}: 'fields.{fid}.{sorted(bad)[0]}' is not a field property")
        if "max_len" not in merged or "data_enc" not in merged:
            raise ConfigError(f"{path}: 'fields.{fid}' needs data_enc and max_len")
        spec[str(fid)] = merged
    spec["h"] = {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": len(tpdu),
                 "desc": "TPDU"}
    if "1" not in spec:
        spec["1"] = dict(spec["p"], desc="Bitmap, secondary")
    sale = data.get("sale_message", "0100")
    if sale not in ("0100", "0200"):
        raise ConfigError(f"{path}: 'sale_message' must be \"0100\" or \"0200\"")
    deferred = data.get("deferred_message", "0200")
    if deferred not in ("0100", "0200"):
        raise ConfigError(f"{path}: 'deferred_message' must be \"0100\" or \"0200\"")
    condition = str(data.get("deferred_condition", "06"))
    if not (condition.isdigit() and len(condition) == 2) or condition == "00":
        raise ConfigError(f"{path}: 'deferred_condition' must be 2 digits, not 00 (field 25)")
    void_reason = data.get("void_reason", DEFAULT_VOID_REASON)
    if not (isinstance(void_reason, str) and len(void_reason) == 2 and void_reason.isdigit()):
        raise ConfigError(f"{path}: 'void_reason' must be 2 digits, e.g. \"17\"")
    preauth = data.get("preauth_condition", DEFAULT_PREAUTH_CONDITION)
    if not (isinstance(preauth, str) and len(preauth) == 2 and preauth.isdigit()) or (
            preauth == "00"):
        raise ConfigError(f"{path}: 'preauth_condition' must be 2 digits, not 00 (field 25)")
    if preauth == condition and deferred == "0100":  # both would be an 0100 with that 25
        raise ConfigError(f"{path}: 'preauth_condition' must differ from 'deferred_condition' "
                          "when deferred_message is \"0100\"")
    tip_type = data.get("tip_amount_type", DEFAULT_TIP_AMOUNT_TYPE)
    if not (isinstance(tip_type, str) and len(tip_type) == 2 and tip_type.isalnum()):
        raise ConfigError(f"{path}: 'tip_amount_type' must be 2 letters or digits (field 54's "
                          "amount type), e.g. \"44\"")
    adjust = data.get("adjust_message", DEFAULT_ADJUST_MESSAGE)
    if adjust not in ("0220", "0200"):
        raise ConfigError(f"{path}: 'adjust_message' must be \"0220\" or \"0200\"")
    adjust_code = data.get("adjust_processing_code", DEFAULT_ADJUST_PROCESSING)
    if not (isinstance(adjust_code, str) and len(adjust_code) == 6 and adjust_code.isdigit()
            and adjust_code[:2] not in ("00", "20")):
        raise ConfigError(f"{path}: 'adjust_processing_code' must be 6 digits, not a sale's or "
                          "refund's (00.../20...), e.g. \"020000\"")
    nii = str(data.get("nii", ""))
    if nii and not (nii.isdigit() and len(nii) == 3):
        raise ConfigError(f"{path}: 'nii' must be 3 digits or empty")
    return Dialect(name=path.stem, spec=spec, length_header=header, tpdu=tpdu, nii=nii,
                   max_message=max_message, sale_message=sale, deferred_message=deferred,
                   deferred_condition=condition, void_reason=void_reason,
                   preauth_condition=preauth,
                   tip_amount_type=tip_type, adjust_message=adjust,
                   adjust_processing_code=adjust_code,
                   description=str(data.get("description", "")),
                   source=path)
