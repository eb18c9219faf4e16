"""A throw-away TLS PKI for the host simulator and the tests: a test CA, a server certificate for
127.0.0.1 / localhost and a client certificate, generated with `cryptography` when needed.

Never shipped: the keys are made on the machine that runs the simulator and live in its state
directory (or a test's temporary directory). Production terminals pin their acquirer's real CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 30


@dataclass(frozen=True)
class TestPki:
    __test__ = False  # not a pytest class

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.server_cert), str(self.server_key))
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=str(self.ca_cert))
        return ctx


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pitap test PKI"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def issue(subject: str, key: ec.EllipticCurvePrivateKey,
          issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None, *,
          ca: bool = False, server: bool = False, client: bool = False,
          days: int = VALID_DAYS) -> x509.Certificate:
    """A certificate for `key` signed by `issuer` (a CA certificate and its key; None: self-signed).

    Shaped as RFC 5280 and strict verification (OpenSSL's X509_STRICT, Python 3.13's default)
    want them: BasicConstraints critical, KeyUsage critical, Subject and Authority Key
    Identifiers on every certificate, the CA restricted to issuing end-entity certificates."""
    now = dt.datetime.now(dt.UTC)
    if issuer is None:
        issuer_name, issuer_key = _name(subject), key
    else:
        issuer_name, issuer_key = issuer[0].subject, issuer[1]
    usage = dict(digital_signature=True, content_commitment=False, key_encipherment=False,
                 data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                 encipher_only=False, decipher_only=False)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None),
                       critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    )
    purposes = []
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        purposes.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        purposes.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if purposes:
        builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _reusable(pki: TestPki) -> bool:
    """The files are all there, still valid for a day, and made the current way (with AKIs)."""
    try:
        certs = [x509.load_pem_x509_certificate(p.read_bytes())
                 for p in (pki.ca_cert, pki.server_cert, pki.client_cert)]
        if not (pki.server_key.is_file() and pki.client_key.is_file()):
            return False
        for cert in certs:
            cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    return all(cert.not_valid_after_utc > soon for cert in certs)


def make_test_pki(directory: Path, days: int = VALID_DAYS) -> TestPki:
    """Create a test CA, server and client certificate valid for `days`; reuse them while they
    are valid for another day (a state directory outlives 30 days)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pki = TestPki(directory / "test-ca.pem", directory / "server.pem", directory / "server.key",
                  directory / "client.pem", directory / "client.key")
    if _reusable(pki):
        return pki
    ca_key = new_key()
    ca = issue("pitap test acquirer CA", ca_key, ca=True, days=days)
    server_key = new_key()
    server = issue("localhost", server_key, (ca, ca_key), server=True, days=days)
    client_key = new_key()
    client = issue("pitap test terminal", client_key, (ca, ca_key), client=True, days=days)
    pem = serialization.Encoding.PEM
    pki.ca_cert.write_bytes(ca.public_bytes(pem))
    pki.server_cert.write_bytes(server.public_bytes(pem))
    pki.client_cert.write_bytes(client.public_bytes(pem))
    _write_key(server_key, pki.server_key)
    _write_key(client_key, pki.client_key)
    return pki
