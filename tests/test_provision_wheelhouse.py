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
    unmet_requirements,
    wheel_requirements,
)


def make_wheel(folder: Path, name: str, tag: str, requires: list[str] | None = None) -> Path:
    """A minimal valid wheel (METADATA, WHEEL, RECORD) with the platform tag `tag` (CPython
    3.11), or pure Python for "any"."""
    dist = f"{name}-1.0"
    tag = "py3-none-any" if tag == "any" else f"cp311-cp311-{tag}"
    path = folder / f"{name}-1.0-{tag}.whl"
    needs = "".join(f"Requires-Dist: {r}\n" for r in requires or [])
    files = {
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n{needs}",
        f"{dist}.dist-info/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: {tag}\n"
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


def test_a_requirement_no_wheel_provides_is_named_with_who_needs_it(tmp_path: Path) -> None:
    # pitap-sim needs aiohttp (the UPI PSP simulator): a field-test wheelhouse without it made
    # an image whose first boot stopped at "No matching distribution found for aiohttp"
    sim = make_wheel(tmp_path, "pitap_sim", "any", requires=["pitap==0.1.0", "aiohttp>=3.9"])
    pitap = make_wheel(tmp_path, "pitap", "any", requires=[
        "six", "RPi.GPIO; extra == 'pi'", "pywin32; sys_platform == 'win32'"])
    six = make_wheel(tmp_path, "six", "any")
    assert wheel_requirements(sim) == ["aiohttp>=3.9", "pitap==0.1.0"]
    assert wheel_requirements(pitap) == ["six"]  # no extra, no Windows-only requirement
    assert unmet_requirements([sim, pitap, six], []) == ["aiohttp>=3.9 (needed by pitap-sim)"]
    aiohttp = make_wheel(tmp_path, "aiohttp", "manylinux_2_17_aarch64")
    assert unmet_requirements([sim, pitap, six, aiohttp], []) == []
    # what the wheelhouse already lists as missing (MISSING.txt) is reported there, not here
    assert unmet_requirements([sim, pitap, six],
                              ["aiohttp>=3.9 (C extension aiohttp, no aarch64 wheel)"]) == []
