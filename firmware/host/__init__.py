"""The terminal's side of the acquirer link: ISO 8583 dialects, the TCP/TLS link,
store-and-forward, settlement (the host simulator is simulators.host). Payments reach it only as
data.

`connect(cfg)` returns the configured Acquirer: the class named `cfg.host.acquirer` in the
`pitap.acquirers` entry point group, built with the configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from firmware.config import Config, ConfigError

if TYPE_CHECKING:
    from firmware.host.acquirer import Acquirer

# What the rest of the terminal may import: connect() and the acquirer contract, store-and-
# forward and settlement; iso8583_acquirer is the default plug-in (loaded by entry point name).
# dialect, link and messages are the ISO 8583 acquirer's own.
__all__ = ["ENTRY_POINT_GROUP", "acquirer", "acquirer_names", "connect", "iso8583_acquirer",
           "response_codes", "saf", "settlement"]

ENTRY_POINT_GROUP = "pitap.acquirers"


def acquirer_names() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def connect(cfg: Config, stan_source: Callable[[], int] | None = None) -> Acquirer:
    """The configured acquirer. ConfigError if no installed plug-in has that name.

    `stan_source` (e.g. the journal's next_stan) numbers the messages the acquirer originates
    itself (settlement, echo); authorizations carry the STAN of their AuthRequest.
    """
    name = cfg.host.acquirer
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        known = ", ".join(acquirer_names()) or "none installed"
        raise ConfigError(f"{cfg.source}: host.acquirer: no acquirer named {name!r} "
                          f"in the {ENTRY_POINT_GROUP} entry points (known: {known})")
    factory = found[0].load()
    if stan_source is None:
        return factory(cfg)
    return factory(cfg, stan_source=stan_source)
