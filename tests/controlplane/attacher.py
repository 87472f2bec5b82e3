"""An external-attacher stand-in for the GCE PD CSI driver (``pd.csi.storage.gke.io``).

In a cluster the CSI driver's external-attacher sidecar watches VolumeAttachments of its driver:
it adds its finalizer, calls ControllerPublishVolume and sets ``status.attached``; when the
attach/detach controller deletes a VolumeAttachment it calls ControllerUnpublishVolume, sets
``attached=false`` and removes the finalizer so that the object goes away. This does the same
against the test control plane (no disk exists), optionally after ``attach_delay`` /
``detach_delay`` seconds to model the Compute Engine operation.

``start()`` also creates the CSIDriver object (``attachRequired: true``, as GKE's) so that the
attach/detach controller treats the driver's volumes as attachable.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch
from kubernetes.client import ApiException

PD_CSI_DRIVER = "pd.csi.storage.gke.io"
LOG = logging.getLogger(__name__)


def attacher_finalizer(driver: str) -> str:
    """The external-attacher's finalizer: ``external-attacher/`` and the driver, dots as dashes."""
    return "external-attacher/" + driver.replace(".", "-").replace("/", "-")


class AttacherStandIn:
    def __init__(
        self,
        api: client.ApiClient,
        *,
        driver: str = PD_CSI_DRIVER,
        attach_delay: float = 0.0,
        detach_delay: float = 0.0,
        workers: int = 4,
    ) -> None:
        self.storage = client.StorageV1Api(api)
        self.driver = driver
        self.finalizer = attacher_finalizer(driver)
        self.attach_delay = attach_delay
        self.detach_delay = detach_delay
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="attacher-standin")
        self._stop = threading.Event()
        self._busy: set[tuple[str, str]] = set()  # (name, "attach" | "detach") in flight
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # (monotonic time, VolumeAttachment name, node, "attached" | "detached"), for tests to read
        self.history: list[tuple[float, str, str, str]] = []

    # ------------------------------------------------------------ lifecycle
    def start(self) -> AttacherStandIn:
        self.ensure_csidriver()
        self._thread = threading.Thread(target=self._watch, name="attacher-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def ensure_csidriver(self) -> None:
        body = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "CSIDriver",
            "metadata": {"name": self.driver},
            "spec": {
                "attachRequired": True,
                "podInfoOnMount": False,
                "volumeLifecycleModes": ["Persistent"],
                "fsGroupPolicy": "ReadWriteOnceWithFSType",
            },
        }
        try:
            self.storage.create_csi_driver(body)
        except ApiException as exc:
            if exc.status != 409:
                raise

    # ---------------------------------------------------------------- watch
    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                listing = self.storage.list_volume_attachment()
                for va in listing.items:
                    self._handle(va)
                stream = watch.Watch().stream(
                    self.storage.list_volume_attachment,
                    resource_version=listing.metadata.resource_version,
                    timeout_seconds=300,
                    allow_watch_bookmarks=True,
                )
                for event in stream:
                    if self._stop.is_set():
                        return
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._handle(event["object"])
            except Exception as exc:  # relist on 410 Gone, a dropped stream, anything
                if self._stop.is_set():
                    return
                LOG.debug("attacher stand-in: watch restarts after %s", exc)
                time.sleep(0.2)

    def _handle(self, va: Any) -> None:
        if va.spec.attacher != self.driver:
            return
        name = va.metadata.name
        finalizers = va.metadata.finalizers or []
        if va.metadata.deletion_timestamp is not None:
            if self.finalizer in finalizers:
                self._run(name, "detach", self.detach_delay)
            return
        if self.finalizer not in finalizers or not (va.status and va.status.attached):
            self._run(name, "attach", self.attach_delay)

    def _run(self, name: str, action: str, delay: float) -> None:
        key = (name, action)
        with self._lock:
            if key in self._busy:
                return
            self._busy.add(key)

        def work() -> None:
            try:
                if delay:
                    self._stop.wait(delay)
                if not self._stop.is_set():
                    (self._attach if action == "attach" else self._detach)(name)
            except ApiException as exc:
                if exc.status not in (404, 409) and not self._stop.is_set():
                    LOG.warning("attacher stand-in: %s %s: %s", action, name, exc)
            except Exception:
                if not self._stop.is_set():
                    LOG.exception("attacher stand-in: %s %s failed", action, name)
            finally:
                with self._lock:
                    self._busy.discard(key)
            # a change that arrived while this ran is handled from a fresh read
            with contextlib.suppress(Exception):
                if not self._stop.is_set():
                    self._handle(self.storage.read_volume_attachment(name))

        with contextlib.suppress(RuntimeError):  # shut down
            self._pool.submit(work)

    def _attach(self, name: str) -> None:
        va = self.storage.read_volume_attachment(name)
        if va.metadata.deletion_timestamp is not None:
            return
        if self.finalizer not in (va.metadata.finalizers or []):
            # finalizers merge in a strategic merge patch; resourceVersion makes it a compare-and-swap
            va = self.storage.patch_volume_attachment(
                name, {"metadata": {"finalizers": [self.finalizer], "resourceVersion": va.metadata.resource_version}}
            )
        if not (va.status and va.status.attached):
            self.storage.patch_volume_attachment_status(
                name, {"status": {"attached": True, "attachmentMetadata": {"devicePath": f"/dev/disk/by-id/{name}"}}}
            )
            self._record(name, va.spec.node_name, "attached")

    def _detach(self, name: str) -> None:
        va = self.storage.read_volume_attachment(name)
        finalizers = list(va.metadata.finalizers or [])
        if self.finalizer not in finalizers:
            return
        if va.status and va.status.attached:
            self.storage.patch_volume_attachment_status(name, {"status": {"attached": False}})
        self._record(name, va.spec.node_name, "detached")
        # PUT (resourceVersion-guarded) without our finalizer: a strategic merge patch would merge
        # the finalizer list instead of replacing it
        fresh = self.storage.read_volume_attachment(name)
        fresh.metadata.finalizers = [f for f in fresh.metadata.finalizers or [] if f != self.finalizer]
        self.storage.replace_volume_attachment(name, fresh)

    def _record(self, name: str, node: str, what: str) -> None:
        with self._lock:
            self.history.append((time.monotonic(), name, node, what))
        LOG.debug("attacher stand-in: %s %s on %s at %s", what, name, node, datetime.now(UTC).isoformat())
