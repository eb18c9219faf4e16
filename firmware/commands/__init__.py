"""One module a `pitap` subcommand, each with `register(subparsers)`."""
