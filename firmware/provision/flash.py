"""Write an image to an SD card (or a file) and prove it landed: read back, compare SHA-256.

Safety first: the target must be a whole block device that is not mounted (checked in
/proc/self/mountinfo, /proc/mounts, lsblk, /proc/swaps and holders such as LVM), not the disk the
system runs from, and big enough; or a regular file (never a new file inside /dev). A block
device is opened O_EXCL, so the kernel refuses it too while anything has it open.

Zero blocks: runs of zero blocks are skipped (seek instead of write) only when the target is a
file we have just truncated, which reads back zeros by definition. On a block device every block
is written: an SD card's discard is not guaranteed to read back zeros (the kernel reports
discard_zeroes_data = 0), so skipping there would be a guess. The read-back covers every byte
either way, so a wrong guess could not pass unnoticed.

Read-back: after fsync, the target's page cache is dropped (posix_fadvise DONTNEED, and
BLKFLSBUF on a block device) so the bytes compared are the card's, not the cache's.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import lzma
import os
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from firmware.provision import ProvisionError
from firmware.provision.image import XZ_MAGIC
from firmware.provision.progress import Progress
from firmware.provision.tools import find_tool

log = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024  # read, write and compare unit
ZERO_BLOCK = 64 * 1024  # granularity of zero-run skipping
_ZEROS = bytes(ZERO_BLOCK)
BLKFLSBUF = 0x1261


class FlashRefused(ProvisionError):
    """The target is not safe to write (mounted, the system disk, too small, not a disk)."""


class FlashFailed(ProvisionError):
    """The write or the verification failed: the card is not usable as it is."""


@dataclass(frozen=True)
class Target:
    path: Path
    kind: str  # "block" | "file"
    size: int | None  # bytes, for a block device
    description: str
    exists: bool


@dataclass
class FlashResult:
    image_bytes: int
    written_bytes: int
    skipped_zero_bytes: int
    sha256: str
    seconds: float  # writing, fsync included
    chunk_digests: list[bytes] = field(default_factory=list, repr=False)
    verify_seconds: float = 0.0


# ---- what is in use ------------------------------------------------------------------------


def mountinfo_devices(text: str) -> dict[str, str]:
    """major:minor -> mount point, from /proc/self/mountinfo text."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4:
            out.setdefault(fields[2], fields[4])
    return out


