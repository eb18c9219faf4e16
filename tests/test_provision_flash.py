"""`pitap flash`: write to a file-backed target, read back and compare; a target that fails
half-way (a real file-size limit, as a full card would) and a corrupted read-back are reported as
failures, never as done; unsafe targets are refused before anything is written."""

from __future__ import annotations

import lzma
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from firmware.cli import main
from firmware.provision.flash import (
    FlashFailed,
    FlashRefused,
    flash,
    mountinfo_devices,
    system_disks,
)

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 MiB: data, a 4 MiB run of zeros, data, and a trailing zero run (like an SD image)."""
    path = tmp_path_factory.mktemp("image") / "terminal.img"
    rnd = os.urandom
    path.write_bytes(rnd(3 * MiB) + bytes(4 * MiB) + rnd(MiB + 123) + bytes(2 * MiB - 123))
    return path


def yes(*_args: object) -> bool:
    return True


def test_flash_to_a_new_file_writes_and_verifies(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    target = tmp_path / "card.img"
    assert main(["flash", str(image), str(target)]) == 0  # a new file: nothing to confirm
    assert target.read_bytes() == image.read_bytes()
    out = capsys.readouterr().out
    # zeros from 3 MiB to 7 MiB, and from 8 MiB + 64 KiB (the first whole 64 KiB block) to the end
    assert "verified" in out and "5.9 MiB of zero blocks skipped" in out
    # the skipped run was left as a hole: fewer blocks allocated than the image's size
    assert target.stat().st_blocks * 512 < image.stat().st_size


def test_flash_an_xz_image(image: Path, tmp_path: Path) -> None:
    xz = tmp_path / "terminal.img.xz"
    xz.write_bytes(lzma.compress(image.read_bytes(), preset=0))
    target = tmp_path / "card.img"
    result = flash(xz, target, yes)
    assert target.read_bytes() == image.read_bytes()
    assert result.image_bytes == image.stat().st_size


def test_existing_file_is_overwritten_completely(image: Path, tmp_path: Path) -> None:
    target = tmp_path / "card.img"
    target.write_bytes(b"\xff" * 16 * MiB)  # old contents, longer than the image
    assert main(["flash", str(image), str(target), "--yes"]) == 0
    assert target.read_bytes() == image.read_bytes()


def test_corrupted_read_back_is_reported(image: Path, tmp_path: Path) -> None:
    target = tmp_path / "card.img"

    def flip_a_bit() -> None:  # the card returns something else than was written
        with open(target, "r+b") as f:
            f.seek(9 * MiB + 5)
            byte = f.read(1)
            f.seek(9 * MiB + 5)
            f.write(bytes([byte[0] ^ 0x01]))

    with pytest.raises(FlashFailed, match=r"verify failed.*1 of 3 blocks.*first at byte 8388608"):
        flash(image, target, yes, before_verify=flip_a_bit)


def test_read_back_shorter_than_the_image_is_reported(image: Path, tmp_path: Path) -> None:
    target = tmp_path / "card.img"
    with pytest.raises(FlashFailed, match="the target ends at byte"):
        flash(image, target, yes, before_verify=lambda: os.truncate(target, 5 * MiB))


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (5 * MiB, 5 * MiB))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_target_that_fails_half_way_is_reported(image: Path, tmp_path: Path) -> None:
    """The kernel stops the file at 5 MiB (like a card that is full): a short write, then EFBIG."""
    target = tmp_path / "card.img"
    done = subprocess.run(
        [sys.executable, "-m", "firmware", "flash", str(image), str(target), "--yes"],
        capture_output=True, text=True, preexec_fn=_limit_file_size, timeout=60,
    )
    assert done.returncode == 1
    assert "flash FAILED: write failed at byte" in done.stderr
    assert "NOT usable" in done.stderr
    assert "verified" not in done.stdout
    assert "Traceback" not in done.stderr


def test_existing_target_needs_confirmation(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "card.img"
    target.write_bytes(b"precious")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert main(["flash", str(image), str(target)]) == 2
    assert "add --yes" in capsys.readouterr().err
    assert target.read_bytes() == b"precious"


def test_answering_no_writes_nothing(
    image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "card.img"
    target.write_bytes(b"precious")
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda _prompt: "no")
    assert main(["flash", str(image), str(target)]) == 2
    assert target.read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("/dev/null", "neither a block device nor a regular file"),
        ("/dev/pitap-no-such-card", "no such device"),
        ("{tmp}/no/such/dir/card.img", "no such directory"),
        ("{image}", "the target is the image itself"),
    ],
)
def test_unsafe_targets_are_refused(
    image: Path, tmp_path: Path, target: str, fragment: str
) -> None:
    path = Path(target.format(tmp=tmp_path, image=image))
    existed = path.exists()
    with pytest.raises(FlashRefused, match=fragment):
        flash(image, path, yes)
    assert path.exists() == existed


def test_the_disk_this_system_runs_from_is_refused(image: Path) -> None:
    mountinfo = Path("/proc/self/mountinfo").read_text()
    disks = sorted(system_disks(mountinfo))
    if not disks or not Path(f"/dev/{disks[0]}").exists():
        pytest.skip("the root filesystem is not on a block device here")
    asked: list[object] = []
    with pytest.raises(FlashRefused, match="the disk this system runs from"):
        flash(image, Path(f"/dev/{disks[0]}"), lambda *a: asked.append(a) or False)
    assert asked == []  # refused before even asking


def test_mountinfo_parsing() -> None:
    text = (
        "27 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
        "40 27 179:2 / /media/pi/bootfs rw - vfat /dev/mmcblk0p2 rw\n"
    )
    assert mountinfo_devices(text) == {"254:1": "/", "179:2": "/media/pi/bootfs"}
