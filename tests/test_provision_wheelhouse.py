"""The image's wheelhouse takes every wheel the terminal's glibc runs: pip itself chooses, offline,
among wheels made here with the tags real projects publish (lgpio: manylinux_2_34 only)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from firmware.provision.wheelhouse import (
    TARGET_GLIBC,
    download_for_target,
    target_platforms,
)


def make_wheel(folder: Path, name: str, tag: str) -> Path:
    """A minimal valid wheel (METADATA, WHEEL, RECORD) with the platform tag `tag`."""
    dist = f"{name}-1.0"
    path = folder / f"{name}-1.0-cp311-cp311-{tag}.whl"
    files = {
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{dist}.dist-info/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: cp311-cp311-{tag}\n"
        ),
        f"{name}/__init__.py": "",
    }
    record = []
    with zipfile.ZipFile(path, "w") as z:
        for arc, text in files.items():
            z.writestr(arc, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
            record.append(f"{arc},sha256={digest.decode()},{len(text)}")
        record.append(f"{dist}.dist-info/RECORD,,")
        z.writestr(f"{dist}.dist-info/RECORD", "\n".join(record) + "\n")
    return path


def test_platform_tags_cover_every_glibc_the_target_runs() -> None:
    assert TARGET_GLIBC == (2, 36)  # Debian 12 / Raspberry Pi OS Bookworm
    tags = target_platforms()
    for minor in range(17, 37):
        assert f"manylinux_2_{minor}_aarch64" in tags
    assert "manylinux2014_aarch64" in tags and "linux_aarch64" in tags
    assert "manylinux_2_37_aarch64" not in tags and "manylinux_2_16_aarch64" not in tags
    assert not any("x86_64" in t or "armv7l" in t for t in tags)


def test_pip_takes_manylinux_2_34_and_refuses_a_newer_glibc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    index.mkdir()
    make_wheel(index, "lgpiolike", "manylinux_2_34_aarch64")      # lgpio's only wheel
    make_wheel(index, "oldglibc", "manylinux2014_aarch64")
    make_wheel(index, "tooonew", "manylinux_2_39_aarch64")        # needs a newer glibc
    make_wheel(index, "wrongarch", "manylinux_2_34_x86_64")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.delenv("PIP_CONSTRAINT", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    dest = tmp_path / "house"
    # pip is asked for too: offline it is missing here, which is reported, not fatal
    missing = download_for_target(dest, ["lgpiolike", "oldglibc", "tooonew", "wrongarch"])
    got = sorted(p.name.split("-")[0] for p in dest.glob("*.whl"))
    assert got == ["lgpiolike", "oldglibc"]
    assert "tooonew" in missing and "wrongarch" in missing
