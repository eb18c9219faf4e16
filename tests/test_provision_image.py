"""`pitap image build`: a synthetic Raspberry Pi OS-like base image (MBR, FAT boot, ext4 root) made
here, built into a terminal image, then read back with independent tools (mtools, debugfs,
e2fsck, fsck.vfat) — never with the code under test."""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import subprocess
from pathlib import Path

import pytest

from firmware.cli import main
from firmware.provision.progress import Progress
from firmware.provision.wheelhouse import build_pitap_wheel

MiB = 1024 * 1024
BOOT_START, BOOT_SECTORS, ROOT_START = 2048, 8192, 10240  # 1 MiB, 4 MiB, 5 MiB
IMAGE_SIZE = 12 * MiB

SITE = """\
mode = "test"
[terminal]
terminal_id = "PITAP042"
merchant_id = "000000000000042"
[acquirer]
host = "127.0.0.1"
port = 8583
tls = false
[hardware]
reader = "tty:AMA0:pn532"
uart = true
uart0_pi5 = true
spi = true
"""


def run(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=True, **kw)


def make_base(tmp: Path) -> Path:
    """A 12 MiB disk image: MBR, FAT boot partition (config.txt, cmdline.txt), ext4 root."""
    image = tmp / "raspios-lite.img"
    with open(image, "wb") as f:
        f.truncate(IMAGE_SIZE)
    table = (
        "label: dos\nlabel-id: 0x5e3da7a0\n"
        f"start={BOOT_START}, size={BOOT_SECTORS}, type=c\nstart={ROOT_START}, type=83\n"
    )
    run("sfdisk", "-q", str(image), input=table)
    boot = tmp / "boot.fat"
    with open(boot, "wb") as f:
        f.truncate(BOOT_SECTORS * 512)
    run("mkfs.vfat", "-n", "BOOTFS", "-i", "12345678", str(boot))
    (tmp / "config.txt").write_text("dtparam=audio=on\n#dtparam=spi=on\n\n[cm4]\notg_mode=1\n")
    (tmp / "cmdline.txt").write_text(
        "console=serial0,115200 console=tty1 root=PARTUUID=5e3da7a0-02 rootwait\n"
    )
    for name in ("config.txt", "cmdline.txt"):
        run("mcopy", "-i", str(boot), str(tmp / name), f"::{name}")
    rootsrc = tmp / "rootsrc"
    (rootsrc / "etc" / "systemd" / "system").mkdir(parents=True)
    (rootsrc / "etc" / "hostname").write_text("raspberrypi\n")
    root = tmp / "root.ext4"
    with open(root, "wb") as f:
        f.truncate(IMAGE_SIZE - ROOT_START * 512)
    run("mke2fs", "-q", "-t", "ext4", "-d", str(rootsrc), str(root))
    with open(image, "r+b") as f:
        f.seek(BOOT_START * 512)
        f.write(boot.read_bytes())
        f.seek(ROOT_START * 512)
        f.write(root.read_bytes())
    return image


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_base(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def base_xz(base: Path) -> Path:
    xz = base.with_name(base.name + ".xz")
    xz.write_bytes(lzma.compress(base.read_bytes(), preset=1))
    return xz


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Just the pitap wheel, built from this tree: small, offline."""
    house = tmp_path_factory.mktemp("wheelhouse")
    build_pitap_wheel(house, 1735689600)
    return house


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(SITE)
    return path


def build(base: Path, site: Path, out: Path, wheelhouse: Path) -> int:
    return main(["image", "build", "--base", str(base), "--site", str(site), "--out", str(out),
                 "--wheelhouse", str(wheelhouse)])


def fat(image: Path) -> str:
    return f"{image}@@{BOOT_START * 512}"


def ext4(image: Path) -> str:
    return f"{image}?offset={ROOT_START * 512}"


def debugfs(image: Path, command: str) -> str:
    return run("debugfs", "-R", command, ext4(image)).stdout


def ext4_file(image: Path, path: str, tmp: Path) -> bytes:
    dest = tmp / "dumped"
    dest.unlink(missing_ok=True)
    run("debugfs", "-R", f"dump {path} {dest}", ext4(image))
    return dest.read_bytes()


def test_build_from_xz_puts_everything_in_place(
    base_xz: Path, site: Path, wheelhouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "terminal.img"
    assert build(base_xz, site, out, wheelhouse) == 0
    printed = capsys.readouterr().out
    assert hashlib.sha256(out.read_bytes()).hexdigest() in printed

    config = run("mtype", "-i", fat(out), "::config.txt").stdout
    lines = config.splitlines()
    # our block comes after the [cm4] section and opens with [all], so it applies to every Pi
    assert lines.index("[all]") > lines.index("[cm4]")
    assert {"dtparam=spi=on", "enable_uart=1", "dtoverlay=uart0-pi5"} <= set(lines[-5:])
    assert "dtparam=audio=on" in lines
    cmdline = run("mtype", "-i", fat(out), "::cmdline.txt").stdout
    assert "console=serial0" not in cmdline and "console=tty1" in cmdline and "rootwait" in cmdline
    assert run("mtype", "-i", fat(out), "::pitap-site.toml").stdout == SITE

    wheel = next(wheelhouse.glob("pitap-*.whl"))
    assert ext4_file(out, f"/opt/pitap/wheelhouse/{wheel.name}", tmp_path) == wheel.read_bytes()
    repo_units = Path(__file__).resolve().parents[1] / "config" / "systemd"
    for unit in sorted(p.name for p in repo_units.glob("*.service")):
        shipped = (repo_units / unit).read_bytes()
        assert ext4_file(out, f"/etc/systemd/system/{unit}", tmp_path) == shipped
        link = debugfs(out, f"stat /etc/systemd/system/multi-user.target.wants/{unit}")
        assert f'Fast link dest: "/etc/systemd/system/{unit}"' in link
    script = debugfs(out, "stat /usr/local/sbin/pitap-firstboot")
    assert "Mode:  0755" in script and "User:     0   Group:     0" in script
    assert debugfs(out, "cat /etc/hostname") == "raspberrypi\n"  # the base's files are kept

    fsck = subprocess.run(["e2fsck", "-fn", ext4(out)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    boot = tmp_path / "boot.fat"
    boot.write_bytes(out.read_bytes()[BOOT_START * 512 : (BOOT_START + BOOT_SECTORS) * 512])
    vfat = subprocess.run(["fsck.vfat", "-n", str(boot)], capture_output=True, text=True)
    assert vfat.returncode == 0, vfat.stdout + vfat.stderr


def test_same_inputs_give_the_same_image(
    base: Path, base_xz: Path, site: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    a, b, c = tmp_path / "a.img", tmp_path / "b.img", tmp_path / "c.img"
    assert build(base, site, a, wheelhouse) == 0
    assert build(base_xz, site, b, wheelhouse) == 0
    assert a.read_bytes() == b.read_bytes()
    site.write_text(SITE.replace("PITAP042", "PITAP043"))
    assert build(base, site, c, wheelhouse) == 0
    assert a.read_bytes() != c.read_bytes()


def test_rebuilding_an_image_replaces_rather_than_duplicates(
    base: Path, site: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    once = tmp_path / "once.img"
    twice = tmp_path / "twice.img"
    assert build(base, site, once, wheelhouse) == 0
    assert build(once, site, twice, wheelhouse) == 0
    config = run("mtype", "-i", fat(twice), "::config.txt").stdout
    assert config.count("enable_uart=1") == 1 and config.count("[all]") == 1


def _error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


def test_not_a_disk_image_is_refused_in_one_line(
    site: Path, wheelhouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\x01" * 2 * MiB)
    out = tmp_path / "out.img"
    assert build(junk, site, out, wheelhouse) == 2
    assert "no MBR partition table" in _error(capsys)
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_truncated_base_image_is_refused(
    base: Path, site: Path, wheelhouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    short = tmp_path / "short.img"
    short.write_bytes(base.read_bytes()[: 8 * MiB])
    assert build(short, site, tmp_path / "out.img", wheelhouse) == 2
    assert "ends past the end of the image" in _error(capsys)


def test_damaged_xz_is_refused(
    base_xz: Path, site: Path, wheelhouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "bad.img.xz"
    data = bytearray(base_xz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    assert build(bad, site, tmp_path / "out.img", wheelhouse) == 2
    assert "damaged .xz" in _error(capsys)


def test_root_partition_that_is_not_ext4_is_refused(
    base: Path, site: Path, wheelhouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    broken = tmp_path / "broken.img"
    data = bytearray(base.read_bytes())
    start = ROOT_START * 512
    data[start : start + 2 * MiB] = bytes(2 * MiB)
    broken.write_bytes(bytes(data))
    assert build(broken, site, tmp_path / "out.img", wheelhouse) == 2
    assert "root partition is not ext4" in _error(capsys)


def test_bad_site_file_stops_the_build(
    base: Path, site: Path, wheelhouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    site.write_text(SITE.replace("uart = true", "uart = false"))
    assert build(base, site, tmp_path / "out.img", wheelhouse) == 2
    assert "'hardware.uart' must be true" in _error(capsys)


def test_missing_tool_is_named_with_its_package(
    base: Path, site: Path, wheelhouse: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # mtools live in /usr/bin
    assert build(base, site, tmp_path / "out.img", wheelhouse) == 2
    err = _error(capsys)
    assert "missing tool(s): mcopy, mdir —" in err and "apt-get install mtools" in err


def test_progress_bar_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    quiet, tty = io.StringIO(), Tty()
    for stream in (quiet, tty):
        with Progress("copying", 4 * MiB, stream) as bar:
            bar.advance(4 * MiB)
    assert quiet.getvalue() == ""
    assert "copying" in tty.getvalue() and "100%" in tty.getvalue()


def test_root_partition_too_small_is_named(
    base: Path, site: Path, wheelhouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    big = tmp_path / "big-wheelhouse"
    big.mkdir()
    for wheel in wheelhouse.glob("*.whl"):
        (big / wheel.name).write_bytes(wheel.read_bytes())
    (big / "bigdep-1.0-py3-none-any.whl").write_bytes(os.urandom(8 * MiB))  # root has ~6 MiB
    out = tmp_path / "out.img"
    assert build(base, site, out, big) == 2
    assert "the root partition has no room for pitap" in _error(capsys)
    assert not out.exists()


def test_first_boot_provisions_what_the_image_carries(
    base: Path, site: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """The built image's two partitions unpacked into a chroot-like folder (debugfs rdump,
    mcopy), then first boot run against it: the site file from the image provisions it."""
    from firmware.provision.firstboot import provision

    out = tmp_path / "terminal.img"
    assert build(base, site, out, wheelhouse) == 0
    root = tmp_path / "root"
    (root / "boot" / "firmware").mkdir(parents=True)
    run("debugfs", "-R", f"rdump /etc /opt /usr {root}", ext4(out))
    run("mcopy", "-s", "-n", "-i", fat(out), "::pitap-site.toml", str(root / "boot" / "firmware"))
    assert (root / "usr/local/sbin/pitap-firstboot").stat().st_mode & 0o111
    result = provision(root)
    assert result.ok and result.terminal_id == "PITAP042"
    assert not (root / "boot" / "firmware" / "pitap-site.toml").exists()
    assert 'terminal_id = "PITAP042"' in (root / "etc" / "pitap" / "terminal.toml").read_text()


def _no_wheelhouse_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if the build reaches the (slow, downloading) wheelhouse step."""
    def too_early(*_a: object, **_k: object) -> None:
        raise AssertionError("the wheelhouse was built before the inputs were checked")

    monkeypatch.setattr("firmware.provision.wheelhouse.build_for_target", too_early)


