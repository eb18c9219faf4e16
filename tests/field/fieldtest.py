"""The field test (`make field-test`): our SD image boots in an emulated arm64 machine, provisions
itself and takes a payment.

Stages, each timed and reported:
1. base   - a Raspberry Pi OS Lite-shaped image from Debian bookworm arm64 (make-base-image.sh),
            cached as build/field/base.img (rebuilt when the script changes);
2. image  - `pitap image build` from tests/field/site.toml, as a technician runs it (wheels
            downloaded for aarch64, nothing pre-seeded);
3. boot 1 - qemu-system-aarch64 -M virt (TCG), no network device, kernel and initrd read out of
            the image's root, root on its second partition, serial console to a log; the image's
            pitap-field-check.service checks, takes a payment, runs diag and powers off;
4. read   - the image read back without mounting (debugfs, mtools, sqlite3): secrets root-only,
            no clear copy (nor its secret values) on the boot partition, the approved payment in
            the journal under /var/lib/pitap;
5. boot 2 - the same machine again: first boot does not run again, the terminal comes up ready.

Independent of the code under test for every verdict: it reads the serial log, debugfs and
mtools output and the SQLite file itself. Exit 0 when every check passed.

    python tests/field/fieldtest.py [--stage base] [--keep-going] [--boot-timeout S]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
TREE = HERE.parents[1]
BUILD = TREE / "build" / "field"
BASE = BUILD / "base.img"
BASE_STAMP = BUILD / "base.img.script-sha256"
IMAGE = BUILD / "pitap-field.img"
SITE = HERE / "site.toml"
PITAP = TREE / ".venv" / "bin" / "pitap"
SECTOR = 512
# One emulated boot, at most: a passing first boot takes about 7 minutes here (2 cores, TCG),
# twice that with other work on the machine, and the whole of .ci/run (two `make test` and
# this) must stay well inside CI's 90 minutes.
BOOT_TIMEOUT_S = 25 * 60.0
TOOLS = {"qemu-system-aarch64": "qemu-system-arm", "debugfs": "e2fsprogs", "mcopy": "mtools",
         "mdir": "mtools", "sfdisk": "fdisk", "mmdebstrap": "mmdebstrap",
         "qemu-aarch64-static": "qemu-user-static", "update-binfmts": "binfmt-support",
         "mkfs.vfat": "dosfstools"}


class Report:
    def __init__(self) -> None:
        self.checks: list[tuple[str, bool, str]] = []
        self.timings: list[tuple[str, float]] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append((name, ok, detail))
        print(f"  {'PASS' if ok else 'FAIL'}  {name}{': ' + detail if detail else ''}",
              flush=True)
        return ok

    def stage(self, name: str) -> _Stage:
        return _Stage(self, name)

    def summary(self) -> bool:
        print("\n== field test summary", flush=True)
        for name, seconds in self.timings:
            print(f"  stage {name:<8} {seconds / 60:5.1f} min")
        failed = [c for c in self.checks if not c[1]]
        print(f"  {len(self.checks) - len(failed)} checks passed, {len(failed)} failed")
        for name, _ok, detail in failed:
            print(f"  FAILED: {name}: {detail}")
        return not failed and bool(self.checks)


class _Stage:
    def __init__(self, report: Report, name: str) -> None:
        self.report, self.name = report, name

    def __enter__(self) -> _Stage:
        self.started = time.monotonic()
        print(f"\n== stage {self.name} ({time.strftime('%H:%M:%S')})", flush=True)
        return self

    def __exit__(self, *exc: object) -> None:
        took = time.monotonic() - self.started
        self.report.timings.append((self.name, took))
        print(f"== stage {self.name} took {took / 60:.1f} min", flush=True)


def run(*args: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False,
                          **kw)  # type: ignore[call-overload]


# ---- reading an image without mounting it --------------------------------------------------


def partitions(image: Path) -> tuple[int, int]:
    """Byte offsets of the FAT boot (first) and Linux root (second) partitions, from sfdisk."""
    table = json.loads(run("sfdisk", "--json", image).stdout)["partitiontable"]
    parts = table["partitions"]
    return parts[0]["start"] * SECTOR, parts[1]["start"] * SECTOR


class Ext4:
    def __init__(self, image: Path, offset: int) -> None:
        self.target = f"{image}?offset={offset}"

    def cmd(self, command: str) -> str:
        return run("debugfs", "-R", command, self.target).stdout

    def dump(self, path: str, dest: Path) -> bool:
        dest.unlink(missing_ok=True)
        run("debugfs", "-R", f"dump {path} {dest}", self.target)
        return dest.exists()

    def read(self, path: str) -> bytes | None:
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / "f"
            return dest.read_bytes() if self.dump(path, dest) else None

    def stat(self, path: str) -> tuple[int, int] | None:
        """(permission bits, uid) of a path, None when it does not exist."""
        out = self.cmd(f"stat {path}")
        mode = re.search(r"Mode:\s+0?(\d+)", out)
        uid = re.search(r"User:\s+(\d+)", out)
        return (int(mode.group(1), 8), int(uid.group(1))) if mode and uid else None

    def names(self, directory: str) -> list[str]:
        out = self.cmd(f"ls -p {directory}")
        return [p.split("/")[5] for p in out.splitlines() if p.count("/") >= 6
                and p.split("/")[5] not in (".", "..", "")]


def fat_files(image: Path, offset: int) -> dict[str, bytes]:
    target = f"{image}@@{offset}"
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "MTOOLSRC": os.devnull}
    out = {}
    listing = run("mdir", "-b", "-i", target, "::", env=env).stdout.split()
    with tempfile.TemporaryDirectory() as tmp:
        for entry in listing:
            name = entry.rsplit("/", 1)[-1]
            dest = Path(tmp) / name
            run("mcopy", "-n", "-i", target, f"::{name}", dest, env=env)
            if dest.is_file():
                out[name] = dest.read_bytes()
    return out


def fat_region(image: Path, offset: int, root_offset: int) -> bytes:
    """The whole boot partition's bytes (deleted clusters included)."""
    with open(image, "rb") as f:
        f.seek(offset)
        return f.read(root_offset - offset)


