"""``python -m functions``: the command-line tool, the same as ``gke-node-drainer`` (see functions/entry/cli.py)."""

from functions.entry.cli import main

raise SystemExit(main())
