"""Unit tests for functions.decisions.kube_events: the aggregation key, object names, bodies and notes (pure)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from functions.decisions import kube_events
from functions.decisions.kube_events import (
    EventAction,
    EventType,
    KubeEvent,
    ObjectRef,
    Reason,
    bounded_note,
    event_body,
    event_name,
    micro_time,
    series_patch,
)
from functions.decisions.model import Node, Pod, ReadyCondition

NODE_NAME = "gke-payments-spot-pool-3f1c2a9e-x7k2"
INSTANCE = "gke-node-drainer-host-1a2b3c4d"
FIRST = datetime(2026, 10, 2, 8, 14, 7, 512331, tzinfo=UTC)
LATER = datetime(2026, 10, 2, 8, 14, 9, 4, tzinfo=UTC)
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def make_node(*, name: str = NODE_NAME, uid: str = "node-uid", resource_version: str = "812") -> Node:
    return Node(
        name=name,
        uid=uid,
        resource_version=resource_version,
        provider_id=f"gce://acme-prod/europe-west4-a/{name}",
        unschedulable=True,
        annotations={},
        boot_id="boot",
        ready=ReadyCondition(status="True", last_heartbeat=None, last_transition=None),
    )


def make_pod(*, name: str = "db-0", namespace: str = "payments", uid: str = "pod-uid") -> Pod:
    return Pod(
        namespace=namespace,
        name=name,
        uid=uid,
        node_name=NODE_NAME,
        phase="Running",
        controller=None,
        annotations={},
        labels={},
        deletion_timestamp=None,
        local_storage=False,
        priority=0,
        priority_class="",
    )


def blocked(*, pod: Pod | None = None, pdb: str | None = "db-pdb", message: str = "Cannot evict pod") -> KubeEvent:
    return kube_events.eviction_blocked(pod or make_pod(), node=NODE_NAME, pdb=pdb, message=message)


# --- the aggregation key -----------------------------------------------------------------------------------------


def test_a_retry_of_the_same_refusal_is_the_same_event() -> None:
    assert blocked().key == blocked().key
    assert blocked().key == blocked(pod=replace(make_pod(), phase="Pending")).key


def test_the_key_ignores_the_resource_version_of_the_object() -> None:
    before = kube_events.cordoned(
        make_node(resource_version="1"), event_kind="preempted", event_id="e", was_unschedulable=False
    )
    after = kube_events.cordoned(
        make_node(resource_version="2"), event_kind="preempted", event_id="e", was_unschedulable=False
    )
    assert before.regarding.resource_version != after.regarding.resource_version
    assert before.key == after.key


@pytest.mark.parametrize(
    "other",
    [
        blocked(pdb="other-pdb"),  # another note
        blocked(pod=make_pod(uid="new-uid")),  # the pod was recreated under the same name
        blocked(pod=make_pod(namespace="billing")),
        blocked(pod=make_pod(name="db-1")),
        replace(blocked(), type=EventType.NORMAL),
        replace(blocked(), reason=Reason.EVICTED),
        replace(blocked(), action=EventAction.FORCE_DELETE),
    ],
    ids=["note", "uid", "namespace", "name", "type", "reason", "action"],
)
def test_anything_else_that_differs_is_another_event(other: KubeEvent) -> None:
    assert other.key != blocked().key
    assert event_name(other.key, instance=INSTANCE) != event_name(blocked().key, instance=INSTANCE)


# --- names -------------------------------------------------------------------------------------------------------


def test_names_are_deterministic_per_key_and_instance() -> None:
    key = blocked().key
    name = event_name(key, instance=INSTANCE)
    assert name == event_name(key, instance=INSTANCE)
    assert name.startswith("db-0.")
    assert re.fullmatch(r"db-0\.[0-9a-f]{16}", name)
    assert event_name(key, instance="another-instance") != name  # two instances never write one object


@pytest.mark.parametrize(
    "regarding",
    ["n" * 253, "a" * 235 + "-" + "b" * 17, "node.with.dots", "x"],
    ids=["longest", "cut-at-a-dash", "dots", "short"],
)
def test_names_are_dns_subdomains_of_at_most_253_characters(regarding: str) -> None:
    name = event_name(
        kube_events.cordoned(make_node(name=regarding), event_kind="delete", event_id="e", was_unschedulable=False).key,
        instance=INSTANCE,
    )
    assert len(name) <= 253
    assert DNS_SUBDOMAIN.fullmatch(name), name


# --- bodies ------------------------------------------------------------------------------------------------------


def test_first_occurrence_is_an_events_k8s_io_v1_object_without_series() -> None:
    event = kube_events.cordoned(make_node(), event_kind="preempted", event_id="op-1", was_unschedulable=False)
    body = event_body(event, name="n.1", instance=INSTANCE, event_time=FIRST)
    assert body == {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "n.1", "namespace": "default"},
        "eventTime": "2026-10-02T08:14:07.512331Z",
        "reportingController": "gke-node-drainer",
        "reportingInstance": INSTANCE,
        "action": "Cordon",
        "reason": "Cordoned",
        "regarding": {
            "apiVersion": "v1",
            "kind": "Node",
            "name": NODE_NAME,
            "uid": "node-uid",
            "resourceVersion": "812",
        },
        "note": "cordoned by gke-node-drainer: preempted event op-1",
        "type": "Normal",
    }


def test_pod_events_live_in_the_pod_namespace() -> None:
    body = event_body(blocked(), name="db-0.1", instance=INSTANCE, event_time=FIRST)
    assert body["metadata"]["namespace"] == "payments"
    assert body["regarding"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "db-0",
        "namespace": "payments",
        "uid": "pod-uid",
    }
    assert body["type"] == "Warning"
    assert "PodDisruptionBudget db-pdb" in body["note"]


def test_a_repeat_carries_a_series_and_is_patched_with_only_the_series() -> None:
    body = event_body(blocked(), name="db-0.1", instance=INSTANCE, event_time=FIRST, count=3, last_observed=LATER)
    assert body["eventTime"] == "2026-10-02T08:14:07.512331Z"  # the first occurrence
    assert body["series"] == {"count": 3, "lastObservedTime": "2026-10-02T08:14:09.000004Z"}
    assert series_patch(4, LATER) == {"series": {"count": 4, "lastObservedTime": "2026-10-02T08:14:09.000004Z"}}
    assert series_patch(1, LATER)["series"]["count"] == 2  # the API server refuses a series below 2


def test_micro_time_is_utc_with_six_digits() -> None:
    assert micro_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"


def test_long_reporting_instance_is_cut_to_the_api_limit() -> None:
    body = event_body(blocked(), name="x", instance="i" * 300, event_time=FIRST)
    assert len(body["reportingInstance"]) == 128


# --- notes -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["a" * 5000, "é" * 5000, "ab" + "€" * 600], ids=["ascii", "two-byte", "three-byte"])
def test_notes_are_cut_to_1024_bytes_on_a_character_boundary(text: str) -> None:
    cut = bounded_note(text)
    assert len(cut.encode("utf-8")) <= 1024
    assert cut.endswith("...")
    assert text.startswith(cut[:-3])


def test_short_notes_are_kept() -> None:
    assert bounded_note("drained") == "drained"


def test_drain_incomplete_names_the_blocked_pods_their_pdbs_and_the_rest() -> None:
    event = kube_events.drain_incomplete(
        make_node(),
        event_kind="delete",
        event_id="op-9",
        blocked={"payments/db-0": "db-pdb", "payments/db-1": "db-pdb", "web/a": "web-pdb"},
        remaining=["payments/db-0", "payments/db-1", "web/a", "batch/slow"],
        why="4 pod(s) left at the deadline (3 s)",
    )
    assert event.type is EventType.WARNING
    assert event.reason is Reason.DRAIN_INCOMPLETE
    assert event.note == (
        "drain incomplete (delete event op-9): 4 pod(s) left at the deadline (3 s); "
        "blocked by PodDisruptionBudget(s) db-pdb, web-pdb: payments/db-0, payments/db-1, web/a; "
        "also left: batch/slow"
    )


def test_long_listings_are_summarized() -> None:
    pods = [f"ns/p{i:02}" for i in range(25)]
    event = kube_events.force_cleanup(make_node(), pods=pods)
    assert event.note.endswith("ns/p09 and 15 more")
    assert event.note.startswith("force-deleting 25 pod(s)")


def test_verified_down_names_its_signal() -> None:
    event = kube_events.verified_down(make_node(), signal=kube_events.SIGNAL_NODE_READY_UNKNOWN)
    assert kube_events.SIGNAL_NODE_READY_UNKNOWN in event.note
    other = kube_events.verified_down(make_node(), signal="Compute Engine reports the instance TERMINATED")
    assert other.key != event.key


@pytest.mark.parametrize(
    ("event", "reason", "action", "kind"),
    [
        (
            kube_events.out_of_service_taint_added(make_node(), why="verified down"),
            "OutOfServiceTaintAdded",
            "Taint",
            "Node",
        ),
        (
            kube_events.out_of_service_taint_removed(make_node(), why="back"),
            "OutOfServiceTaintRemoved",
            "Untaint",
            "Node",
        ),
        (kube_events.uncordoned(make_node(), why="back"), "Uncordoned", "Uncordon", "Node"),
        (kube_events.released(make_node(), why="back"), "Released", "Release", "Node"),
        (
            kube_events.drain_completed(
                make_node(), event_kind="delete", event_id="e", counts={"evicted": 2}, seconds=1.0
            ),
            "DrainCompleted",
            "Drain",
            "Node",
        ),
        (kube_events.evicted(make_pod(), node=NODE_NAME, why=""), "Evicted", "Evict", "Pod"),
        (kube_events.force_deleted(make_pod(), node=NODE_NAME), "ForceDeleted", "ForceDelete", "Pod"),
        (kube_events.skipped(make_pod(), node=NODE_NAME, why="opt-out"), "Skipped", "Skip", "Pod"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_every_event_is_camel_case_and_about_its_object(event: KubeEvent, reason: str, action: str, kind: str) -> None:
    assert (event.reason.value, event.action.value, event.regarding.kind) == (reason, action, kind)
    assert re.fullmatch(r"(?:[A-Z][a-z]+)+", event.reason.value)
    assert re.fullmatch(r"(?:[A-Z][a-z]+)+", event.action.value)
    assert event.note


def test_object_ref_leaves_out_what_is_unknown() -> None:
    assert ObjectRef(kind="Node", name="n").as_json() == {"apiVersion": "v1", "kind": "Node", "name": "n"}