# ---- stages ---------------------------------------------------------------------------------


def need_tools(report: Report) -> bool:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    return report.check("host tools", not missing,
                        f"apt-get install {' '.join(missing)}" if missing else "all present")


def stage_base(report: Report) -> bool:
    script = HERE / "make-base-image.sh"
    digest = hashlib.sha256(script.read_bytes()).hexdigest()
    with report.stage("base"):
        if BASE.is_file() and BASE_STAMP.is_file() and BASE_STAMP.read_text().strip() == digest:
            return report.check("base image (cached)", True, str(BASE.relative_to(TREE)))
        BUILD.mkdir(parents=True, exist_ok=True)
        BASE.unlink(missing_ok=True)
        done = subprocess.run(["bash", str(script), str(BASE)], check=False)
        ok = done.returncode == 0 and BASE.is_file()
        if ok:
            BASE_STAMP.write_text(digest + "\n")
        return report.check("base image built", ok, f"exit {done.returncode}")


def stage_image(report: Report) -> bool:
    with report.stage("image"):
        IMAGE.unlink(missing_ok=True)
        started = time.monotonic()
        done = subprocess.run([str(PITAP), "image", "build", "--base", str(BASE), "--site",
                               str(SITE), "--out", str(IMAGE)], capture_output=True, text=True,
                              check=False)
        sys.stdout.write(done.stdout)
        sys.stdout.write(done.stderr)
        ok = report.check("pitap image build", done.returncode == 0 and IMAGE.is_file(),
                          f"exit {done.returncode} in {time.monotonic() - started:.0f} s")
        if not ok:
            return False
        boot, root = partitions(IMAGE)
        manifest = json.loads(Ext4(IMAGE, root).read("/opt/pitap/image-manifest.json") or b"{}")
        wheels = manifest.get("wheels", {})
        report.check("wheelhouse for aarch64", any(w.startswith("pitap-") for w in wheels)
                     and any("aarch64" in w for w in wheels),
                     f"{len(wheels)} wheels, missing: {manifest.get('missing_wheels') or 'none'}")
        report.check("lgpio (manylinux_2_34) in the wheelhouse",
                     any(w.startswith("lgpio-") for w in wheels))
        report.check("the simulators' wheel (this site's field check runs the host on the Pi)",
                     any(w.startswith("pitap_sim-") for w in wheels))
        files = fat_files(IMAGE, boot)
        return report.check("site file on the boot partition", "pitap-site.toml" in files)


def kernel_and_initrd(work: Path) -> tuple[Path, Path, str]:
    """The newest vmlinuz/initrd pair from the image's /boot, and its cmdline.txt adapted to
    the emulated machine's serial console (ttyAMA0: the virt board's PL011)."""
    boot, root = partitions(IMAGE)
    fs = Ext4(IMAGE, root)
    names = fs.names("/boot")
    kernels = sorted(n for n in names if n.startswith("vmlinuz-"))
    if not kernels:
        raise RuntimeError("no /boot/vmlinuz-* in the image's root")
    version = kernels[-1][len("vmlinuz-"):]
    kernel, initrd = work / "vmlinuz", work / "initrd.img"
    if not (fs.dump(f"/boot/vmlinuz-{version}", kernel)
            and fs.dump(f"/boot/initrd.img-{version}", initrd)):
        raise RuntimeError(f"cannot read the kernel/initrd {version} from the image")
    cmdline = fat_files(IMAGE, boot)["cmdline.txt"].decode().split()
    words = [w for w in cmdline if not w.startswith("console=")]
    return kernel, initrd, " ".join([*words, "console=ttyAMA0,115200"])


