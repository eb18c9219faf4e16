"""Test helpers for the host tests: a temporary issuer keys file, a card that computes real
ARQCs with pyemv (the card side, written here independently of the simulator's issuer code),
AuthRequests, a test PKI for TLS, a TCP server on 127.0.0.1 for hand-made hosts, and the host
simulator holding back a reply until the terminal is killed. Not a test module itself."""

from __future__ import annotations

import datetime as dt
import secrets
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from pyemv import cvn as pyemv_cvn
from pyemv import tlv as pyemv_tlv

from firmware.host.acquirer import AuthRequest
from firmware.host.dialect import Dialect, MessageError
from simulators.host.simulator import HostSimulator

VISA_KEY = "0123456789ABCDEFFEDCBA9876543210"
VISA18_KEY = "00112233445566778899AABBCCDDEEFF"
MC_KEY = "FEDCBA98765432100123456789ABCDEF"

KEYS_TOML = f"""
[[issuer]]
scheme = "visa"
pan_prefixes = ["476173"]
cvn = 10
imk_ac = "{VISA_KEY}"

[[issuer]]
scheme = "visa"
pan_prefixes = ["4761739999"]
cvn = 18
imk_ac = "{VISA18_KEY}"

[[issuer]]
scheme = "mastercard"
pan_prefixes = ["541333"]
cvn = 16
imk_ac = "{MC_KEY}"
"""

VISA_PAN = "4761739001010010"
VISA18_PAN = "4761739999000011"
MC_PAN = "5413330089010434"


def write_keys(directory: Path) -> Path:
    path = directory / "test-issuers.toml"
    path.write_text(KEYS_TOML, encoding="utf-8")
    return path


class TestCard:
    """A card that answers GENERATE AC: ATC counts up, ARQC from pyemv's CVN classes."""

    __test__ = False

    def __init__(self, pan: str = VISA_PAN, psn: int = 1) -> None:
        self.pan = pan
        self.psn = psn
        self.atc = 0
        self.last_arqc = b""
        if pan.startswith("4761739999"):
            self.cvn, key = 18, VISA18_KEY
        elif pan.startswith("476173"):
            self.cvn, key = 10, VISA_KEY
        else:
            self.cvn, key = 16, MC_KEY
        k = bytes.fromhex(key)
        cls = {10: pyemv_cvn.VisaCVN10, 18: pyemv_cvn.VisaCVN18, 16: pyemv_cvn.MasterCardCVN16}
        self.crypto = cls[self.cvn](k, k, k, pan, f"{psn:02d}")

    def icc_data(self, amount: int, currency: int = 978, txn_type: int = 0,
                 when: dt.date | None = None, un: bytes | None = None,
                 tvr: bytes = bytes(5), cid: int = 0x80) -> bytes:
        self.atc += 1
        when = when or dt.date.today()
        un = un or secrets.token_bytes(4)  # the terminal's unpredictable number
        t = {
            "9F02": bytes.fromhex(f"{amount:012d}"), "9F03": bytes(6),
            "9F1A": bytes.fromhex("0380"), "95": tvr, "5F2A": bytes.fromhex(f"{currency:04d}"),
            "9A": bytes.fromhex(when.strftime("%y%m%d")), "9C": bytes([txn_type]),
            "9F37": un, "82": bytes.fromhex("2000"), "9F36": self.atc.to_bytes(2, "big"),
        }
        if self.cvn == 10:
            iad = bytes.fromhex("06010A03A00000")
            ac = self.crypto.generate_ac(**{f"tag_{k.lower()}": v for k, v in t.items()},
                                         cvr=iad[3:7])
        elif self.cvn == 18:
            iad = bytes.fromhex("1F4312A0000000") + bytes(25)
            ac = self.crypto.generate_ac(**{f"tag_{k.lower()}": v for k, v in t.items()},
                                         tag_9f10=iad)
        else:
            iad = bytes.fromhex("0110A00003220000000000000000000000FF")
            ac = self.crypto.generate_ac(**{f"tag_{k.lower()}": v for k, v in t.items()},
                                         cvr=iad[2:8])
        t.update({"9F26": ac, "9F27": bytes([cid]), "9F10": iad, "9F33": bytes.fromhex("E0F8C8"),
                  "9F34": bytes.fromhex("1F0302"), "9F35": b"\x22",
                  "84": bytes.fromhex("A0000000031010")})
        self.last_arqc = ac
        return pyemv_tlv.encode(t)


def auth_request(card: TestCard, amount: int, stan: int = 1, txn_type: str = "purchase",
                 terminal_id: str = "PITAP001", icc: bytes | None = None) -> AuthRequest:
    return AuthRequest(
        stan=stan, amount=amount, currency=978, txn_type=txn_type, pan=card.pan,
        pan_sequence=card.psn, expiry="2812",
        track2=bytes.fromhex(card.pan + "D2812201000000000F"),
        icc_data=icc if icc is not None
        else card.icc_data(amount, txn_type=0x20 if txn_type == "refund" else 0),
        terminal_id=terminal_id, merchant_id="000000000000001",
        when=dt.datetime(2026, 11, 27, 10, 30, 0),
    )


class LoopbackServer:
    """A TCP server on 127.0.0.1 (a free port: `.port`) that hands each connection to
    `serve(conn)` on a thread of its own, until `close()`."""

    def __init__(self, backlog: int = 8) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)  # look at `stop` between connections
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


class HoldingHost(HostSimulator):
    """The host simulator that holds back one reply: the first request `which` accepts (given
    the decoded message and the simulator's dialect) is booked as usual, then `held` is set and
    its reply waits until `let_go()`. A test kills the terminal meanwhile, so that the reply
    goes to nobody, as an answer lost with the terminal: the request was in flight, and the
    host has booked it."""

    def __init__(self, which: Callable[[dict[str, str], Dialect], bool], port: int = 0,
                 ledger_file: Path | None = None) -> None:
        super().__init__(port=port, ledger_file=ledger_file)
        self.which = which
        self.held = threading.Event()
        self._go = threading.Event()
        self._lock = threading.Lock()

    def handle_message(self, raw: bytes) -> bytes | None:
        reply = super().handle_message(raw)
        try:
            doc = self.dialect.decode(raw)
        except MessageError:
            return reply
        with self._lock:
            hold = not self.held.is_set() and self.which(doc, self.dialect)
            if hold:
                self.held.set()
        if hold:
            self._go.wait(timeout=600)
        return reply

    def let_go(self) -> None:
        """The held reply goes (to a killed terminal: nowhere); every later one at once."""
        self._go.set()
