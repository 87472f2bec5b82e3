"""The HTTP operations: request validation, caller checks, dispatch, JSON results.

Entry points hand in the method, headers and raw body and get back an :class:`HttpResult`; every
call is audited with the caller's identity, and every client error says what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.decisions import jsonvalue
from functions.decisions.actions import Action, Severity
from functions.decisions.logentry import EventKind
from functions.decisions.settings import MAX_DEADLINE, ClusterConfig
from functions.errors import PermanentError, TransientError
from functions.gateways.audit import Audit
from functions.gateways.callers import CallerVerifier, Forbidden, Unauthorized
from functions.usecases.node_events import NodeNotFound
from functions.usecases.operations import NotOurs, Operations
from functions.usecases.runtime import Runtime

MANUAL_ACTIONS = ("drain", "uncordon", "cleanup", "status")
SCHEDULED_ACTIONS = ("cleanup", "recover", "all")
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


def _parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise BadRequest('send a JSON object, for example {"action": "status"}')
    try:
        data = jsonvalue.load(body, what="the body")
    except jsonvalue.JsonError as exc:
        raise BadRequest(str(exc)) from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def _action(data: Mapping[str, Any], allowed: tuple[str, ...]) -> str:
    action = data.get("action")
    if action not in allowed:
        raise BadRequest(f"action must be one of {', '.join(allowed)} (got {action!r})")
    return str(action)


def _flag(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false (got {value!r})")
    return value


class Api:
    def __init__(self, runtime: Runtime, *, verifier: CallerVerifier | None = None) -> None:
        self.runtime = runtime
        self.ops = Operations(runtime)
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
        run: Callable[[Audit], HttpResult],
    ) -> HttpResult:
        audit = self.runtime.audit.bind(trigger=trigger)
        if method != "POST":
            audit.record(Action.HTTP_REJECTED, f"{method} is not allowed", severity=Severity.WARNING, status=405)
            return HttpResult(405, {"error": f"use POST, not {method}"}, {"Allow": "POST"})
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
        name = data.get("cluster")
        if name is None:
            if required and len(self.runtime.settings.clusters) > 1:
                known = ", ".join(c.name for c in self.runtime.settings.clusters)
                raise BadRequest(f"cluster is required: one of {known}")
            return list(self.runtime.settings.clusters)
        cluster = self.runtime.settings.cluster(str(name)) if isinstance(name, str) else None
        if cluster is None:
            known = ", ".join(c.name for c in self.runtime.settings.clusters)
            raise BadRequest(f"unknown cluster {name!r}: use one of {known}")
        return [cluster]

    @staticmethod
    def _node(data: Mapping[str, Any]) -> str:
        node = data.get("node")
        if not isinstance(node, str) or not node:
            raise BadRequest("node is required: the Kubernetes node name (the VM instance name)")
        if len(node) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(node):
            raise BadRequest(f"node {node!r} is not a DNS-1123 name: lower-case letters, digits, '-' and '.'")
        return node

    # --------------------------------------------------------------- manual
    def manual(self, *, method: str, headers: Mapping[str, str], body: bytes) -> HttpResult:
        return self._guarded("manual", method, headers, lambda audit: self._manual(body, audit))

    def _manual(self, body: bytes, audit: Audit) -> HttpResult:
        data = _parse_body(body)
        action = _action(data, MANUAL_ACTIONS)
        dry_run = _flag(data, "dry_run")
        audit = audit.bind(action_requested=action, dry_run=dry_run)
        unknown = sorted(set(data) - {"action", "cluster", "node", "dry_run", "force", "timeout_seconds"})
        if unknown:
            raise BadRequest(f"unknown fields {unknown}; known: action, cluster, node, dry_run, force, timeout_seconds")
        if action in ("drain", "uncordon"):
            [cluster] = self._clusters(data, required=True)
            node = self._node(data)
            audit.record(Action.HTTP_REQUEST, f"{action} {node} in {cluster.name}", cluster=cluster.name, node=node)
            if action == "drain":
                timeout = data.get("timeout_seconds", self.runtime.settings.deadlines[EventKind.DELETE])
                if (
                    isinstance(timeout, bool)
                    or not isinstance(timeout, int | float)
                    or not 1 <= timeout <= MAX_DEADLINE
                ):
                    raise BadRequest(f"timeout_seconds must be a number from 1 to {MAX_DEADLINE:g}")
                report = self.ops.drain(cluster, node, dry_run=dry_run, timeout=float(timeout), audit=audit)
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
            change = self.ops.uncordon(cluster, node, dry_run=dry_run, force=_flag(data, "force"), audit=audit)
            return HttpResult(200, {"action": action, "cluster": cluster.name, "dry_run": dry_run, **change})
        clusters = self._clusters(data, required=False)
        audit.record(Action.HTTP_REQUEST, f"{action} in {', '.join(c.name for c in clusters)}")
        if action == "status":
            return HttpResult(200, {"action": action, "nodes": [row for c in clusters for row in self.ops.status(c)]})
        reports = [self.ops.cleanup(c, dry_run=dry_run, audit=audit, now=datetime.now(UTC)) for c in clusters]
        return HttpResult(200, {"action": action, "dry_run": dry_run, "clusters": reports})

    # ------------------------------------------------------------ scheduled
    def scheduled(self, *, method: str, headers: Mapping[str, str], body: bytes) -> HttpResult:
        return self._guarded("schedule", method, headers, lambda audit: self._scheduled(headers, body, audit))

    def _scheduled(self, headers: Mapping[str, str], body: bytes, audit: Audit) -> HttpResult:
        data = _parse_body(body)
        action = _action(data, SCHEDULED_ACTIONS)
        dry_run = _flag(data, "dry_run")
        audit = audit.bind(
            action_requested=action,
            dry_run=dry_run,
            scheduler_job=_header(headers, "X-CloudScheduler-JobName"),
            schedule_time=_header(headers, "X-CloudScheduler-ScheduleTime"),
        )
        audit.record(Action.HTTP_REQUEST, f"scheduled {action}")
        result: dict[str, Any] = {"action": action, "dry_run": dry_run}
        if action in ("recover", "all"):
            result["recovered"] = [
                change
                for c in self.runtime.settings.clusters
                for change in self.ops.recover(c, dry_run=dry_run, audit=audit)
            ]
        if action in ("cleanup", "all"):
            result["cleanup"] = [
                self.ops.cleanup(c, dry_run=dry_run, audit=audit, now=datetime.now(UTC))
                for c in self.runtime.settings.clusters
            ]
        return HttpResult(200, result)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)
