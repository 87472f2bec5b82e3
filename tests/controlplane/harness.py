"""Start etcd, kube-apiserver (RBAC on) and kube-controller-manager on free loopback ports.

Every child process gets PR_SET_PDEATHSIG=SIGKILL, so it dies with the Python process that
started it even when that process is killed; ``stop()`` (also run at exit) terminates the
process groups and removes the working directory.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.controlplane import assets, pki

DEFAULT_PROJECT = "acme-prod"
CONTROLLERS = (
    "disruption-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "replicaset-controller",
    "deployment-controller",
    "statefulset-controller",
    "job-controller",
    "cronjob-controller",
    "ttl-after-finished-controller",
    "clusterrole-aggregation-controller",
    # Volumes and node health as in a cluster (names as `kube-controller-manager --help` lists them):
    "persistentvolume-binder-controller",
    "persistentvolume-attach-detach-controller",
    # without these the protection finalizers that admission puts on every PV and PVC would keep
    # them (and their namespaces) terminating forever
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
    "pod-garbage-collector-controller",
    "node-lifecycle-controller",
    "taint-eviction-controller",
)
# How long the node-lifecycle controller waits for a silent kubelet (no status, no Lease renewal)
# before it marks the node's Ready condition Unknown and taints it unreachable. Kubernetes'
# default (and GKE's) is 50 s; tests default to 15 s so that "the controller gave up on the node"
# happens within a test's time. Not shorter: a test that kills a node without the Unknown
# shortcut and checks that fencing holds during a 6 s drain deadline (1 s after the kill) needs the
# controller not to notice before about 8 s after the kill, and the stand-in's 2 s Lease renewal
# keeps a wide margin on a loaded machine. The failover benchmark passes the real 50 s.
DEFAULT_NODE_MONITOR_GRACE_PERIOD = 15.0
# How often the node-lifecycle controller checks node health (Kubernetes' default is 5 s).
DEFAULT_NODE_MONITOR_PERIOD = 1.0

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _duration(seconds: float) -> str:
    """A Go duration flag value (milliseconds, so that fractions survive)."""
    return f"{round(seconds * 1000)}ms"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Identity:
    """A user of the static token file."""

    user: str
    token: str
    groups: tuple[str, ...] = ()


@dataclass
class ControlPlane:
    project: str = DEFAULT_PROJECT
    drainer_tokens: int = 4
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gke-drainer-cp-")))
    keep_workdir: bool = False
    node_monitor_grace_period: float = DEFAULT_NODE_MONITOR_GRACE_PERIOD
    node_monitor_period: float = DEFAULT_NODE_MONITOR_PERIOD
    controllers: tuple[str, ...] = CONTROLLERS  # what the controller-manager started by start() runs

    def __post_init__(self) -> None:
        if not 0 < self.node_monitor_period < self.node_monitor_grace_period:
            raise ValueError("node_monitor_period must be positive and shorter than node_monitor_grace_period")
        self.assets = assets.ensure()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.port = free_port()
        self.controller_manager_port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.admin = Identity("test-admin", secrets.token_urlsafe(24), ("system:masters",))
        self.controller_manager = Identity(
            "test-kube-controller-manager", secrets.token_urlsafe(24), ("system:masters",)
        )
        self.drainer_user = f"drainer@{self.project}.iam.gserviceaccount.com"
        # GKE maps a Google access token to the account's email; every token the fake
        # metadata server hands out is one of these.
        self.drainer_identities = tuple(
            Identity(self.drainer_user, f"ya29.test-{secrets.token_urlsafe(24)}") for _ in range(self.drainer_tokens)
        )
        self.stranger = Identity("stranger@example.com", secrets.token_urlsafe(24))
        self.started_seconds: float | None = None
        # what start() made, kept so that the API server can be started again after an outage
        self._files: dict[str, Path] = {}
        self._tokens = self.workdir / "tokens.csv"
        self._etcd_url = ""

    # ------------------------------------------------------------------ files
    @property
    def ca_file(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    def _write_token_file(self) -> Path:
        rows = []
        for index, ident in enumerate((self.admin, self.controller_manager, self.stranger, *self.drainer_identities)):
            groups = ",".join(ident.groups)
            rows.append(
                f'{ident.token},{ident.user},uid-{index},"{groups}"'
                if groups
                else f"{ident.token},{ident.user},uid-{index}"
            )
        path = self.workdir / "tokens.csv"
        path.write_text("\n".join(rows) + "\n")
        path.chmod(0o600)
        return path

    def write_kubeconfig(self, identity: Identity, path: Path | None = None) -> Path:
        path = path or self.workdir / f"kubeconfig-{identity.user.split('@')[0]}"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: local\n  cluster:\n    server: {self.url}\n"
            f"    certificate-authority: {self.ca_file}\n"
            f"users:\n- name: {identity.user}\n  user:\n    token: {identity.token}\n"
            f"contexts:\n- name: local\n  context:\n    cluster: local\n    user: {identity.user}\n"
            "current-context: local\n"
        )
        path.chmod(0o600)
        return path

    # -------------------------------------------------------------- processes
    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - owned by the child
        self.procs[name] = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - no threads exist in the child
            start_new_session=True,
        )
        log.close()

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def _wait_http(self, url: str, *, token: str | None, timeout: float, context: ssl.SSLContext | None) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            self._check_alive()
            request = urllib.request.Request(url)
            if token:
                request.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(request, timeout=2, context=context) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = exc
            time.sleep(0.1)
        raise TimeoutError(f"{url} not ready after {timeout} s: {last}")

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def start(self, timeout: float = 60.0) -> ControlPlane:
        started = time.monotonic()
        atexit.register(self.stop)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "pki").mkdir(exist_ok=True)
        files = pki.write_pki(self.workdir / "pki")
        tokens = self._write_token_file()
        etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        peer_url = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._spawn(
            "etcd",
            [
                str(self.assets.path("etcd")),
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=8589934592",
                "--log-level=warn",
            ],
        )
        self._wait_http(f"{etcd_url}/health", token=None, timeout=timeout, context=None)
        self._files, self._tokens, self._etcd_url = files, tokens, etcd_url
        self._start_apiserver(timeout)
        self.start_controller_manager("kube-controller-manager", self.controllers, timeout=timeout)
        self.started_seconds = time.monotonic() - started
        return self

    def start_controller_manager(
        self, name: str, controllers: tuple[str, ...], *, timeout: float = 60.0, extra_args: tuple[str, ...] = ()
    ) -> subprocess.Popen[bytes]:
        """Start a kube-controller-manager running ``controllers`` as process ``name`` (a second one,
        with controllers of its own, may run beside the first: leader election is off) and wait until
        it is healthy."""
        port = self.controller_manager_port if name == "kube-controller-manager" else free_port()
        self._spawn(
            name,
            [
                str(self.assets.path("kube-controller-manager")),
                f"--kubeconfig={self.write_kubeconfig(self.controller_manager)}",
                f"--controllers={','.join(controllers)}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / f'{name}-certs'}",
                "--kube-api-qps=500",
                "--kube-api-burst=1000",
                "--concurrent-gc-syncs=40",
                "--concurrent-job-syncs=10",
                f"--node-monitor-grace-period={_duration(self.node_monitor_grace_period)}",
                f"--node-monitor-period={_duration(self.node_monitor_period)}",
                # a node that never posted status is given up on after the same grace
                f"--node-startup-grace-period={_duration(self.node_monitor_grace_period)}",
                "--v=0",
                *extra_args,
            ],
        )
        # /healthz is always allowed; its self-signed serving cert is not worth verifying here.
        self._wait_http(
            f"https://127.0.0.1:{port}/healthz",
            token=None,
            timeout=timeout,
            context=ssl._create_unverified_context(),
        )
        return self.procs[name]

    def stop_process(self, name: str, timeout: float = 10.0) -> None:
        """Stop one of the processes (a second controller-manager) and forget it."""
        proc = self.procs.pop(name)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    # ------------------------------------------------------------- outages
    def _start_apiserver(self, timeout: float) -> None:
        files, tokens, etcd_url = self._files, self._tokens, self._etcd_url
        self._spawn(
            "kube-apiserver",
            [
                str(self.assets.path("kube-apiserver")),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--tls-cert-file={files['serving_cert']}",
                f"--tls-private-key-file={files['serving_key']}",
                f"--client-ca-file={files['ca']}",
                "--authorization-mode=RBAC",
                f"--token-auth-file={tokens}",
                f"--service-account-key-file={files['sa_pub']}",
                f"--service-account-signing-key-file={files['sa_key']}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.96.0.0/24",
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                # No kubelet runs, so no pod could ever get a projected service-account token.
                "--disable-admission-plugins=ServiceAccount",
                "--profiling=false",
                "--max-requests-inflight=1000",
                "--max-mutating-requests-inflight=500",
                "--v=0",
            ],
        )
        self._wait_http(f"{self.url}/readyz", token=self.admin.token, timeout=timeout, context=self.ssl_context())

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver only (an outage): etcd, the controller-manager, the port and certificates stay.
        Returns once the process has exited, so that nothing answers on the port any more."""
        proc = self.procs.pop("kube-apiserver")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def start_apiserver(self, timeout: float = 60.0) -> None:
        """Start kube-apiserver again after ``stop_apiserver()``: same port, certificates, tokens and etcd."""
        if "kube-apiserver" in self.procs:
            raise RuntimeError("kube-apiserver is running")
        self._start_apiserver(timeout)

    @property
    def apiserver_running(self) -> bool:
        proc = self.procs.get("kube-apiserver")
        return proc is not None and proc.poll() is None

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
