"""The offline wheelhouse put into the image: pitap's wheel and its dependencies' wheels.

Either a ready directory of wheels (`from_directory`, what tests and reproducible builds use) or
built here (`build_for_target`): pitap's own wheel from the source tree with `pip wheel`, the
dependencies for the terminal (aarch64, CPython 3.11 by default) with `pip download
--only-binary=:all: --platform ...`; a requirement with no aarch64 wheel is built here with
`pip wheel` and kept only if all it needs is pure Python. What is still missing (C extensions
published only as source) is listed, never silently dropped.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from firmware.provision import ProvisionError
from firmware.provision.progress import Progress

log = logging.getLogger(__name__)

# The simulators' distribution (simulators/setup.py): TEST private keys, never on a terminal.
SIMULATORS_WHEEL = "pitap_sim-"
# Raspberry Pi OS Bookworm (Debian 12) has glibc 2.36: a wheel for any manylinux glibc up to
# that runs there (lgpio, and with it the Pi 5's rpi-lgpio, publishes only manylinux_2_34).
TARGET_GLIBC = (2, 36)


def target_platforms(glibc: tuple[int, int] = TARGET_GLIBC, arch: str = "aarch64") -> list[str]:
    """pip's --platform tags for a target with `glibc`: every manylinux_2_17 (the oldest for
    aarch64) to manylinux_<glibc>, the legacy alias manylinux2014, and plain linux."""
    major, minor = glibc
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
    return [*tags, f"manylinux2014_{arch}", f"linux_{arch}"]


TARGET_PLATFORMS = tuple(target_platforms())


@dataclass
class Wheelhouse:
    wheels: list[Path]
    missing: list[str] = field(default_factory=list)  # requirements pip could not fetch

    def pitap_wheel(self) -> Path:
        for w in self.wheels:
            if w.name.startswith("pitap-"):
                return w
        raise ProvisionError("the wheelhouse has no pitap-*.whl wheel")


def from_directory(directory: Path, allow_simulators: bool = False) -> Wheelhouse:
    """The wheels of `directory`; the simulators' wheel only when `allow_simulators` (a test-mode
    site's field check, which runs the host simulator and a phone on the terminal itself)."""
    if not directory.is_dir():
        raise ProvisionError(f"{directory}: wheelhouse directory not found")
    wheels = sorted(p for p in directory.iterdir() if p.suffix == ".whl" and p.is_file())
    missing_file = directory / "MISSING.txt"
    missing = missing_file.read_text().splitlines() if missing_file.is_file() else []
    house = Wheelhouse(wheels, missing)
    house.pitap_wheel()
    sim = [w.name for w in wheels if w.name.lower().startswith(SIMULATORS_WHEEL)]
    if sim and not allow_simulators:
        raise ProvisionError(f"{directory}: {sim[0]} is the simulators, with TEST keys: only "
                             "on a field-test image (a test-mode site with [test] field_check)")
    return house


def project_dir() -> Path:
    here = Path(__file__).resolve().parents[2]
    if not (here / "setup.py").is_file():
        raise ProvisionError("pitap's source tree is not available here: pass --wheelhouse DIR")
    return here


# Left in a source tree by development runs and earlier builds, never part of a wheel: setuptools
# reuses build/lib as it finds it, so a module deleted since (or moved to the simulators) would
# otherwise still reach the image.
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__",
                                     "out", "var", ".pytest_cache", ".mypy_cache", ".ruff_cache")


def _build_wheel(source: Path, dest: Path, epoch: int, what: str) -> Path:
    """The wheel of the distribution at `source`, built from a clean copy of it into `dest`."""
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    with tempfile.TemporaryDirectory(prefix="pitap-wheel-") as tmp:
        clean, out = Path(tmp) / source.name, Path(tmp) / "out"
        shutil.copytree(source, clean, ignore=_NOT_SOURCE)
        args = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out),
                str(clean)]
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            raise ProvisionError(f"building {what} failed: {last}")
        (wheel,) = out.glob("*.whl")
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheel, dest / wheel.name))


def build_pitap_wheel(dest: Path, epoch: int) -> Path:
    """pitap's wheel from the source tree (zip times from SOURCE_DATE_EPOCH)."""
    return _build_wheel(project_dir(), dest, epoch, "the pitap wheel")


def build_simulators_wheel(dest: Path, epoch: int) -> Path:
    """The simulators' wheel (pitap-sim, simulators/setup.py), for a field-test image only."""
    return _build_wheel(project_dir() / "simulators", dest, epoch, "the simulators' wheel")


# pip's environment markers as they evaluate on 64-bit Raspberry Pi OS Bookworm.
_TARGET_MARKERS = {"platform_machine": "aarch64", "sys_platform": "linux",
                   "platform_system": "Linux", "python_version": "3.11"}


