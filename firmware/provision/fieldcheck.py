"""The field check a TEST terminal runs on itself after boot (what `make field-test` boots).

Turned on only by a test-mode site file's `[test] field_check = true` (first boot then writes
/etc/pitap/field-check.toml; pitap-test-host.service and pitap-field-check.service need it). On
each boot it checks, waiting for states rather than for time:
- boot 1: first boot ran and succeeded, the secrets are root-only in /etc/pitap, the clear copy is
  gone from the boot partition; pitap.service reached its ready screen; then, with pitap.service
  stopped (it holds the reader), one payment from a simulated phone on the loopback reader is
  approved online by the host simulator (`pitap pay`), `pitap diag --json` passes every check,
  and the payment is in the journal (`pitap journal --json`);
- boot 2 and later: first boot did not run again, pitap.service reached ready, the journal still
  holds the payment.
Results: one line a check on the console (`pitap-field-check: PASS|FAIL name: detail`), a final
`pitap-field-check: boot N: ALL PASSED|FAILED` line, and /var/lib/pitap-field/boot-N.json. The
unit then powers the machine off (SuccessAction/FailureAction), so the check never hangs a boot.

Run: `python -m firmware.provision.fieldcheck`; exit 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from firmware.provision.firstboot import RESULT_FILE_NAME
from firmware.provision.site import FIELD_CHECK_FILE, SITE_FILE_NAME, TerminalPaths

log = logging.getLogger(__name__)

RESULTS_DIR = Path("/var/lib/pitap-field")
PITAP = "/opt/pitap/venv/bin/pitap"
BOOT_DIR = Path("/boot/firmware")
READY_WAIT_S = 20 * 60.0  # emulated machines (TCG) start Python slowly: wait for states, long
STEP_TIMEOUT_S = 20 * 60.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _run(args: list[str], timeout: float = STEP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def unit_properties(unit: str, *names: str) -> dict[str, str]:
    done = _run(["systemctl", "show", unit, *(f"--property={n}" for n in names)], timeout=60)
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def unit_start_ns(unit: str) -> int:
    """When the unit's main process started, as a realtime clock value in ns (0 if never):
    systemd's monotonic timestamp moved onto this boot's realtime clock."""
    started = unit_properties(unit, "ExecMainStartTimestampMonotonic").get(
        "ExecMainStartTimestampMonotonic", "0")
    if not started.isdigit() or started == "0":
        return 0
    offset = time.time_ns() - time.monotonic_ns()
    return int(started) * 1000 + offset


def unit_log(unit: str, lines: int = 15) -> str:
    """The unit's last journal lines, one string (for a failed check's detail)."""
    done = _run(["journalctl", "-u", unit, "-n", str(lines), "--no-pager", "-o", "cat"],
                timeout=60)
    return " | ".join(done.stdout.strip().splitlines()[-lines:])


def wait_for(what: str, predicate: Callable[[], object], timeout: float,
             every: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            log.warning("gave up waiting for %s after %.0f s", what, timeout)
            return False
        time.sleep(every)


# ---- boot 1: first boot and the secrets -----------------------------------------------------


def check_first_boot_ran() -> Check:
    p = unit_properties("pitap-firstboot.service", "Result", "ExecMainStatus",
                        "ExecMainStartTimestampMonotonic", "ConditionResult")
    ran = p.get("ExecMainStartTimestampMonotonic", "0") not in ("", "0")
    ok = ran and p.get("Result") == "success" and p.get("ExecMainStatus") == "0"
    result = (BOOT_DIR / RESULT_FILE_NAME)
    said = result.read_text().strip() if result.is_file() else "(no result file)"
    return Check("first boot ran", ok and said.startswith("OK"),
                 f"result={p.get('Result')} status={p.get('ExecMainStatus')}; {said}")


def check_first_boot_skipped() -> Check:
    p = unit_properties("pitap-firstboot.service", "ExecMainStartTimestampMonotonic",
                        "ConditionResult")
    ran = p.get("ExecMainStartTimestampMonotonic", "0") not in ("", "0")
    return Check("first boot not run again", not ran and p.get("ConditionResult") == "no",
                 f"condition={p.get('ConditionResult')} started={'yes' if ran else 'no'}")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def check_secrets_private(paths: TerminalPaths) -> Check:
    secrets = Path(paths.secrets_dir)
    problems = []
    if not secrets.is_dir() or _mode(secrets) != 0o700:
        problems.append(f"{secrets} missing or not 0700")
    files = sorted(secrets.iterdir()) if secrets.is_dir() else []
    for f in [Path(paths.terminal_toml), *files]:
        if not f.is_file() or _mode(f) != 0o600 or f.stat().st_uid != 0:
            problems.append(f"{f} missing or not root 0600")
    names = ", ".join(f.name for f in files)
    return Check("secrets root-only", not problems and bool(files),
                 "; ".join(problems) or f"{secrets} 0700: {names} (0600)")


def check_clear_copy_gone() -> Check:
    site = BOOT_DIR / SITE_FILE_NAME
    return Check("clear copy deleted", not site.exists(),
                 f"{site} {'still there' if site.exists() else 'gone'}")


# ---- the running terminal -------------------------------------------------------------------


def check_service_ready(state_dir: Path) -> Check:
    """pitap.service is active and has drawn its ready screen since it started."""
    screens = state_dir / "screens"
    seen: list[str] = []

    def ready() -> bool:
        if unit_properties("pitap.service", "ActiveState").get("ActiveState") != "active":
            return False
        started = unit_start_ns("pitap.service")
        if not started:
            return False
        frames = [p for p in screens.glob("[0-9][0-9][0-9]-ready*.png")
                  if p.stat().st_mtime_ns >= started]
        seen[:] = sorted(p.name for p in frames)
        return bool(frames)

    ok = wait_for("pitap.service ready", ready, READY_WAIT_S)
    if ok:
        return Check("pitap.service ready", True, f"ready screen {seen[-1]} drawn by the service")
    state = unit_properties("pitap.service", "ActiveState", "SubState", "Result", "NRestarts")
    frames = sorted(p.name for p in screens.glob("*.png"))
    return Check("pitap.service ready", False,
                 f"no ready screen from pitap.service ({state}; frames {frames[-5:]}); "
                 f"log: {unit_log('pitap.service')}")


def stop_service() -> Check:
    done = _run(["systemctl", "stop", "pitap.service"], timeout=300)
    state = unit_properties("pitap.service", "ActiveState", "Result")
    ok = done.returncode == 0 and state.get("ActiveState") in ("inactive", "failed")
    return Check("pitap.service stopped for the test", ok and state.get("Result") == "success",
                 f"state={state.get('ActiveState')} result={state.get('Result')}")


def wait_for_tcp(port: int, timeout: float) -> bool:
    def accepts() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                return True
        except OSError:
            return False

    return wait_for(f"127.0.0.1:{port}", accepts, timeout)


def _udp_bound(port: int) -> bool:
    with open("/proc/net/udp") as f:
        return any(line.split()[1].endswith(f":{port:04X}") for line in list(f)[1:])


class Phone:
    """`pitap wallet` answering `taps` taps on the loopback reader, ready once its port is bound."""

    def __init__(self, profile: str, reader: str, taps: int = 1) -> None:
        self.port = int(reader.rsplit(":", 1)[1])
        self.proc = subprocess.Popen(
            [PITAP, "wallet", "--profile", profile, "--reader", reader, "--taps", str(taps),
             "--timeout", str(int(STEP_TIMEOUT_S))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait_ready(self) -> bool:
        return wait_for("the simulated phone", lambda: self.proc.poll() is not None
                        or _udp_bound(self.port), STEP_TIMEOUT_S, every=1.0) \
            and self.proc.poll() is None

    def finish(self, wait: float = 120.0) -> str:
        try:
            out, _ = self.proc.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return " / ".join(out.strip().splitlines()[-2:])

    def stop(self) -> str:
        """End the phone now (SIGTERM): for a step that needs it in the field, not tapped."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.finish(wait=30.0)


