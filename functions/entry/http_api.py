"""The HTTP operations: request validation, caller checks, dispatch, JSON results.

Entry points hand in the method, headers and raw body and get back an :class:`HttpResult`; every
call is audited with the caller's identity, and every client error says what to fix.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.decisions import jsonvalue
from functions.decisions.actions import Action, Severity
from functions.decisions.logentry import EventKind
from functions.decisions.settings import FUNCTION_TIMEOUT_MARGIN, MAX_DEADLINE, ClusterConfig
from functions.errors import Denied, PermanentError, TransientError
from functions.gateways.audit import Audit
from functions.gateways.callers import CallerVerifier, Forbidden, Unauthorized
from functions.usecases import schedule
from functions.usecases.node_events import NodeNotFound
from functions.usecases.operations import NotOurs, Operations
from functions.usecases.runtime import Runtime
from functions.usecases.schedule import Schedule

MANUAL_ACTIONS = ("drain", "uncordon", "cleanup", "status")
SCHEDULED_ACTIONS = schedule.ACTIONS
MANUAL_FIELDS = ("action", "cluster", "node", "dry_run", "force", "untaint", "timeout_seconds")
SCHEDULED_FIELDS = ("action", "dry_run")
MAX_BODY_BYTES = 64 * 1024  # an operator's or the scheduler's request is a few hundred bytes
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


class BadRequest(PermanentError):
    """HTTP 400: the message says what to fix."""


def _error(status: int, message: str, **extra: Any) -> HttpResult:
    return HttpResult(status, {"error": message, **extra})


def _rejected(audit: Audit, status: int, exc: Exception) -> HttpResult:
    """A request the caller must fix (or may not make): audited with its status, answered with the reason."""
    audit.record(Action.HTTP_REJECTED, str(exc), severity=Severity.WARNING, status=status)
    return _error(status, str(exc))


class TooLarge(PermanentError):
    """HTTP 413: the body is larger than any request of this API."""


def _parse_body(body: bytes, fields: tuple[str, ...]) -> dict[str, Any]:
    """The body as a JSON object with only ``fields``; BadRequest says what is wrong."""
    if not body.strip():
        raise BadRequest('send a JSON object, for example {"action": "status"}')
    try:
        data = jsonvalue.load(body, what="the body")
    except jsonvalue.JsonError as exc:
        raise BadRequest(str(exc)) from None
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be a JSON object, not {jsonvalue.described(data)}")
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("the body has a string that is not valid Unicode (a lone surrogate such as \\ud800)") from None
    unknown = sorted(set(data) - set(fields))
    if unknown:
        shown = ", ".join(repr(name[:40]) for name in unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise BadRequest(f"unknown fields [{shown}]; known: {', '.join(fields)}")
    return data


def _shown(value: Any) -> str:
    """A value quoted in an error message, cut short."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}... ({jsonvalue.described(value)})"


def _action(data: Mapping[str, Any], allowed: tuple[str, ...]) -> str:
    action = data.get("action")
    if not isinstance(action, str) or action not in allowed:
        raise BadRequest(f"action must be one of {', '.join(allowed)} (got {_shown(action)})")
    return action


