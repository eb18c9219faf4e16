"""External tools the image build and flash rely on, found on PATH with a clear error if not.

Only looks tools up; running them is the caller's business.
"""

from __future__ import annotations

import os
import shutil

from firmware.provision import ProvisionError

# tool -> Debian/Raspberry Pi OS package that provides it (the same list as .ci/run)
PACKAGES: dict[str, str] = {
    "mcopy": "mtools",
    "mdel": "mtools",
    "mmd": "mtools",
    "mtype": "mtools",
    "mdir": "mtools",
    "debugfs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "sfdisk": "fdisk",
    "mkfs.vfat": "dosfstools",
    "lsblk": "util-linux",
}

_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class MissingTool(ProvisionError):
    """A required program is not installed."""


def find_tool(name: str) -> str | None:
    """Absolute path of `name`, looking in PATH and the sbin directories users often lack."""
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(_SBIN)
    return shutil.which(name, path=path)


def require(*names: str) -> dict[str, str]:
    """Paths of all `names`, or MissingTool naming every missing one and its package."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        where = find_tool(name)
        if where is None:
            missing.append(name)
        else:
            found[name] = where
    if missing:
        packages = sorted({PACKAGES.get(m, m) for m in missing})
        raise MissingTool(
            f"missing tool(s): {', '.join(missing)} — install with: "
            f"apt-get install {' '.join(packages)}"
        )
    return found
