"""Watches: the event kinds a watch yields, :class:`WatchStop` that ends them from another thread,
and the reading of a watch stream (one JSON event per line)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Any

from functions.gateways.kube.errors import ApiStatus, ApiUnavailable


class WatchEvent(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


class WatchStop:
    """Ends, from another thread, the watches it is given: ``close()`` shuts their connections down,
    so that a read blocked on a stream returns at once (the watcher gets an error or the stream's
    end), and no watch opens after it. One per drain: its streams never outlive it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._open: set[Any] = set()

    @property
    def closed(self) -> bool:
        return self._closed

    def track(self, raw: Any) -> bool:
        """Track an open stream; False (the caller closes it) once closed."""
        with self._lock:
            if self._closed:
                return False
            self._open.add(raw)
            return True

    def untrack(self, raw: Any) -> None:
        with self._lock:
            self._open.discard(raw)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            streams = list(self._open)
        for raw in streams:
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    # the plain socket's shutdown (not SSLSocket's, which would drop the TLS state under
                    # the reading thread): its blocked read returns, the watcher ends its stream
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


def read_events(raw: Any, *, request: str) -> Iterator[tuple[WatchEvent, Mapping[str, Any]]]:
    """The events of an open watch stream (urllib3's response), until it ends or sends an ERROR
    (e.g. 410 Gone: the caller relists); a torn or garbled line raises ApiUnavailable."""
    buffer = b""
    for chunk in raw.stream(65536, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                event = None
            if not isinstance(event, dict):  # a torn or garbled line: end, the caller relists
                raise ApiUnavailable(ApiStatus(code=200, message="malformed watch event"), request=request)
            kind = event.get("type")
            if kind == "ERROR":  # e.g. 410 Gone: the caller relists
                return
            if isinstance(kind, str) and kind in WatchEvent.__members__:
                yield WatchEvent(kind), event.get("object") or {}