def _flag(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false (got {_shown(value)})")
    return value


def _string(data: Mapping[str, Any], name: str) -> str | None:
    """An optional string field: absent is None, anything but a string (null included) is refused."""
    if name not in data:
        return None
    value = data[name]
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string (got {jsonvalue.described(value)})")
    return value


class Api:
    def __init__(self, runtime: Runtime, *, verifier: CallerVerifier | None = None) -> None:
        self.runtime = runtime
        self.ops = Operations(runtime)
        self.schedule = Schedule(runtime, self.ops)
        settings = runtime.settings
        self.verifier = verifier or CallerVerifier(
            audience=settings.http_audience, allowed=settings.allowed_callers, certs_url=settings.id_token_certs_url
        )

    # --------------------------------------------------------------- common
    def _guarded(
        self,
        trigger: str,
        method: str,
        headers: Mapping[str, str],
        size: int,
        run: Callable[[Audit], HttpResult],
    ) -> HttpResult:
        audit = self.runtime.audit.bind(trigger=trigger)
        if method != "POST":
            audit.record(Action.HTTP_REJECTED, f"{method} is not allowed", severity=Severity.WARNING, status=405)
            return HttpResult(405, {"error": f"use POST, not {method}"}, {"Allow": "POST"})
        if size > MAX_BODY_BYTES:
            return _rejected(
                audit, 413, TooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes; send a small JSON object")
            )
        try:
            caller = self.verifier.verify(_header(headers, "Authorization"))
        except Unauthorized as exc:
            return _rejected(audit, 401, exc)
        except Forbidden as exc:
            return _rejected(audit, 403, exc)
        audit = audit.bind(caller=caller.email, caller_verified=caller.verified)
        try:
            result = run(audit)
        except BadRequest as exc:
            return _rejected(audit, 400, exc)
        except NodeNotFound as exc:
            return _rejected(audit, 404, exc)
        except NotOurs as exc:
            return _rejected(audit, 409, exc)
        except Denied as exc:  # a deployment fault: say what to fix
            audit.record(
                Action.HTTP_FAILED,
                f"the cluster denied the request: {exc}",
                severity=Severity.ERROR,
                status=503,
                api_status=exc.answer(),
                fix=exc.fix,
            )
            return _error(503, f"the cluster denied the request: {exc}; {exc.fix}")
        except TransientError as exc:
            audit.record(
                Action.HTTP_FAILED, f"the cluster could not be reached: {exc}", severity=Severity.ERROR, status=503
            )
            return _error(503, f"the cluster could not be reached, try again: {exc}")
        except PermanentError as exc:
            audit.record(Action.HTTP_FAILED, str(exc), severity=Severity.ERROR, status=500)
            return _error(500, str(exc))
        finally:
            self.runtime.finish()
        return result

    def _clusters(self, data: Mapping[str, Any], *, required: bool) -> list[ClusterConfig]:
        name = _string(data, "cluster")
        if name is None:
            if required and len(self.runtime.settings.clusters) > 1:
                known = ", ".join(c.name for c in self.runtime.settings.clusters)
                raise BadRequest(f"cluster is required: one of {known}")
            return list(self.runtime.settings.clusters)
        cluster = self.runtime.settings.cluster(name)
        if cluster is None:
            known = ", ".join(c.name for c in self.runtime.settings.clusters)
            raise BadRequest(f"unknown cluster {_shown(name)}: use one of {known}")
        return [cluster]

    @staticmethod
    def _node(data: Mapping[str, Any]) -> str:
        node = _string(data, "node")
        if not node:
            raise BadRequest("node is required: the Kubernetes node name (the VM instance name)")
        if len(node) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(node):
            raise BadRequest(f"node {_shown(node)} is not a DNS-1123 name: lower-case letters, digits, '-' and '.'")
        return node

    def _timeout(self, data: Mapping[str, Any]) -> float:
        """A manual drain's deadline: it must end, reported, before the function's own timeout."""
        settings = self.runtime.settings
        limit = min(MAX_DEADLINE, settings.work_limit)
        if "timeout_seconds" not in data:
            return min(settings.deadlines[EventKind.DELETE], limit)
        value = data["timeout_seconds"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"timeout_seconds must be a number of seconds (got {_shown(value)})")
        try:
            seconds = float(value)  # an int too large for a float is as wrong as infinity
        except OverflowError:
            seconds = math.inf
        if not math.isfinite(seconds):
            raise BadRequest(f"timeout_seconds must be a number of seconds, and finite (got {_shown(value)})")
        if not 1 <= seconds <= limit:
            raise BadRequest(
                f"timeout_seconds must be from 1 to {limit:g}: the function runs at most "
                f"{settings.function_timeout:g} s (DRAINER_FUNCTION_TIMEOUT_SECONDS) and keeps "
                f"{FUNCTION_TIMEOUT_MARGIN:g} s of it to report (got {_shown(value)})"
            )
        return seconds

    # --------------------------------------------------------------- manual
    def manual(
        self, *, method: str, headers: Mapping[str, str], body: bytes, declared_length: int | None = None
    ) -> HttpResult:
        """``body`` may be cut at MAX_BODY_BYTES + 1 bytes; ``declared_length`` is the Content-Length."""
        size = max(len(body), declared_length or 0)
        return self._guarded("manual", method, headers, size, lambda audit: self._manual(body, audit))

    def _manual(self, body: bytes, audit: Audit) -> HttpResult:
        data = _parse_body(body, MANUAL_FIELDS)
        action = _action(data, MANUAL_ACTIONS)
        dry_run = _flag(data, "dry_run")
        force = _flag(data, "force")
        untaint = _flag(data, "untaint")
        audit = audit.bind(action_requested=action, dry_run=dry_run)
        timeout = self._timeout(data)
        if action in ("drain", "uncordon"):
            [cluster] = self._clusters(data, required=True)
            node = self._node(data)
            audit.record(Action.HTTP_REQUEST, f"{action} {node} in {cluster.name}", cluster=cluster.name, node=node)
            if action == "drain":
                report = self.ops.drain(cluster, node, dry_run=dry_run, timeout=timeout, audit=audit, force=force)
                return HttpResult(
                    200,
                    {
                        "action": action,
                        **report.summary(),
                        "pods": [
                            {"pod": p.pod, "result": p.result.value, "reason": p.reason, "pdb": p.pdb}
                            for p in report.pods
                        ],
                    },
                )
            change = self.ops.uncordon(cluster, node, dry_run=dry_run, force=force, untaint=untaint, audit=audit)
            return HttpResult(200, {"action": action, "cluster": cluster.name, "dry_run": dry_run, **change})
        clusters = self._clusters(data, required=False)
        _string(data, "node")  # checked for its type; only drain and uncordon use it
        audit.record(Action.HTTP_REQUEST, f"{action} in {', '.join(c.name for c in clusters)}")
        if action == "status":
            return HttpResult(200, {"action": action, "nodes": [row for c in clusters for row in self.ops.status(c)]})
        reports = [self.ops.cleanup(c, dry_run=dry_run, audit=audit, now=datetime.now(UTC)) for c in clusters]
        return HttpResult(200, {"action": action, "dry_run": dry_run, "clusters": reports})

    # ------------------------------------------------------------ scheduled
    def scheduled(
        self, *, method: str, headers: Mapping[str, str], body: bytes, declared_length: int | None = None
    ) -> HttpResult:
        """``body`` may be cut at MAX_BODY_BYTES + 1 bytes; ``declared_length`` is the Content-Length."""
        deadline = time.monotonic() + self.runtime.settings.work_limit  # one deadline for the whole run
        size = max(len(body), declared_length or 0)
        return self._guarded(
            "schedule", method, headers, size, lambda audit: self._scheduled(headers, body, audit, deadline)
        )

    def _scheduled(self, headers: Mapping[str, str], body: bytes, audit: Audit, deadline: float) -> HttpResult:
        data = _parse_body(body, SCHEDULED_FIELDS)
        action = _action(data, SCHEDULED_ACTIONS)
        dry_run = _flag(data, "dry_run")
        audit = audit.bind(
            action_requested=action,
            dry_run=dry_run,
            scheduler_job=_header(headers, "X-CloudScheduler-JobName"),
            schedule_time=_header(headers, "X-CloudScheduler-ScheduleTime"),
        )
        audit.record(Action.HTTP_REQUEST, f"scheduled {action}")
        report = self.schedule.run(action=action, dry_run=dry_run, audit=audit, deadline=deadline)
        result = report.as_dict()
        failures = report.failed
        if failures:  # a failed status makes Cloud Scheduler retry; the run is safe to repeat
            message = f"scheduled {action} failed in {', '.join(failures)}; the other clusters were done"
            audit.record(Action.HTTP_FAILED, message, severity=Severity.ERROR, status=503, failed_clusters=failures)
            return HttpResult(503, {"error": message, **result})
        return HttpResult(200, result)  # a cluster left to an overlapping run is no failure: "overlap"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)
