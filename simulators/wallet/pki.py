"""The simulated wallets' test PKI: a test CA, issuer and ICC RSA keys, EMV certificates.

Two jobs:
- a tool, `python -m simulators.wallet.pki generate`, that makes fresh TEST keys (a CA per scheme,
  an issuer per scheme, an ICC key per scheme) into `simulators/data/test-pki.toml` and writes the
  CA public keys to `config/capk/test.txt` in the capk.txt line format
  (`RID INDEX EXPIRY rsa EXP MODULUS sha1 CHECKSUM`);
- the card side of offline data authentication (EMV Book 2): issuer public key certificates
  (format 02, signed by the CA), ICC public key certificates (format 04, signed by the issuer) and
  signed dynamic application data (format 05) — raw RSA, header 6A, trailer BC, SHA-1.

Nothing here verifies anything: that is the kernel's job, written separately on purpose.
These keys are TEST keys; a production terminal never trusts them.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
PKI_FILE = DATA_DIR / "test-pki.toml"

# Per scheme: RID, CA index (E1: no clash with the public test indexes), key sizes in bits.
SCHEMES: dict[str, dict[str, object]] = {
    "visa": {"rid": "A000000003", "index": "E1", "issuer_id": "476173"},
    "mastercard": {"rid": "A000000004", "index": "E1", "issuer_id": "541333"},
    "rupay": {"rid": "A000000524", "index": "E1", "issuer_id": "608326"},
}
CA_BITS, ISSUER_BITS, ICC_BITS = 1408, 1152, 1024
CA_EXPIRY = "301231"  # YYMMDD, as capk.txt writes it
ISSUER_CERT_EXPIRY = "1230"  # MMYY, as the certificate carries it


@dataclass(frozen=True)
class RsaKey:
    """An RSA private key in the numbers raw EMV signing needs."""

    n: int
    e: int
    d: int
    p: int
    q: int

    @classmethod
    def from_pem(cls, pem: str) -> RsaKey:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        nums = key.private_numbers()
        return cls(nums.public_numbers.n, nums.public_numbers.e, nums.d, nums.p, nums.q)

    @property
    def size(self) -> int:
        """Modulus length in bytes (N_CA, N_I, N_IC in EMV Book 2)."""
        return (self.n.bit_length() + 7) // 8

    @property
    def modulus(self) -> bytes:
        return self.n.to_bytes(self.size, "big")

    @property
    def exponent(self) -> bytes:
        return self.e.to_bytes(max(1, (self.e.bit_length() + 7) // 8), "big")

    def sign_raw(self, block: bytes) -> bytes:
        """block^d mod n (with CRT), as long as the modulus. `block` must be shorter than n."""
        m = int.from_bytes(block, "big")
        if m >= self.n:
            raise ValueError("block does not fit under the modulus")
        mp = pow(m, self.d % (self.p - 1), self.p)
        mq = pow(m, self.d % (self.q - 1), self.q)
        h = (pow(self.q, -1, self.p) * (mp - mq)) % self.p
        return (mq + h * self.q).to_bytes(self.size, "big")


def digits_padded(digits: str, nbytes: int) -> bytes:
    """Numeric digits left-justified and padded with F (PAN, issuer identifier)."""
    text = digits + "F" * (2 * nbytes - len(digits))
    return bytes.fromhex(text)


def issuer_certificate(
    ca: RsaKey, issuer: RsaKey, issuer_id: str, expiry_mmyy: str, serial: bytes
) -> tuple[bytes, bytes]:
    """Issuer public key certificate (tag 90) and remainder (tag 92), signed by `ca`."""
    room = ca.size - 36
    leftmost, remainder = issuer.modulus[:room], issuer.modulus[room:]
    leftmost = leftmost + b"\xbb" * (room - len(leftmost))
    body = (
        b"\x02"
        + digits_padded(issuer_id, 4)
        + bytes.fromhex(expiry_mmyy)
        + serial
        + b"\x01\x01"
        + bytes([issuer.size, len(issuer.exponent)])
        + leftmost
    )
    digest = hashlib.sha1(body + remainder + issuer.exponent).digest()
    return ca.sign_raw(b"\x6a" + body + digest + b"\xbc"), remainder


def icc_certificate(
    issuer: RsaKey, icc: RsaKey, pan: str, expiry_mmyy: str, serial: bytes, static_data: bytes
) -> tuple[bytes, bytes]:
    """ICC public key certificate (tag 9F46) and remainder (9F48), over the static data."""
    room = issuer.size - 42
    leftmost, remainder = icc.modulus[:room], icc.modulus[room:]
    leftmost = leftmost + b"\xbb" * (room - len(leftmost))
    body = (
        b"\x04"
        + digits_padded(pan, 10)
        + bytes.fromhex(expiry_mmyy)
        + serial
        + b"\x01\x01"
        + bytes([icc.size, len(icc.exponent)])
        + leftmost
    )
    digest = hashlib.sha1(body + remainder + icc.exponent + static_data).digest()
    return issuer.sign_raw(b"\x6a" + body + digest + b"\xbc"), remainder


def signed_dynamic_data(icc: RsaKey, icc_dynamic_data: bytes, hashed_after: bytes) -> bytes:
    """Signed Dynamic Application Data (tag 9F4B), format 05.

    `hashed_after` is what the hash covers after the signed block: the DDOL data for DDA/fDDA
    (9F37 || 9F02 || 5F2A || 9F69 for Visa fDDA), the unpredictable number for CDA.
    """
    pad = icc.size - len(icc_dynamic_data) - 25
    if pad < 0:
        raise ValueError("ICC dynamic data too long for the ICC key")
    body = b"\x05\x01" + bytes([len(icc_dynamic_data)]) + icc_dynamic_data + b"\xbb" * pad
    digest = hashlib.sha1(body + hashed_after).digest()
    return icc.sign_raw(b"\x6a" + body + digest + b"\xbc")


@dataclass(frozen=True)
class SchemePki:
    """The keys of one scheme, as loaded from the generated data file."""

    scheme: str
    rid: str
    ca_index: str
    ca_expiry: str
    ca: RsaKey
    issuer: RsaKey
    issuer_id: str
    issuer_cert_expiry: str
    icc: RsaKey


@lru_cache(maxsize=4)
def load_pki(path: Path = PKI_FILE) -> dict[str, SchemePki]:
    """The test PKI per scheme; cached (loading PEM keys costs a few milliseconds)."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    out: dict[str, SchemePki] = {}
    for scheme, entry in data["scheme"].items():
        out[scheme] = SchemePki(
            scheme=scheme,
            rid=entry["rid"],
            ca_index=entry["ca_index"],
            ca_expiry=entry["ca_expiry"],
            ca=RsaKey.from_pem(entry["ca_private_key"]),
            issuer=RsaKey.from_pem(entry["issuer_private_key"]),
            issuer_id=entry["issuer_id"],
            issuer_cert_expiry=entry["issuer_cert_expiry"],
            icc=RsaKey.from_pem(entry["icc_private_key"]),
        )
    return out


