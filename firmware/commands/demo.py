"""`pitap demo`: scripted payments on simulated hardware (see simulators/demo.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from firmware.commands import add_config_option, count, require_simulators

if TYPE_CHECKING:
    from firmware.terminal import PaymentResult
    from simulators.demo import ScriptedPayment

if TYPE_CHECKING:
    from simulators.demo import ScriptedPayment


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="take scripted payments on simulated hardware, on loopback")
    p.add_argument("--payments", type=count, default=0, metavar="N",
                   help="how many payments (default: the whole script once; cycles past its end)")
    p.add_argument("--json", action="store_true", help="one JSON object per payment and a summary")
    p.add_argument("--screens", type=Path, default=Path("out/screens"), metavar="DIR",
                   help="where every screen shown is written as PNG (default out/screens)")
    p.add_argument("--state", type=Path, default=Path("out/demo-state"), metavar="DIR",
                   help="journal and host ledger of this run (wiped at start)")
    p.add_argument("--script", type=Path, default=None,
                   help="demo script (default: config/demo.toml)")
    add_config_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_simulators()
    from firmware.config import load_config
    from firmware.terminal import describe
    from simulators.demo import load_script, run_demo

    cfg = load_config(args.config)
    script = load_script(args.script or cfg.data_path("demo.toml"))
    count = args.payments or len(script)

    def report(result: PaymentResult, item: ScriptedPayment, voided: bool) -> None:
        ok = item.matches(result, voided)
        if args.json:
            line = result.as_dict() | {"wallet": item.wallet or None, "expected": item.expect,
                                       "voided": voided, "as_scripted": ok}
            print(json.dumps(line), flush=True)
        else:
            mark = "ok " if ok else "ERR"
            wallet = item.wallet or ("(UPI QR)" if item.upi else "(no phone)")
            then = " - then voided" if voided else ""
            print(f"{mark} {wallet:<22} {describe(result)}{then}", flush=True)

    def report_forwarded(result: PaymentResult, item: ScriptedPayment, state: str) -> None:
        ok = state == item.after
        if args.json:
            print(json.dumps({"id": result.id, "forwarded": state, "expected": item.after,
                              "as_scripted": ok}), flush=True)
        else:
            mark = "ok " if ok else "ERR"
            said = ("declined after the fact" if state == "declined_late" else state)
            print(f"{mark} {'(forwarded)':<22} #{result.id} stored payment {said}", flush=True)

    summary = run_demo(cfg, script, count, args.screens, args.state, report, report_forwarded)
    if args.json:
        print(json.dumps({"summary": {"payments": summary.payments,
                                      "as_scripted": summary.as_scripted,
                                      "outcomes": summary.by_outcome,
                                      "forwarded": summary.forwarded,
                                      "forwarded_as_scripted": summary.forwarded_as_scripted,
                                      "screens": str(args.screens)}}), flush=True)
    else:
        forwarded = (f", {summary.forwarded_as_scripted}/{summary.forwarded} stored payments "
                     "forwarded as scripted" if summary.forwarded else "")
        print(f"{summary.as_scripted}/{summary.payments} payments ended as scripted{forwarded}; "
              f"screens in {args.screens}/")
    return 0 if summary.ok else 1
