"""Typed access to one cluster's API server with the verbs the drainer uses: one
:class:`ClusterClient`, made of one part per kind of object, each in its own module:

- :mod:`.nodes`: Nodes and their VolumeAttachments;
- :mod:`.pods`: the pods of a node, pages of pods, graceful and forced deletes;
- :mod:`.evictions`: evictions and the PodDisruptionBudgets that refuse them (policy/v1);
- :mod:`.jobs`: pages of Jobs and their deletes;
- :mod:`.leases`: the schedule's Lease;
- :mod:`.event_api`: Kubernetes Events written;

over the plumbing of :mod:`.api` (connection, JSON requests, deletes, watches: :mod:`.watch`).
"""

from __future__ import annotations

from functions.gateways.kube.event_api import EventApi
from functions.gateways.kube.evictions import EvictionApi
from functions.gateways.kube.jobs import JobApi
from functions.gateways.kube.leases import LeaseApi
from functions.gateways.kube.nodes import NodeApi


class ClusterClient(NodeApi, EvictionApi, JobApi, LeaseApi, EventApi):
    """Typed access to one cluster's API server with the verbs the drainer uses."""
