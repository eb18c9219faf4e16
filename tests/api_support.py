"""An independent client of the terminal API for the tests: the standard library's http.client
only (none of pitap's code), as a till written from the OpenAPI document would be; a reader
of the server-sent events on a thread; and `serve`, which runs the API under test (a real
terminal, its service loop with the UPI tender `pitap run` would have, and the aiohttp server,
in this process). Not a test module itself."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from run_support import wait_until

from simulators.demo import free_port

if TYPE_CHECKING:
    from firmware.config import Config
    from firmware.service import TerminalService
    from firmware.terminal import Terminal


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: object

    def __getitem__(self, name: str) -> object:
        assert isinstance(self.body, dict), self.body
        return self.body[name]


def connect(base: str, timeout: float = 60.0) -> http.client.HTTPConnection:
    url = urlsplit(base)
    if url.scheme == "https":
        import ssl

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the tests pin nothing; a till pins the fingerprint
        return http.client.HTTPSConnection(url.hostname or "", url.port, timeout=timeout,
                                           context=ctx)
    return http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)


def call(base: str, method: str, path: str, key: str | None = None, body: object = None,
         raw: bytes | None = None, headers: dict[str, str] | None = None) -> Answer:
    conn = connect(base)
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=sent)
        resp = conn.getresponse()
        text = resp.read()
        got = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    parsed: object = json.loads(text) if got.get("content-type", "").startswith(
        "application/json") else text
    return Answer(resp.status, got, parsed)


def site(tmp_path: Path, host_port: int, host: str = "",
         **api: object) -> tuple[Path, str, str]:
    """A site for `pitap run` with [api] enabled on a free port (and `api`'s settings), its
    reader on a udp: link, its host on `host_port` (and `host`, more lines of [host]):
    (configuration file, reader path, API base URL)."""
    reader = f"udp:127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
    port = int(api.pop("port", free_port()))
    extra = "".join(f"{k} = {v}\n" for k, v in api.items())
    config = tmp_path / "terminal.toml"
    config.write_text(
        f'[terminal]\nstate_dir = "{tmp_path / "state"}"\npresentment_timeout_s = 60.0\n'
        f'[reader]\npath = "{reader}"\n[host]\nport = {host_port}\n{host}'
        f'[display]\ndirectory = "{tmp_path / "screens"}"\n[keypad]\nbackend = "none"\n'
        f'[api]\nenabled = true\nport = {port}\n{extra}')
    return config, reader, f"http://127.0.0.1:{port}"


def up(base: str, key: str) -> bool:
    """Whether the API at `base` answers (`GET /v1/status` with `key`)."""
    try:
        return call(base, "GET", "/v1/status", key).status == 200
    except OSError:
        return False


@dataclass
class EventReader:
    """`GET /v1/events` read on a thread; `events` the parsed data objects as they come."""

    base: str
    key: str
    events: list[dict[str, object]] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _conn: http.client.HTTPConnection | None = None

    def start(self) -> EventReader:
        threading.Thread(target=self._read, daemon=True).start()
        assert self.connected.wait(30), "no event stream"
        return self

    def _read(self) -> None:
        self._conn = connect(self.base, timeout=300)
        self._conn.request("GET", "/v1/events", headers={"Authorization": f"Bearer {self.key}"})
        resp = self._conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type", "").startswith("text/event-stream")
        data: list[str] = []
        try:
            while True:
                line = resp.readline().decode()
                if not line:
                    return
                line = line.rstrip("\n")
                if line.startswith(":"):
                    self.connected.set()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    with self._cond:
                        self.events.append(json.loads("\n".join(data)))
                        self._cond.notify_all()
                    data = []
        except (OSError, ValueError):
            return

    def wait_for(self, check: Callable[[dict[str, object]], bool],
                 seconds: float = 60.0) -> dict[str, object]:
        deadline = time.monotonic() + seconds
        with self._cond:
            while True:
                for event in self.events:
                    if check(event):
                        return event
                left = deadline - time.monotonic()
                assert left > 0, f"no such event in {self.events}"
                self._cond.wait(left)

    def close(self) -> None:
        if self._conn is not None and self._conn.sock is not None:
            self._conn.sock.shutdown(socket.SHUT_RDWR)


class StoppedClock:
    """The simulated PSP's clock (simulators.upi.psp), moved only by the test: its payer pays
    when told to (`payer_acts`), never by timing luck."""

    def __init__(self, pay_delay_s: float = 3.0) -> None:
        self.now = 1000.0
        self.pay_delay_s = pay_delay_s  # the PSP simulator's: the payer acts this long after

    def __call__(self) -> float:
        return self.now

    def payer_acts(self) -> None:
        self.now += self.pay_delay_s + 1


def with_upi(cfg: Config, psp_url: str) -> Config:
    """`cfg` as an Indian shop's: currency INR, [upi] configured, its PSP at `psp_url`."""
    return dataclasses.replace(
        cfg, terminal=dataclasses.replace(cfg.terminal, currency="INR"),
        upi={"payee_vpa": "pitapdemo@okaxis", "mcc": "5411", "psp_url": psp_url,
             "poll_interval_s": 0.2, "request_expiry_s": 600})


@dataclass
class Running:
    """The API under test: its base URL, a key, and the terminal behind it."""

    cfg: Config
    base: str
    key: str
    service: TerminalService
    terminal: Terminal

    def call(self, method: str, path: str, body: object = None, **kw: object) -> Answer:
        return call(self.base, method, path, self.key, body, **kw)  # type: ignore[arg-type]

    def pay(self, amount: str = "12.50", key: str | None = None, **more: object) -> Answer:
        return self.call("POST", "/v1/payments", {"amount": amount, **more},
                         headers={"Idempotency-Key": key or str(uuid.uuid4())})

    def finished(self, pid: int) -> dict[str, object]:
        """Payment `pid` once it has ended and the terminal is no longer busy with it (its
        outcome shown, its receipt printed): a till's next payment may start."""
        assert wait_until(lambda: self.call("GET", f"/v1/payments/{pid}")["finished"],
                          seconds=90)
        assert wait_until(lambda: self.call("GET", "/v1/status")["state"] != "busy",
                          seconds=90)
        body = self.call("GET", f"/v1/payments/{pid}").body
        assert isinstance(body, dict)
        return body


@contextlib.contextmanager
def serve(cfg: Config, keypad: object = None, **api: object) -> Iterator[Running]:
    """The terminal of `cfg` with [api] enabled on a free port (and `api`'s settings), its
    service loop (with `keypad`, default none) and the API server, until the end of the
    block."""
    from drivers.keypad import NoKeypad
    from firmware.api.keys import ApiKeys
    from firmware.api.server import ApiServer
    from firmware.service import TerminalService
    from firmware.terminal import Terminal

    settings = {"enabled": True, "port": free_port(), **api}
    cfg = dataclasses.replace(cfg, api=dataclasses.replace(cfg.api, **settings))
    key = ApiKeys(cfg.state_path(cfg.api.keys_file)).add("till")
    from firmware.upi.tender import UpiTender

    terminal = Terminal.from_config(cfg)
    upi = UpiTender.at_hand(cfg, terminal.journal, terminal.feedback)  # as `pitap run` has it
    service = TerminalService(terminal, keypad or NoKeypad(),  # type: ignore[arg-type]
                              currency=cfg.currency, result_hold_s=0, upi=upi)
    try:
        server = ApiServer(service).start()
    except BaseException:
        if upi is not None:
            upi.close()
        terminal.close()
        raise
    loop = threading.Thread(target=service.run, daemon=True)
    loop.start()
    try:
        yield Running(cfg, server.url.rstrip("/"), key, service, terminal)
    finally:
        service.stop.set()
        loop.join(60)
        server.stop()
        if upi is not None:
            upi.close()
        terminal.close()
