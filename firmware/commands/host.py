"""`pitap host`: run the host simulator (a test acquirer) in the foreground on 127.0.0.1.

SIGUSR1 makes it unreachable (it stops listening: terminals' connects are refused), SIGUSR2
reachable again on the same port: the switch the tests and the demo use for [offline]."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from firmware.commands import add_config_option, require_simulators


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("host", help="run the ISO 8583 host simulator (test acquirer)",
                       description="Run the host simulator on 127.0.0.1: checks cryptograms "
                       "with the test issuer keys, misbehaves on test amounts, keeps a ledger.")
    add_config_option(p)
    p.add_argument("--port", type=int, metavar="P",
                   help="TCP port (default: host.port from the configuration; 0 = any free)")
    p.add_argument("--tls", action="store_true",
                   help="serve TLS with a test PKI generated into --tls-dir")
    p.add_argument("--tls-dir", metavar="DIR",
                   help="where the test CA and certificates live (default: STATE_DIR/host-tls)")
    p.add_argument("--client-certs", action="store_true",
                   help="with --tls: require a client certificate from the test CA")
    p.add_argument("--keys", metavar="FILE",
                   help="issuer keys (default: simulators/data/test-issuers.toml)")
    p.add_argument("--ledger", metavar="FILE",
                   help="ledger SQLite file (default: STATE_DIR/host-ledger.sqlite)")
    p.add_argument("--dialect", metavar="NAME", help="ISO 8583 dialect (default: host.dialect)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_simulators()
    from firmware.config import ConfigError, load_config
    from simulators.host.simulator import HostSimulator
    from simulators.host.testpki import make_test_pki

    cfg = load_config(args.config)
    port = cfg.host.port if args.port is None else args.port
    if not 0 <= port < 65536:
        raise ConfigError(f"--port: 0..65535, not {port}")
    keys = Path(args.keys) if args.keys else None
    ledger = Path(args.ledger) if args.ledger else cfg.state_path("host-ledger.sqlite")
    tls = None
    if args.tls:
        tls_dir = Path(args.tls_dir) if args.tls_dir else cfg.state_path("host-tls")
        pki = make_test_pki(tls_dir)
        tls = pki.server_context(require_client_cert=args.client_certs)
    try:
        sim = HostSimulator(port=port, keys_file=keys, ledger_file=ledger, tls=tls,
                            dialect=args.dialect or cfg.host.dialect,
                            config_dir=cfg.source.parent)
    except OSError as exc:
        print(f"pitap host: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    def stop_on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # `kill` stops it as cleanly as Ctrl-C; and Ctrl-C works even when started from a shell
    # that ignores SIGINT for background jobs (the handler would otherwise be SIG_IGN).
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    switches: list[int] = []  # acted on by the main loop, not inside the handler
    wake = threading.Event()

    def switch_on_signal(signum: int, frame: object) -> None:
        switches.append(signum)
        wake.set()

    signal.signal(signal.SIGUSR1, switch_on_signal)
    signal.signal(signal.SIGUSR2, switch_on_signal)
    try:
        sim.start()
        print(f"host simulator listening on 127.0.0.1:{sim.port} "
              f"({'TLS, ' if tls else ''}dialect {sim.dialect.name}, ledger {ledger})",
              flush=True)
        if tls is not None:
            # Absolute: a configuration resolves a relative ca_file against its own folder.
            print(f"terminals pin the test CA: host.ca_file = \"{pki.ca_cert.resolve()}\"",
                  flush=True)
        while True:  # wakes up so that a signal caught by another thread still reaches the
            wake.wait(0.5)  # main thread's handler
            wake.clear()
            while switches:
                if switches.pop(0) == signal.SIGUSR1:
                    sim.go_down()
                    print(f"host simulator down: 127.0.0.1:{sim.port} refuses connections",
                          flush=True)
                else:
                    sim.come_up()
                    print(f"host simulator up again on 127.0.0.1:{sim.port}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0
