"""Who may call the API: an API key on every /v1 request, bad keys slowed down, no foreign
origins.

- `Authorization: Bearer KEY` with a key of the key file (firmware.api.keys), else 401.
- After MAX_BAD_KEYS refused keys from one address within LOCKOUT_S, that address gets 429 with
  Retry-After (seconds) for every request until LOCKOUT_S have passed since its last bad key.
- A request whose Origin header is not the terminal's own address (a page of another site in
  the shop's browser) gets 403: the API sends no CORS headers, and a browser's "simple" request
  would otherwise still reach it.
The cashier page's own files (/, /static/...) need no key: they hold no data, the page asks for
the key and sends it with each of its requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from firmware.api.keys import ApiKeyError, ApiKeys

__all__ = ["BadKeys", "auth_middleware", "error"]

log = logging.getLogger(__name__)

MAX_BAD_KEYS = 5
LOCKOUT_S = 60.0
PUBLIC_PREFIXES = ("/static/",)
PUBLIC_PATHS = ("/", "/favicon.ico")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, message: str, field_name: str | None = None,
          headers: dict[str, str] | None = None, **more: object) -> web.Response:
    """The API's error answer: {"error": message, "field": name?, ...}."""
    body: dict[str, object] = {"error": message}
    if field_name is not None:
        body["field"] = field_name
    body.update(more)
    return web.json_response(body, status=status, headers=headers)


@dataclass
class BadKeys:
    """Refused keys by address: count and when the last came (monotonic seconds)."""

    clock: Callable[[], float] = time.monotonic
    seen: dict[str, tuple[int, float]] = field(default_factory=dict)

    def retry_after(self, address: str) -> int:
        """Seconds this address must wait (0: it may try)."""
        count, last = self.seen.get(address, (0, 0.0))
        wait = last + LOCKOUT_S - self.clock()
        if wait <= 0:
            self.seen.pop(address, None)
            return 0
        return int(wait) + 1 if count >= MAX_BAD_KEYS else 0

    def refused(self, address: str) -> None:
        count, _ = self.seen.get(address, (0, 0.0))
        self.seen[address] = (count + 1, self.clock())

    def accepted(self, address: str) -> None:
        self.seen.pop(address, None)


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def auth_middleware(keys: ApiKeys, bad: BadKeys) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin != own_origin(request):
            log.info("request from origin %r refused", origin[:80])
            return error(403, "requests from other origins are refused", "Origin")
        if request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES):
            return await handler(request)
        address = request.remote or "?"
        wait = bad.retry_after(address)
        if wait:
            return error(429, "too many bad API keys from this address; wait",
                         headers={"Retry-After": str(wait)}, retry_after=wait)
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        given = key.strip() if scheme.lower() == "bearer" else ""
        try:
            name = keys.check(given) if given else None
        except ApiKeyError as exc:
            log.error("%s", exc)
            return error(500, "the API key file cannot be read (see the terminal's log)")
        if name is None:
            bad.refused(address)
            log.info("bad API key from %s", address)
            return error(401, "an API key is needed: Authorization: Bearer KEY",
                         "Authorization", headers={"WWW-Authenticate": "Bearer"})
        bad.accepted(address)
        log.debug("API request %s %s by key %r", request.method, request.path, name)
        return await handler(request)

    return check
