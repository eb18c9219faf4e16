"""`python -m firmware` is the `pitap` command."""

from firmware.cli import main

raise SystemExit(main())
