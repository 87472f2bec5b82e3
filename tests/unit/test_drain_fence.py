"""Unit tests for the drain's fence (functions/engines/drain/fence.py): the facts it starts from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from functions.decisions.model import Node
from functions.decisions.policy import DrainPlan
from functions.decisions.settings import ClusterConfig
from functions.engines.drain.deadline import Deadline
from functions.engines.drain.fence import Fence
from functions.gateways.audit import Audit
from functions.gateways.kube.client import ClusterClient

EVENT_TIME = datetime(2026, 10, 2, 8, 14, 7, tzinfo=UTC)
NODE = Node.from_json(
    {
        "metadata": {"name": "gke-a", "uid": "uid-a", "resourceVersion": "7"},
        "spec": {"providerID": "gce://acme-prod/europe-west4-a/gke-a"},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastHeartbeatTime": "2026-10-02T08:14:30Z",
                    "lastTransitionTime": "2026-10-01T08:00:00Z",
                }
            ]
        },
    }
)


@dataclass
class NodesKube(ClusterClient):
    """One cluster of one Node, as the storm check reads and annotates it."""

    node: Node

    def __post_init__(self) -> None:
        self.cluster = ClusterConfig(name="alpha", project="acme-prod", location="europe-west4")
        self.timeout = 1.0

    def list_nodes(self, *, label_selector: str | None = None) -> list[Node]:
        return [self.node]

    def get_node(self, name: str) -> Node | None:
        return self.node

    def patch_node(
        self,
        name: str,
        *,
        uid: str,
        resource_version: str | None = None,
        unschedulable: bool | None = None,
        annotations: Mapping[str, str | None] | None = None,
        taints: list[dict[str, object]] | None = None,
        dry_run: bool = False,
    ) -> Node:
        kept = {k: v for k, v in {**self.node.annotations, **(annotations or {})}.items() if v is not None}
        self.node = replace(self.node, annotations=kept)
        return self.node


def test_the_vm_answer_judged_first_is_judged_with_the_node_as_cordoned() -> None:
    """Without Compute Engine, the VM watcher judges at once; if it judges before the Node watcher has,
    the fence must still see the Node as cordoned (Ready), not a deleted Node (which would be down)."""
    plan = DrainPlan(
        reason="preempted",
        event_id="e1",
        event_time=EVENT_TIME,
        timeout=timedelta(seconds=5),
        force_when_down=True,
    )
    fence = Fence(
        kube=NodesKube(NODE),
        node=NODE,
        plan=plan,
        deadline=Deadline(5.0),
        audit=Audit(),
        events=None,
        compute=None,
        wall=lambda: EVENT_TIME + timedelta(seconds=30),
        dry_run=False,
        storm_share=0.1,
        storm_window=600.0,
    )
    fence.watch_vm()
    assert not fence.down(), fence.verified
