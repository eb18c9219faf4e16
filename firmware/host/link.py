"""The wire: message framing (the one place it is done) and the terminal's TCP/TLS connection.

Framing puts the dialect's length header in front of each message and reads whole messages back
with a deadline, refusing lengths that lie or streams that never end. `HostLink` is the
terminal's side: connect (timeout, TLS with the acquirer's CA pinned, optional client
certificate), send, receive, reconnect after a drop. It knows bytes, not ISO 8583 fields; the
server side of the simulator reuses `frame` and `FrameReader`.

TLS 1.3 finishes the client's side of the handshake before the server has checked the client's
certificate: a host that refuses it (none sent, unknown CA, expired...) says so with an alert
that arrives after the terminal has written its first message. That host's TLS layer never
passed the message on, so such an alert, read before anything else on a new connection, is
HostUnavailable ("the request never left"), not a lost reply.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from firmware.errors import PitapError
from firmware.host.acquirer import HostUnavailable

log = logging.getLogger(__name__)

RECV_CHUNK = 4096


class FrameError(PitapError):
    """What came back is not a frame: a lying length header, garbage, an endless stream."""


class FrameTimeout(FrameError):
    """No complete frame before the deadline."""


class LinkClosed(FrameError):
    """The other side closed or reset the connection."""


class TlsFailure(LinkClosed):
    """The TLS session ended in an error, e.g. an alert from the peer; `reason` is OpenSSL's
    name for it ("TLSV13_ALERT_CERTIFICATE_REQUIRED"), "" when it gave none."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


# Alerts a TLS 1.3 server sends when it refuses the client's certificate (or its proof of the
# key) after the client finished the handshake, i.e. before it reads any application data.
CLIENT_REFUSED_ALERTS = frozenset({
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_ACCESS_DENIED",
    "TLSV1_ALERT_DECRYPT_ERROR",
})


def frame(payload: bytes, length_header: str) -> bytes:
    """Put the dialect's length header in front of one message."""
    if length_header == "binary2":
        if len(payload) > 0xFFFF:
            raise ValueError(f"message of {len(payload)} bytes does not fit a 2-byte length")
        return len(payload).to_bytes(2, "big") + payload
    if length_header == "ascii4":
        if len(payload) > 9999:
            raise ValueError(f"message of {len(payload)} bytes does not fit 4 ASCII digits")
        return b"%04d" % len(payload) + payload
    return payload


