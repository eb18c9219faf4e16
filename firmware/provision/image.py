"""Build a terminal's SD card image from a Raspberry Pi OS Lite image, without mounting.

Steps: copy (or un-xz) the base image into the output, find the FAT boot and ext4 root
partitions in its MBR, enable the interfaces the site needs in config.txt (and take the serial
console off the UART the reader uses), put the provisioning file on the boot partition, and put
the offline wheelhouse, the systemd units (enabled) and the first-boot script on the root
partition. All times come from one epoch (SOURCE_DATE_EPOCH), files go in sorted order, so the
same inputs give the same image, byte for byte. Never touches a real disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import lzma
import os
from dataclasses import dataclass, field
from pathlib import Path

from firmware.provision import ProvisionError
from firmware.provision.bootfs import BootPartition, with_interfaces, without_serial_console
from firmware.provision.mbr import SECTOR, BadImage, boot_and_root, read_partitions
from firmware.provision.progress import Progress
from firmware.provision.rootfs import RootEntry, RootPartition
from firmware.provision.site import SITE_FILE_NAME, Site, SiteError, load_site, secret_files
from firmware.provision.tools import require
from firmware.provision.wheelhouse import Wheelhouse

log = logging.getLogger(__name__)

DEFAULT_EPOCH = 1735689600  # 2025-01-01T00:00:00Z, when SOURCE_DATE_EPOCH is not set
CHUNK = 1024 * 1024
XZ_MAGIC = b"\xfd7zXZ\x00"

WHEELHOUSE_DIR = "/opt/pitap/wheelhouse"
UNIT_DIR = "/etc/systemd/system"
WANTS_DIR = "/etc/systemd/system/multi-user.target.wants"
FIRSTBOOT_SCRIPT = "/usr/local/sbin/pitap-firstboot"
MANIFEST = "/opt/pitap/image-manifest.json"


@dataclass
class BuildResult:
    out: Path
    sha256: str
    size: int
    config_lines: list[str]
    units: list[str]
    wheels: list[str]
    missing_wheels: list[str] = field(default_factory=list)
    holds_secrets: bool = False  # the site file on the boot partition carries secrets


def build_epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not value:
        return DEFAULT_EPOCH
    if not value.isdigit() or int(value) < 315532800:  # FAT cannot hold times before 1980
        raise ProvisionError(f"SOURCE_DATE_EPOCH={value!r}: seconds since 1970, 1980 or later")
    return int(value)


def copy_base(base: Path, dest: Path) -> int:
    """Copy (or decompress .xz) `base` into a fresh `dest`, leaving zero blocks as holes."""
    try:
        fin = open(base, "rb")  # noqa: SIM115 - wrapped below
    except FileNotFoundError:
        raise BadImage(f"{base}: base image not found") from None
    with fin:
        xz = fin.read(6) == XZ_MAGIC
        fin.seek(0)
        total = os.fstat(fin.fileno()).st_size
        src = lzma.open(fin) if xz else fin  # noqa: SIM115 - closed with fin
        written = 0
        zero = bytes(CHUNK)
        label = "unpacking" if xz else "copying"
        with open(dest, "wb") as fout, Progress(label, total) as bar:
            try:
                while block := src.read(CHUNK):
                    if block == zero[: len(block)]:
                        fout.seek(len(block), os.SEEK_CUR)
                    else:
                        fout.write(block)
                    written += len(block)
                    bar.done = fin.tell()
                    bar.advance(0)
            except (lzma.LZMAError, EOFError) as exc:
                raise BadImage(f"{base}: damaged .xz file ({exc})") from None
            fout.truncate(written)
    if written < SECTOR:
        raise BadImage(f"{base}: too small to be a disk image ({written} bytes)")
    return written


def sha256_file(path: Path, label: str = "hashing") -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f, Progress(label, os.path.getsize(path)) as bar:
        while block := f.read(CHUNK):
            digest.update(block)
            bar.advance(len(block))
    return digest.hexdigest()


def shipped_units_dir() -> Path:
    from firmware.config import shipped_config_dir

    return shipped_config_dir() / "systemd"


def root_entries(
    site_wheelhouse: Wheelhouse, units_dir: Path, epoch: int
) -> tuple[list[RootEntry], list[str]]:
    """Everything the root filesystem gets, and the unit names enabled."""
    entries: list[RootEntry] = []
    wheel_hashes: dict[str, str] = {}
    for wheel in site_wheelhouse.wheels:
        data = wheel.read_bytes()
        wheel_hashes[wheel.name] = hashlib.sha256(data).hexdigest()
        entries.append(RootEntry(f"{WHEELHOUSE_DIR}/{wheel.name}", data))
    if site_wheelhouse.missing:
        text = "\n".join(site_wheelhouse.missing) + "\n"
        entries.append(RootEntry(f"{WHEELHOUSE_DIR}/MISSING.txt", text.encode()))
    script = units_dir / "pitap-firstboot"
    if not script.is_file():
        raise ProvisionError(f"{script}: first-boot script missing from the shipped config")
    entries.append(RootEntry(FIRSTBOOT_SCRIPT, script.read_bytes(), mode=0o755))
    units = sorted(p.name for p in units_dir.glob("*.service"))
    if "pitap-firstboot.service" not in units:
        raise ProvisionError(f"{units_dir}: pitap-firstboot.service missing")
    if "pitap.service" not in units:
        log.warning("%s/pitap.service not found: the image will not start pitap at boot",
                    units_dir)
    for name in units:
        entries.append(RootEntry(f"{UNIT_DIR}/{name}", (units_dir / name).read_bytes()))
        entries.append(RootEntry(f"{WANTS_DIR}/{name}", link_target=f"{UNIT_DIR}/{name}"))
    manifest = {
        "built_at_epoch": epoch,
        "wheels": wheel_hashes,
        "missing_wheels": site_wheelhouse.missing,
        "units": units,
    }
    entries.append(RootEntry(MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) +
                                        "\n").encode()))
    return entries, units


def customise_boot(boot: BootPartition, site: Site, site_text: bytes) -> list[str]:
    lines = site.config_txt_lines
    config = boot.read("config.txt")
    boot.write("config.txt", with_interfaces((config or b"").decode(), lines).encode())
    if site.hardware.uart:
        cmdline = boot.read("cmdline.txt")
        if cmdline is not None:
            boot.write("cmdline.txt", without_serial_console(cmdline.decode()).encode())
    boot.write(SITE_FILE_NAME, site_text)
    return lines


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """An xz multibyte integer at `pos`: (value, next position)."""
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad xz index")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def xz_uncompressed_size(path: Path) -> int | None:
    """The uncompressed size an .xz file's index records (one stream), None when unreadable."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        if end < 24:
            return None
        f.seek(end - 12)
        footer = f.read(12)
        if footer[10:12] != b"YZ":
            return None
        index_size = (int.from_bytes(footer[4:8], "little") + 1) * 4
        if index_size + 12 > end:
            return None
        f.seek(end - 12 - index_size)
        index = f.read(index_size)
    try:
        if index[0] != 0:
            return None
        count, pos = _varint(index, 1)
        total = 0
        for _ in range(count):
            _unpadded, pos = _varint(index, pos)
            size, pos = _varint(index, pos)
            total += size
    except (ValueError, IndexError):
        return None
    return total


