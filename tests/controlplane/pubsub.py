"""The official in-memory Pub/Sub fake (pstest, built from Google's Go client library) on loopback.

The Python client reaches it through ``PUBSUB_EMULATOR_HOST``.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from tests.controlplane import assets
from tests.controlplane.harness import die_with_parent


class PubsubFake:
    def __init__(self, binary: Path | None = None) -> None:
        self.binary = binary or assets.ensure_pubsub_fake()
        self.proc: subprocess.Popen[str] | None = None
        self.host = ""

    def start(self) -> PubsubFake:
        self.proc = subprocess.Popen(
            [str(self.binary)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads exist in the child
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"the Pub/Sub fake did not start: {line!r}")
        self.host = line.removeprefix("listening on ")
        return self

    def environ(self) -> dict[str, str]:
        return {"PUBSUB_EMULATOR_HOST": self.host}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