def build_downloading(base: Path, site: Path, out: Path) -> int:
    return main(["image", "build", "--base", str(base), "--site", str(site), "--out", str(out)])


@pytest.mark.parametrize("case", ["junk", "truncated", "truncated-xz", "no-folder", "out-is-dir",
                                  "not-ext4"])
def test_every_input_is_checked_before_the_wheelhouse_is_built(
    case: str, base: Path, base_xz: Path, site: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _no_wheelhouse_yet(monkeypatch)
    out = tmp_path / "out.img"
    image = base
    expected = {
        "junk": "no MBR partition table", "truncated": "ends past the end of the image",
        "truncated-xz": "damaged or truncated .xz", "no-folder": "does not exist",
        "out-is-dir": "is a directory", "not-ext4": "root partition is not ext4",
    }[case]
    if case == "junk":
        image = tmp_path / "junk.img"
        image.write_bytes(b"\x01" * MiB)
    elif case == "truncated":
        image = tmp_path / "short.img"
        image.write_bytes(base.read_bytes()[: 8 * MiB])
    elif case == "truncated-xz":
        image = tmp_path / "short.img.xz"
        image.write_bytes(base_xz.read_bytes()[:-100])
    elif case == "no-folder":
        out = tmp_path / "missing" / "out.img"
    elif case == "out-is-dir":
        out = tmp_path
    elif case == "not-ext4":
        image = tmp_path / "broken.img"
        data = bytearray(base.read_bytes())
        data[ROOT_START * 512 : ROOT_START * 512 + 2 * MiB] = bytes(2 * MiB)
        image.write_bytes(bytes(data))
    assert build_downloading(image, site, out) == 2
    err = capsys.readouterr().err
    assert "building the wheelhouse" not in err
    assert expected in err.strip().splitlines()[-1]


def test_xz_index_gives_the_uncompressed_size(base: Path, base_xz: Path) -> None:
    from firmware.provision.image import xz_uncompressed_size

    assert xz_uncompressed_size(base_xz) == base.stat().st_size
