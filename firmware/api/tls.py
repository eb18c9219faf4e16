"""The terminal's own HTTPS key and certificate for the API ([api] tls_dir in the state dir).

Made at the first start on an address other than 127.0.0.1: an EC P-256 key (0600) and a
self-signed certificate naming the terminal id and the address it listens on, valid ten years.
A till pins it by its SHA-256 fingerprint, which `pitap diag` prints (`fingerprint`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from firmware.config import Config
from firmware.private_files import make_private_dir

__all__ = ["certificate_paths", "ensure_certificate", "fingerprint", "server_context"]

VALID_DAYS = 3650


def certificate_paths(cfg: Config) -> tuple[Path, Path]:
    """(key, certificate) files."""
    directory = cfg.state_path(cfg.api.tls_dir)
    return directory / "key.pem", directory / "cert.pem"


def ensure_certificate(cfg: Config) -> Path:
    """The certificate file, made (with its key) when missing; returns its path."""
    key_path, cert_path = certificate_paths(cfg)
    if key_path.is_file() and cert_path.is_file():
        return cert_path
    make_private_dir(key_path.parent)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"pitap {cfg.terminal.terminal_id}")])
    names: list[x509.GeneralName] = [x509.DNSName(socket.gethostname() or "pitap"),
                                     x509.DNSName("localhost"),
                                     x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    bind = ipaddress.ip_address(cfg.api.bind)
    if not bind.is_unspecified and str(bind) != "127.0.0.1":
        names.append(x509.IPAddress(bind))
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem_key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path


def fingerprint(cert_path: Path) -> str:
    """SHA-256 of the certificate (DER), as AA:BB:...: what a till pins."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def server_context(cfg: Config) -> ssl.SSLContext:
    cert_path = ensure_certificate(cfg)
    key_path, _ = certificate_paths(cfg)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    return ctx
