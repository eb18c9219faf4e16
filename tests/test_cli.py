"""The `pitap` command as a user meets it: one-line errors, exit codes, the demo's output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from run_support import run_pitap


@pytest.mark.parametrize(
    ("toml", "key"),
    [("[host]\nprot = 8583\n", "host.prot"), ("[reader]\npath = 5\n", "reader.path"),
     ("[terminal]\ncurrency = 'ABC'\n", "terminal.currency")],
)
def test_config_typo_is_one_line_and_exit_2(tmp_path: Path, toml: str, key: str) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text(toml)
    run = run_pitap("pay", "1.00", "--config", str(cfg))
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert key in lines[0] and str(cfg) in lines[0]
    assert "Traceback" not in run.stderr


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    run = run_pitap("pay", "1.00", "--config", str(tmp_path / "missing.toml"))
    assert run.returncode == 2
    assert "not found" in run.stderr and len(run.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("amount", ["abc", "-1", "1.005"])
def test_bad_amount_is_a_usage_error(amount: str) -> None:
    run = run_pitap("pay", amount)
    assert run.returncode == 2
    assert "amount" in run.stderr and "Traceback" not in run.stderr


def test_demo_state_is_wiped_at_start_also_when_relative(tmp_path: Path) -> None:
    """`--state` (default out/demo-state) is relative to where the demo runs, the journal in it
    included; each run starts from an empty journal (its first payment is #1 again)."""
    for _run in range(2):
        run = run_pitap("demo", "--json", "--payments", "1", "--state", "state", "--screens",
                        "screens", cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
        first = json.loads(run.stdout.splitlines()[0])
        assert first["id"] == 1 and first["as_scripted"], first
        assert (tmp_path / "state" / "journal.sqlite").is_file()


def test_demo_json_takes_the_scripted_payments(tmp_path: Path) -> None:
    screens = tmp_path / "screens"
    run = run_pitap("demo", "--json", "--screens", str(screens), "--state", str(tmp_path / "state"),
                    cwd=tmp_path)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    summary = lines[-1]["summary"]
    payments = [line for line in lines[:-1] if "forwarded" not in line]
    forwarded = [line for line in lines[:-1] if "forwarded" in line]
    assert run.returncode == 0, run.stdout + run.stderr
    assert "INFO" not in run.stderr  # without -v: warnings only (nfcpy's INFO lines too)
    for p in payments:
        assert {"id", "amount", "currency", "scheme", "outcome", "reason", "auth_code",
                "card_in_field_ms", "total_ms"} <= p.keys()
        stored = p["expected"] == "stored"
        assert p["as_scripted"] and p["stored"] == stored, p
        assert p["outcome"] == ("approved" if stored else p["expected"]), p
    # [offline]: stored while the host was down, then forwarded once it was back
    assert {f["forwarded"] for f in forwarded} == {"forwarded", "declined_late"}
    assert all(f["as_scripted"] for f in forwarded)
    assert summary["forwarded"] == summary["forwarded_as_scripted"] == len(forwarded)
    outcomes = {p["outcome"] for p in payments}
    assert {"approved", "declined", "no_card"} <= outcomes
    assert {p["scheme"] for p in payments if p["outcome"] == "approved"} >= {"visa", "mastercard"}
    assert summary["payments"] == summary["as_scripted"] == len(payments)
    assert len(list(screens.glob("*.png"))) >= len(payments)
    # a pre-authorization: held with a tap, raised and completed with none
    (held,) = [p for p in payments if p["txn_type"] == "preauth"]
    assert (held["amount"], held["approved_amount"], len(held["parts"])) == (10000, 11500, 3)
    # UPI: 250.00 INR by dynamic QR, approved once the simulated PSP said SUCCESS
    (upi,) = [p for p in payments if p["tender"] == "upi"]
    assert (upi["amount"], upi["currency"], upi["outcome"]) == (25000, "INR", "approved")
    assert upi["psp_reference"] and upi["upi_reference"] and "*" in upi["payer_vpa"]
    assert any(p.name.endswith("-upi_qr.png") for p in screens.glob("*.png"))


def test_verbose_logs_the_payment_and_never_a_full_token(tmp_path: Path) -> None:
    run = run_pitap("-vv", "demo", "--payments", "2", "--screens", str(tmp_path / "s"),
                    "--state", str(tmp_path / "state"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "DEBUG firmware." in run.stderr or "INFO firmware." in run.stderr
    assert not re.search(r"(476173|541333|608326)\d{10}", run.stdout + run.stderr)


def test_settle_json_with_the_host_down_is_still_json(tmp_path: Path, unused_tcp_port: int) -> None:
    from firmware.journal import Journal

    Journal.open(tmp_path / "state" / "journal.sqlite", tmp_path / "state" / "journal.key").close()
    site = tmp_path / "site.toml"
    site.write_text(f"[terminal]\nstate_dir = '{tmp_path / 'state'}'\n"
                    f"[host]\nport = {unused_tcp_port}\nconnect_timeout_s = 1.0\n")
    run = run_pitap("settle", "--json", "--config", str(site), cwd=tmp_path)
    assert run.returncode == 1
    assert json.loads(run.stdout)["closed"] is False
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "args",
    [("demo", "--payments", "-1"), ("journal", "--last", "-3"), ("run", "--max-payments", "-1"),
     ("run", "--hold", "-2")],
)
def test_negative_counts_are_usage_errors(args: tuple[str, ...]) -> None:
    run = run_pitap(*args)
    assert run.returncode == 2
    assert "negative" in run.stderr and "Traceback" not in run.stderr


# What `pitap --help` costs is measured in bench/cli_start.py; what it imports is checked here.
HEAVY = ("PIL", "escpos", "nfc", "serial", "cryptography", "pyemv", "iso8583", "qrcode", "ssl",
         "sqlite3", "firmware.terminal", "firmware.journal", "firmware.host", "firmware.emv",
         "firmware.provision", "drivers", "ui", "simulators")
IMPORTED_BY = """
import contextlib, io, json, sys
from firmware.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "help": out.getvalue(), "modules": sorted(sys.modules)}))
"""
HELP_ARGS = [("--help",), ("pay", "--help"), ("refund", "--help"), ("demo", "--help"),
             ("run", "--help"), ("journal", "--help"), ("settle", "--help"), ("wallet", "--help"),
             ("host", "--help"), ("sim", "pn532", "--help"), ("image", "build", "--help"),
             ("flash", "--help"), ("diag", "--help")]


@pytest.mark.parametrize("args", HELP_ARGS, ids=" ".join)
def test_help_imports_none_of_the_terminal(args: tuple[str, ...]) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", IMPORTED_BY, *args], capture_output=True,
                          text=True, timeout=120, check=True)
    report = json.loads(done.stdout)
    assert report["code"] == 0 and "usage: pitap" in report["help"]
    # `pitap diag --help` lists the check names: it reads them from the (light) checks module
    allowed = {"firmware.provision", "firmware.provision.diag", "ssl"} if "diag" in args else set()
    allowed |= {"drivers", "drivers.errors"}  # the error root (firmware.config's errors derive)
    heavy = [m for m in report["modules"] if m not in allowed
             and any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == [], f"pitap {' '.join(args)} imports {heavy}"
    if args == ("--help",):
        for command in ("demo", "pay", "refund", "run", "journal", "settle", "wallet", "host",
                        "sim", "image", "flash", "diag"):
            assert re.search(rf"^    {command}\s", report["help"], re.M), command
    if args == ("diag", "--help"):  # the check names are there, read when the help is printed
        assert "nfc-reader" in report["help"] and "journal" in report["help"]


def _commands(parser, path: tuple[str, ...] = ()):  # noqa: ANN001, ANN202
    """(path, parser) of every command that takes options, walking the subcommands."""
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for sub in subs:
        for name, child in sub.choices.items():
            yield from _commands(child, (*path, name))


def test_the_readme_command_table_names_every_option() -> None:
    """Each command's row in the README's table shows all of what `pitap COMMAND --help` takes."""
    import argparse

    from firmware.cli import build_parser

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| command | what it does | exit code |"):]
    table = table[: table.index("\n\n")]
    rows: dict[tuple[str, ...], str] = {}
    for line in table.splitlines()[2:]:
        synopsis = re.match(r"\| `([^`]*)`", line)
        assert synopsis, line
        words = synopsis.group(1).split()
        path = tuple(w for w in words[1:] if re.fullmatch(r"[a-z0-9][a-z0-9-]*", w))
        rows[path] = synopsis.group(1)
    parser = build_parser()
    commands = dict(_commands(parser))
    assert set(rows) == set(commands) - {()}, "one row a command"
    for path, sub in commands.items():
        if not path:
            continue
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            name = (action.option_strings[-1] if action.option_strings
                    else action.metavar or action.dest.upper())
            assert name and name in rows[path], f"pitap {' '.join(path)}: {name} not in README"
    assert "--verbose" in readme and "--version" in readme
