"""The pull-worker mode against the loopback pstest server and the real API server."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from tests.controlplane.cluster import TestCluster, wait_until
from tests.controlplane.harness import ControlPlane, free_port
from tests.controlplane.metadata import FakeMetadataServer
from tests.controlplane.pubsub import PubsubFake
from tests.support.deliveries import log_entry
from tests.support.server import CLOSED_GOOGLE_APIS, REPO, cluster_entry, iter_audit

PROJECT = "acme-prod"


class WorkerProcess:
    def __init__(
        self, env: dict[str, str], subscription: str, log: Path, grace: float = 30, extra: tuple[str, ...] = ()
    ) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "functions",
                "worker",
                "--subscription",
                subscription,
                "--grace-seconds",
                str(grace),
                *extra,
            ],
            cwd=REPO,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def audit(self, action: str, **match: Any) -> list[dict[str, Any]]:
        lines = self.log.read_text(errors="replace").splitlines()
        return [
            r
            for r in iter_audit(iter(lines))
            if r.get("action") == action and all(r.get(k) == v for k, v in match.items())
        ]

    def wait_audit(self, action: str, timeout: float = 30, **match: Any) -> dict[str, Any]:
        if not wait_until(lambda: bool(self.audit(action, **match)), timeout=timeout, interval=0.1):
            raise AssertionError(f"no {action} {match}:\n{self.log.read_text()[-3000:]}")
        return self.audit(action, **match)[-1]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._out.close()
        return code


@pytest.fixture
def channel(pubsub: PubsubFake, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, str]:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub.host)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = f"node-events-{secrets.token_hex(3)}"
    topic = publisher.topic_path(PROJECT, name)
    sub = subscriber.subscription_path(PROJECT, f"{name}-worker")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=sub, topic=topic, ack_deadline_seconds=10)
    return publisher, topic, sub


def worker_env(plane: ControlPlane, metadata: FakeMetadataServer, pubsub: PubsubFake, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRAINER_", "GOOGLE_"))}
    env.update(metadata.environ())
    env.update(pubsub.environ())
    env.update({"DRAINER_CLUSTERS": json.dumps([cluster_entry(plane)]), "PYTHONUNBUFFERED": "1", **CLOSED_GOOGLE_APIS})
    env.update(extra)
    return env


def test_worker_drains_and_acks(
    control_plane: ControlPlane,
    metadata_server: FakeMetadataServer,
    pubsub: PubsubFake,
    drainer_rbac: Any,
    channel: tuple[Any, str, str],
    cluster: TestCluster,
    tmp_path: Path,
) -> None:
    publisher, topic, sub = channel
    worker = WorkerProcess(worker_env(control_plane, metadata_server, pubsub), sub, tmp_path / "worker.log")
    try:
        node = cluster.add_node()
        cluster.bare_pod(node.name)
        cluster.wait_running(1, node=node.name)
        entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
        publisher.publish(topic, json.dumps(entry).encode()).result(timeout=30)
        publisher.publish(topic, b"not a log entry").result(timeout=30)
        done = worker.wait_audit("drain.completed", event_id=entry["operation"]["id"])
        assert done["trigger"] == "worker"
        assert cluster.read_node(node.name).spec.unschedulable is True
        worker.wait_audit("event.malformed")
        time.sleep(12)  # past the ack deadline: an unacked message would come back
        assert len(worker.audit("event.received", event_id=entry["operation"]["id"])) == 1
        assert len(worker.audit("event.malformed")) == 1
    finally:
        assert worker.stop() == 0


def test_worker_backs_off_before_a_transient_failure_is_redelivered(
    control_plane: ControlPlane,
    metadata_server: FakeMetadataServer,
    pubsub: PubsubFake,
    drainer_rbac: Any,
    channel: tuple[Any, str, str],
    cluster: TestCluster,
    tmp_path: Path,
) -> None:
    publisher, topic, sub = channel
    dead = cluster_entry(control_plane, name="dead", endpoint=f"https://127.0.0.1:{free_port()}")
    env = worker_env(control_plane, metadata_server, pubsub, DRAINER_CLUSTERS=json.dumps([dead]))
    worker = WorkerProcess(env, sub, tmp_path / "worker.log", extra=("--retry-backoff-seconds", "3"))
    try:
        node = cluster.add_node()
        entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
        publisher.publish(topic, json.dumps(entry).encode()).result(timeout=30)
        seen: list[float] = []

        def deliveries(count: int) -> bool:
            found = len(worker.audit("cluster.unreachable", event_id=entry["operation"]["id"]))
            while len(seen) < found:
                seen.append(time.monotonic())
            return found >= count

        assert wait_until(lambda: deliveries(3), timeout=60, interval=0.05), worker.log.read_text()[-2000:]
        # an immediate nack would be redelivered at once, again and again; the backoff doubles per attempt
        assert seen[1] - seen[0] >= 3 * 0.9
        assert seen[2] - seen[1] >= 6 * 0.9
    finally:
        assert worker.stop() == 0


def test_sigterm_during_a_drain_finishes_it_and_stops_pulling(
    control_plane: ControlPlane,
    metadata_server: FakeMetadataServer,
    pubsub: PubsubFake,
    drainer_rbac: Any,
    channel: tuple[Any, str, str],
    cluster: TestCluster,
    tmp_path: Path,
) -> None:
    publisher, topic, sub = channel
    env = worker_env(control_plane, metadata_server, pubsub, DRAINER_DEADLINE_DELETE="4")
    worker = WorkerProcess(env, sub, tmp_path / "worker.log", grace=30)
    node = cluster.add_node()
    rs = cluster.replicaset(node.name, 1, name="held")
    cluster.wait_running(1, node=node.name)
    cluster.pdb({"app": rs.metadata.labels["app"]}, min_available=1)
    entry = log_entry("delete", instance=node.name, instance_id=node.instance_id)
    publisher.publish(topic, json.dumps(entry).encode()).result(timeout=30)
    worker.wait_audit("drain.started", event_id=entry["operation"]["id"])
    worker.proc.send_signal(signal.SIGTERM)
    later = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    publisher.publish(topic, json.dumps(later).encode()).result(timeout=30)
    assert worker.stop() == 0
    done = worker.audit("drain.incomplete", event_id=entry["operation"]["id"])
    assert len(done) == 1  # the in-flight drain ran to its deadline before the worker left
    stopped = worker.audit("worker.stopped")
    assert stopped[-1]["clean"] is True
    assert not worker.audit("event.received", event_id=later["operation"]["id"])  # nothing pulled after SIGTERM
