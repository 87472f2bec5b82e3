"""The loopback Pub/Sub fake speaks the real gRPC API to google-cloud-pubsub (groundwork for outcome events)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.controlplane.pubsub import PubsubFake

PROBE = textwrap.dedent(
    """
    import json
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path("acme-prod", "drainer-outcomes")
    sub = subscriber.subscription_path("acme-prod", "chat-notifier")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=sub, topic=topic)
    publisher.publish(topic, b'{"node": "gke-a"}', kind="node.drained").result(timeout=30)
    response = subscriber.pull(subscription=sub, max_messages=5, timeout=30)
    got = [(m.message.data.decode(), dict(m.message.attributes)) for m in response.received_messages]
    subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in response.received_messages])
    print(json.dumps(got))
    """
)


def test_python_client_publishes_and_pulls_through_the_fake(pubsub: PubsubFake) -> None:
    env = {**os.environ, **pubsub.environ()}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == '[["{\\"node\\": \\"gke-a\\"}", {"kind": "node.drained"}]]'
    assert pubsub.host.startswith("127.0.0.1:")
