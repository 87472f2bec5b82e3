"""Command line: ``python -m functions worker --subscription projects/P/subscriptions/S``."""

from functions.worker import main

raise SystemExit(main())
