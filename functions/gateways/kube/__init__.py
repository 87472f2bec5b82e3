"""The Kubernetes gateway: the only package that imports ``kubernetes``.

- :mod:`.errors`: API errors that keep the server's Status; the class (and so retry or not) is
  chosen once from the status code.
- :mod:`.connection`: endpoint, CA and credentials of one cluster (auth modes).
- :mod:`.client`: :class:`~.client.ClusterClient`, the verbs the drainer uses, typed results.

The ``kubernetes`` package's own ``__init__`` imports every part of it (kubeconfig loading with
oauthlib, YAML, dateutil and pydantic; the dynamic client; websocket streams; leader election;
informers): about a third of a second of a cold start, of which this gateway uses only
``kubernetes.client``. So, when nothing has imported ``kubernetes`` yet, the package is registered
without running that ``__init__``: each part is imported when it is first used, as an import or
as an attribute, and any other attribute runs the real ``__init__`` first. Every later user sees
the same, whole package.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading

_PARTS = frozenset({"client", "config", "dynamic", "watch", "stream", "utils", "leaderelection", "informer"})


def _register_lazy_kubernetes() -> None:
    if "kubernetes" in sys.modules:
        return
    spec = importlib.util.find_spec("kubernetes")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader
    lock = threading.Lock()
    initialized = False

    def __getattr__(name: str) -> object:  # noqa: N807 - PEP 562: a module's attribute hook
        nonlocal initialized
        if name in _PARTS:
            return importlib.import_module(f"kubernetes.{name}")
        with lock:
            if not initialized:
                initialized = True
                loader.exec_module(package)  # the real __init__: imports every part, sets __version__
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module 'kubernetes' has no attribute {name!r}") from None

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules["kubernetes"] = package


_register_lazy_kubernetes()
