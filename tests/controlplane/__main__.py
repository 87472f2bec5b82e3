"""Run the project locally: control plane, demo GKE nodes and workload, and the functions, until Ctrl-C.

    python -m tests.controlplane            (what `make run` does)

The functions (on_node_event on 127.0.0.1:8080, on_manual on :8081, on_schedule on :8082) are served
by functions-framework as the drainer user of the repository's RBAC manifest, authenticated by
google-auth through the local fake metadata server. Post the sample event (README shows the
command) and watch the node drain.

The test bed is the one the tests use: the real node-lifecycle, attach/detach, PV binder, pod GC
and taint-eviction controllers, the kubelet and external-attacher stand-ins, and a fake Compute
Engine API (its root is exported to the functions as DRAINER_COMPUTE_API_ENDPOINT) that knows the
demo VMs as RUNNING. The demo node runs a ReplicaSet and a StatefulSet with a PD volume; a spare
node of the same pool takes them when the demo node is drained or lost.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from kubernetes import client

from tests.controlplane.attacher import AttacherStandIn
from tests.controlplane.clients import api_client, apply_rbac
from tests.controlplane.cluster import POOL_LABEL, TestCluster
from tests.controlplane.harness import ControlPlane
from tests.controlplane.kubelet import KubeletStandIn
from tests.controlplane.metadata import FakeMetadataServer
from tests.support.compute import FakeComputeApi
from tests.support.server import cluster_entry, framework_command

RUN_DIR = Path(".run")
REPO = Path(__file__).resolve().parents[2]
# The shared sample event is about this instance (logentry-preempted.json).
DEMO_NODE = "gke-payments-spot-pool-3f1c2a9e-x7k2"
DEMO_INSTANCE_ID = "7310455628112203391"
SPARE_NODE = "gke-payments-spot-pool-3f1c2a9e-b4n8"
COMPUTE_ENDPOINT_ENV = "DRAINER_COMPUTE_API_ENDPOINT"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=6, help="demo ReplicaSet size on the demo node")
    parser.add_argument("--port", type=int, default=8080, help="loopback port of the function")
    parser.add_argument(
        "--node-grace",
        type=float,
        default=50.0,
        help="node-lifecycle controller's --node-monitor-grace-period in seconds (GKE's is 50)",
    )
    args = parser.parse_args(argv)

    plane = ControlPlane(node_monitor_grace_period=args.node_grace).start()
    api = api_client(plane, plane.admin)
    kubelet = KubeletStandIn(api, heartbeat_interval=5.0).start()
    attacher = AttacherStandIn(api).start()
    compute = FakeComputeApi(project=plane.project)
    metadata = FakeMetadataServer(
        project=plane.project, email=plane.drainer_user, tokens=[i.token for i in plane.drainer_identities]
    ).start()
    functions: list[subprocess.Popen[bytes]] = []
    try:
        apply_rbac(api, plane.drainer_user)
        core = client.CoreV1Api(api)
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
        demo = TestCluster(api=api, kubelet=kubelet, project=plane.project, namespace="demo")
        node = demo.add_node(name=DEMO_NODE, zone="europe-west4-b", instance_id=DEMO_INSTANCE_ID)
        # the spare waits cordoned until the demo workload runs on the demo node, then takes over
        spare = demo.add_node(name=SPARE_NODE, zone="europe-west4-b", unschedulable=True)
        for vm in (node, spare):
            compute.add_node(vm)
        pool = {POOL_LABEL: node.pool}
        demo.replicaset(None, args.pods, name="web", node_selector=pool)
        demo.stateful_set_with_volumes(2, node_selector=pool, name="db")
        demo.wait_running(args.pods + 2, node=node.name, timeout=60)
        core.patch_node(spare.name, {"spec": {"unschedulable": False}})
        RUN_DIR.mkdir(exist_ok=True)
        admin_kubeconfig = plane.write_kubeconfig(plane.admin, RUN_DIR / "kubeconfig").resolve()
        clusters = [cluster_entry(plane, name="payments", location="europe-west4")]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DRAINER_", "GOOGLE_"))},
            **metadata.environ(),
            "DRAINER_CLUSTERS": json.dumps(clusters),
            COMPUTE_ENDPOINT_ENV: compute.url,
            "PYTHONUNBUFFERED": "1",
        }
        targets = (
            ("on_node_event", "cloudevent", args.port),
            ("on_manual", "http", args.port + 1),
            ("on_schedule", "http", args.port + 2),
        )
        for target, signature, port in targets:
            functions.append(subprocess.Popen(framework_command(target, signature, port), cwd=REPO, env=env))
        kubectl = plane.assets.path("kubectl")
        print(
            f"\ncontrol plane ready in {plane.started_seconds:.1f} s at {plane.url}\n"
            f"  functions:  on_node_event http://127.0.0.1:{args.port}, on_manual :{args.port + 1}, "
            f"on_schedule :{args.port + 2} (as {plane.drainer_user})\n"
            f"  watch:      {kubectl} --kubeconfig {admin_kubeconfig} get nodes,pods -A -o wide -w\n"
            f"  demo node:  {node.name} ({node.provider_id}) with {args.pods} pods of ReplicaSet demo/web "
            "and StatefulSet demo/db (2 replicas, a PD volume each)\n"
            f"  spare node: {spare.name}, same pool\n"
            f"  Compute API (fake): {compute.url}  (the functions get it as {COMPUTE_ENDPOINT_ENV}); "
            f"both VMs RUNNING\n"
            f"  node-lifecycle grace: {plane.node_monitor_grace_period:g} s\n"
            "  send the sample preemption event:  make demo-event\n"
            f'  operator API:  curl -s 127.0.0.1:{args.port + 1} -d \'{{"action": "status"}}\'\n'
            "Ctrl-C stops everything.\n",
            flush=True,
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                if any(f.poll() is not None for f in functions):
                    print("a function server exited", file=sys.stderr)
                    return 1
        except KeyboardInterrupt:
            pass
    finally:
        for f in functions:
            if f.poll() is None:
                f.terminate()
                f.wait(timeout=10)
        kubelet.stop()
        attacher.stop()
        compute.stop()
        metadata.stop()
        plane.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
