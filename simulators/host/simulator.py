"""The host simulator: a real ISO 8583 acquirer on 127.0.0.1 (TCP or TLS) to develop against.

Many terminals at once (a thread per connection). It regenerates each ARQC from the field 55
data with the test issuer keys, answers with an ARPC in field 55 tag 91, declines replays and
wrong cryptograms, books everything in a ledger and reconciles settlement against it.

Test amounts, by the amount's last two digits (minor units), on 0100/0200 requests:
  51 insufficient funds, 05 do not honour, 91 issuer unavailable, 65 / 70 / 71 the SCA soft
  declines 65, 70 and 1A (all with a correct ARQC), 10 a sale approved for half its amount
  (code 10, the amount approved in field 4),
  96 never answers, 97 drops the connection, 98 answers garbage. For 96/97/98 the simulator
  books the approval first, as a real host whose answer got lost would: only the terminal's
  reversal keeps the totals right. Anything else approves when the cryptogram is right (an ARQC,
  or the TC/AAC a phone sends online, e.g. after a failed fDDA) and the TVR (95) does not say
  offline data authentication failed.

A tip (field 54, amount type the dialect's `tip_amount_type`) is booked with its sale (part of
field 4). A tip adjustment (the dialect's `adjust_message`, 0220, with its
`adjust_processing_code`, 020000) amends the approval field 90 names (original STAN): its tip
becomes field 54's and its amount field 4 (absolute: a repeat changes nothing); answered 00, or
25 when there is no such open approval.

A deferred authorization (field 25 = the dialect's deferred condition: a payment the terminal
stored while this host was unreachable) sent again is answered as the first time and booked once
(duplicate detection by terminal, STAN, MTI and amount, as acquirers do).

Pre-authorizations (field 25 = the dialect's preauth_condition): an 0100 with card data is a hold
(booked, in no total; test amounts as for a sale, never halved); an 0100 naming a hold in field
90 (its STAN) is an increment (raises it; 25 "unable to locate" when the hold is not standing;
…51 declines, …96-98 misbehave as above); an 0220 naming one is its completion (booked as a sale
of the amount captured; a repeat is acknowledged and booked once); an 0400 of a hold releases it
with its increments. Holds are never closed into a batch: they outlive settlement.

A reversal (or void) of an approval this host has already settled (its batch closed) is refused
with 12 (invalid transaction): the charge stands, the terminal must refund it instead. One of
nothing booked (or already reversed) is answered 00: nothing to undo.

`go_down()` / `come_up()` make it unreachable (it stops listening and drops every connection:
a terminal's connect is refused) and reachable again on the same port; `pitap host` does the
same on SIGUSR1 / SIGUSR2.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import secrets
import socket
import socketserver
import ssl
import threading
import time
from pathlib import Path

from firmware.config import shipped_config_dir
from firmware.emv.outcome import mask_pan
from firmware.host import messages
from firmware.host.dialect import Dialect, MessageError, load_dialect
from firmware.host.link import FrameError, FrameReader, FrameTimeout, frame
from simulators.host.issuer import Issuer, parse_icc
from simulators.host.ledger import Ledger, Totals
from simulators.keys import TEST_ISSUERS_FILE

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 300.0
# SCA soft declines: Mastercard's 65, Visa's 70 and 1A (the card wants its PIN)
TEST_AMOUNT_CODES = {51: "51", 5: "05", 91: "91", 65: "65", 70: "70", 71: "1A"}
NEVER_ANSWERS, DROPS_CONNECTION, ANSWERS_GARBAGE = 96, 97, 98
PARTIAL = 10  # a sale approved for half its amount (rounded down), response code 10
# TVR byte 1: SDA failed (0x40), DDA/fDDA failed (0x08), CDA failed (0x04). The card signed the
# TVR, so an issuer can trust it says the terminal could not authenticate the card: decline.
TVR_ODA_FAILED = 0x40 | 0x08 | 0x04


class _Drop(Exception):
    """Close this connection now (test amount 97)."""


class HostSimulator:
    """`HostSimulator(port=0, keys_file=..., ledger_file=...).start()`; `.port`; `.stop()`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        keys_file: Path | str | None = None,
        ledger_file: Path | str | None = None,
        tls: ssl.SSLContext | None = None,
        dialect: str | Dialect = "pitap-default",
        config_dir: Path | None = None,
    ) -> None:
        cdir = config_dir or shipped_config_dir()
        self.dialect = dialect if isinstance(dialect, Dialect) else load_dialect(dialect, cdir)
        self.issuer = Issuer.from_file(Path(keys_file) if keys_file else TEST_ISSUERS_FILE)
        self.ledger = Ledger(ledger_file or ":memory:")
        self.tls = tls
        self._rrn = itertools.count(1)
        self._rrn_lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        self._conns_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        sim = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sim._serve_connection(self.request, self.client_address)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

        self._server_class = Server
        self._handler_class = Handler
        self._server = Server((host, port), Handler)
        self.host = host
        self._port = self.port
        self._down = False
        self._switch = threading.Lock()

    # ---- lifecycle ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def down(self) -> bool:
        return self._down

    def go_down(self) -> None:
        """Become unreachable: stop listening (connects are refused), drop every connection."""
        with self._switch:
            if self._down:
                return
            self._server.shutdown()
            self._server.server_close()
            self._drop_connections()
            if self._thread:
                self._thread.join(timeout=5)
            self._down = True
        log.info("host simulator down (port %d refuses connections)", self._port)

    def come_up(self) -> None:
        """Listen again on the same port (after `go_down`)."""
        with self._switch:
            if not self._down:
                return
            self._server = self._server_class((self.host, self._port), self._handler_class)
            self._down = False
            self.start()

    def _drop_connections(self) -> list[threading.Thread]:
        with self._conns_lock:
            for conn in list(self._conns):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            return list(self._handlers)

    def start(self) -> HostSimulator:
        self._thread = threading.Thread(target=self._server.serve_forever, name="host-simulator",
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        log.info("host simulator on %s:%d%s", self.host, self.port, " (TLS)" if self.tls else "")
        return self

    def stop(self) -> None:
        if self._thread and not self._down:
            self._server.shutdown()
        self._server.server_close()
        handlers = self._drop_connections()
        if self._thread:
            self._thread.join(timeout=5)
        for t in handlers:  # let a request being booked finish before the ledger closes
            t.join(timeout=2)
        self.ledger.close()

    def __enter__(self) -> HostSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- one connection -----------------------------------------------------------------
    def _serve_connection(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                sock.settimeout(10)
                sock = self.tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.info("TLS handshake with %s failed: %s", peer, exc)
                sock.close()
                return
        with self._conns_lock:
            self._conns.add(sock)
            self._handlers.add(threading.current_thread())

        def complete(data: bytes) -> bool:
            try:
                self.dialect.decode(data)
            except MessageError:
                return False
            return True

        reader = FrameReader(sock, self.dialect.length_header, self.dialect.max_message, complete)
        try:
            while True:
                try:
                    raw = reader.read(_deadline(IDLE_TIMEOUT_S))
                except FrameTimeout:
                    return
                except FrameError as exc:
                    log.debug("connection from %s ends: %s", peer, exc)
                    return
                try:
                    reply = self.handle_message(raw)
                except _Drop:
                    log.info("test amount: dropping the connection")
                    return
                if reply is not None:
                    try:
                        sock.sendall(frame(reply, self.dialect.length_header))
                    except OSError:
                        return
        finally:
            with self._conns_lock:
                self._conns.discard(sock)
                self._handlers.discard(threading.current_thread())
            with contextlib.suppress(OSError):
                sock.close()

    def handle_message(self, raw: bytes) -> bytes | None:
        """One request -> the reply bytes (None: no answer). Raises _Drop to hang up."""
        try:
            doc = self.dialect.decode(raw)
        except MessageError as exc:
            log.info("undecodable request: %s", exc)
            return None
        mti = doc.get("t", "")
        handler = {
            "0100": self._authorization, "0200": self._tip_or_authorization,
            "0220": self._advice, "0221": self._advice,
            "0400": self._reversal, "0401": self._reversal,
            "0500": self._settlement, "0320": self._batch_upload,
            "0800": self._network,
        }.get(mti)
        if handler is None:
            return self._safe_reply(doc, "12")
        try:
            return handler(doc)
        except _Drop:
            raise
        except (KeyError, ValueError) as exc:
            log.info("%s request malformed: %s", mti, exc)
            return self._safe_reply(doc, "30")
        except Exception:  # a simulator bug must not kill the connection thread silently
            log.exception("%s request: simulator error", mti)
            return self._safe_reply(doc, "96")

    def _tip_or_authorization(self, req: dict[str, str]) -> bytes | None:
        """0200: a tip adjustment where the dialect sends them so, else a financial request."""
        if req.get("3") == self.dialect.adjust_processing_code:
            return self._tip_adjustment(req)
        return self._authorization(req)

    def _safe_reply(self, req: dict[str, str], code: str) -> bytes | None:
        try:
            return self._reply(req, code)
        except (KeyError, ValueError) as exc:
            log.info("cannot even answer %s: %s", req.get("t"), exc)
            return None

    # ---- replies ------------------------------------------------------------------------
    def _reply(self, req: dict[str, str], code: str, **fields: str) -> bytes:
        doc = {"t": messages.reply_mti(req["t"]), "39": code}
        for f in ("3", "4", "7", "11", "12", "13", "24", "37", "41", "42", "49"):
            if f in req:
                doc[f] = req[f]
        doc.update(fields)
        return self.dialect.encode(doc)

    def _new_rrn(self) -> str:
        with self._rrn_lock:
            n = next(self._rrn)
        now = dt.datetime.now(dt.UTC)
        return f"{now.strftime('%y%j%H')}{n % 100000:05d}"[:12].rjust(12, "0")

    # ---- message kinds ------------------------------------------------------------------
    def _preauth(self, req: dict[str, str]) -> bool:
        """A pre-authorization's message: field 25 the dialect's preauth_condition, on 0100
        (hold, increment) or 0220/0221 (completion)."""
        return req.get("25") == self.dialect.preauth_condition and req["t"] in (
            "0100", "0220", "0221")

    def _original_stan(self, req: dict[str, str]) -> str:
        """The hold's STAN from field 90 (original MTI, STAN, ...)."""
        info = req.get("90", "")
        if len(info) < 10 or not info[4:10].isdigit():
            raise ValueError(f"field 90 does not name the original: {info!r}")
        return info[4:10]

    def _increment(self, req: dict[str, str]) -> bytes | None:
        tid = req["41"].strip()
        amount, test = int(req["4"]), int(req["4"]) % 100
        original = self._original_stan(req)
        hold = self.ledger.hold(tid, original)
        code, reason = "00", f"increment of hold stan {original}"
        if hold is None:
            code, reason = "25", f"no standing hold with stan {original}"
        elif test in TEST_AMOUNT_CODES:
            code, reason = TEST_AMOUNT_CODES[test], f"test amount ...{test:02d}"
        approved = code == "00"
        auth_code = f"{secrets.randbelow(1_000_000):06d}" if approved else ""
        misbehave = test in (NEVER_ANSWERS, DROPS_CONNECTION, ANSWERS_GARBAGE)
        rrn = str(hold["rrn"]) if hold is not None else self._new_rrn()
        self.ledger.book(
            terminal_id=tid, stan=req["11"], mti=req["t"], kind="increment", amount=amount,
            currency=int(req.get("49", "0") or 0), response_code=code, approved=approved,
            answered=not (approved and misbehave), auth_code=auth_code, rrn=rrn,
            masked_pan=str(hold["masked_pan"]) if hold else "", reason=reason,
            original_stan=original)
        log.info("%s increment %s stan %s of hold %s -> %s", req["t"], amount, req["11"],
                 original, code)
        if approved and test == NEVER_ANSWERS:
            return None
        if approved and test == DROPS_CONNECTION:
            raise _Drop()
        if approved and test == ANSWERS_GARBAGE:
            return secrets.token_bytes(24)
        return self._reply(req, code, **{"37": rrn, **({"38": auth_code} if auth_code else {})})

    def _completion(self, req: dict[str, str]) -> bytes:
        tid = req["41"].strip()
        original = self._original_stan(req)
        if self.ledger.has_completion(tid, req["11"]):
            return self._reply(req, "00")  # a repeat (0221): booked once
        hold = self.ledger.hold(tid, original)
        if hold is None:
            log.info("%s completion stan %s: no standing hold %s", req["t"], req["11"], original)
            return self._reply(req, "25")
        amount = int(req["4"])
        self.ledger.book(
            terminal_id=tid, stan=req["11"], mti=req["t"], kind="sale", amount=amount,
            currency=int(req.get("49", "0") or 0), response_code="00", approved=True,
            auth_code=str(hold["auth_code"]), rrn=str(hold["rrn"]),
            masked_pan=str(hold["masked_pan"]),
            reason=f"completion of hold stan {original} ({hold['held']} held)",
            original_stan=original)
        log.info("%s completion %s of hold %s (%s held)", req["t"], amount, original,
                 hold["held"])
        return self._reply(req, "00")

    def _authorization(self, req: dict[str, str]) -> bytes | None:
        tid = req["41"].strip()
        amount = int(req["4"])
        kind = "refund" if req.get("3", "000000").startswith("20") else "sale"
        if self._preauth(req):
            if "90" in req:
                return self._increment(req)
            kind = "preauth"
        pan = req.get("2", "")
        psn = int(req["23"]) if req.get("23", "").isdigit() else None
        currency = int(req.get("49", "0") or 0)
        test = amount % 100
        deferred = kind != "preauth" and req.get("25") == self.dialect.deferred_condition
        if deferred and (first := self.ledger.answer_of(tid, req["11"], req["t"], amount)):
            code, auth, rrn = first  # a repeat: the first answer, booked once
            log.info("%s deferred stan %s sent again: first answer %s", req["t"], req["11"], code)
            return self._reply(req, code, **{"37": rrn, **({"38": auth} if auth else {})})
        code, reason, arpc = "00", "", b""
        icc_hex = req.get("55", "")
        if icc_hex:
            icc = parse_icc(bytes.fromhex(icc_hex))
            check = self.issuer.check_arqc(pan, psn, icc)
            if not check.ok:
                code, reason = "05", check.reason
            elif icc["95"][:1] and icc["95"][0] & TVR_ODA_FAILED:
                code, reason = "05", "offline data authentication failed (TVR)"
            elif self.ledger.seen_cryptogram(pan, check.atc, check.arqc):
                code, reason = "94", "cryptogram replayed (same ATC and ARQC)"
            elif test in TEST_AMOUNT_CODES:
                code, reason = TEST_AMOUNT_CODES[test], f"test amount ...{test:02d}"
            elif test == PARTIAL and kind == "sale":
                code, reason = "10", f"test amount ...{test:02d}: half approved"
                amount = amount // 2
            if check.ok:
                arpc = self.issuer.arpc_tlv(check, pan, psn, code)
        elif kind in ("sale", "preauth"):
            code, reason = "05", f"no chip data (field 55) in a {kind}"
        elif test in TEST_AMOUNT_CODES:
            code, reason = TEST_AMOUNT_CODES[test], f"test amount ...{test:02d}"
        approved = code in ("00", "10")
        tip = self._tip_of(req) if kind == "sale" else 0
        if code == "10":
            tip = min(tip, amount)
        auth_code = f"{secrets.randbelow(1_000_000):06d}" if approved else ""
        rrn = self._new_rrn()
        misbehave = test in (NEVER_ANSWERS, DROPS_CONNECTION, ANSWERS_GARBAGE)
        self.ledger.book(
            terminal_id=tid, stan=req["11"], mti=req["t"], kind=kind, amount=amount,
            currency=currency, response_code=code, approved=approved,
            answered=not (approved and misbehave), auth_code=auth_code, rrn=rrn,
            masked_pan=mask_pan(pan), reason=reason, tip=tip,
        )
        log.info("%s %s %s stan %s card %s -> %s %s", req["t"], kind, amount, req["11"],
                 mask_pan(pan), code, reason)
        if approved and test == NEVER_ANSWERS:
            return None
        if approved and test == DROPS_CONNECTION:
            raise _Drop()
        if approved and test == ANSWERS_GARBAGE:
            return secrets.token_bytes(24)
        fields = {"37": rrn}
        if code == "10":
            fields["4"] = f"{amount:012d}"  # the amount approved
        if auth_code:
            fields["38"] = auth_code
        if arpc:
            fields["55"] = arpc.hex().upper()
        return self._reply(req, code, **fields)

    def _tip_of(self, req: dict[str, str]) -> int:
        """The tip in field 54 (0 when none); ValueError for a malformed field 54."""
        if not req.get("54"):
            return 0
        return max(0, messages.parse_additional_amounts(req["54"]).get(
            self.dialect.tip_amount_type, 0))

    def _tip_adjustment(self, req: dict[str, str]) -> bytes:
        tid = req["41"].strip()
        original = req["90"][4:10]
        tip = self._tip_of(req)
        amount = self.ledger.adjust_tip(tid, original, tip)
        if amount is None:
            log.info("%s tip adjustment of stan %s: no open approval", req["t"], original)
            return self._reply(req, "25")
        if amount != int(req["4"]):
            log.info("%s tip adjustment of stan %s: field 4 %s, booked %d", req["t"], original,
                     req["4"], amount)
        log.info("%s tip adjustment of stan %s: tip %d, amount %d", req["t"], original, tip,
                 amount)
        return self._reply(req, "00")

    def _advice(self, req: dict[str, str]) -> bytes:
        if self._preauth(req) and "90" in req:
            return self._completion(req)
        if req.get("3") == self.dialect.adjust_processing_code:
            return self._tip_adjustment(req)
        tid = req["41"].strip()
        if not self.ledger.has_advice(tid, req["11"]):
            kind = "refund" if req.get("3", "000000").startswith("20") else "sale"
            self.ledger.book(
                terminal_id=tid, stan=req["11"], mti=req["t"], kind=kind, amount=int(req["4"]),
                currency=int(req.get("49", "0") or 0), response_code=req.get("39", "Y1"),
                approved=True, auth_code=req.get("38", "").strip(),
                masked_pan=mask_pan(req.get("2", "")), offline=True, reason="advice",
            )
        return self._reply(req, "00")

    def _reversal(self, req: dict[str, str]) -> bytes:
        tid = req["41"].strip()
        why = "void" if req.get("25") == self.dialect.void_reason else "reversal"
        found = self.ledger.reverse(tid, req["11"], why)
        if not found and self.ledger.settled(tid, req["11"]):
            log.info("%s stan %s (%s): settled already, refused (12)", req["t"], req["11"], why)
            return self._reply(req, "12")  # the charge stands: the terminal refunds instead
        log.info("%s stan %s (%s): %s", req["t"], req["11"], why,
                 "reversed" if found else "nothing to undo")
        return self._reply(req, "00")

    def _settlement(self, req: dict[str, str]) -> bytes:
        tid = req["41"].strip()
        currency = int(req.get("49", "0") or 0)
        batch = int(req.get("60", "0") or 0)
        terminal = _parse_totals_field(req["63"])
        ours = self.ledger.open_totals(tid, currency)
        after_upload = req.get("3") == messages.SETTLEMENT_AFTER_UPLOAD_CODE
        if after_upload:
            uploaded = self.ledger.upload_totals(tid, batch)
            if uploaded != terminal:
                return self._reply(req, "95", **{"60": req.get("60", ""),
                                                 "63": _totals_field(ours)})
            self.ledger.close_batch(tid, batch, terminal, uploaded=True,
                                    host_agreed=ours == terminal, currency=currency)
            return self._reply(req, "00", **{"60": req.get("60", ""), "63": _totals_field(ours)})
        if ours == terminal:
            self.ledger.close_batch(tid, batch, terminal, uploaded=False, host_agreed=True,
                                    currency=currency)
            return self._reply(req, "00", **{"60": req.get("60", ""), "63": _totals_field(ours)})
        log.info("settlement of %s batch %d disagrees: terminal %s, host %s", tid, batch,
                 terminal, ours)
        return self._reply(req, "95", **{"60": req.get("60", ""), "63": _totals_field(ours)})

    def _batch_upload(self, req: dict[str, str]) -> bytes:
        tid = req["41"].strip()
        info = req.get("60", "")
        batch = int(info[10:16]) if len(info) >= 16 and info.isdigit() else 0
        kind = "refund" if req.get("3", "000000").startswith("20") else "sale"
        self.ledger.add_upload(tid, batch, info[4:10] or req["11"], kind, int(req["4"]))
        return self._reply(req, "00")

    def _network(self, req: dict[str, str]) -> bytes:
        return self._reply(req, "00", **({"70": req["70"]} if "70" in req else {}))


def _parse_totals_field(text: str) -> Totals:
    """Field 63 of a 0500: sales count (3) + amount (12), refunds count (3) + amount (12)."""
    if len(text) != 30 or not text.isdigit():
        raise ValueError(f"settlement totals must be 30 digits, got {len(text)} characters")
    return Totals(int(text[0:3]), int(text[3:15]), int(text[15:18]), int(text[18:30]))


def _totals_field(t: Totals) -> str:
    return (f"{t.sales_count:03d}{t.sales_amount:012d}"
            f"{t.refunds_count:03d}{t.refunds_amount:012d}")


def _deadline(seconds: float) -> float:
    return time.monotonic() + seconds