def boot(report: Report, n: int, timeout: float) -> str:
    """Boot the image once; returns the serial log. The machine powers itself off."""
    log = BUILD / f"serial-boot{n}.log"
    log.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        kernel, initrd, cmdline = kernel_and_initrd(Path(tmp))
        args = ["qemu-system-aarch64", "-M", "virt", "-accel", "tcg,thread=multi",
                "-cpu", "cortex-a72", "-smp", "2", "-m", "2048",
                "-nic", "none", "-display", "none", "-monitor", "none",
                "-serial", f"file:{log}", "-no-reboot",
                "-device", "virtio-rng-pci",
                "-drive", f"file={IMAGE},format=raw,if=virtio",
                "-kernel", str(kernel), "-initrd", str(initrd), "-append", cmdline]
        print(f"  qemu: -M virt, no network device, append {cmdline!r}", flush=True)
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        shown, stuck = 0, ""
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(5)
            shown = _progress(log, shown)
            text = "" if stuck or not log.exists() else log.read_text(errors="replace")
            found = _STUCK.search(text)
            if found:
                # nothing powers the machine off after these: give the console a moment, stop
                stuck = found.group(0)
                deadline = min(deadline, time.monotonic() + STUCK_GRACE_S)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            why = (f"stuck after {stuck!r}" if stuck
                   else f"still running after {timeout / 60:.0f} min")
            report.check(f"boot {n}: powered itself off", False, f"{why} (killed); log {log}")
            _tail(log)
        else:
            report.check(f"boot {n}: powered itself off", proc.returncode == 0,
                         f"qemu exit {proc.returncode}")
        out = proc.stdout.read() if proc.stdout else ""
        if out.strip():
            print("  qemu said: " + out.strip()[-500:], flush=True)
    _progress(log, shown)
    return log.read_text(errors="replace") if log.exists() else ""


_MILESTONES = re.compile(r"(Linux version|Run /init|EXT4-fs \(vda2\): mounted|systemd\[1\]: "
                         r"systemd \d|pitap-firstboot:|pitap-field-check:|Reached target.*"
                         r"Multi-User|reboot: Power down|Kernel panic|Started pitap|"
                         r"Failed to start)")


# Lines after which the machine cannot reach the field check's power-off: a failed first boot
# (the field check's configuration is written by it), a kernel panic.
_STUCK = re.compile(r"pitap-firstboot: FAILED|Kernel panic")
STUCK_GRACE_S = 30.0


def _tail(log: Path, lines: int = 40) -> None:
    """The end of the serial log, for a boot that went wrong (CI shows only what is printed)."""
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    print(f"  last {min(lines, len(text))} lines of {log.name}:", flush=True)
    for line in text[-lines:]:
        print(f"  | {line.rstrip()[:200]}", flush=True)


def _progress(log: Path, shown: int) -> int:
    """Print the serial log's milestones as they arrive."""
    if not log.exists():
        return shown
    lines = log.read_text(errors="replace").splitlines()
    for line in lines[shown:]:
        if _MILESTONES.search(line):
            print(f"  [serial] {line.strip()[:160]}", flush=True)
    return len(lines)


def field_results(log: str, n: int) -> dict[str, tuple[bool, str]]:
    found = {}
    for m in re.finditer(r"pitap-field-check: (PASS|FAIL) ([^:\r\n]+): ([^\r\n]*)", log):
        found[m.group(2).strip()] = (m.group(1) == "PASS", m.group(3).strip())
    return found


def check_boot_log(report: Report, log: str, n: int, wanted: list[str]) -> None:
    results = field_results(log, n)
    for name in wanted:
        ok, detail = results.get(name, (False, "not reported on the serial console"))
        report.check(f"boot {n}: {name}", ok, detail[:200])
    for name, (ok, detail) in sorted(results.items()):
        if name.startswith("diag ") and name != "diag passed":
            report.check(f"boot {n}: {name}", ok, detail[:120])
    report.check(f"boot {n}: field check finished",
                 f"pitap-field-check: boot {n}: ALL PASSED" in log,
                 "ALL PASSED on the console" if f"boot {n}: ALL PASSED" in log
                 else "no ALL PASSED line")
    firstboot_started = bool(re.search(r"Start(ing|ed) pitap-firstboot|pitap first boot", log))
    if n == 1:
        report.check("boot 1: first boot ran once", log.count("pitap-firstboot: OK") == 1,
                     "pitap-firstboot: OK on the console")
    else:
        report.check(f"boot {n}: first boot not started", not firstboot_started and
                     "pitap-firstboot:" not in log, "no pitap-firstboot output on the console")


