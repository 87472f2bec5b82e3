"""Command line: ``python -m functions worker --subscription projects/P/subscriptions/S``."""

from functions.entry.worker import main

raise SystemExit(main())