def take_payment(config: Path, field: dict[str, Any], reader: str) -> tuple[Check, dict]:
    phone = Phone(field["wallet"], reader)
    if not phone.wait_ready():
        return Check("payment approved online", False, f"phone: {phone.finish()}"), {}
    amount = f"{field['amount'] / 100:.2f}"
    done = _run([PITAP, "pay", amount, "--json", "--config", str(config)])
    said = phone.finish()
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Check("payment approved online", False,
                     f"pitap pay exit {done.returncode}: {done.stderr.strip()[-300:]}"), {}
    ok = result.get("outcome") == "approved" and not result.get("offline", False)
    detail = (f"id={result.get('id')} outcome={result.get('outcome')} "
              f"offline={result.get('offline')} auth={result.get('auth_code')} "
              f"amount={result.get('amount')}; phone: {said}")
    return Check("payment approved online", ok and done.returncode == 0, detail), result


def run_diag(config: Path, field: dict[str, Any], reader: str) -> list[Check]:
    phone = Phone(field["wallet"], reader)  # the field test wants a card in the field
    if not phone.wait_ready():
        return [Check("diag", False, f"phone: {phone.finish()}")]
    done = _run([PITAP, "diag", "--json", "--no-ask", "--field-timeout", "600",
                 "--config", str(config)])
    # diag's field check activates the phone and sends no APDU, which the phone does not count
    # as a tap: it would wait for one until finish() gave up (2 minutes lost on every boot 1)
    phone.stop()
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return [Check("diag", False, f"exit {done.returncode}: {done.stderr.strip()[-300:]}")]
    checks = [Check(f"diag {c['name']}", bool(c["ok"]), c["detail"]) for c in report["checks"]]
    summary = Check("diag passed", bool(report.get("ok")) and done.returncode == 0,
                    f"{sum(c.ok for c in checks)} of {len(checks)} checks passed")
    return [*checks, summary]


