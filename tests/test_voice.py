"""Spoken confirmation: the phrases in each language, rendered by espeak-ng to WAV files that
are speech of a sensible length (not silence, longer for longer phrases, louder at a higher
volume), played through ALSA's aplay (to its null device here); a missing synthesizer or a bad
device is a logged False, never an exception into the payment."""

from __future__ import annotations

import array
import logging
import math
import shutil
import wave
from pathlib import Path

import pytest

from firmware.upi.config import VoiceSection
from firmware.voice import Announcer, Phrase, VoiceError, phrase_text, render_wav

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed here (apt-get install espeak-ng; .ci/run installs it)")
needs_aplay = pytest.mark.skipif(
    shutil.which("aplay") is None,
    reason="aplay is not installed here (apt-get install alsa-utils; .ci/run installs it)")


def speech(path: Path) -> tuple[float, float]:
    """(seconds, RMS of the samples in 0..1) of a 16-bit mono WAV file."""
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    samples = array.array("h", frames)
    assert samples, "no audio"
    rms = math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768
    return len(samples) / rate, rms


@pytest.mark.parametrize(
    ("language", "paise", "text"),
    [
        ("en", 25000, "Received 250 rupees"),
        ("en", 100, "Received 1 rupee"),
        ("en", 25050, "Received 250 rupees and 50 paise"),
        ("it", 25000, "Pagamento ricevuto, 250 rupie"),
        ("it", 100, "Pagamento ricevuto, 1 rupia"),
        ("it", 1005, "Pagamento ricevuto, 10 rupie e 5 paise"),
        ("hi", 25000, "250 रुपये प्राप्त हुए"),  # as Indian soundboxes say it
        ("hi", 100, "1 रुपया प्राप्त हुआ"),
        ("hi", 25050, "250 रुपये 50 पैसे प्राप्त हुए"),
        ("hi", 150, "1 रुपया 50 पैसे प्राप्त हुए"),
        ("hi", 50, "50 पैसे प्राप्त हुए"),  # no "0 रुपये"
        ("hi", 1, "1 पैसा प्राप्त हुआ"),
        ("hi", 12345678, "123456 रुपये 78 पैसे प्राप्त हुए"),  # espeak-ng says "1 lakh 23 ..."
    ],
)
def test_received_phrases(language: str, paise: int, text: str) -> None:
    assert phrase_text(Phrase.RECEIVED, language, paise) == text


def test_failure_phrases_and_bad_requests() -> None:
    assert [phrase_text(Phrase.FAILED, lang) for lang in ("en", "it", "hi")] == [
        "Payment failed", "Pagamento non riuscito", "भुगतान नहीं हुआ"]
    with pytest.raises(VoiceError, match="language 'fr'"):
        phrase_text(Phrase.FAILED, "fr")
    with pytest.raises(VoiceError, match="amount"):
        phrase_text(Phrase.RECEIVED, "en", 0)


@needs_espeak
@pytest.mark.parametrize("language", ["en", "it", "hi"])
@pytest.mark.parametrize("phrase", list(Phrase))
def test_every_phrase_renders_as_speech(tmp_path: Path, language: str, phrase: Phrase) -> None:
    wav = render_wav(phrase_text(phrase, language, 25000), language, tmp_path / "p.wav")
    seconds, rms = speech(wav)
    assert 0.5 < seconds < 8, seconds  # a few words, as spoken
    assert rms > 0.02, rms  # speech, not silence


@needs_espeak
def test_longer_phrases_last_longer_and_volume_is_loudness(tmp_path: Path) -> None:
    short, _ = speech(render_wav(phrase_text(Phrase.RECEIVED, "en", 500), "en",
                                 tmp_path / "short.wav"))
    long, _ = speech(render_wav(phrase_text(Phrase.RECEIVED, "en", 123456), "en",
                                tmp_path / "long.wav"))
    assert long > 1.5 * short
    _, quiet = speech(render_wav("Received 250 rupees", "en", tmp_path / "q.wav", volume=20))
    _, loud = speech(render_wav("Received 250 rupees", "en", tmp_path / "l.wav", volume=100))
    assert loud > 2 * quiet


@needs_espeak
@needs_aplay
@pytest.mark.parametrize("language", ["en", "it", "hi"])
def test_announce_plays_through_alsa(language: str) -> None:
    voice = Announcer(VoiceSection(enabled=True, device="null"), language)
    assert voice.announce(Phrase.RECEIVED, 25000) is True
    assert voice.announce(Phrase.FAILED) is True


@needs_espeak
@needs_aplay
def test_a_bad_device_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    voice = Announcer(VoiceSection(enabled=True, device="nosuchcard"), "en")
    with caplog.at_level(logging.WARNING, logger="firmware.voice"):
        assert voice.announce(Phrase.RECEIVED, 25000) is False
    assert "aplay failed" in caplog.text


def test_voice_off_says_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng, no aplay: never looked for
    assert Announcer(VoiceSection(enabled=False), "en").announce(Phrase.RECEIVED, 100) is False


def test_no_synthesizer_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(VoiceError, match=r"espeak-ng is not installed \(apt-get install"):
        render_wav("Received 1 rupee", "en", tmp_path / "x.wav")
    with caplog.at_level(logging.WARNING, logger="firmware.voice"):
        assert Announcer(VoiceSection(enabled=True, language="hi"), "en").announce(
            Phrase.FAILED) is False
    assert "espeak-ng is not installed" in caplog.text
