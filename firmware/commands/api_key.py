"""`pitap api-key add NAME | list | revoke NAME`: the terminal API's keys ([api] keys_file).

`add` prints the new key once (only its SHA-256 hash is kept, in a 0600 file in the state
directory); `list` names the keys and when each was made; `revoke` removes one at once, also for
a running `pitap run` (the file is read at every request)."""

from __future__ import annotations

import argparse
import sys

from firmware.commands import UsageError, add_config_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api-key", help="add, list or revoke the terminal API's keys")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="make a key for NAME and print it (once)")
    add.add_argument("name", help="who uses it, e.g. till-1")
    listing = actions.add_parser("list", help="the keys' names and when each was made")
    revoke = actions.add_parser("revoke", help="remove the key NAME")
    revoke.add_argument("name")
    for q in (add, listing, revoke):
        add_config_option(q)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from firmware.api.keys import ApiKeyError, ApiKeys
    from firmware.config import load_config
    from firmware.private_files import prepare_state_dir

    cfg = load_config(args.config)
    keys = ApiKeys(cfg.state_path(cfg.api.keys_file))
    try:
        if args.action == "add":
            prepare_state_dir(cfg)
            key = keys.add(args.name)
            print(key, flush=True)
            print(f"pitap api-key: key {args.name!r} made; it is shown only now: give it to the "
                  "till (Authorization: Bearer KEY)", file=sys.stderr)
        elif args.action == "list":
            for entry in keys.entries():
                print(f"{entry.name}\t{entry.created_at}")
        else:
            keys.revoke(args.name)
            print(f"key {args.name!r} revoked")
    except ApiKeyError as exc:
        raise UsageError(str(exc)) from None
    return 0
