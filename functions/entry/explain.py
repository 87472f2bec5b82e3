"""What the node-event function would decide about one input, offline (pure: ``now`` and the
settings come in as arguments; no cluster, no Google API).

It takes whatever an operator has at hand: a LogEntry (``gcloud logging read --format=json`` gives
a list of them), a Pub/Sub message (``{"data": <base64>, ...}``), a Pub/Sub push body or the body
of an Eventarc binary-mode CloudEvent (``{"message": {...}}``), a structured-mode CloudEvent
(``{"specversion": "1.0", "data": {...}}``) or a 1st-gen background event.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from functions.decisions import envelope, jsonvalue, logentry, policy, verdict
from functions.decisions.settings import DEFAULT_DEADLINES, Settings
from functions.decisions.settings_env import ENV_DEADLINE_PREFIX, SETTINGS
from functions.decisions.settings_env import load as load_settings
from functions.decisions.settings_readers import ENV_CLUSTERS
from functions.decisions.times import parse_time
from functions.errors import MalformedEvent

MAX_INPUT_BYTES = 10 * 1024 * 1024
MALFORMED_DECISION = "acknowledge and audit event.malformed; never retried"
EVENT_SETTINGS = ("force_cleanup", "out_of_service_taint", "max_event_age", "dry_run")  # read without clusters


class Verdict(StrEnum):
    ACT = "act"
    IGNORED = "ignored"
    MALFORMED = "malformed"
    STALE = "stale"
    EXPIRED = "expired"


class Shape(StrEnum):
    LOG_ENTRY = "LogEntry"
    PUBSUB_MESSAGE = "Pub/Sub message"
    PUSH_BODY = "Pub/Sub push body (also the body of an Eventarc binary-mode CloudEvent)"
    CLOUDEVENT = "Eventarc CloudEvent (structured mode)"
    BACKGROUND = "1st-gen background event"
    UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class Explanation:
    verdict: Verdict
    shape: Shape
    fields: Mapping[str, Any] = field(default_factory=dict)  # in the order they are shown

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "input": self.shape.value, **self.fields}


# ------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True, kw_only=True)
class ExplainSettings:
    settings: Settings
    source: str  # where they came from, for the reader


def explain_settings(env: Mapping[str, str]) -> ExplainSettings:
    """The function's settings when DRAINER_CLUSTERS is set; otherwise the defaults, with the event
    settings (deadlines, force-cleanup, dry run) still read from the environment when they are set.
    Raises ConfigError for a value the function would refuse too."""
    if env.get(ENV_CLUSTERS, "").strip():
        return ExplainSettings(settings=load_settings(env), source=f"environment ({ENV_CLUSTERS} set)")
    deadlines = dict(DEFAULT_DEADLINES)
    top: dict[str, Any] = {}
    for row in SETTINGS:
        group, _, name = row.target.rpartition(".")
        if group == "deadlines":
            deadlines[logentry.EventKind(name)] = row.value(env)
        elif row.target in EVENT_SETTINGS:
            top[row.target] = row.value(env)
    return ExplainSettings(
        settings=Settings(clusters=(), deadlines=deadlines, **top),
        source=(
            f"defaults ({ENV_CLUSTERS} not set; DRAINER_DEADLINE_*, DRAINER_FORCE_CLEANUP, "
            "DRAINER_OUT_OF_SERVICE_TAINT, DRAINER_MAX_EVENT_AGE_SECONDS, DRAINER_DRY_RUN read)"
        ),
    )


# ------------------------------------------------------------------------------------------ input
def _decode_data_base64(event: Mapping[str, Any]) -> Any:
    raw = event.get("data_base64")
    if not isinstance(raw, str):
        raise MalformedEvent("CloudEvent data_base64 is not a base64 string")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEvent(f"CloudEvent data_base64 is not valid base64: {exc}") from None


def _shape(value: Any) -> Shape:
    if not isinstance(value, Mapping):
        return Shape.UNKNOWN
    if "protoPayload" in value:
        return Shape.LOG_ENTRY
    if "specversion" in value:
        return Shape.CLOUDEVENT
    if "message" in value:
        return Shape.PUSH_BODY
    if "context" in value and isinstance(value.get("data"), Mapping):
        return Shape.BACKGROUND
    if "data" in value:
        return Shape.PUBSUB_MESSAGE
    return Shape.UNKNOWN


def _log_entry(value: Any, shape: Shape) -> tuple[Mapping[str, Any], envelope.PubsubMessage | None]:
    """The LogEntry an input carries, and the Pub/Sub message around it when there is one."""
    if shape is Shape.LOG_ENTRY:
        return value, None
    if shape is Shape.UNKNOWN:
        got = jsonvalue.type_name(value) if not isinstance(value, Mapping) else f"an object with {sorted(value)[:8]}"
        raise MalformedEvent(
            f"not a LogEntry, Pub/Sub message or CloudEvent (got {got}); expected a LogEntry "
            '({"protoPayload": ...}), a Pub/Sub message ({"data": <base64>}), a push body ({"message": {...}}) '
            'or a CloudEvent ({"specversion": "1.0", "data": ...})'
        )
    if shape is Shape.CLOUDEVENT:
        delivery = value["data"] if "data" in value else _decode_data_base64(value)
    elif shape is Shape.PUSH_BODY:
        delivery = value
    else:  # a bare Pub/Sub message, or the PubsubMessage of a background event
        delivery = {"message": value["data"] if shape is Shape.BACKGROUND else value}
    message = envelope.unwrap(delivery)
    return logentry.log_entry_from_message(message), message


# ------------------------------------------------------------------------------------------ explain
def _age(seconds: float) -> str:
    if seconds < 0:
        return f"in the future by {_duration(-seconds)} (clock skew?)"
    return f"{_duration(seconds)} ago"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    if minutes or hours or days:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s" if whole else f"{seconds:.1f}s")
    return " ".join(parts)


def _deadline_source(kind: logentry.EventKind, env: Mapping[str, str]) -> str:
    name = ENV_DEADLINE_PREFIX + kind.value.upper()
    return f"{name}" if env.get(name, "").strip() else f"default (set {name} to change)"


def _action(event: logentry.NodeEvent, plan: policy.DrainPlan, settings: Settings) -> str:
    seconds = f"{plan.timeout.total_seconds():g} s"
    steps = [f"cordon {event.instance}", f"evict its pods honouring PodDisruptionBudgets for up to {seconds}"]
    if plan.force_when_down:
        taint = "taint it out-of-service and " if plan.out_of_service_taint else ""
        steps.append(
            "once the VM is verified off (Compute Engine: gone, replaced, TERMINATED or STOPPED; only when it cannot "
            f"answer, Ready=Unknown with a heartbeat older than the event), {taint}force-delete what is left"
        )
    elif event.kind in policy.FORCE_KINDS:
        steps.append("never force (DRAINER_FORCE_CLEANUP=false): report what is left")
    else:
        steps.append("graceful only, never forced: report what is still blocked")
    text = "; ".join(steps)
    return f"dry run (DRAINER_DRY_RUN): would {text}, changing nothing" if settings.dry_run else text


def _owners(event: logentry.NodeEvent, settings: Settings) -> str:
    if not settings.clusters:
        return f"not checked ({ENV_CLUSTERS} not set): the function looks the node up in its configured clusters"
    owners = [c.name for c in settings.clusters if c.may_own(project=event.project, zone=event.zone)]
    if not owners:
        return (
            f"none: no configured cluster can own an instance in project {event.project}, zone {event.zone}; "
            "the function would acknowledge and ignore the event"
        )
    provider_id = f"gce://{event.project}/{event.zone}/{event.instance}"
    return f"{', '.join(owners)} (the node must exist there with providerID {provider_id})"


def explain_value(value: Any, *, config: ExplainSettings, env: Mapping[str, str], now: datetime) -> Explanation:
    """What the function would decide about one decoded JSON input: the same verdict
    (:func:`functions.decisions.verdict.judge_event`), judged on what the input alone tells."""
    shape = _shape(value)
    try:
        entry, message = _log_entry(value, shape)
    except MalformedEvent as exc:
        return _malformed(shape, str(exc))
    delivery: dict[str, Any] = {}
    facts = verdict.Delivery()
    if message is not None:
        delivery = {"message_id": message.message_id, "publish_time": message.publish_time}
        facts = verdict.Delivery(
            publish_time=parse_time(message.publish_time), delivery_attempt=message.delivery_attempt
        )
    settings = config.settings
    judged = verdict.judge_event(entry, now=now, settings=settings, delivery=facts)
    if judged.outcome is verdict.Outcome.MALFORMED:
        return _malformed(shape, judged.reason)
    if judged.ignored is not None:
        parsed = judged.ignored
        return Explanation(
            verdict=Verdict.IGNORED,
            shape=shape,
            fields={
                "reason": parsed.reason,
                "method": parsed.method,
                "node": parsed.instance,
                "project": parsed.project,
                "zone": parsed.zone,
                "insert_id": parsed.insert_id,
                **delivery,
                "decision": "acknowledge and audit event.ignored; the node is not touched",
            },
        )
    event = judged.event
    assert event is not None  # every other outcome carries the event
    age = (now - event.event_time).total_seconds()
    about = {
        "kind": event.kind.value,
        "method": event.method,
        "node": event.instance,
        "project": event.project,
        "zone": event.zone,
        "instance_id": event.instance_id,
        "event_id": event.event_id,
        "principal": event.principal,
        "event_time": event.event_time.isoformat().replace("+00:00", "Z"),
        "age": _age(age),
        "age_seconds": round(age, 3),
        **delivery,
    }
    if judged.outcome is verdict.Outcome.EXPIRED:
        decision = (
            "acknowledge and audit event.expired at ERROR (it was lost to failed deliveries); the node is not touched"
        )
        return Explanation(
            verdict=Verdict.EXPIRED, shape=shape, fields={**about, "reason": judged.reason, "decision": decision}
        )
    if judged.outcome is verdict.Outcome.STALE:
        decision = "acknowledge and audit event.stale; the node is not touched"
        return Explanation(
            verdict=Verdict.STALE, shape=shape, fields={**about, "reason": judged.reason, "decision": decision}
        )
    plan = judged.plan
    assert plan is not None  # ACT carries its plan
    return Explanation(
        verdict=Verdict.ACT,
        shape=shape,
        fields={
            **about,
            "deadline_seconds": plan.timeout.total_seconds(),
            "deadline_from": _deadline_source(event.kind, env),
            "force_after_verified_down": plan.force_when_down,
            "out_of_service_taint": plan.out_of_service_taint,
            "graceful": not plan.force_when_down,
            "dry_run": settings.dry_run,
            "clusters": _owners(event, settings),
            "settings": config.source,
            "decision": _action(event, plan, settings),
        },
    )


def _malformed(shape: Shape, error: str) -> Explanation:
    return Explanation(verdict=Verdict.MALFORMED, shape=shape, fields={"error": error, "decision": MALFORMED_DECISION})


def load_input(raw: bytes) -> Any:
    """The JSON document of an input; MalformedEvent when it is not JSON."""
    if len(raw) > MAX_INPUT_BYTES:
        raise MalformedEvent(f"the input is {len(raw)} bytes; at most {MAX_INPUT_BYTES} are read")
    try:
        return jsonvalue.load(raw, what="the input")
    except jsonvalue.JsonError as exc:
        raise MalformedEvent(str(exc)) from None


def explain(raw: bytes, *, config: ExplainSettings, env: Mapping[str, str], now: datetime) -> list[Explanation]:
    """One explanation per input document (a JSON list is read as one input per element)."""
    try:
        value = load_input(raw)
    except MalformedEvent as exc:
        fields = {"error": str(exc), "decision": MALFORMED_DECISION}
        return [Explanation(verdict=Verdict.MALFORMED, shape=Shape.UNKNOWN, fields=fields)]
    items = value if isinstance(value, list) and value else [value]
    return [explain_value(item, config=config, env=env, now=now) for item in items]