def mounts_sources(text: str) -> dict[str, str]:
    """source device -> mount point, from /proc/mounts text."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 1 and fields[0].startswith("/dev/"):
            out.setdefault(fields[0], fields[1])
    return out


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _sys_block(name: str) -> Path:
    return Path("/sys/class/block") / name


def disk_and_parts(name: str) -> dict[str, str]:
    """name -> major:minor for a disk and each of its partitions."""
    out = {name: _read(f"/sys/class/block/{name}/dev").strip()}
    sys_dir = _sys_block(name)
    for child in sorted(sys_dir.iterdir()) if sys_dir.is_dir() else []:
        if (child / "partition").is_file():
            out[child.name] = _read(str(child / "dev")).strip()
    return out


def disks_under(devnum: str, depth: int = 0) -> set[str]:
    """Whole-disk names a block device (major:minor) lives on, through partitions and dm/md."""
    node = Path("/sys/dev/block") / devnum
    if not node.exists() or depth > 8:
        return set()
    real = node.resolve()
    if (real / "partition").is_file():
        return {real.parent.name}
    slaves = real / "slaves"
    if slaves.is_dir() and any(slaves.iterdir()):
        found: set[str] = set()
        for s in slaves.iterdir():
            found |= disks_under(_read(str(s / "dev")).strip(), depth + 1)
        return found
    return {real.name}


def system_disks(mountinfo: str) -> set[str]:
    """Disks holding /, /boot, /boot/firmware, /usr or /var of the running system."""
    system_points = {"/", "/boot", "/boot/firmware", "/usr", "/var"}
    disks: set[str] = set()
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] in system_points:
            disks |= disks_under(fields[2])
    return disks


def lsblk_mounts(path: Path) -> dict[str, str]:
    """name -> mount point for the device and everything on it, as lsblk sees it (a third
    opinion next to mountinfo; includes device-mapper children). Empty without lsblk."""
    lsblk = find_tool("lsblk")
    if lsblk is None:
        return {}
    done = subprocess.run([lsblk, "-J", "-o", "NAME,MOUNTPOINT", str(path)],
                          capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        return {}
    found: dict[str, str] = {}

    def walk(nodes: list[dict]) -> None:
        for node in nodes:
            if node.get("mountpoint"):
                found[str(node.get("name"))] = str(node["mountpoint"])
            walk(node.get("children") or [])

    try:
        walk(json.loads(done.stdout).get("blockdevices") or [])
    except (ValueError, AttributeError):
        return {}
    return found


def check_block_device(path: Path, image_size: int | None) -> Target:
    name = path.resolve().name
    sys_dir = _sys_block(name)
    if (sys_dir / "partition").is_file():
        raise FlashRefused(f"{path} is a partition; give the whole card (e.g. /dev/sdX, not sdX1)")
    parts = disk_and_parts(name)
    mountinfo = _read("/proc/self/mountinfo")
    if name in system_disks(mountinfo):
        raise FlashRefused(f"{path} is the disk this system runs from; refusing to overwrite it")
    mounted = mountinfo_devices(mountinfo)
    sources = mounts_sources(_read("/proc/mounts"))
    for part, devnum in parts.items():
        point = mounted.get(devnum) if devnum else None
        point = point or sources.get(f"/dev/{part}")
        if point:
            raise FlashRefused(f"/dev/{part} is mounted at {point}: unmount it first "
                               f"(umount /dev/{part})")
    for part, point in lsblk_mounts(path).items():
        raise FlashRefused(f"/dev/{part} is mounted at {point}: unmount it first")
    swaps = _read("/proc/swaps")
    for part in parts:
        if f"/dev/{part} " in swaps:
            raise FlashRefused(f"{path}: /dev/{part} is in use as swap; swapoff it first")
    for part in parts:
        holders = _sys_block(part) / "holders"
        if holders.is_dir() and any(holders.iterdir()):
            raise FlashRefused(f"{path}: /dev/{part} is in use (LVM, RAID or dm-crypt)")
    size = int(_read(f"/sys/class/block/{name}/size").strip() or 0) * 512
    if size == 0:
        raise FlashRefused(f"{path} has no medium (size 0): insert the SD card")
    if image_size is not None and image_size > size:
        raise FlashRefused(
            f"{path} holds {size / 2**30:.1f} GiB, the image needs {image_size / 2**30:.1f} GiB"
        )
    model = _read(f"/sys/class/block/{name}/device/model").strip()
    vendor = _read(f"/sys/class/block/{name}/device/vendor").strip()
    desc = f"{path} ({' '.join(x for x in (vendor, model) if x) or 'disk'}, {size / 1e9:.1f} GB)"
    return Target(path, "block", size, desc, True)


def check_target(target: Path, image: Path, image_size: int | None) -> Target:
    """Is `target` safe to write? FlashRefused with the reason if not."""
    in_dev = Path(os.path.abspath(target)).parent.resolve().is_relative_to("/dev")
    try:
        st = os.stat(target)
    except FileNotFoundError:
        if in_dev:  # a mistyped or missing card: never create a file in /dev
            raise FlashRefused(f"{target}: no such device (is the card in? see `lsblk`)") from None
        if not target.parent.is_dir():
            raise FlashRefused(f"{target}: no such directory {target.parent}") from None
        return Target(target, "file", None, f"{target} (new file)", False)
    if stat.S_ISBLK(st.st_mode):
        return check_block_device(target, image_size)
    if stat.S_ISREG(st.st_mode):
        if in_dev:
            raise FlashRefused(f"{target} is a plain file in /dev, not a device; remove it")
        if os.path.samefile(target, image):
            raise FlashRefused("the target is the image itself")
        return Target(target, "file", None, f"{target} (existing file, will be replaced)", True)
    raise FlashRefused(f"{target} is neither a block device nor a regular file")


# ---- writing and reading back --------------------------------------------------------------


def image_reader(image: Path):  # noqa: ANN201 - a binary file object
    f = open(image, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    xz = f.read(6) == XZ_MAGIC
    f.seek(0)
    return lzma.open(f) if xz else f


def image_size(image: Path) -> int | None:
    """Uncompressed size when known without decompressing (a plain .img)."""
    with open(image, "rb") as f:
        if f.read(6) == XZ_MAGIC:
            return None
    return image.stat().st_size


def _write_all(fd: int, block: bytes, offset: int, total: int | None) -> None:
    view = memoryview(block)
    done = 0
    while done < len(view):
        try:
            n = os.write(fd, view[done:])
        except OSError as exc:
            where = offset + done
            of = f" of {total}" if total else ""
            raise FlashFailed(
                f"write failed at byte {where}{of}: {exc.strerror or exc}; the target is NOT "
                f"usable"
            ) from None
        if n == 0:
            raise FlashFailed(f"short write at byte {offset + done}: the target took no more data")
        done += n


def zero_runs(block: bytes) -> list[tuple[int, int, bool]]:
    """(start, end, is_zero) runs of a block, in ZERO_BLOCK steps."""
    runs: list[tuple[int, int, bool]] = []
    view = memoryview(block)
    for start in range(0, len(block), ZERO_BLOCK):
        end = min(start + ZERO_BLOCK, len(block))
        is_zero = view[start:end] == _ZEROS[: end - start]
        if runs and runs[-1][2] == is_zero:
            runs[-1] = (runs[-1][0], end, is_zero)
        else:
            runs.append((start, end, is_zero))
    return runs


def _drop_cache(fd: int, is_block: bool) -> None:
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError as exc:
        log.debug("fadvise: %s", exc)
    if is_block:
        try:
            fcntl.ioctl(fd, BLKFLSBUF)
        except OSError as exc:
            log.debug("BLKFLSBUF: %s", exc)


def write_image(image: Path, target: Target) -> FlashResult:
    """Write the image; FlashFailed on any error or short write."""
    started = time.monotonic()
    is_block = target.kind == "block"
    flags = os.O_WRONLY | (os.O_EXCL if is_block else os.O_CREAT | os.O_TRUNC)
    try:
        fd = os.open(target.path, flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise FlashRefused(f"{target.path} is busy (mounted or open elsewhere)") from None
        raise FlashFailed(f"cannot open {target.path}: {exc.strerror}") from None
    skip_zeros = not is_block  # a file we just truncated reads zeros; a card may not
    total = image_size(image)
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    written = skipped = offset = 0
    try:
        with image_reader(image) as src, Progress("writing", total or image.stat().st_size) as bar:
            while True:
                try:
                    block = src.read(CHUNK)
                except (lzma.LZMAError, EOFError) as exc:
                    raise FlashFailed(f"{image}: damaged .xz file ({exc})") from None
                if not block:
                    break
                digest.update(block)
                chunks.append(hashlib.blake2b(block, digest_size=16).digest())
                runs = zero_runs(block) if skip_zeros else [(0, len(block), False)]
                for start, end, is_zero in runs:
                    if is_zero:
                        os.lseek(fd, end - start, os.SEEK_CUR)
                        skipped += end - start
                    else:
                        _write_all(fd, block[start:end], offset + start, total)
                        written += end - start
                offset += len(block)
                bar.advance(len(block))
        try:
            if skip_zeros:
                os.ftruncate(fd, offset)  # a trailing zero run still gives the file its size
            os.fsync(fd)
        except OSError as exc:
            raise FlashFailed(
                f"finishing the write failed: {exc.strerror or exc}; the target is NOT usable"
            ) from None
        _drop_cache(fd, is_block)
    finally:
        os.close(fd)
    return FlashResult(offset, written, skipped, digest.hexdigest(),
                       time.monotonic() - started, chunks)


def verify(target: Target, result: FlashResult) -> None:
    """Read the written range back and compare: FlashFailed naming the first bad offset."""
    digest = hashlib.sha256()
    bad: list[int] = []
    with open(target.path, "rb", buffering=0) as f:
        _drop_cache(f.fileno(), target.kind == "block")
        with Progress("verifying", result.image_bytes) as bar:
            for i, expected in enumerate(result.chunk_digests):
                want = min(CHUNK, result.image_bytes - i * CHUNK)
                block = b""
                while len(block) < want:
                    part = f.read(want - len(block))
                    if not part:
                        break
                    block += part
                if len(block) < want:
                    raise FlashFailed(
                        f"verify failed: the target ends at byte {i * CHUNK + len(block)}, "
                        f"the image has {result.image_bytes}"
                    )
                digest.update(block)
                if hashlib.blake2b(block, digest_size=16).digest() != expected:
                    bad.append(i)
                bar.advance(len(block))
    if bad or digest.hexdigest() != result.sha256:
        first = bad[0] * CHUNK if bad else 0
        raise FlashFailed(
            f"verify failed: SHA-256 of the read-back differs ({len(bad)} of "
            f"{len(result.chunk_digests)} blocks of 4 MiB, first at byte {first}); "
            f"the target is NOT usable"
        )


def flash(
    image: Path,
    target_path: Path,
    confirm: Callable[[Target, int | None], bool],
    before_verify: Callable[[], None] | None = None,
) -> FlashResult:
    """Check, confirm, write, read back. `confirm` returns False to stop before writing."""
    if not image.is_file():
        raise FlashRefused(f"{image}: image not found")
    size = image_size(image)
    target = check_target(target_path, image, size)
    if not confirm(target, size):
        raise FlashRefused("not confirmed; nothing written")
    result = write_image(image, target)
    if before_verify is not None:
        before_verify()
    started = time.monotonic()
    verify(target, result)
    result.verify_seconds = time.monotonic() - started
    return result
