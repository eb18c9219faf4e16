"""The throw-away TLS PKI (`pitap host --tls`, the tests) passes strict X.509 verification, the
default of Python 3.13 (ssl.VERIFY_X509_STRICT, set here explicitly so that 3.11 checks the
same), both ways: the terminal verifying the host, the host verifying the terminal's client
certificate. And a state directory's PKI is replaced once it is about to expire."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

from simulators.host.testpki import make_test_pki


def test_strict_verification_accepts_the_test_pki_both_ways(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path)
    server = pki.server_context(require_client_cert=True)
    server.verify_flags |= ssl.VERIFY_X509_STRICT
    client = ssl.create_default_context(cafile=str(pki.ca_cert))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    client.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    for name in ("localhost", "127.0.0.1"):
        a, b = socket.socketpair()
        seen: dict[str, object] = {}

        def serve(sock: socket.socket = b, seen: dict[str, object] = seen) -> None:
            try:
                with server.wrap_socket(sock, server_side=True) as tls:
                    seen["client"] = tls.getpeercert()
            except (ssl.SSLError, OSError) as exc:
                seen["error"] = exc

        thread = threading.Thread(target=serve)
        thread.start()
        with a, client.wrap_socket(a, server_hostname=name) as tls:
            host_cert = tls.getpeercert()
        thread.join(timeout=30)
        assert "error" not in seen, seen
        assert dict(x[0] for x in host_cert["subject"])["commonName"] == "localhost"
        assert dict(x[0] for x in seen["client"]["subject"])["commonName"] == "pitap test terminal"


def test_the_pki_is_reused_while_valid_and_replaced_before_it_expires(tmp_path: Path) -> None:
    expiring = make_test_pki(tmp_path, days=0).ca_cert.read_bytes()
    fresh = make_test_pki(tmp_path).ca_cert.read_bytes()
    assert fresh != expiring
    assert make_test_pki(tmp_path).ca_cert.read_bytes() == fresh
