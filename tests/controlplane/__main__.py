"""Run the local control plane with a demo GKE node and workload until Ctrl-C.

python -m tests.controlplane            (what `make run` does)
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from pathlib import Path

from kubernetes import client

from tests.controlplane.cluster import TestCluster
from tests.controlplane.harness import ControlPlane
from tests.controlplane.kubelet import KubeletStandIn
from tests.controlplane.metadata import FakeMetadataServer

RUN_DIR = Path(".run")


def admin_client(plane: ControlPlane) -> client.ApiClient:
    config = client.Configuration()
    config.host = plane.url
    config.ssl_ca_cert = str(plane.ca_file)
    config.api_key = {"authorization": plane.admin.token}
    config.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=6, help="demo ReplicaSet size on the demo node")
    args = parser.parse_args(argv)

    plane = ControlPlane().start()
    api = admin_client(plane)
    kubelet = KubeletStandIn(api, heartbeat_interval=5.0).start()
    metadata = FakeMetadataServer(
        project=plane.project, email=plane.drainer_user, tokens=[i.token for i in plane.drainer_identities]
    ).start()
    try:
        core = client.CoreV1Api(api)
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
        demo = TestCluster(api=api, kubelet=kubelet, project=plane.project, namespace="demo")
        node = demo.add_node(name="gke-payments-spot-pool-3f1c2a9e-x7k2", zone="europe-west4-b")
        demo.add_node(name="gke-payments-spot-pool-3f1c2a9e-b4n8", zone="europe-west4-b")
        demo.replicaset(node.name, args.pods, name="web")
        demo.statefulset(2, node_selector={"cloud.google.com/gke-nodepool": "spot-pool"}, name="db")
        RUN_DIR.mkdir(exist_ok=True)
        admin_kubeconfig = plane.write_kubeconfig(plane.admin, RUN_DIR / "kubeconfig")
        env_file = RUN_DIR / "env"
        env_file.write_text("".join(f"export {k}={v}\n" for k, v in metadata.environ().items()))
        print(
            f"control plane ready in {plane.started_seconds:.1f} s at {plane.url}\n"
            f"  admin kubeconfig:  export KUBECONFIG={admin_kubeconfig.resolve()}\n"
            f"  metadata server:   source {env_file}  (google-auth then acts as {plane.drainer_user})\n"
            f"  demo node:         {node.name} ({node.provider_id})\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    finally:
        kubelet.stop()
        metadata.stop()
        plane.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
