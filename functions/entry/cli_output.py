"""What the command-line tool prints and how it ends: tables and key-value pairs on stdout, messages
and a progress spinner on stderr, the exit codes (:class:`ExitCode`) and :class:`Failure`, which
stops a command with one of them."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence
from enum import IntEnum
from typing import IO, Any

PROG = "gke-node-drainer"


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    AUTH = 3
    UNREACHABLE = 4


class Failure(Exception):
    """Stop the command: ``message`` goes to stderr, ``code`` is the exit status."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def cell(value: Any) -> str:
    """One value as a table cell or pair value: one line, "-" when empty."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return " ".join(str(value).split())


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; the last column is never padded."""
    cells = [[h.upper() for h in headers], *[[cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + "  " + r[-1] for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def pairs(items: Sequence[tuple[str, Any]]) -> str:
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{k.ljust(width)}  {cell(v)}" for k, v in items)


def emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def print_json(value: Any) -> None:
    emit(json.dumps(value, indent=2, default=str))


class Progress:
    """An elapsed-time spinner on stderr while a call runs (a single line when stderr is no TTY)."""

    FRAMES = "|/-\\"

    def __init__(self, label: str, stream: IO[str] | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        self.started = time.monotonic()
        if self.stream.isatty():
            self._thread = threading.Thread(target=self._spin, name="progress", daemon=True)
            self._thread.start()
        else:
            print(f"{PROG}: {self.label} ...", file=self.stream, flush=True)
        return self

    def _spin(self) -> None:
        frame = 0
        while not self._done.wait(0.1):
            elapsed = time.monotonic() - self.started
            self.stream.write(f"\r{self.FRAMES[frame % 4]} {self.label}  {elapsed:5.1f} s")
            self.stream.flush()
            frame += 1

    def __exit__(self, *_: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            self.stream.write("\r\033[K")
            self.stream.flush()
