"""What every benchmark needs to hold on a loaded machine: the machine's load, and bounded waits
for objects to go away that report what remained.

``Vanishing`` watches one collection (pods, Jobs) through the API server's watch, with plain JSON
(no generated models: thousands of events must not cost the benchmark's CPU), resumes from the last
resourceVersion it saw, and after a failed watch (410 Gone, a dropped stream) lists again: an object
that is no longer listed went away while nobody was watching, and counts as gone at that list.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from tests.controlplane.harness import ControlPlane


def machine_load(when: str) -> str:
    """One line: the load averages and the CPU count, for the figures printed beside it."""
    one, five, fifteen = os.getloadavg()
    return f"machine load {when}: loadavg {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} CPUs"


STALL_SECONDS = 20.0  # an await that sees nothing go for this long lists once more


@dataclass(frozen=True)
class Gone:
    """When the last of the awaited objects went away (perf_counter), or what remained at the timeout."""

    last: float | None
    remaining: tuple[str, ...]

    def describe(self, limit: int = 10) -> str:
        shown = ", ".join(self.remaining[:limit])
        more = f" and {len(self.remaining) - limit} more" if len(self.remaining) > limit else ""
        return f"{len(self.remaining)} remained: {shown}{more}"


class Vanishing:
    """Records when each object of one collection (``/api/v1/pods``, ``/apis/batch/v1/jobs``) is deleted."""

    def __init__(self, plane: ControlPlane, path: str) -> None:
        self.plane = plane
        self.path = path
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {plane.admin.token}"
        self.ca = str(plane.ca_file)  # per request: a session's verify loses to REQUESTS_CA_BUNDLE
        self.deleted: dict[str, float] = {}
        self._tracked: dict[str, str] = {}  # uid -> namespace/name, of everything awaited
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._response: requests.Response | None = None
        self.last_error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name=f"vanishing{path}", daemon=True)
        self._thread.start()
        if not self._ready.wait(60):
            self.stop()
            raise RuntimeError(f"could not list {path} within 60 s: {self.last_error}")

    # ------------------------------------------------------------------ watch
    def _relist(self) -> str:
        present: set[str] = set()
        resource_version = ""
        token = ""
        while True:
            params = {"limit": "1000", **({"continue": token} if token else {})}
            response = self.session.get(self.plane.url + self.path, params=params, timeout=120, verify=self.ca)
            response.raise_for_status()
            body = response.json()
            present |= {item["metadata"]["uid"] for item in body.get("items", [])}
            resource_version = resource_version or body["metadata"]["resourceVersion"]
            token = body["metadata"].get("continue") or ""
            if not token:
                break
        now = time.perf_counter()
        with self._lock:
            for uid in self._tracked.keys() - present:
                self.deleted.setdefault(uid, now)  # went away while nobody watched
        return resource_version

    def _run(self) -> None:
        resource_version = ""
        while not self._stop.is_set():
            try:
                if not resource_version:
                    resource_version = self._relist()
                    self._ready.set()
                params = {
                    "watch": "true",
                    "resourceVersion": resource_version,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": "60",
                }
                with self.session.get(
                    self.plane.url + self.path, params=params, stream=True, timeout=(10, 90), verify=self.ca
                ) as response:
                    self._response = response
                    response.raise_for_status()
                    # chunk_size None: each event as the server flushes it (a fixed size would hold the
                    # last events back until more bytes or the end of the watch arrive)
                    for line in response.iter_lines(chunk_size=None):
                        if self._stop.is_set():
                            return
                        if not line:
                            continue
                        event = json.loads(line)
                        obj: dict[str, Any] = event.get("object") or {}
                        if event.get("type") == "ERROR":
                            resource_version = ""  # 410 Gone: list again
                            break
                        resource_version = obj.get("metadata", {}).get("resourceVersion") or resource_version
                        if event.get("type") == "DELETED":
                            with self._lock:
                                self.deleted.setdefault(obj["metadata"]["uid"], time.perf_counter())
            except Exception as exc:  # a dropped stream, the API server under load: list again
                if self._stop.is_set():
                    return
                self.last_error = exc
                resource_version = ""
                time.sleep(0.2)

    # ------------------------------------------------------------------ waits
    def track(self, objects: Mapping[str, str]) -> None:
        """Objects (uid -> namespace/name) to await: registered before they are deleted, so that a
        deletion missed by a broken watch is still noticed at the next list."""
        with self._lock:
            self._tracked.update(objects)

    def await_gone(self, objects: Mapping[str, str], timeout: float) -> Gone:
        """Wait (at most ``timeout`` s) until every object is gone; never raises on a timeout."""
        self.track(objects)
        deadline = time.monotonic() + timeout
        progress_at, left = time.monotonic(), len(objects) + 1
        while True:
            with self._lock:
                missing = [uid for uid in objects if uid not in self.deleted]
                if not missing:
                    return Gone(last=max(self.deleted[uid] for uid in objects) if objects else None, remaining=())
            now = time.monotonic()
            if now >= deadline:
                break
            if len(missing) < left:
                progress_at, left = now, len(missing)
            elif now - progress_at > STALL_SECONDS:
                # nothing went for a while: list, in case the watch missed what went (the times of
                # objects found gone this way are the list's, later than they went)
                with contextlib.suppress(requests.RequestException):
                    self._relist()
                progress_at = now
            time.sleep(0.02)
        with contextlib.suppress(requests.RequestException):
            self._relist()  # a last look: what the watch may have missed
        with self._lock:
            missing = [uid for uid in objects if uid not in self.deleted]
            if not missing:
                return Gone(last=max(self.deleted[uid] for uid in objects), remaining=())
        return Gone(last=None, remaining=tuple(sorted(objects[uid] for uid in missing)))

    def stop(self) -> None:
        """Stop watching; the thread is gone before this returns (at most a few seconds)."""
        self._stop.set()
        response = self._response
        if response is not None:
            # unblock the read at once (best effort: the read also ends at the watch's timeout)
            with contextlib.suppress(Exception):
                response.raw._fp.fp.raw._sock.shutdown(2)
        self._thread.join(5)
        self.session.close()
