"""Pull-worker mode: the same handler, fed by a streaming pull of the log-sink subscription.

For clusters the functions cannot reach (private endpoints) or automation outside Cloud Functions:

    python -m functions worker --subscription projects/P/subscriptions/S

Handled and permanently bad messages are acked. After a transient failure the message is not
nacked (an immediate redelivery would hot-loop against a dead cluster): its ack deadline is set to a
backoff that doubles with the message's delivery attempt (10 s, 20 s ... 600 s) and it is released,
so Pub/Sub redelivers it then; the dead-letter policy, when set, counts these attempts. On SIGTERM
or SIGINT the worker stops pulling and lets in-flight drains finish within a grace period, then exits.
"""

from __future__ import annotations

import base64
import contextlib
import signal
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from functions.decisions.actions import Action, Severity
from functions.errors import PermanentError
from functions.usecases.node_events import NodeEvents
from functions.usecases.runtime import Runtime

DEFAULT_RETRY_BACKOFF_SECONDS = 10.0  # Pub/Sub's shortest advised ack deadline
MAX_RETRY_BACKOFF_SECONDS = 600  # Pub/Sub's longest ack deadline
_ATTEMPTS_KEPT = 10_000  # delivery counts kept when the subscription has no dead-letter policy


def retry_backoff(attempt: int, *, start: float = DEFAULT_RETRY_BACKOFF_SECONDS) -> int:
    """Seconds before the ``attempt``-th delivery (1 = the first) is redelivered: start, doubling, at
    most 600 (pure)."""
    return int(min(start * 2 ** (max(attempt, 1) - 1), MAX_RETRY_BACKOFF_SECONDS))


def release_for_later(message: Any, seconds: int) -> None:
    """Have Pub/Sub redeliver ``message`` in ``seconds``: set its ack deadline, then take it out of the
    client's lease management, which would otherwise keep extending the deadline (what nack does,
    without its deadline of 0)."""
    from google.cloud.pubsub_v1.subscriber._protocol import requests as pubsub_requests

    message.modify_ack_deadline(seconds)
    message._request_queue.put(  # the library offers no public "drop without nack"
        pubsub_requests.DropRequest(ack_id=message.ack_id, byte_size=message.size, ordering_key=message.ordering_key)
    )


def envelope(message: Any) -> dict[str, Any]:
    """A pulled message in the shape the CloudEvent handler takes (pure)."""
    publish_time = getattr(message, "publish_time", None)
    attempt = getattr(message, "delivery_attempt", None)
    return {
        "message": {
            "data": base64.b64encode(bytes(message.data)).decode(),
            "attributes": dict(message.attributes),
            "messageId": message.message_id,
            "publishTime": publish_time.isoformat() if publish_time is not None else None,
        },
        **({"deliveryAttempt": attempt} if isinstance(attempt, int) and attempt > 0 else {}),
    }


class Worker:
    def __init__(
        self,
        runtime: Runtime,
        *,
        subscription: str,
        max_messages: int,
        grace: float,
        retry_backoff: float = DEFAULT_RETRY_BACKOFF_SECONDS,
    ) -> None:
        self.runtime = runtime
        self.events = NodeEvents(runtime)
        self.subscription = subscription
        self.max_messages = max_messages
        self.grace = grace
        self.retry_backoff = retry_backoff
        self._stop = threading.Event()
        self._attempts: OrderedDict[str, int] = OrderedDict()
        self._attempts_lock = threading.Lock()

    def _attempt(self, message: Any) -> int:
        """The message's delivery attempt: Pub/Sub's count (with a dead-letter policy), else our own."""
        counted = getattr(message, "delivery_attempt", None)
        if isinstance(counted, int) and counted > 0:
            return counted
        with self._attempts_lock:
            seen = self._attempts.pop(message.message_id, 0) + 1
            self._attempts[message.message_id] = seen
            while len(self._attempts) > _ATTEMPTS_KEPT:
                self._attempts.popitem(last=False)
            return seen

    def handle(self, message: Any) -> None:
        try:
            self.events.handle_delivery(envelope(message), trigger="worker", delivery_id=message.message_id)
        except PermanentError:
            pass  # bad input or nothing to do: audited, never redelivered
        except Exception:  # transient (and anything unexpected): redelivered after a backoff
            release_for_later(message, retry_backoff(self._attempt(message), start=self.retry_backoff))
            return
        message.ack()
        with self._attempts_lock:
            self._attempts.pop(message.message_id, None)

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


def serve(*, subscription: str, max_messages: int, grace: float, retry_backoff: float | None = None) -> int:
    """Run the worker until SIGTERM or SIGINT (``gke-node-drainer worker``, see :mod:`functions.entry.cli`)."""
    runner = Worker(
        Runtime.from_environment(),
        subscription=subscription,
        max_messages=max_messages,
        grace=grace,
        retry_backoff=DEFAULT_RETRY_BACKOFF_SECONDS if retry_backoff is None else retry_backoff,
    )
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    return runner.run()
