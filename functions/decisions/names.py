"""The names the project writes into clusters and records: one definition each."""

from __future__ import annotations

COMPONENT = "gke-node-drainer"  # audit records' component, field manager, reporting controller, event source
ANNOTATION_PREFIX = "node-drainer.io/"  # our annotations on nodes, pods and Jobs
FIELD_MANAGER = COMPONENT  # server-side field manager of our writes (owner of spec.unschedulable when we cordon)