class FrameReader:
    """Reads whole frames from a socket; keeps bytes that arrived past the end of a frame.

    `complete` (for length_header "none") says whether the bytes so far are one whole message.
    """

    def __init__(
        self,
        sock: socket.socket,
        length_header: str,
        max_message: int,
        complete: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.sock = sock
        self.length_header = length_header
        self.max_message = max_message
        self.complete = complete
        self._buf = bytearray()

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FrameTimeout("no complete message before the deadline")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(RECV_CHUNK)
        except TimeoutError:
            raise FrameTimeout("no complete message before the deadline") from None
        except ssl.SSLError as exc:
            reason = exc.reason or ""
            raise TlsFailure(f"TLS error while reading: {reason or exc}", reason) from None
        except OSError as exc:
            raise LinkClosed(f"connection lost: {exc.strerror or exc}") from None
        if not chunk:
            raise LinkClosed("connection closed by the other side")
        self._buf += chunk

    def _need(self, n: int, deadline: float) -> None:
        while len(self._buf) < n:
            self._fill(deadline)

    def read(self, deadline: float) -> bytes:
        """The next whole message (without its header), or FrameError/FrameTimeout/LinkClosed."""
        if self.length_header == "none":
            return self._read_unframed(deadline)
        width = 2 if self.length_header == "binary2" else 4
        self._need(width, deadline)
        head = bytes(self._buf[:width])
        if width == 2:
            length = int.from_bytes(head, "big")
        else:
            if not head.isdigit():
                raise FrameError(f"length header {head!r} is not 4 ASCII digits")
            length = int(head)
        if length == 0 or length > self.max_message:
            raise FrameError(f"length header says {length} bytes (accepted: 1..{self.max_message})")
        self._need(width + length, deadline)
        payload = bytes(self._buf[width : width + length])
        del self._buf[: width + length]
        return payload

    def _read_unframed(self, deadline: float) -> bytes:
        while True:
            if self._buf and self.complete is not None and self.complete(bytes(self._buf)):
                payload = bytes(self._buf)
                self._buf.clear()
                return payload
            if len(self._buf) > self.max_message:
                raise FrameError(f"more than {self.max_message} bytes without a whole message")
            self._fill(deadline)


def client_tls_context(ca_file: Path, client_cert: Path | None = None,
                       client_key: Path | None = None) -> ssl.SSLContext:
    """TLS 1.2+ trusting only the acquirer's CA (pinned), with an optional client certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=str(ca_file))
    if client_cert:
        ctx.load_cert_chain(str(client_cert), str(client_key) if client_key else None)
    return ctx


class HostLink:
    """One terminal's connection to the acquirer, opened on demand and reopened after a drop."""

    def __init__(
        self,
        host: str,
        port: int,
        length_header: str,
        max_message: int,
        connect_timeout: float,
        tls: ssl.SSLContext | None = None,
        server_name: str = "",
        complete: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.length_header = length_header
        self.max_message = max_message
        self.connect_timeout = connect_timeout
        self.tls = tls
        self.server_name = server_name or host
        self.complete = complete
        self._sock: socket.socket | None = None
        self._reader: FrameReader | None = None
        # A TLS 1.3 connection nothing came back on yet: the host may still refuse our
        # certificate (see the module docstring).
        self._unconfirmed = False

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def _connect(self) -> None:
        where = f"{self.host}:{self.port}"
        deadline = time.monotonic() + self.connect_timeout  # TCP and TLS handshakes together
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except ConnectionRefusedError:
            raise HostUnavailable(f"acquirer {where} refused the connection") from None
        except TimeoutError:
            raise HostUnavailable(f"acquirer {where} did not answer the connection") from None
        except OSError as exc:
            raise HostUnavailable(f"acquirer {where} unreachable: {exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                sock = self.tls.wrap_socket(sock, server_hostname=self.server_name)
            except (ssl.SSLError, ssl.CertificateError) as exc:
                sock.close()
                reason = getattr(exc, "reason", None) or str(exc)
                raise HostUnavailable(f"TLS with acquirer {where} failed: {reason}") from None
            except TimeoutError:
                sock.close()
                raise HostUnavailable(f"TLS handshake with acquirer {where} timed out") from None
            except OSError as exc:
                sock.close()
                raise HostUnavailable(f"TLS with acquirer {where} failed: {exc}") from None
        self._sock = sock
        self._reader = FrameReader(sock, self.length_header, self.max_message, self.complete)
        self._unconfirmed = isinstance(sock, ssl.SSLSocket) and sock.version() == "TLSv1.3"
        log.debug("connected to %s%s", where, " (TLS)" if self.tls else "")

    def _stale(self) -> bool:
        """An idle kept connection the host closed (or sent junk on) is not worth sending on."""
        assert self._sock is not None
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
            return True
        return bool(readable)

    def send(self, payload: bytes) -> None:
        """Send one message. HostUnavailable if it certainly did not leave."""
        data = frame(payload, self.length_header)
        if self._sock is not None and self._stale():
            self.close()
        for attempt in (1, 2):
            fresh = self._sock is None
            if fresh:
                self._connect()
            assert self._sock is not None
            try:
                self._sock.settimeout(self.connect_timeout)
                self._sock.sendall(data)
                return
            except OSError as exc:
                alert = self._alert_received() if self._unconfirmed else ""
                self.close()
                if alert in CLIENT_REFUSED_ALERTS:
                    raise self._refused(alert) from None
                if fresh or attempt == 2:
                    raise HostUnavailable(f"could not send to the acquirer: {exc}") from None

    def receive(self, deadline: float) -> bytes:
        """The next whole message before `deadline` (time.monotonic()); FrameError otherwise."""
        if self._reader is None:
            raise LinkClosed("not connected")
        try:
            payload = self._reader.read(deadline)
        except TlsFailure as exc:
            if self._unconfirmed and exc.reason in CLIENT_REFUSED_ALERTS:
                self.close()
                raise self._refused(exc.reason) from None
            raise
        self._unconfirmed = False
        return payload

    def _refused(self, alert: str) -> HostUnavailable:
        return HostUnavailable(f"acquirer {self.host}:{self.port} refused the TLS session "
                               f"({alert}): nothing was processed")

    def _alert_received(self) -> str:
        """The reason of a TLS alert already waiting on the socket ("" if none): a look that
        does not block, for a connection whose write just failed."""
        if not isinstance(self._sock, ssl.SSLSocket):
            return ""
        try:
            self._sock.setblocking(False)
            self._sock.recv(1)
        except ssl.SSLError as exc:
            return exc.reason or ""
        except OSError:
            pass
        return ""

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._reader = None
        self._unconfirmed = False