def _for_target(texts: list[str], extras: tuple[str, ...] = ()) -> list[str]:
    """The requirements among `texts` (Requires-Dist lines) that apply on the Pi, markers
    dropped; those of `extras` too."""
    from packaging.requirements import Requirement

    out = []
    for text in texts:
        req = Requirement(text)
        keep = any(
            req.marker is None or req.marker.evaluate({**_TARGET_MARKERS, "extra": extra})
            for extra in ("", *extras)
        )
        if keep:
            req.marker = None
            out.append(str(req))
    return sorted(out)


def target_requirements(extras: tuple[str, ...] = ("pi",)) -> list[str]:
    """pitap's requirements that apply on a 64-bit Raspberry Pi OS (markers for aarch64)."""
    from importlib.metadata import requires

    return _for_target(requires("pitap") or [], extras)


def wheel_requirements(wheel: Path) -> list[str]:
    """What `wheel` needs on the Pi: its METADATA's Requires-Dist (no extras), markers dropped."""
    from email.parser import HeaderParser

    with zipfile.ZipFile(wheel) as z:
        name = next((n for n in z.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise ProvisionError(f"{wheel.name}: not a wheel (no METADATA)")
        meta = HeaderParser().parsestr(z.read(name).decode("utf-8", errors="replace"))
    return _for_target(meta.get_all("Requires-Dist") or [])


def unmet_requirements(wheels: list[Path], missing: list[str]) -> list[str]:
    """Each requirement of a wheel in `wheels` that no wheel there provides and `missing` does
    not already name, as "<project> (needed by <wheel's project>)"."""
    have = {_project(w.name) for w in wheels}
    named = {_name(m.split(" (")[0]) for m in missing}
    unmet = []
    for wheel in wheels:
        for text in wheel_requirements(wheel):
            if _name(text) not in have | named:
                unmet.append(f"{text} (needed by {_project(wheel.name)})")
    return unmet


def download_for_target(dest: Path, requirements: list[str], python: str = "3.11") -> list[str]:
    """Download binary wheels for the Pi; return the requirements that could not be fetched."""
    base = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
            "--python-version", python, "--implementation", "cp", "-d", str(dest)]
    for plat in TARGET_PLATFORMS:
        base += ["--platform", plat]
    missing = []
    wanted = ["pip", *requirements]
    with Progress("fetching", len(wanted), unit="wheels") as bar:
        for req in wanted:
            done = subprocess.run([*base, req], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                log.info("no aarch64 wheel for %s", req)
                missing.append(req)
            bar.advance(1)
    return missing


def _name(requirement: str) -> str:
    """The project a requirement names, normalized as `_project` normalizes a wheel's."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return canonicalize_name(Requirement(requirement).name)


def _project(wheel_name: str) -> str:
    return wheel_name.split("-")[0].replace("_", "-").replace(".", "-").lower()


def pure_wheels_built_here(dest: Path, requirements: list[str]) -> list[str]:
    """For requirements with no aarch64 wheel: build wheels here and keep the pure-Python ones
    (`*-none-any.whl`, valid on any machine); return what still needs a compiler for the Pi."""
    have = {_project(w.name) for w in dest.glob("*.whl")}
    still_missing = []
    for req in requirements:
        with tempfile.TemporaryDirectory() as tmp:
            args = [sys.executable, "-m", "pip", "wheel", "--quiet", "-w", tmp, req]
            done = subprocess.run(args, capture_output=True, text=True, check=False)
            built = sorted(Path(tmp).glob("*.whl"))
            native = [_project(w.name) for w in built if not w.name.endswith("-none-any.whl")
                      and _project(w.name) not in have]
            if done.returncode != 0 or native:
                why = f"C extension {', '.join(native)}" if native else "no wheel could be built"
                still_missing.append(f"{req} ({why}, no aarch64 wheel)")
                continue
            for wheel in built:
                if _project(wheel.name) not in have:
                    shutil.copy2(wheel, dest / wheel.name)
                    have.add(_project(wheel.name))
    return still_missing


def build_for_target(dest: Path, epoch: int, simulators: bool = False) -> Wheelhouse:
    """pitap's wheelhouse for the Pi; with the simulators' wheel and what it needs too when
    `simulators`. Refused when a wheel in it needs something it neither holds nor names as
    missing: first boot installs offline, so that would fail only at the shop."""
    dest.mkdir(parents=True, exist_ok=True)
    build_pitap_wheel(dest, epoch)
    requirements = target_requirements()
    if simulators:
        sim = build_simulators_wheel(dest, epoch)
        requirements += [r for r in wheel_requirements(sim) if _name(r) != "pitap"]
    missing = download_for_target(dest, sorted(set(requirements)))
    if missing:
        missing = pure_wheels_built_here(dest, missing)
    if missing:
        (dest / "MISSING.txt").write_text("\n".join(missing) + "\n")
    house = from_directory(dest, allow_simulators=simulators)
    unmet = unmet_requirements(house.wheels, house.missing)
    if unmet:
        raise ProvisionError(f"the wheelhouse for the Pi lacks {', '.join(unmet)}")
    return house
