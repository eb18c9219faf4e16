"""The ISO 8583 acquirer: the `Acquirer` contract over a dialect and a TCP/TLS link.

One request in flight at a time per terminal (a lock), each reply matched to its request by MTI,
STAN and terminal id. Outcomes: HostUnavailable when the request certainly did not leave
(refused, unreachable, TLS failure), NoReply when it may have arrived but no usable answer came
(timeout, reset, garbage, a reply that is not ours) - the caller then queues a reversal. After a
NoReply the connection is dropped, so a late answer can never be taken for the next one.
Card data is never logged; the PAN appears masked at most.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable

from firmware.config import Config, ConfigError, read_data_file
from firmware.emv.outcome import mask_pan
from firmware.host import messages
from firmware.host.acquirer import (
    AuthRequest,
    AuthResponse,
    HostUnavailable,
    NoReply,
    ReversalReason,
    ReversalRefused,
    SettlementResult,
)
from firmware.host.dialect import Dialect, MessageError, load_dialect
from firmware.host.link import FrameError, FrameTimeout, HostLink, client_tls_context
from firmware.host.response_codes import ResponseCode
from firmware.money import BatchTotals
from firmware.payment import TxnType

log = logging.getLogger(__name__)


def _time_seeded_stans() -> Callable[[], int]:
    """STANs for a terminal without a journal: a counter that does not restart at 1."""
    counter = itertools.count(int(time.time()) % 900000 + 1)
    lock = threading.Lock()

    def next_stan() -> int:
        with lock:
            return (next(counter) - 1) % 999999 + 1

    return next_stan


class Iso8583Acquirer:
    """`Acquirer` over ISO 8583 (found as `iso8583` in the `pitap.acquirers` entry points)."""

    def __init__(self, cfg: Config, stan_source: Callable[[], int] | None = None,
                 dialect: Dialect | None = None) -> None:
        h = cfg.host
        self.cfg = cfg
        self.dialect = dialect or load_dialect(h.dialect, cfg.source.parent)
        self.terminal_id = cfg.terminal.terminal_id
        self.merchant_id = cfg.terminal.merchant_id
        self.sale_mti = self.dialect.sale_message
        self.response_timeout = h.response_timeout_s
        self.persistent = h.persistent_connection
        self.next_stan = stan_source or _time_seeded_stans()
        tls = None
        if h.tls:
            if not h.ca_file:
                raise ConfigError(f"{cfg.source}: host.ca_file is required when host.tls = true")
            ca = cfg.data_path(h.ca_file)
            cert = cfg.data_path(h.client_cert) if h.client_cert else None
            key = cfg.data_path(h.client_key) if h.client_key else None
            for name, path in (("ca_file", ca), ("client_cert", cert), ("client_key", key)):
                if path is not None:  # a regular file of at most 1 MiB, before OpenSSL reads it
                    read_data_file(path, f"host.{name} (of {cfg.source})")
            try:
                tls = client_tls_context(ca, cert, key)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{cfg.source}: host TLS files unusable: {exc}") from None
        decoder = self.dialect.decode

        def complete(data: bytes) -> bool:
            try:
                decoder(data)
            except MessageError:
                return False
            return True

        self.link = HostLink(
            h.host, h.port, self.dialect.length_header, self.dialect.max_message,
            h.connect_timeout_s, tls=tls, server_name=h.server_name, complete=complete,
        )
        self._lock = threading.Lock()

    # ---- one exchange -------------------------------------------------------------------
    def _exchange(self, doc: dict[str, str]) -> dict[str, str]:
        expect = messages.Expectation(messages.reply_mti(doc["t"]), doc["11"], doc["41"])
        try:
            payload = self.dialect.encode(doc)
        except MessageError as exc:
            raise HostUnavailable(f"request not sent: {exc}") from None
        # Another thread's exchange (at worst a connect and a full response timeout) may be in
        # flight; waiting longer than that would be a hang, and nothing has been sent yet.
        busy_limit = self.cfg.host.connect_timeout_s + self.response_timeout
        if not self._lock.acquire(timeout=busy_limit):
            raise HostUnavailable("request not sent: the acquirer link stayed busy")
        try:
            deadline = time.monotonic() + self.response_timeout
            self.link.send(payload)
            try:
                raw = self.link.receive(deadline)
            except FrameTimeout:
                self.link.close()
                raise NoReply(f"no reply within {self.response_timeout:g} s") from None
            except FrameError as exc:
                self.link.close()
                raise NoReply(f"no usable reply: {exc}") from None
            try:
                reply = messages.parse_reply(raw, self.dialect, expect)
            except (MessageError, messages.ReplyMismatch) as exc:
                self.link.close()
                raise NoReply(f"no usable reply: {exc}") from None
            if not self.persistent:
                self.link.close()
        finally:
            self._lock.release()
        log.info("%s stan %s -> %s %s", doc["t"], doc["11"], reply["t"], reply.get("39"))
        return reply

    # ---- the Acquirer contract ----------------------------------------------------------
    def authorize(self, request: AuthRequest) -> AuthResponse:
        log.info("authorize %s %s stan %06d card %s", request.txn_type, request.amount,
                 request.stan, mask_pan(request.pan))
        if request.txn_type in (TxnType.PREAUTH, TxnType.INCREMENT):
            doc = messages.preauthorization(request, self.dialect)
        else:
            doc = messages.authorization(request, self.sale_mti, self.dialect)
        reply = self._exchange(doc)
        response = messages.auth_response(reply, self.dialect, request.amount)
        if response.approved and response.approved_amount is None and (
                response.response_code == ResponseCode.PARTIAL_APPROVAL):
            # approved for an amount we cannot know: reversed, as when no answer came
            raise NoReply(f"no usable reply: partial approval for {reply.get('4')!r}, "
                          f"asked for {request.amount}")
        return response

    def reverse(self, original: AuthRequest, reason: str, repeat: bool = False) -> bool:
        """0400 (0401 when `repeat`); True once the host answered 0410 (any response code).
        A void (ReversalReason.VOID) carries the dialect's void_reason in field 25 and, for an
        offline approval the host was advised of, 0220 as the original MTI in field 90.
        A void answered 12 (the host settled the original) raises ReversalRefused."""
        log.info("reverse stan %06d (%s)%s", original.stan, reason, " repeat" if repeat else "")
        void = reason == ReversalReason.VOID
        advised = original.offline_approved or original.txn_type is TxnType.COMPLETION
        original_mti = ("0220" if advised
                        else messages.PREAUTH_MTI if original.txn_type.holds_funds
                        else self.sale_mti)
        doc = messages.reversal(original, self.dialect, original_mti, repeat=repeat,
                                reason_code=self.dialect.void_reason if void else "00")
        reply = self._exchange(doc)
        if void and reply["39"] == ResponseCode.INVALID_TRANSACTION:
            raise ReversalRefused(f"the host had settled it already ({reply['39']})")
        return reply["39"] in ("00", "12", "21", "25", "94")  # done, or nothing to undo

    def advise(self, request: AuthRequest, repeat: bool = False) -> bool:
        """0220 (0221 when `repeat`); True once the host acknowledged it."""
        doc = messages.advice(request, self.dialect, repeat=repeat)
        reply = self._exchange(doc)
        return reply["39"] in ("00", "94")

    def adjust_tip(self, original: AuthRequest, tip: int, stan: int,
                   repeat: bool = False) -> AuthResponse:
        """A tip adjustment (messages.tip_adjustment: 0220 by default, 0221 when `repeat`);
        approved once the host answered 00."""
        log.info("tip adjustment stan %06d of stan %06d: tip %d%s", stan, original.stan, tip,
                 " repeat" if repeat else "")
        original_mti = "0220" if original.offline_approved else self.sale_mti
        doc = messages.tip_adjustment(original, tip, stan, self.dialect, original_mti,
                                      repeat=repeat)
        reply = self._exchange(doc)
        code = reply["39"]
        return AuthResponse(code in ("00", "94"), code, messages.response_message(code))

    def settle(self, totals: BatchTotals, batch: list[AuthRequest]) -> SettlementResult:
        """0500 with our totals; on 95 upload the batch (0320 each) and close it (0500 again)."""
        doc = messages.settlement(totals, self.next_stan(), self.terminal_id, self.merchant_id,
                                  self.dialect)
        reply = self._exchange(doc)
        host_totals = self._host_totals(reply, totals)
        code = reply["39"]
        if code == "00":
            return SettlementResult(True, code, "Totals agreed, batch closed", host_totals)
        if code != "95":
            return SettlementResult(False, code, messages.response_message(code), host_totals)
        for item in batch:
            up = messages.batch_upload(item, self.next_stan(), totals.batch, self.dialect,
                                       self.sale_mti)
            ack = self._exchange(up)
            if ack["39"] != "00":
                return SettlementResult(False, ack["39"], "Batch upload refused", host_totals,
                                        {"first_response": code})
        trailer = messages.settlement(totals, self.next_stan(), self.terminal_id,
                                      self.merchant_id, self.dialect, after_upload=True)
        final = self._exchange(trailer)
        agreed = final["39"] == "00"
        message = ("Totals disagreed; batch uploaded and closed" if agreed
                   else messages.response_message(final["39"]))
        return SettlementResult(agreed, final["39"], message, host_totals,
                                {"first_response": code, "uploaded": str(len(batch))})

    @staticmethod
    def _host_totals(reply: dict[str, str], ours: BatchTotals) -> BatchTotals | None:
        try:
            return messages.parse_totals(reply.get("63", ""), ours.currency, ours.batch)
        except ValueError:
            return None

    def echo(self) -> bool:
        doc = messages.network(messages.NETWORK_ECHO, self.next_stan(), self.terminal_id,
                               self.merchant_id, self.dialect)
        return self._exchange(doc)["39"] == "00"

    def sign_on(self) -> bool:
        doc = messages.network(messages.NETWORK_SIGN_ON, self.next_stan(), self.terminal_id,
                               self.merchant_id, self.dialect)
        return self._exchange(doc)["39"] == "00"

    def companion(self) -> Iso8583Acquirer:
        """The same acquirer on a connection of its own (store-and-forward uses one), so that a
        queued reversal waiting for its answer never holds up a customer's authorization."""
        return Iso8583Acquirer(self.cfg, stan_source=self.next_stan, dialect=self.dialect)

    def close(self) -> None:
        with self._lock:
            self.link.close()
