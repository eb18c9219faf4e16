"""Spoken confirmation, as an Indian "soundbox" does it: "Received 250 rupees" when a UPI
payment arrives, a short phrase when it failed, in the shop's language (en, it, hi).

Speech is rendered with espeak-ng (a Debian package; `-w` writes a WAV) and played with ALSA's
`aplay`; both are commands, run without a shell, each with a time limit. Speaking is best
effort: `Announcer.announce` logs a failure and returns False, it never fails a payment.

The Hindi phrases say it as Indian soundboxes do ("250 रुपये प्राप्त हुए"), with the amount in
digits, which espeak-ng's Hindi voice reads as Hindi numbers (lakh included); reviewed on
2026-12-02 with ui/lang/hi.py (see there).
"""

from __future__ import annotations

import enum
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from firmware.errors import PitapError

if TYPE_CHECKING:
    from firmware.upi.config import VoiceSection

log = logging.getLogger(__name__)

RENDER_TIMEOUT_S = 20.0
PLAY_TIMEOUT_S = 30.0
ESPEAK_VOICES = {"en": "en", "it": "it", "hi": "hi"}  # language -> espeak-ng voice


class Phrase(enum.Enum):
    RECEIVED = "received"  # the payment arrived: the amount is spoken
    FAILED = "failed"  # the payment did not arrive (failed, expired, cancelled)


class VoiceError(PitapError):
    """Speech could not be rendered or played; one line saying why."""


def _amount_en(paise: int) -> str:
    rupees, rest = divmod(paise, 100)
    text = f"{rupees} {'rupee' if rupees == 1 else 'rupees'}"
    return f"{text} and {rest} paise" if rest else text


def _amount_it(paise: int) -> str:
    rupees, rest = divmod(paise, 100)
    text = f"{rupees} {'rupia' if rupees == 1 else 'rupie'}"
    return f"{text} e {rest} paise" if rest else text


def _amount_hi(paise: int) -> str:
    rupees, rest = divmod(paise, 100)
    words = [f"{rupees} {'रुपया' if rupees == 1 else 'रुपये'}"] if rupees else []
    words += [f"{rest} {'पैसा' if rest == 1 else 'पैसे'}"] if rest else []
    return " ".join(words)


def phrase_text(phrase: Phrase, language: str, paise: int = 0) -> str:
    """The words spoken for `phrase` in `language` (en, it, hi); `paise` for RECEIVED."""
    if language not in ESPEAK_VOICES:
        raise VoiceError(f"no spoken phrases in language {language!r} (en, it, hi)")
    if phrase is Phrase.FAILED:
        return {"en": "Payment failed", "it": "Pagamento non riuscito",
                "hi": "भुगतान नहीं हुआ"}[language]
    if paise <= 0:
        raise VoiceError("a received payment has an amount")
    if language == "en":
        return f"Received {_amount_en(paise)}"
    if language == "it":
        return f"Pagamento ricevuto, {_amount_it(paise)}"
    verb = "प्राप्त हुआ" if paise in (1, 100) else "प्राप्त हुए"  # one rupee / one paisa
    return f"{_amount_hi(paise)} {verb}"


def _command(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        package = {"espeak-ng": "espeak-ng", "aplay": "alsa-utils"}[name]
        raise VoiceError(f"{name} is not installed (apt-get install {package})")
    return found


def render_wav(text: str, language: str, path: Path, *, rate_wpm: int = 150,
               volume: int = 80) -> Path:
    """`text` spoken in `language` into the WAV file `path` (16-bit mono, 22050 Hz)."""
    amplitude = round(max(0, min(volume, 100)) * 1.5)  # espeak-ng's 0..200; 100% = 150
    args = [_command("espeak-ng"), "-v", ESPEAK_VOICES[language], "-s", str(rate_wpm),
            "-a", str(amplitude), "-w", str(path), "--", text]
    _run(args, RENDER_TIMEOUT_S, "espeak-ng")
    if not path.is_file() or path.stat().st_size <= 44:
        raise VoiceError(f"espeak-ng wrote no speech to {path}")
    return path


def play_wav(path: Path, device: str = "default") -> None:
    """Play the WAV file through ALSA (`aplay -D device`), waiting until it has been heard."""
    _run([_command("aplay"), "-q", "-D", device, str(path)], PLAY_TIMEOUT_S, "aplay")


def _run(args: list[str], timeout_s: float, what: str) -> None:
    try:
        done = subprocess.run(args, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise VoiceError(f"{what} took over {timeout_s:g} s; stopped") from None
    except OSError as exc:
        raise VoiceError(f"{what} could not run: {exc.strerror}") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VoiceError(f"{what} failed (exit {done.returncode}): {why[-1] if why else ''}")


class Announcer:
    """Speaks payment outcomes as the [voice] settings say; `language` is terminal.language,
    used when voice.language is empty."""

    def __init__(self, settings: VoiceSection, language: str) -> None:
        self.settings = settings
        self.language = settings.language or language

    def announce(self, phrase: Phrase, paise: int = 0) -> bool:
        """Say `phrase` (with the amount) now; True once it was played. Off: False, silently.
        A failure is logged and False: a payment never fails because a speaker did."""
        if not self.settings.enabled:
            return False
        try:
            text = phrase_text(phrase, self.language, paise)
            with tempfile.TemporaryDirectory(prefix="pitap-voice-") as tmp:
                wav = render_wav(text, self.language, Path(tmp) / "phrase.wav",
                                 rate_wpm=self.settings.rate_wpm, volume=self.settings.volume)
                play_wav(wav, self.settings.device)
        except VoiceError as exc:
            log.warning("voice: %s", exc)
            return False
        return True
