"""Forged look-alikes of Compute Engine audit entries, through functions-framework's HTTP server, for a real node
on the real API server: acknowledged, audited as event.malformed with what was wrong, and the node untouched.

These are the three forgeries of issue 20 (each acted before): an entry in a log of the writer's choosing, one
claiming another serviceName, and one stamped hours in the future. After each, the genuine entry for the same
node is delivered and does cordon it, so "untouched" is not for want of a node that could be drained.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.controlplane.cluster import TestCluster
from tests.support.deliveries import delivery, log_entry
from tests.support.forgeries import forgery
from tests.support.server import FunctionServer

ANN = "node-drainer.io/"


@pytest.mark.parametrize("forgery_id", ["log-other", "service-other", "timestamp-hours-ahead"])
def test_forged_entries_are_acknowledged_audited_and_never_touch_the_node(
    drainer: FunctionServer, cluster: TestCluster, forgery_id: str
) -> None:
    forged_as = forgery(forgery_id)
    node = cluster.add_node()
    cluster.bare_pod(node.name, name="app")
    cluster.wait_running(1, node=node.name)
    genuine = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    forged = forged_as.apply(genuine, now=datetime.now(UTC))
    mid = f"forged-{forgery_id}-{time.monotonic_ns()}"

    body, headers = delivery("binary", forged, message_id=mid)
    response = drainer.post(body, headers)

    assert 200 <= response.status_code < 300, response.text  # acknowledged: a redelivery would change nothing
    record = drainer.wait_audit(action="event.malformed", delivery_id=mid)
    assert forged_as.error in record["error"]
    assert record["severity"] == "WARNING"
    # the handler answers once it has decided: the node and its pod are as they were
    current = cluster.read_node(node.name)
    assert not current.spec.unschedulable
    assert not [key for key in current.metadata.annotations or {} if key.startswith(ANN)]
    assert not [taint for taint in current.spec.taints or [] if taint.key == "node.kubernetes.io/out-of-service"]
    assert [p.metadata.name for p in cluster.pods(node=node.name) if not p.metadata.deletion_timestamp] == ["app"]
    assert drainer.audit_for(node=node.name) == []  # nothing was done, or even considered, for this node
    assert [r["action"] for r in drainer.audit_for(delivery_id=mid)] == ["event.malformed"]

    # the genuine entry for the same node does act
    body, headers = delivery("binary", genuine)
    assert drainer.post(body, headers).status_code == 200
    assert cluster.read_node(node.name).spec.unschedulable is True
    assert cluster.read_node(node.name).metadata.annotations[f"{ANN}event-id"] == genuine["operation"]["id"]
    assert drainer.audit_for(action="node.cordoned", node=node.name)  # records of a node do name it
