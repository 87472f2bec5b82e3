"""Outcome events published as CloudEvents JSON to Pub/Sub (the loopback pstest server), through the
real function servers and API server."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from tests.controlplane.cluster import TestCluster
from tests.controlplane.pubsub import PubsubFake
from tests.support.deliveries import delivery, log_entry
from tests.support.server import FunctionServer

PROJECT = "acme-prod"


@pytest.fixture
def topic(pubsub: PubsubFake, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Callable[[], list[Any]]]:
    """A fresh topic with a subscription; returns (topic path, pull function)."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub.host)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = f"outcomes-{secrets.token_hex(3)}"
    path = publisher.topic_path(PROJECT, name)
    sub = subscriber.subscription_path(PROJECT, f"{name}-sub")
    publisher.create_topic(name=path)
    subscriber.create_subscription(name=sub, topic=path)

    def pull() -> list[Any]:
        response = subscriber.pull(subscription=sub, max_messages=50, timeout=10)
        if response.received_messages:
            subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in response.received_messages])
        return [m.message for m in response.received_messages]

    return path, pull


def test_drain_publishes_node_drained(
    server_factory: Callable[..., FunctionServer],
    pubsub: PubsubFake,
    topic: tuple[str, Callable[[], list[Any]]],
    cluster: TestCluster,
) -> None:
    path, pull = topic
    server = server_factory(DRAINER_OUTCOME_TOPIC=path, **pubsub.environ())
    node = cluster.add_node()
    cluster.replicaset(node.name, 2)
    cluster.wait_running(2, node=node.name)
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    body, headers = delivery("binary", entry)
    assert server.post(body, headers).status_code == 200
    [message] = pull()
    assert message.attributes["type"] == "io.gke-node-drainer.node.drained"
    assert message.attributes["cluster"] == "test"
    assert message.attributes["node"] == node.name
    event = json.loads(message.data)
    assert event["specversion"] == "1.0"
    assert event["type"] == "io.gke-node-drainer.node.drained"
    assert event["source"] == "//gke-node-drainer/clusters/test"
    assert event["subject"] == node.name
    data = event["data"]
    assert data["event_id"] == entry["operation"]["id"]
    assert data["trigger"] == "pubsub"
    assert data["counts"] == {"evicted": 2}
    assert data["outcome"] == "completed"
    assert data["duration_seconds"] > 0
    published = server.wait_audit(action="outcome.published", event_id=entry["operation"]["id"])
    assert published["message_id"]


def test_blocked_drain_publishes_drain_failed_with_its_budgets(
    server_factory: Callable[..., FunctionServer],
    pubsub: PubsubFake,
    topic: tuple[str, Callable[[], list[Any]]],
    cluster: TestCluster,
) -> None:
    path, pull = topic
    server = server_factory(DRAINER_OUTCOME_TOPIC=path, DRAINER_DEADLINE_DELETE="2", **pubsub.environ())
    node = cluster.add_node()
    rs = cluster.replicaset(node.name, 1, name="solo")
    cluster.wait_running(1, node=node.name)
    cluster.pdb({"app": rs.metadata.labels["app"]}, min_available=1, name="solo-pdb")
    entry = log_entry("delete", instance=node.name, instance_id=node.instance_id)
    body, headers = delivery("binary", entry)
    assert server.post(body, headers).status_code == 200
    [message] = pull()
    event = json.loads(message.data)
    assert event["type"] == "io.gke-node-drainer.node.drain_failed"
    assert event["data"]["outcome"] == "incomplete"
    assert [b["pdb"] for b in event["data"]["blocked"]] == ["solo-pdb"]


def test_missing_topic_is_audited_and_the_drain_unaffected(
    server_factory: Callable[..., FunctionServer], pubsub: PubsubFake, cluster: TestCluster
) -> None:
    server = server_factory(DRAINER_OUTCOME_TOPIC=f"projects/{PROJECT}/topics/no-such-topic", **pubsub.environ())
    node = cluster.add_node()
    cluster.bare_pod(node.name)
    cluster.wait_running(1, node=node.name)
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    body, headers = delivery("binary", entry)
    assert server.post(body, headers).status_code == 200
    assert cluster.read_node(node.name).spec.unschedulable is True
    server.wait_audit(action="drain.completed", event_id=entry["operation"]["id"])
    failed = server.wait_audit(action="outcome.publish_failed", event_id=entry["operation"]["id"])
    assert "no-such-topic" in failed["topic"]
    assert failed["severity"] == "WARNING"
    assert len(server.audit_for(action="drain.completed", event_id=entry["operation"]["id"])) == 1  # not repeated


def test_cleanup_publishes_jobs_cleaned(
    server_factory: Callable[..., FunctionServer],
    pubsub: PubsubFake,
    topic: tuple[str, Callable[[], list[Any]]],
    cluster: TestCluster,
) -> None:
    path, pull = topic
    server = server_factory(
        "on_schedule",
        "http",
        DRAINER_OUTCOME_TOPIC=path,
        DRAINER_CLEANUP_NAMESPACES=cluster.namespace,
        **pubsub.environ(),
    )
    cluster.finished_job(name="old", finished_at=datetime.now(UTC) - timedelta(hours=2))
    response = requests.post(server.url, json={"action": "cleanup"}, timeout=60)
    assert response.status_code == 200, response.text
    [message] = pull()
    event = json.loads(message.data)
    assert event["type"] == "io.gke-node-drainer.jobs.cleaned"
    assert event["data"]["deleted_jobs"] == 1
    assert event["data"]["trigger"] == "schedule"
    assert "node" not in message.attributes