def stage_read_back(report: Report) -> None:
    boot_off, root_off = partitions(IMAGE)
    fs = Ext4(IMAGE, root_off)
    site = tomllib.loads(SITE.read_text())
    files = fat_files(IMAGE, boot_off)
    report.check("read-back: no clear site file on the boot partition",
                 "pitap-site.toml" not in files, ", ".join(sorted(files)))
    result = files.get("pitap-provision-result.txt", b"").decode(errors="replace").strip()
    report.check("read-back: provision result OK", result.startswith("OK"), result[:120])
    raw = fat_region(IMAGE, boot_off, root_off)
    secrets = [site["keys"]["journal_key"], site["keys"]["key_block"]]
    leaked = [s[:6] + "..." for s in secrets
              if s.encode() in raw or s.lower().encode() in raw or s.upper().encode() in raw]
    report.check("read-back: no secret value left anywhere on the boot partition", not leaked,
                 f"found {leaked}" if leaked else "journal key and key block absent (raw bytes)")
    wanted = {"/etc/pitap/secrets": (0o700, 0), "/etc/pitap/terminal.toml": (0o600, 0)}
    for name in fs.names("/etc/pitap/secrets"):
        wanted[f"/etc/pitap/secrets/{name}"] = (0o600, 0)
    report.check("read-back: secrets present", {"journal.key", "key-block.tr31"} <=
                 set(fs.names("/etc/pitap/secrets")), ", ".join(fs.names("/etc/pitap/secrets")))
    for path, (mode, uid) in wanted.items():
        got = fs.stat(path)
        report.check(f"read-back: {path} private", got == (mode, uid),
                     f"mode {got[0]:o} uid {got[1]}" if got else "missing")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "journal.sqlite"
        if not fs.dump("/var/lib/pitap/journal.sqlite", db):
            report.check("read-back: journal under /var/lib/pitap", False, "no journal.sqlite")
            return
        fs.dump("/var/lib/pitap/journal.sqlite-wal", Path(tmp) / "journal.sqlite-wal")
        con = sqlite3.connect(db)
        try:
            rows = con.execute("SELECT id, amount, outcome, offline FROM payments").fetchall()
        finally:
            con.close()
        approved = [r for r in rows if r[2] == "approved" and not r[3]]
        report.check("read-back: approved online payment in the journal",
                     any(r[1] == site["test"]["amount"] for r in approved),
                     f"{len(rows)} payment(s): {rows}")
    for n in (1, 2):
        data = fs.read(f"/var/lib/pitap-field/boot-{n}.json")
        if data is not None:
            doc = json.loads(data)
            report.check(f"read-back: boot-{n}.json says ok", bool(doc.get("ok")),
                         f"{len(doc.get('checks', []))} checks")


BOOT1 = ["first boot ran", "secrets root-only", "clear copy deleted", "pitap.service ready",
         "host simulator listening", "pitap.service stopped for the test",
         "payment approved online", "diag passed", "payment in the journal"]
BOOT2 = ["first boot not run again", "pitap.service ready", "host simulator listening",
         "payment in the journal"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["base", "all"], default="all")
    parser.add_argument("--boot-timeout", type=float, default=BOOT_TIMEOUT_S,
                        help="seconds one emulated boot may take before it is killed")
    args = parser.parse_args(argv)
    report = Report()
    started = time.monotonic()
    if not need_tools(report) or not stage_base(report) or args.stage == "base":
        return 0 if report.summary() else 1
    if stage_image(report):
        with report.stage("boot1"):
            log = boot(report, 1, args.boot_timeout)
            check_boot_log(report, log, 1, BOOT1)
        with report.stage("readback"):
            stage_read_back(report)
        if "pitap-field-check: boot 1: ALL PASSED" not in log:
            print("\n  boot 2 skipped: boot 1 did not pass", flush=True)
            return 0 if report.summary() else 1
        with report.stage("boot2"):
            log = boot(report, 2, args.boot_timeout)
            check_boot_log(report, log, 2, BOOT2)
        with report.stage("readback"):
            stage_read_back(report)
    print(f"\n  total {(time.monotonic() - started) / 60:.1f} min", flush=True)
    return 0 if report.summary() else 1


if __name__ == "__main__":
    sys.exit(main())
