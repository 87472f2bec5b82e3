"""Nothing a drain opens outlives it: its watch threads have ended and its watch connections are
closed when ``Drain.run()`` returns. In-process, against the real API server, with the function's own
ClusterClient (the only way to see the threads and sockets of one drain)."""

from __future__ import annotations

import io
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psutil
import pytest

from functions.decisions.policy import DrainPlan
from functions.engines.drain.report import DrainOutcome
from functions.engines.drain.run import Drain
from functions.gateways import audit
from functions.gateways.kube.client import ClusterClient
from tests.controlplane.cluster import TestCluster, wait_until
from tests.controlplane.harness import ControlPlane

DRAINS = 4


@pytest.fixture
def audit_stream() -> Iterator[io.StringIO]:
    """The audit records of the in-process drains, kept in memory (the process-wide writer restored after)."""
    stream = io.StringIO()
    audit.configure(stream=stream)
    yield stream
    audit.configure()


def api_connections(plane: ControlPlane) -> int:
    """TCP connections of this process to the API server (the stand-ins' and helpers' included)."""
    return sum(
        1
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == plane.port and c.status == psutil.CONN_ESTABLISHED
    )


def drain_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("drain-", "evict", "force")) and t.is_alive()]


def _drain_one(kube: ClusterClient, cluster: TestCluster, round_: int) -> None:
    node = cluster.add_node()
    cluster.replicaset(node.name, 2)
    cluster.wait_running(2, node=node.name)
    plan = DrainPlan(
        reason="preempted",
        event_id=f"watch-lifetime-{round_}-{secrets.token_hex(4)}",
        event_time=datetime.now(UTC),
        # long: a watch left open until its server-side timeout would outlive the drain by most of this
        timeout=timedelta(seconds=60),
        force_when_down=True,  # the Node watch runs beside the pods' watch
        instance_id=node.instance_id,
    )
    report = Drain(kube=kube, node_name=node.name, plan=plan, audit=audit.Audit({"event_id": plan.event_id})).run()
    assert report.outcome is DrainOutcome.COMPLETED, report.summary()
    assert [p.result.value for p in report.pods] == ["evicted", "evicted"]


def test_a_drain_leaves_no_watch_thread_or_connection_behind(
    kube: ClusterClient, cluster: TestCluster, control_plane: ControlPlane, audit_stream: io.StringIO
) -> None:
    _drain_one(kube, cluster, 0)  # warms the connection pools (ours and the stand-ins')
    assert not drain_threads(), [t.name for t in drain_threads()]
    baseline = {t.ident for t in threading.enumerate()}
    counts = [api_connections(control_plane)]
    for round_ in range(1, DRAINS + 1):
        _drain_one(kube, cluster, round_)
        # when run() returns, its watchers have ended: not "soon", now
        left = drain_threads()
        assert not left, f"threads outlive drain {round_}: {[t.name for t in left]}"
        new = [t.name for t in threading.enumerate() if t.ident not in baseline and not t.name.startswith("kubelet")]
        assert not new, f"threads started by drain {round_} still alive: {new}"
        # the stand-ins' pools open and keep a connection now and then; a drain that left its two watch
        # streams open (for most of the 60 s deadline) would add two per drain, cumulatively
        wait_until(lambda: api_connections(control_plane) <= counts[0] + 1, timeout=5)
        counts.append(api_connections(control_plane))
    assert counts[-1] - counts[0] < 2 * DRAINS - 2, f"API server connections after each drain: {counts}"