def check_base(base: Path) -> None:
    """The base image's layout, read without copying it: an MBR with a FAT boot and a Linux root
    partition that fit in the image, and (for an uncompressed image) a FAT boot filesystem and
    an ext4 root. BadImage (one line) otherwise; a damaged .xz body shows when it is unpacked."""
    with open(base, "rb") as f:
        xz = f.read(6) == XZ_MAGIC
        f.seek(0)
        try:
            if xz:
                with lzma.open(f) as unpacked:
                    sector0 = unpacked.read(SECTOR)
            else:
                sector0 = f.read(SECTOR)
        except (lzma.LZMAError, EOFError) as exc:
            raise BadImage(f"{base.name}: damaged .xz file ({exc})") from None
    size = xz_uncompressed_size(base) if xz else base.stat().st_size
    if size is None:
        raise BadImage(f"{base.name}: damaged or truncated .xz file (no index at its end)")
    if size < SECTOR:
        raise BadImage(f"{base}: too small to be a disk image ({size} bytes)")
    boot_part, root_part = boot_and_root(read_partitions(sector0, size, base.name), base.name)
    if not xz:
        BootPartition(base, boot_part.offset, DEFAULT_EPOCH, base.name).check()
        RootPartition(base, root_part.offset, DEFAULT_EPOCH, base.name).check()


def check_output(out: Path, base: Path) -> None:
    """The output can be written: not the base, not a directory, in a writable folder."""
    if out.resolve() == base.resolve():
        raise ProvisionError("--out must differ from --base")
    if out.is_dir():
        raise ProvisionError(f"--out {out}: is a directory; give the image's file name")
    folder = out.resolve().parent
    if not folder.is_dir():
        raise ProvisionError(f"--out {out}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ProvisionError(f"--out {out}: folder {folder} is not writable")


def check_inputs(base: Path, site_file: Path, out: Path) -> Site:
    """Every check of a build's inputs (tools, base image, site file, output), so that a mistake
    is told before the slow wheelhouse step. ProvisionError (one line)."""
    require("mcopy", "mdir", "debugfs")
    if not base.is_file():
        raise ProvisionError(f"base image {base}: no such file")
    check_output(out, base)
    try:
        site = load_site(site_file)
    except SiteError as exc:
        raise ProvisionError(str(exc)) from None
    check_base(base)
    return site


def build_image(
    base: Path,
    site_file: Path,
    out: Path,
    wheelhouse: Wheelhouse,
    units_dir: Path | None = None,
    epoch: int | None = None,
) -> BuildResult:
    """Build `out` from `base`; ProvisionError (one line) on any problem, `out` untouched then."""
    site = check_inputs(base, site_file, out)
    epoch = build_epoch() if epoch is None else epoch
    units_dir = units_dir or shipped_units_dir()
    entries, units = root_entries(wheelhouse, units_dir, epoch)
    tmp = out.with_name(out.name + ".partial")
    try:
        size = copy_base(base, tmp)
        with open(tmp, "rb") as f:
            sector0 = f.read(SECTOR)
        boot_part, root_part = boot_and_root(read_partitions(sector0, size, base.name), base.name)
        boot = BootPartition(tmp, boot_part.offset, epoch, base.name)
        boot.check()
        root = RootPartition(tmp, root_part.offset, epoch, base.name)
        root.check()
        lines = customise_boot(boot, site, site_file.read_bytes())
        root.install(entries)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    digest = sha256_file(out)
    return BuildResult(
        out=out,
        sha256=digest,
        size=size,
        config_lines=lines,
        units=units,
        wheels=[w.name for w in wheelhouse.wheels],
        missing_wheels=wheelhouse.missing,
        holds_secrets=bool(secret_files(site)),
    )