@lru_cache(maxsize=8)
def issuer_certificate_for(scheme: str, path: Path = PKI_FILE) -> tuple[bytes, bytes]:
    """The (cached) issuer certificate and remainder of a scheme's test issuer."""
    pki = load_pki(path)[scheme]
    return issuer_certificate(
        pki.ca, pki.issuer, pki.issuer_id, pki.issuer_cert_expiry, b"\x00\x00\x01"
    )


def capk_line(pki: SchemePki) -> str:
    """One capk.txt line: RID INDEX EXPIRY rsa EXP MODULUS sha1 CHECKSUM  # comment."""
    rid, index = bytes.fromhex(pki.rid), bytes.fromhex(pki.ca_index)
    checksum = hashlib.sha1(rid + index + pki.ca.modulus + pki.ca.exponent).hexdigest().upper()
    return (
        f"{pki.rid} {pki.ca_index} {pki.ca_expiry} rsa {pki.ca.exponent.hex().upper()} "
        f"{pki.ca.modulus.hex().upper()} sha1 {checksum}"
        f"  # pitap TEST CA ({pki.scheme}), {pki.ca.n.bit_length()} bits"
    )


def capk_text(pki: dict[str, SchemePki]) -> str:
    lines = [
        "# pitap TEST CA public keys of the simulated wallets (simulators/). NOT for production.",
        "# Generated by `python -m simulators.wallet.pki generate`; the private halves are in",
        "# simulators/data/test-pki.toml. Format: RID INDEX EXPIRY(YYMMDD) rsa EXPONENT MODULUS",
        "# sha1 CHECKSUM, CHECKSUM = SHA-1(RID || INDEX || MODULUS || EXPONENT).",
    ]
    lines += [capk_line(pki[s]) for s in sorted(pki)]
    return "\n".join(lines) + "\n"


def _new_key_pem(bits: int) -> str:
    key = rsa.generate_private_key(public_exponent=3, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def generate(pki_file: Path, capk_file: Path) -> None:
    """Fresh TEST keys for every scheme; rewrites both files."""
    out = [
        "# pitap simulated wallets: TEST PKI (CA, issuer and ICC private keys). TEST ONLY.",
        "# Generated by `python -m simulators.wallet.pki generate`. Never for real cards.",
        "",
    ]
    for scheme, info in SCHEMES.items():
        out += [
            f"[scheme.{scheme}]",
            f'rid = "{info["rid"]}"',
            f'ca_index = "{info["index"]}"',
            f'ca_expiry = "{CA_EXPIRY}"',
            f'issuer_id = "{info["issuer_id"]}"',
            f'issuer_cert_expiry = "{ISSUER_CERT_EXPIRY}"',
        ]
        for name, bits in (("ca", CA_BITS), ("issuer", ISSUER_BITS), ("icc", ICC_BITS)):
            out.append(f'{name}_private_key = """\n{_new_key_pem(bits)}"""')
        out.append("")
    pki_file.parent.mkdir(parents=True, exist_ok=True)
    pki_file.write_text("\n".join(out), encoding="ascii")
    load_pki.cache_clear()
    issuer_certificate_for.cache_clear()
    capk_file.parent.mkdir(parents=True, exist_ok=True)
    capk_file.write_text(capk_text(load_pki(pki_file)), encoding="ascii")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.wallet.pki", description="The simulated wallets' TEST PKI."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    gen = sub.add_parser("generate", help="make fresh TEST keys and write the CA public keys")
    gen.add_argument("--pki", type=Path, default=PKI_FILE)
    gen.add_argument("--capk", type=Path, default=Path("config/capk/test.txt"))
    show = sub.add_parser("capk", help="print the capk.txt lines of the current test CA keys")
    show.add_argument("--pki", type=Path, default=PKI_FILE)
    args = parser.parse_args(argv)
    if args.action == "generate":
        generate(args.pki, args.capk)
        print(f"wrote {args.pki} and {args.capk}")
    else:
        sys.stdout.write(capk_text(load_pki(args.pki)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
