"""Forged look-alikes of Compute Engine audit entries (tests/fixtures/forgeries/look-alikes.json), each applied
to a genuine entry."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.deliveries import rfc3339

FORGERIES_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "forgeries" / "look-alikes.json"


@dataclass(frozen=True, kw_only=True)
class Forgery:
    id: str
    why: str
    error: str
    """A part of the MalformedEvent message the parser gives."""
    set: Mapping[str, Any] = field(default_factory=dict)
    delete: tuple[str, ...] = ()
    timestamp_ahead: timedelta | None = None
    sink_excludes: bool = True
    """False for what only the parser can judge (a filter has no clock)."""

    def apply(self, entry: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
        """A copy of the genuine ``entry`` forged this way; ``now`` is the clock of the test."""
        forged: dict[str, Any] = copy.deepcopy(dict(entry))
        for path, value in self.set.items():
            parent, leaf = _parent(forged, path)
            parent[leaf] = copy.deepcopy(value)
        for path in self.delete:
            parent, leaf = _parent(forged, path)
            del parent[leaf]
        if self.timestamp_ahead is not None:
            forged["timestamp"] = rfc3339(now + self.timestamp_ahead)
        return forged


def _parent(entry: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    *parents, leaf = path.split(".")
    node = entry
    for key in parents:
        node = node[key]
    return node, leaf


def load_forgeries() -> list[Forgery]:
    data = json.loads(FORGERIES_FILE.read_text(encoding="utf-8"))
    forgeries = []
    for item in data["forgeries"]:
        ahead = item.get("timestamp_ahead_seconds")
        forgeries.append(
            Forgery(
                id=item["id"],
                why=item["why"],
                error=item["error"],
                set=item.get("set", {}),
                delete=tuple(item.get("delete", ())),
                timestamp_ahead=timedelta(seconds=ahead) if ahead is not None else None,
                sink_excludes=item.get("sink_excludes", True),
            )
        )
    return forgeries


FORGERIES = load_forgeries()


def forgery(forgery_id: str) -> Forgery:
    return next(f for f in FORGERIES if f.id == forgery_id)
