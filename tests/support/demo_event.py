"""`make demo-event`: post the shared sample preemption LogEntry, stamped with the current time, to
the local event function as Eventarc delivers it (a binary-mode CloudEvent).

    python -m tests.support.demo_event [--url http://127.0.0.1:8080/]
"""

from __future__ import annotations

import argparse
import copy
from datetime import UTC, datetime

import requests

from tests.support.deliveries import delivery, load_fixture, rfc3339


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080/")
    args = parser.parse_args()
    entry = copy.deepcopy(load_fixture("logentry-preempted.json"))
    now = rfc3339(datetime.now(UTC))
    entry["timestamp"] = entry["receiveTimestamp"] = now  # an event of now, not of the fixture's day
    body, headers = delivery("binary", entry)
    response = requests.post(args.url, data=body, headers=headers, timeout=300)
    print(f"HTTP {response.status_code} (event time {now})")
    return 0 if response.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