def check_journal(config: Path, payment_id: int | None) -> Check:
    done = _run([PITAP, "journal", "--json", "--config", str(config)])
    try:
        payments = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    except ValueError:
        try:
            payments = json.loads(done.stdout)
        except ValueError:
            return Check("payment in the journal", False, f"exit {done.returncode}")
    if isinstance(payments, dict):
        payments = payments.get("payments", [payments])
    approved = [p for p in payments if p.get("outcome") == "approved"]
    if payment_id is not None:
        approved = [p for p in approved if p.get("id") == payment_id]
    return Check("payment in the journal", bool(approved),
                 f"{len(payments)} payment(s), approved: "
                 + ", ".join(f"#{p.get('id')} {p.get('amount')} {p.get('currency')}"
                             for p in approved))


# ---- the whole check ------------------------------------------------------------------------


def boot_number() -> int:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return len(list(RESULTS_DIR.glob("boot-*.json"))) + 1


def field_check(paths: TerminalPaths) -> tuple[int, list[Check]]:
    config = Path(paths.terminal_toml)
    field = tomllib.loads((Path(paths.config_dir) / FIELD_CHECK_FILE).read_text())
    from firmware.config import load_config

    cfg = load_config(config)
    boot = boot_number()
    checks: list[Check] = []

    def add(*found: Check) -> None:
        for c in found:
            print(f"pitap-field-check: {'PASS' if c.ok else 'FAIL'} {c.name}: {c.detail}",
                  flush=True)
            checks.append(c)

    print(f"pitap-field-check: boot {boot}: starting", flush=True)
    if boot == 1:
        add(check_first_boot_ran(), check_secrets_private(paths), check_clear_copy_gone())
    else:
        add(check_first_boot_skipped())
    add(check_service_ready(Path(paths.state_dir)))
    host_up = wait_for_tcp(cfg.host.port, STEP_TIMEOUT_S)
    add(Check("host simulator listening", host_up, f"127.0.0.1:{cfg.host.port}"))
    if boot == 1:
        add(stop_service())
        payment, result = take_payment(config, field, cfg.reader.path)
        add(payment)
        add(*run_diag(config, field, cfg.reader.path))
        add(check_journal(config, result.get("id")))
    else:
        add(check_journal(config, None))
    return boot, checks


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="pitap-field-check: %(message)s")
    paths = TerminalPaths()
    if not (Path(paths.config_dir) / FIELD_CHECK_FILE).is_file():
        print("pitap-field-check: not a field-test terminal; nothing to do", file=sys.stderr)
        return 0
    try:
        boot, checks = field_check(paths)
    except Exception as exc:  # noqa: BLE001 - the result must reach the console, then power off
        log.exception("the field check itself failed")
        boot, checks = boot_number(), [Check("field check", False, repr(exc))]
    ok = all(c.ok for c in checks)
    out = RESULTS_DIR / f"boot-{boot}.json"
    tmp = out.with_suffix(".new")
    tmp.write_text(json.dumps({"boot": boot, "ok": ok, "checks": [asdict(c) for c in checks]},
                              indent=1) + "\n")
    os.replace(tmp, out)
    shutil.copyfile(out, RESULTS_DIR / "last.json")
    os.sync()
    print(f"pitap-field-check: boot {boot}: {'ALL PASSED' if ok else 'FAILED'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
