"""The [upi] and [voice] sections of the terminal configuration, typed and validated the way
firmware.config validates the others (unknown key, wrong type, value out of range: one
ConfigError naming the file and the dotted key). firmware.config only registers the two table
names; this module owns what is in them.

UPI is taken only when `upi.payee_vpa` is set (and the terminal's currency is INR: the caller's
check). Ranges are written in config/terminal.toml next to each key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from firmware.config import ConfigError, _build
from firmware.upi.link import MAX_AMOUNT, MAX_NAME, MCC, UpiLinkError, check_vpa

if TYPE_CHECKING:
    from firmware.config import Config

PSP_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?")
LANGUAGES = ("en", "hi", "it")


@dataclass(frozen=True)
class UpiSection:
    payee_vpa: str = ""  # pa; "" = this terminal takes no UPI
    payee_name: str = ""  # pn; "" = terminal.merchant_name
    mcc: str = ""  # mc: ISO 18245 merchant category code, 4 digits; required with payee_vpa
    qr_form: str = "upi"  # upi (upi://pay link) | bharatqr (EMVCo merchant-presented QR)
    psp: str = "http"  # entry point in the pitap.upi group
    psp_url: str = "http://127.0.0.1:8600"  # the http plug-in's PSP endpoint
    request_expiry_s: int = 120  # the PSP ends an unpaid request as expired after this
    poll_interval_s: float = 2.0  # status queries while the QR is shown
    connect_timeout_s: float = 3.0  # no connection: PSP unavailable (nothing created)
    response_timeout_s: float = 10.0  # no reply: outcome unknown, status asked again
    max_amount: int = MAX_AMOUNT  # paise: the merchant's UPI per-payment limit

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "payee_vpa": (0, 320),
        "payee_name": (0, MAX_NAME),
        "mcc": (0, 4),
        "qr_form": (1, 16),
        "psp": (1, 64),
        "psp_url": (1, 512),
        "request_expiry_s": (10, 900),
        "poll_interval_s": (0.2, 60),
        "connect_timeout_s": (0.1, 60),
        "response_timeout_s": (0.1, 120),
        "max_amount": (1, MAX_AMOUNT),
    }

    @property
    def enabled(self) -> bool:
        return bool(self.payee_vpa)

    def validate(self, where: str) -> None:
        if self.payee_vpa:
            try:
                check_vpa(self.payee_vpa)
            except UpiLinkError:
                raise ConfigError(f"{where}.payee_vpa: a UPI address like shop@okaxis, got "
                                  f"{self.payee_vpa[:40]!r}") from None
            if not MCC.fullmatch(self.mcc):
                raise ConfigError(f"{where}.mcc: the 4-digit merchant category code (e.g. "
                                  f"5411), required with payee_vpa")
        elif self.mcc and not MCC.fullmatch(self.mcc):
            raise ConfigError(f"{where}.mcc: 4 digits")
        if self.qr_form not in ("upi", "bharatqr"):
            raise ConfigError(f"{where}.qr_form: upi or bharatqr")
        if not PSP_URL.fullmatch(self.psp_url):
            raise ConfigError(f"{where}.psp_url: http://host[:port][/path] or https://...")


@dataclass(frozen=True)
class VoiceSection:
    enabled: bool = False  # speak "Received 250 rupees" on success
    language: str = ""  # en | hi | it; "" = terminal.language
    volume: int = 80  # percent
    rate_wpm: int = 150  # speaking rate, words a minute
    device: str = "default"  # ALSA playback device (aplay -D)

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "language": (0, 2),
        "volume": (0, 100),
        "rate_wpm": (80, 400),
        "device": (1, 64),
    }

    def validate(self, where: str) -> None:
        if self.language and self.language not in LANGUAGES:
            raise ConfigError(f"{where}.language: {', '.join(LANGUAGES)} or \"\" (the "
                              "terminal's language)")


def upi_settings(cfg: Config) -> UpiSection:
    """cfg's [upi] table as a UpiSection; a mistake in it is a ConfigError naming the key."""
    section = _build(UpiSection, cfg.upi, "upi.", str(cfg.source))
    assert isinstance(section, UpiSection)
    return section


def voice_settings(cfg: Config) -> VoiceSection:
    """cfg's [voice] table as a VoiceSection; a mistake in it is a ConfigError naming the key."""
    section = _build(VoiceSection, cfg.voice, "voice.", str(cfg.source))
    assert isinstance(section, VoiceSection)
    return section
