"""The ext4 root partition of an image, edited in place with e2fsprogs' debugfs (no mounting).

debugfs opens `image?offset=N` directly. Times come from E2FSPROGS_FAKE_TIME (and the source
files' mtimes) so that the result is reproducible; every entry is owned by root with an explicit
mode. debugfs exits 0 even when a command fails, so `install` only issues commands that must
succeed (it lists the directories first) and treats any error line as a failed build, then reads
every file back and compares it.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from firmware.provision import ProvisionError
from firmware.provision.mbr import BadImage
from firmware.provision.tools import require

_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+@/-]+$")


@dataclass(frozen=True)
class RootEntry:
    """A file (data) or a symlink (link_target) to put at `path` on the root filesystem."""

    path: str
    data: bytes | None = None
    mode: int = 0o644
    link_target: str | None = None


class RootPartition:
    def __init__(self, image: Path, offset: int, epoch: int, name: str | None = None) -> None:
        self.debugfs = require("debugfs")["debugfs"]
        self.target = f"{image}?offset={offset}"
        self.image_name = name or image.name
        self.env = {**os.environ, "E2FSPROGS_FAKE_TIME": str(epoch), "TZ": "UTC"}
        self.epoch = epoch

    def _run(self, commands: list[str], write: bool = False) -> tuple[str, list[str]]:
        """Run debugfs commands; (stdout, error lines other than the version banner)."""
        with tempfile.NamedTemporaryFile("w", suffix=".debugfs") as script:
            script.write("\n".join(commands) + "\n")
            script.flush()
            args = [self.debugfs, *(["-w"] if write else []), "-f", script.name, self.target]
            done = subprocess.run(args, env=self.env, capture_output=True, check=False)
        errors = [
            line
            for line in done.stderr.decode(errors="replace").splitlines()
            if line.strip() and not line.startswith("debugfs ")
        ]
        if done.returncode != 0 and not errors:
            errors = [f"debugfs exited with {done.returncode}"]
        return done.stdout.decode(errors="replace"), errors

    def check(self) -> None:
        _out, errors = self._run(["stats -h"])
        if errors:
            raise BadImage(f"{self.image_name}: the root partition is not ext4 ({errors[0]})")

    def listing(self, directories: list[str]) -> dict[str, dict[str, str]]:
        """name -> octal mode string for each existing directory among `directories`."""
        out, _errors = self._run([f"ls -p {d}" for d in directories])
        result: dict[str, dict[str, str]] = {}
        current: str | None = None
        for line in out.splitlines():
            if line.startswith("debugfs: ls -p "):
                current = line[len("debugfs: ls -p ") :]
                continue
            parts = line.split("/")
            if current is not None and len(parts) >= 7 and parts[5] not in (".", ".."):
                result.setdefault(current, {})[parts[5]] = parts[2]
        return result

    def install(self, entries: list[RootEntry]) -> None:
        """Create directories, files and symlinks; existing files at those paths are replaced."""
        for e in entries:
            if not _SAFE_PATH.match(e.path):
                raise ProvisionError(f"unsafe path for the root filesystem: {e.path!r}")
        wanted_dirs: set[str] = set()
        for e in entries:
            for parent in PurePosixPath(e.path).parents:
                if str(parent) != "/":
                    wanted_dirs.add(str(parent))
        dirs = sorted(wanted_dirs, key=lambda d: (d.count("/"), d))
        existing = self.listing(["/", *dirs])

        def exists(path: str) -> str | None:
            p = PurePosixPath(path)
            return existing.get(str(p.parent), {}).get(p.name)

        commands: list[str] = []
        for d in dirs:
            mode = exists(d)
            if mode is None:
                commands += [f"mkdir {d}", f"sif {d} mode 040755"]
                commands += [f"sif {d} uid 0", f"sif {d} gid 0"]
            elif not mode.startswith("04"):
                raise ProvisionError(f"{self.image_name}: {d} exists and is not a directory")
        with tempfile.TemporaryDirectory() as tmp:
            for i, e in enumerate(sorted(entries, key=lambda x: x.path)):
                mode = exists(e.path)
                if mode is not None:
                    if mode.startswith("04"):
                        raise ProvisionError(f"{self.image_name}: {e.path} is a directory")
                    commands.append(f"rm {e.path}")
                if e.link_target is not None:
                    commands.append(f"symlink {e.path} {e.link_target}")
                    continue
                local = Path(tmp) / f"{i:05d}"
                local.write_bytes(e.data or b"")
                os.utime(local, (self.epoch, self.epoch))
                commands += [
                    f"write {local} {e.path}",
                    f"sif {e.path} mode 0{0o100000 | e.mode:o}",
                    f"sif {e.path} uid 0",
                    f"sif {e.path} gid 0",
                ]
            _out, errors = self._run(commands, write=True)
        if any("allocate" in e or "No free space" in e or "No space" in e for e in errors):
            need = sum(len(e.data or b"") for e in entries) / 2**20
            raise ProvisionError(
                f"{self.image_name}: the root partition has no room for pitap ({need:.0f} MiB "
                "to add): use a larger base image or grow its root partition first"
            )
        if errors:
            raise ProvisionError(f"{self.image_name}: writing the root filesystem: {errors[0]}")
        self.verify(entries)

    def read_files(self, paths: list[str]) -> dict[str, bytes | None]:
        """Contents of regular files (None where missing), read back with debugfs dump."""
        with tempfile.TemporaryDirectory() as tmp:
            commands = [f"dump {p} {tmp}/{i:05d}" for i, p in enumerate(paths)]
            self._run(commands)
            out: dict[str, bytes | None] = {}
            for i, p in enumerate(paths):
                f = Path(tmp) / f"{i:05d}"
                out[p] = f.read_bytes() if f.exists() else None
            return out

    def link_target(self, path: str) -> str | None:
        out, errors = self._run([f"stat {path}"])
        m = re.search(r'Fast link dest: "([^"]*)"', out)
        return m.group(1) if m and not errors else None

    def verify(self, entries: list[RootEntry]) -> None:
        files = [e for e in entries if e.link_target is None]
        back = self.read_files([e.path for e in files])
        for e in files:
            if back[e.path] != (e.data or b""):
                raise ProvisionError(f"{self.image_name}: {e.path} reads back different")
        for e in entries:
            if e.link_target is not None and self.link_target(e.path) != e.link_target:
                raise ProvisionError(f"{self.image_name}: symlink {e.path} reads back different")
