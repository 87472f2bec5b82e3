"""Reading one environment variable into a typed value: the :class:`Setting` row type, its readers
(each validates and says in a :class:`~functions.decisions.settings.ConfigError` what to fix) and
the cluster list of ``DRAINER_CLUSTERS``. The table of rows is :mod:`functions.decisions.settings_env`."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from functions.decisions.settings import AuthMode, ClusterConfig, ConfigError

ENV_CLUSTERS = "DRAINER_CLUSTERS"

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
_RESOURCE = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/clusters/(?P<name>[^/]+)$")
_TOPIC = re.compile(r"projects/[^/]+/topics/[^/]+")

Reader = Callable[["Setting", Mapping[str, str]], Any]


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One environment variable: where its value goes, its type, default, range and help."""

    env: str
    target: str  # a Settings field, "cleanup.<CleanupPolicy field>" or "deadlines.<event kind>"
    read: Reader
    default: Any
    help: str
    low: float = 0
    high: float = 0
    shown_default: str | None = None  # README's default column when the value is not self-explanatory

    def value(self, env: Mapping[str, str]) -> Any:
        return self.read(self, env)

    @property
    def default_text(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None:
            return "(unset)"
        if isinstance(self.default, bool):
            return str(self.default).lower()
        if isinstance(self.default, frozenset):
            return ",".join(sorted(self.default)) or "(all)"
        if isinstance(self.default, timedelta):
            return f"{self.default.total_seconds():g}"
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return f"`{self.default}`" if isinstance(self.default, str) else str(self.default)


def _dns_endpoint(endpoint: str) -> bool:
    """GKE's DNS-based control-plane endpoint (``gke-....REGION.gke.goog``): its certificate is
    publicly trusted, so it needs no cluster CA."""
    host = urlsplit(endpoint).hostname or ""
    return host.endswith(".gke.goog")


def _raw(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value, stripped; None when unset or empty (a blank value is kept, and refused
    where it means nothing)."""
    raw = env.get(name)
    return None if raw is None or raw == "" else raw.strip()


def boolean(row: Setting, env: Mapping[str, str]) -> bool:
    raw = _raw(env, row.env)
    if raw is None:
        return bool(row.default)
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{row.env}={env.get(row.env)!r} is not a boolean; use true or false")


def number(row: Setting, env: Mapping[str, str]) -> float:
    raw = _raw(env, row.env)
    if raw is None:
        return float(row.default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{row.env}={env.get(row.env)!r} is not a number") from None
    if not row.low <= value <= row.high:
        raise ConfigError(
            f"{row.env}={env.get(row.env)!r} is out of range; use a value from {row.low:g} to {row.high:g}"
        )
    return value


def integer(row: Setting, env: Mapping[str, str]) -> int:
    value = number(row, env)
    if value != int(value):
        raise ConfigError(f"{row.env}={env.get(row.env)!r} is not a whole number")
    return int(value)


def seconds(row: Setting, env: Mapping[str, str]) -> timedelta:
    raw = _raw(env, row.env)
    if raw is None:
        return timedelta(seconds=float(row.default.total_seconds()))
    return timedelta(seconds=number(row, env))


def text(row: Setting, env: Mapping[str, str]) -> str | None:
    return _raw(env, row.env) or row.default


def url(row: Setting, env: Mapping[str, str]) -> str | None:
    value = text(row, env)
    if value is not None and not value.startswith(("https://", "http://")):
        raise ConfigError(f"{row.env}={value!r} is not an http(s):// URL")
    return value


def _loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secure_url(row: Setting, env: Mapping[str, str]) -> str | None:
    """An https:// URL; http:// only on loopback (local fakes): the token it receives is real."""
    value = url(row, env)
    if value is None or value.startswith("https://"):
        return value
    host = urlsplit(value).hostname or ""
    if host == "localhost" or _loopback_address(host):
        return value
    raise ConfigError(f"{row.env}={value!r} must be an https:// URL (http:// only on loopback, for local fakes)")


def names(row: Setting, env: Mapping[str, str]) -> frozenset[str]:
    """A comma-separated list; an empty value means an empty list (unset means the default)."""
    raw = env.get(row.env)
    if raw is None:
        return frozenset(row.default)
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def emails(row: Setting, env: Mapping[str, str]) -> frozenset[str]:
    return frozenset(name.lower() for name in names(row, env))


def topic(row: Setting, env: Mapping[str, str]) -> str | None:
    raw = _raw(env, row.env)
    if raw is None:
        return None
    if not _TOPIC.fullmatch(raw):
        raise ConfigError(f"{row.env}={raw!r} is not projects/PROJECT/topics/TOPIC")
    return raw


# ------------------------------------------------------------------------------ clusters
def _cluster(raw: Any, index: int) -> ClusterConfig:
    where = f"{ENV_CLUSTERS}[{index}]"
    if isinstance(raw, str):
        match = _RESOURCE.fullmatch(raw.strip())
        if not match:
            raise ConfigError(f"{where}={raw!r} is not projects/PROJECT/locations/LOCATION/clusters/NAME")
        raw = {"name": match["name"], "project": match["project"], "location": match["location"]}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be an object or a cluster resource name")
    known = {
        "name",
        "project",
        "location",
        "auth",
        "endpoint",
        "ca_data",
        "ca_file",
        "token_file",
        "kubeconfig",
        "context",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}; known keys are {sorted(known)}")
    for key in ("name", "project", "location"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{where} needs a non-empty string {key!r}")
    for key in known - {"name", "project", "location"}:
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ConfigError(f"{where}.{key} must be a string")
    for key in ("name", "project", "location"):
        if not _NAME.fullmatch(raw[key]):
            what = "cluster name" if key == "name" else key
            raise ConfigError(f"{where}.{key}={raw[key]!r} is not a valid {what}")
    try:
        auth = AuthMode(raw.get("auth", AuthMode.GOOGLE.value))
    except ValueError:
        raise ConfigError(f"{where}.auth={raw.get('auth')!r}; use one of {[m.value for m in AuthMode]}") from None
    endpoint = raw.get("endpoint")
    if endpoint is not None and not (isinstance(endpoint, str) and endpoint.startswith("https://")):
        raise ConfigError(f"{where}.endpoint={endpoint!r} must be an https:// URL")
    if auth is AuthMode.TOKEN_FILE and not raw.get("token_file"):
        raise ConfigError(f"{where}: auth token_file needs 'token_file' (a path to the bearer token)")
    if auth is AuthMode.TOKEN_FILE and not endpoint:
        raise ConfigError(f"{where}: auth token_file needs 'endpoint'")
    if auth is AuthMode.KUBECONFIG and not raw.get("kubeconfig"):
        raise ConfigError(f"{where}: auth kubeconfig needs 'kubeconfig' (a path)")
    no_ca = not (raw.get("ca_data") or raw.get("ca_file"))
    if endpoint and no_ca and auth is not AuthMode.KUBECONFIG and not _dns_endpoint(str(endpoint)):
        raise ConfigError(
            f"{where}: an explicit endpoint needs 'ca_data' (PEM) or 'ca_file' "
            "(only GKE's DNS-based endpoint, *.gke.goog, is verified against the public roots)"
        )
    return ClusterConfig(
        name=raw["name"],
        project=raw["project"],
        location=raw["location"],
        auth=auth,
        endpoint=endpoint,
        ca_data=raw.get("ca_data"),
        ca_file=raw.get("ca_file"),
        token_file=raw.get("token_file"),
        kubeconfig=raw.get("kubeconfig"),
        context=raw.get("context"),
    )


def read_clusters(env: Mapping[str, str]) -> tuple[ClusterConfig, ...]:
    raw = env.get(ENV_CLUSTERS, "").strip()
    if not raw:
        raise ConfigError(
            f"{ENV_CLUSTERS} is not set; give a JSON list of clusters or comma-separated "
            "projects/P/locations/L/clusters/N names"
        )
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"{ENV_CLUSTERS} is not valid JSON: {exc}") from None
    else:
        items = [part for part in raw.split(",") if part.strip()]
    if not isinstance(items, list):
        raise ConfigError(f"{ENV_CLUSTERS} must be a JSON list")
    clusters = tuple(_cluster(item, i) for i, item in enumerate(items))
    if not clusters:
        raise ConfigError(f"{ENV_CLUSTERS} names no cluster; give at least one")
    names = [c.name for c in clusters]
    if len(set(names)) != len(names):
        raise ConfigError(f"{ENV_CLUSTERS} names a cluster twice: {names}")
    return clusters
