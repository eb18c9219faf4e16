"""`pitap run`: the terminal as a long-running service (systemd unit config/systemd/pitap.service).

This module parses the arguments and wires the parts: the configured terminal, keypad and stop
signals go to firmware.service.TerminalService, which runs keypad -> amount -> tap -> outcome ->
receipt -> ready with the display, status lights, tones and printer the configuration names; on
a desktop the same loop runs on simulated hardware with the keyboard as keypad.

SIGTERM and a first Ctrl-C stop the service the way firmware.service describes (the wait for a
card is cancelled, a card already being read is finished). Whenever the service stops, the
display is left on "Closed", lights off. The keys are described in firmware.service.

With `[api] enabled = true` the terminal API and the cashier page (firmware.api) are served
beside the loop, on the same terminal: a till's payment shows on the screen, and a keyed one in
the API's events.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import TYPE_CHECKING

from firmware.commands import add_config_option, count, seconds, stopped_by_signals, tell_recovery
from firmware.config import ConfigError, load_config

if TYPE_CHECKING:  # the terminal (nfcpy, Pillow, ...) is imported when the command runs
    from firmware.config import Config
    from firmware.terminal import Terminal

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the terminal service: keypad, tap, outcome, receipt, repeat")
    add_config_option(p)
    p.add_argument("--max-payments", type=count, default=None, help="stop after N payments")
    p.add_argument("--hold", type=seconds, default=5.0,
                   help="seconds the outcome stays on screen (default 5)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    stop = threading.Event()
    with stopped_by_signals(stop):
        terminal = open_terminal_or_show_why(cfg)
        if terminal is None:
            return 1  # systemd restarts the service; the display says why meanwhile
        try:
            return serve(args, cfg, terminal, stop)
        finally:
            terminal.feedback.closed()  # nobody taps a terminal that no longer listens
            terminal.close()


def serve(args: argparse.Namespace, cfg: Config, terminal: Terminal,
          stop: threading.Event) -> int:
    """The keypad and the service loop until quit, a signal or --max-payments."""
    from drivers.gpio import gpio_module
    from drivers.keypad import open_keypad
    from firmware.service import TerminalService

    gpio = terminal.feedback.gpio or gpio_module(cfg.gpio.backend)
    keypad = open_keypad(cfg.keypad, gpio=gpio)
    try:
        tell_recovery(terminal.recovered)
        if cfg.keypad.backend == "keyboard" and sys.stdin.isatty():
            print("pitap run: digits, Enter to pay (on nothing: the API's service screen), "
                  "Backspace/c to clear, r refund, s settle, "
                  "Esc cancel, q quit", file=sys.stderr)
        elif cfg.keypad.backend == "keyboard":
            print("pitap run: keypad.backend = keyboard without a terminal: keys come from "
                  "standard input and the service stops when it ends (use matrix or buttons on "
                  "a Pi)", file=sys.stderr, flush=True)
        from firmware.upi.tender import UpiTender

        # f2 with an amount and the API's tender "upi": INR and [upi] configured
        upi = UpiTender.at_hand(cfg, terminal.journal, terminal.feedback)
        service = TerminalService(terminal, keypad, currency=cfg.currency,
                                  result_hold_s=args.hold, stop=stop, upi=upi)
        server = None
        if cfg.api.enabled:  # the till's and the cashier page's way in ([api])
            from firmware.api.server import ApiServer

            server = ApiServer(service).start()
            pin = server.fingerprint()
            service.api_address = (server.url, pin)  # the service screen (enter on ready)
            print(f"pitap run: terminal API and cashier page on {server.url}"
                  + (f" (certificate SHA-256 {pin})" if pin else ""), file=sys.stderr, flush=True)
        try:
            count = service.run(args.max_payments)
        finally:
            if server is not None:
                server.stop()
            if upi is not None:
                upi.close()
        log.info("pitap run: %d payments", count)
        return 0
    finally:
        keypad.close()


def open_terminal_or_show_why(cfg: Config) -> Terminal | None:
    """The Terminal, or None after putting "Out of service" and the reason on the display."""
    from firmware.terminal import Terminal

    try:
        return Terminal.from_config(cfg)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.error("terminal cannot start: %s", reason)
        print(f"pitap: terminal cannot start: {reason}", file=sys.stderr)
        try:
            from firmware.feedback import Feedback

            fb = Feedback.from_config(cfg)
            fb.message("out_of_service", reason[:120])
            fb.close()
        except Exception:
            log.exception("cannot show the out-of-service screen either")
        if isinstance(exc, ConfigError):
            raise
        return None
