"""The API server `pitap run` starts when [api] enabled: aiohttp on a thread of its own, with its
own event loop, beside the service loop it hands jobs to. HTTPS (firmware.api.tls) on any
address but 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web

from firmware.api.app import ApiContext, make_app
from firmware.api.events import EventHub
from firmware.api.keys import ApiKeys
from firmware.config import ConfigError
from firmware.service import TerminalService

__all__ = ["ApiServer"]

log = logging.getLogger(__name__)

START_S = 30.0


class ApiServer:
    """start() listens (ConfigError, one line, when it cannot); stop() ends it."""

    def __init__(self, service: TerminalService) -> None:
        self.service = service
        self.cfg = service.terminal.cfg
        self.loop = asyncio.new_event_loop()
        self.ctx = ApiContext(service, ApiKeys(self.cfg.state_path(self.cfg.api.keys_file)))
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="api", daemon=True)
        self._runner: web.AppRunner | None = None

    def fingerprint(self) -> str:
        """The HTTPS certificate's SHA-256 fingerprint ("" on plain HTTP)."""
        if not self.cfg.api.tls:
            return ""
        from firmware.api.tls import certificate_paths, fingerprint

        return fingerprint(certificate_paths(self.cfg)[1])

    @property
    def url(self) -> str:
        api = self.cfg.api
        host = f"[{api.bind}]" if ":" in api.bind else api.bind
        return f"{'https' if api.tls else 'http'}://{host}:{api.port}/"

    def start(self) -> ApiServer:
        self._thread.start()
        self._ready.wait(START_S)
        if self._failed is not None:
            self._thread.join()
            api = self.cfg.api
            why = getattr(self._failed, "strerror", None) or self._failed
            raise ConfigError(f"{self.cfg.source}: api: cannot listen on {api.bind}:{api.port} "
                              f"({why})")
        return self

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:  # noqa: BLE001 - told to start() in one line
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self._stop())
            self.loop.close()

    async def _start(self) -> None:
        from firmware.api.tls import server_context

        hub = EventHub(asyncio.get_running_loop(), self.ctx.view)
        self.ctx.hub = hub
        self.service.feedback.listen(hub.listener)
        app = make_app(self.ctx)
        app.on_shutdown.append(lambda _app: _closed(hub))
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        api = self.cfg.api
        ssl_context = server_context(self.cfg) if api.tls else None
        site = web.TCPSite(self._runner, api.bind, api.port, ssl_context=ssl_context)
        await site.start()
        log.info("terminal API on %s", self.url)

    async def _stop(self) -> None:
        if self.ctx.hub is not None:
            self.service.feedback.listeners.remove(self.ctx.hub.listener)
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)


async def _closed(hub: EventHub) -> None:
    hub.close()
