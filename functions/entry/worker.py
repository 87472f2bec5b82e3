"""Pull-worker mode: the same handler, fed by a streaming pull of the log-sink subscription.

For clusters the functions cannot reach (private endpoints) or automation outside Cloud Functions:

    python -m functions worker --subscription projects/P/subscriptions/S

Handled and permanently bad messages are acked, transient failures nacked (Pub/Sub redelivers).
On SIGTERM or SIGINT the worker stops pulling and lets in-flight drains finish within a grace
period, then exits.
"""

from __future__ import annotations

import base64
import contextlib
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from functions.decisions.actions import Action, Severity
from functions.errors import PermanentError
from functions.usecases.node_events import NodeEvents
from functions.usecases.runtime import Runtime


def envelope(message: Any) -> dict[str, Any]:
    """A pulled message in the shape the CloudEvent handler takes (pure)."""
    publish_time = getattr(message, "publish_time", None)
    return {
        "message": {
            "data": base64.b64encode(bytes(message.data)).decode(),
            "attributes": dict(message.attributes),
            "messageId": message.message_id,
            "publishTime": publish_time.isoformat() if publish_time is not None else None,
        }
    }


class Worker:
    def __init__(self, runtime: Runtime, *, subscription: str, max_messages: int, grace: float) -> None:
        self.runtime = runtime
        self.events = NodeEvents(runtime)
        self.subscription = subscription
        self.max_messages = max_messages
        self.grace = grace
        self._stop = threading.Event()

    def handle(self, message: Any) -> None:
        try:
            self.events.handle_delivery(envelope(message), trigger="worker", delivery_id=message.message_id)
        except PermanentError:
            message.ack()  # bad input or nothing to do: audited, never redelivered
        except Exception:  # transient (and anything unexpected): let Pub/Sub redeliver
            message.nack()
        else:
            message.ack()

    def stop(self, *_: object) -> None:
        self._stop.set()

    def run(self) -> int:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]
        from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler

        subscriber = pubsub_v1.SubscriberClient()
        executor = ThreadPoolExecutor(max_workers=self.max_messages, thread_name_prefix="worker")
        future = subscriber.subscribe(
            self.subscription,
            self.handle,
            flow_control=pubsub_v1.types.FlowControl(max_messages=self.max_messages),
            scheduler=ThreadScheduler(executor),
            await_callbacks_on_shutdown=True,
        )
        self.runtime.audit.record(
            Action.WORKER_STARTED,
            f"pulling {self.subscription}",
            subscription=self.subscription,
            max_messages=self.max_messages,
        )
        while not self._stop.wait(0.5):
            if future.done():  # the stream failed for good
                error = future.exception()
                self.runtime.audit.record(
                    Action.WORKER_FAILED, f"streaming pull ended: {error}", severity=Severity.ERROR, error=str(error)
                )
                return 1
        self.runtime.audit.record(
            Action.WORKER_STOPPING, "stopped pulling; waiting for in-flight work", grace_seconds=self.grace
        )
        future.cancel()  # no new messages; with await_callbacks_on_shutdown the result waits for callbacks
        done = threading.Event()

        def wait() -> None:
            with contextlib.suppress(Exception):
                future.result()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        finished = done.wait(self.grace)
        subscriber.close()
        self.runtime.audit.record(
            Action.WORKER_STOPPED,
            "in-flight work finished" if finished else "grace period over with work still running",
            clean=finished,
        )
        self.runtime.finish()
        return 0 if finished else 2


def serve(*, subscription: str, max_messages: int, grace: float) -> int:
    """Run the worker until SIGTERM or SIGINT (``gke-node-drainer worker``, see :mod:`functions.entry.cli`)."""
    runner = Worker(Runtime.from_environment(), subscription=subscription, max_messages=max_messages, grace=grace)
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    return runner.run()
