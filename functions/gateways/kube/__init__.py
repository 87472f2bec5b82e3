"""The Kubernetes gateway: the only package that imports ``kubernetes``.

- :mod:`.errors`: API errors that keep the server's Status; the class (and so retry or not) is
  chosen once from the status code.
- :mod:`.connection`: endpoint, CA and credentials of one cluster (auth modes).
- :mod:`.client`: :class:`~.client.ClusterClient`, the verbs the drainer uses, typed results, made of
  one part per kind of object (:mod:`.nodes`, :mod:`.pods`, :mod:`.evictions`, :mod:`.jobs`,
  :mod:`.leases`, :mod:`.event_api`) over the plumbing of :mod:`.api` and :mod:`.watch`.
"""
