"""The settings (decisions.settings, settings_readers, settings_env): parsing and validating the
environment (pure: env is a dict)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.decisions.logentry import EventKind
from functions.decisions.settings import (
    DEFAULT_API_TIMEOUT,
    DEFAULT_CONTAINER_API,
    DEFAULT_DEADLINES,
    DEFAULT_EVICTION_CONCURRENCY,
    FUNCTION_TIMEOUT_MARGIN,
    AuthMode,
    ClusterConfig,
    ConfigError,
    Settings,
    region_of,
)
from functions.decisions.settings_env import SETTINGS, load, summary
from functions.errors import DrainerError

RESOURCE = "projects/acme-prod/locations/europe-west4/clusters/payments"
ZONAL_RESOURCE = "projects/acme-dev/locations/europe-west4-b/clusters/sandbox"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2FzZWNyZXQ=\n-----END CERTIFICATE-----\n"

ALL_DEADLINE_VARS = {
    EventKind.PREEMPTED: "DRAINER_DEADLINE_PREEMPTED",
    EventKind.RECREATE: "DRAINER_DEADLINE_RECREATE",
    EventKind.DELETE: "DRAINER_DEADLINE_DELETE",
    EventKind.HOST_ERROR: "DRAINER_DEADLINE_HOST_ERROR",
    EventKind.GUEST_TERMINATE: "DRAINER_DEADLINE_GUEST_TERMINATE",
    EventKind.AUTOMATIC_RESTART: "DRAINER_DEADLINE_AUTOMATIC_RESTART",
    EventKind.TERMINATE_ON_HOST_MAINTENANCE: "DRAINER_DEADLINE_TERMINATE_ON_HOST_MAINTENANCE",
}


def cluster_obj(**overrides: Any) -> dict[str, Any]:
    """A valid cluster object for DRAINER_CLUSTERS; ``None`` values drop the key."""
    obj: dict[str, Any] = {"name": "payments", "project": "acme-prod", "location": "europe-west4"}
    obj.update(overrides)
    return {k: v for k, v in obj.items() if v is not None}


def env_with(*clusters: Any, **extra: str) -> dict[str, str]:
    """An environment whose DRAINER_CLUSTERS is a JSON list of ``clusters`` (default: one valid object)."""
    items = list(clusters) if clusters else [cluster_obj()]
    return {"DRAINER_CLUSTERS": json.dumps(items), **extra}


def load_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        load(env)
    return str(info.value)


# --- DRAINER_CLUSTERS: the two accepted forms ---------------------------------------------------------------------


def test_json_list_of_cluster_objects() -> None:
    settings = load(
        env_with(
            cluster_obj(),
            cluster_obj(
                name="batch",
                project="acme-batch",
                location="us-central1-a",
                auth="token_file",
                endpoint="https://10.0.0.2",
                ca_data=CA_PEM,
                token_file="/var/run/secrets/drainer/token",
            ),
            cluster_obj(
                name="local",
                project="acme-dev",
                location="europe-west1",
                auth="kubeconfig",
                kubeconfig="/home/dev/.kube/config",
                context="kind-local",
            ),
            cluster_obj(name="edge", endpoint="https://34.90.1.2", ca_file="/etc/drainer/edge-ca.pem"),
        )
    )

    assert settings.clusters == (
        ClusterConfig(name="payments", project="acme-prod", location="europe-west4"),
        ClusterConfig(
            name="batch",
            project="acme-batch",
            location="us-central1-a",
            auth=AuthMode.TOKEN_FILE,
            endpoint="https://10.0.0.2",
            ca_data=CA_PEM,
            token_file="/var/run/secrets/drainer/token",
        ),
        ClusterConfig(
            name="local",
            project="acme-dev",
            location="europe-west1",
            auth=AuthMode.KUBECONFIG,
            kubeconfig="/home/dev/.kube/config",
            context="kind-local",
        ),
        ClusterConfig(
            name="edge",
            project="acme-prod",
            location="europe-west4",
            endpoint="https://34.90.1.2",
            ca_file="/etc/drainer/edge-ca.pem",
        ),
    )
    first = settings.clusters[0]
    assert first.auth is AuthMode.GOOGLE
    assert first.endpoint is None
    assert first.ca_data is None
    assert first.ca_file is None
    assert first.token_file is None
    assert first.kubeconfig is None
    assert first.context is None


def test_json_list_with_surrounding_whitespace() -> None:
    settings = load({"DRAINER_CLUSTERS": "  \n" + json.dumps([cluster_obj()]) + "\n  "})
    assert [c.name for c in settings.clusters] == ["payments"]


def test_json_list_may_hold_resource_names() -> None:
    settings = load({"DRAINER_CLUSTERS": json.dumps([RESOURCE, cluster_obj(name="other")])})
    assert settings.clusters == (
        ClusterConfig(name="payments", project="acme-prod", location="europe-west4"),
        ClusterConfig(name="other", project="acme-prod", location="europe-west4"),
    )


def test_comma_separated_resource_names() -> None:
    settings = load({"DRAINER_CLUSTERS": f" {RESOURCE} , {ZONAL_RESOURCE},"})

    assert settings.clusters == (
        ClusterConfig(name="payments", project="acme-prod", location="europe-west4"),
        ClusterConfig(name="sandbox", project="acme-dev", location="europe-west4-b"),
    )
    assert all(c.auth is AuthMode.GOOGLE and c.endpoint is None for c in settings.clusters)
    assert settings.clusters[0].resource_name == RESOURCE
    assert settings.clusters[1].resource_name == ZONAL_RESOURCE


def test_single_resource_name() -> None:
    settings = load({"DRAINER_CLUSTERS": RESOURCE})
    assert settings.clusters == (ClusterConfig(name="payments", project="acme-prod", location="europe-west4"),)


# --- defaults -------------------------------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = load({"DRAINER_CLUSTERS": RESOURCE})

    assert dict(settings.deadlines) == dict(DEFAULT_DEADLINES)
    assert set(settings.deadlines) == set(EventKind)
    assert all(settings.deadlines[kind] == 120.0 for kind in EventKind)
    assert settings.dry_run is False
    assert settings.eviction_concurrency == DEFAULT_EVICTION_CONCURRENCY == 32
    assert isinstance(settings.eviction_concurrency, int)
    assert settings.api_timeout == DEFAULT_API_TIMEOUT == 10.0
    assert settings.audit_log_name is None
    assert settings.force_cleanup is True
    assert settings.container_api == DEFAULT_CONTAINER_API == "https://container.googleapis.com"


def test_empty_values_mean_defaults() -> None:
    env = {
        "DRAINER_CLUSTERS": RESOURCE,
        "DRAINER_DRY_RUN": "",
        "DRAINER_FORCE_CLEANUP": "",
        "DRAINER_EVICTION_CONCURRENCY": "",
        "DRAINER_API_TIMEOUT_SECONDS": "",
        "DRAINER_AUDIT_LOG_NAME": "",
        "DRAINER_CONTAINER_API_ENDPOINT": "",
        **dict.fromkeys(ALL_DEADLINE_VARS.values(), ""),
    }
    settings = load(env)

    assert settings.dry_run is False
    assert settings.force_cleanup is True
    assert settings.eviction_concurrency == 32
    assert settings.api_timeout == 10.0
    assert settings.audit_log_name is None
    assert settings.container_api == "https://container.googleapis.com"
    assert dict(settings.deadlines) == dict(DEFAULT_DEADLINES)


# --- overrides ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        (" True ", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ],
    ids=["true", "TRUE", "padded-True", "1", "yes", "on", "false", "False", "0", "no", "off"],
)
def test_dry_run_override(raw: str, expected: bool) -> None:
    assert load(env_with(DRAINER_DRY_RUN=raw)).dry_run is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("false", False), ("0", False), ("no", False), ("true", True), ("1", True), ("yes", True)],
    ids=["false", "0", "no", "true", "1", "yes"],
)
def test_force_cleanup_override(raw: str, expected: bool) -> None:
    assert load(env_with(DRAINER_FORCE_CLEANUP=raw)).force_cleanup is expected


@pytest.mark.parametrize(
    ("kind", "variable"), list(ALL_DEADLINE_VARS.items()), ids=[k.value for k in ALL_DEADLINE_VARS]
)
def test_deadline_override_per_kind(kind: EventKind, variable: str) -> None:
    settings = load(env_with(**{variable: "45.5"}))

    assert settings.deadlines[kind] == 45.5
    others = {k: v for k, v in settings.deadlines.items() if k is not kind}
    assert others == {k: 120.0 for k in EventKind if k is not kind}


def test_deadline_bounds_are_inclusive() -> None:
    settings = load(env_with(DRAINER_DEADLINE_PREEMPTED="1", DRAINER_DEADLINE_DELETE="3600"))
    assert settings.deadlines[EventKind.PREEMPTED] == 1.0
    assert settings.deadlines[EventKind.DELETE] == 3600.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", 1), ("8", 8), ("500", 500), (" 64 ", 64)],
    ids=["low", "eight", "high", "padded"],
)
def test_eviction_concurrency_override(raw: str, expected: int) -> None:
    settings = load(env_with(DRAINER_EVICTION_CONCURRENCY=raw))
    assert settings.eviction_concurrency == expected
    assert isinstance(settings.eviction_concurrency, int)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0.5", 0.5), ("2.5", 2.5), ("30", 30.0), ("120", 120.0)],
    ids=["low", "fraction", "thirty", "high"],
)
def test_api_timeout_override(raw: str, expected: float) -> None:
    assert load(env_with(DRAINER_API_TIMEOUT_SECONDS=raw)).api_timeout == expected


def test_audit_log_name_override() -> None:
    assert load(env_with(DRAINER_AUDIT_LOG_NAME="node-drainer-audit")).audit_log_name == "node-drainer-audit"


def test_container_api_override() -> None:
    settings = load(env_with(DRAINER_CONTAINER_API_ENDPOINT="https://127.0.0.1:8443"))
    assert settings.container_api == "https://127.0.0.1:8443"


def test_all_overrides_together() -> None:
    settings = load(
        env_with(
            DRAINER_DRY_RUN="yes",
            DRAINER_FORCE_CLEANUP="no",
            DRAINER_EVICTION_CONCURRENCY="4",
            DRAINER_API_TIMEOUT_SECONDS="3",
            DRAINER_AUDIT_LOG_NAME="drainer",
            DRAINER_CONTAINER_API_ENDPOINT="https://container.example.test",
            DRAINER_DEADLINE_PREEMPTED="90",
            DRAINER_DEADLINE_DELETE="600",
        )
    )
    assert settings.dry_run is True
    assert settings.force_cleanup is False
    assert settings.eviction_concurrency == 4
    assert settings.api_timeout == 3.0
    assert settings.audit_log_name == "drainer"
    assert settings.container_api == "https://container.example.test"
    assert settings.deadlines[EventKind.PREEMPTED] == 90.0
    assert settings.deadlines[EventKind.DELETE] == 600.0
    assert settings.deadlines[EventKind.RECREATE] == 120.0


# --- validation errors ----------------------------------------------------------------------------------------------


def test_config_error_is_a_drainer_error() -> None:
    assert issubclass(ConfigError, DrainerError)


@pytest.mark.parametrize(
    "env",
    [{}, {"DRAINER_CLUSTERS": ""}, {"DRAINER_CLUSTERS": "   \n"}],
    ids=["absent", "empty", "blank"],
)
def test_missing_clusters(env: dict[str, str]) -> None:
    message = load_error(env)
    assert message == (
        "DRAINER_CLUSTERS is not set; give a JSON list of clusters or comma-separated "
        "projects/P/locations/L/clusters/N names"
    )


def test_invalid_json() -> None:
    message = load_error({"DRAINER_CLUSTERS": '[{"name": "payments",}]'})
    assert message.startswith("DRAINER_CLUSTERS is not valid JSON: ")
    assert "line 1 column" in message


def test_bad_resource_name() -> None:
    message = load_error({"DRAINER_CLUSTERS": f"{RESOURCE},projects/acme-prod/zones/europe-west4-b/clusters/x"})
    assert message == (
        "DRAINER_CLUSTERS[1]='projects/acme-prod/zones/europe-west4-b/clusters/x' "
        "is not projects/PROJECT/locations/LOCATION/clusters/NAME"
    )


@pytest.mark.parametrize("item", [42, None, ["payments"], True], ids=["number", "null", "list", "bool"])
def test_item_of_wrong_type(item: Any) -> None:
    message = load_error(env_with(cluster_obj(), item))
    assert message == "DRAINER_CLUSTERS[1] must be an object or a cluster resource name"


def test_unknown_keys() -> None:
    message = load_error(env_with(cluster_obj(region="europe-west4", tokenFile="/t")))
    assert message == (
        "DRAINER_CLUSTERS[0] has unknown keys ['region', 'tokenFile']; known keys are "
        "['auth', 'ca_data', 'ca_file', 'context', 'endpoint', 'kubeconfig', 'location', 'name', 'project', "
        "'token_file']"
    )


@pytest.mark.parametrize("key", ["name", "project", "location"])
@pytest.mark.parametrize("value", [None, "", 7], ids=["missing", "empty", "not-a-string"])
def test_missing_required_key(key: str, value: Any) -> None:
    obj = cluster_obj()
    if value is None:
        del obj[key]
    else:
        obj[key] = value
    message = load_error(env_with(cluster_obj(name="first"), obj))
    assert message == f"DRAINER_CLUSTERS[1] needs a non-empty string '{key}'"


@pytest.mark.parametrize(
    "name",
    ["Payments", "-payments", "payments-", "pay ments", "pay/ments", "payments!"],
    ids=["upper-case", "leading-dash", "trailing-dash", "space", "slash", "punctuation"],
)
def test_bad_cluster_name(name: str) -> None:
    message = load_error(env_with(cluster_obj(name=name)))
    assert message == f"DRAINER_CLUSTERS[0].name={name!r} is not a valid cluster name"


@pytest.mark.parametrize("name", ["a", "p1", "payments-eu_2.prod"], ids=["one-char", "digit", "dash-underscore-dot"])
def test_good_cluster_name(name: str) -> None:
    assert load(env_with(cluster_obj(name=name))).clusters[0].name == name


@pytest.mark.parametrize("auth", ["GOOGLE", "oauth", "", None], ids=["upper-case", "unknown", "empty", "null"])
def test_bad_auth_mode(auth: Any) -> None:
    obj = cluster_obj()
    obj["auth"] = auth
    message = load_error(env_with(obj))
    assert message == f"DRAINER_CLUSTERS[0].auth={auth!r}; use one of ['google', 'token_file', 'kubeconfig']"


@pytest.mark.parametrize(
    "endpoint",
    ["http://10.0.0.2", "10.0.0.2", "", "HTTPS://10.0.0.2"],
    ids=["http", "bare-host", "empty", "upper-case-scheme"],
)
def test_non_https_endpoint(endpoint: Any) -> None:
    message = load_error(env_with(cluster_obj(endpoint=endpoint, ca_data=CA_PEM)))
    assert message == f"DRAINER_CLUSTERS[0].endpoint={endpoint!r} must be an https:// URL"


@pytest.mark.parametrize("key", ["endpoint", "ca_data", "token_file"])
def test_optional_fields_must_be_strings(key: str) -> None:
    message = load_error(env_with(cluster_obj(**{key: 443})))
    assert message == f"DRAINER_CLUSTERS[0].{key} must be a string"


def test_empty_cluster_list_is_refused() -> None:
    assert load_error({"DRAINER_CLUSTERS": "[]"}) == "DRAINER_CLUSTERS names no cluster; give at least one"


def test_resource_name_form_validates_the_name() -> None:
    message = load_error({"DRAINER_CLUSTERS": "projects/p/locations/l/clusters/Bad_Name"})
    assert message == "DRAINER_CLUSTERS[0].name='Bad_Name' is not a valid cluster name"


def test_outcome_topic_must_be_a_topic_name() -> None:
    message = load_error({**env_with(cluster_obj()), "DRAINER_OUTCOME_TOPIC": "drainer-outcomes"})
    assert message == "DRAINER_OUTCOME_TOPIC='drainer-outcomes' is not projects/PROJECT/topics/TOPIC"
    settings = load({**env_with(cluster_obj()), "DRAINER_OUTCOME_TOPIC": "projects/acme-prod/topics/outcomes"})
    assert settings.outcome_topic == "projects/acme-prod/topics/outcomes"


def test_fractional_concurrency_is_refused() -> None:
    message = load_error({**env_with(cluster_obj()), "DRAINER_EVICTION_CONCURRENCY": "2.9"})
    assert message == "DRAINER_EVICTION_CONCURRENCY='2.9' is not a whole number"


@pytest.mark.parametrize("token_file", [None, ""], ids=["missing", "empty"])
def test_token_file_auth_needs_token_file(token_file: str | None) -> None:
    obj = cluster_obj(auth="token_file", endpoint="https://10.0.0.2", ca_data=CA_PEM)
    if token_file is not None:
        obj["token_file"] = token_file
    message = load_error(env_with(obj))
    assert message == "DRAINER_CLUSTERS[0]: auth token_file needs 'token_file' (a path to the bearer token)"


def test_token_file_auth_needs_endpoint() -> None:
    message = load_error(env_with(cluster_obj(auth="token_file", token_file="/var/run/token", ca_data=CA_PEM)))
    assert message == "DRAINER_CLUSTERS[0]: auth token_file needs 'endpoint'"


@pytest.mark.parametrize("kubeconfig", [None, ""], ids=["missing", "empty"])
def test_kubeconfig_auth_needs_kubeconfig(kubeconfig: str | None) -> None:
    obj = cluster_obj(auth="kubeconfig", context="kind-local")
    if kubeconfig is not None:
        obj["kubeconfig"] = kubeconfig
    message = load_error(env_with(obj))
    assert message == "DRAINER_CLUSTERS[0]: auth kubeconfig needs 'kubeconfig' (a path)"


@pytest.mark.parametrize("auth", [None, "google", "token_file"], ids=["default", "google", "token_file"])
def test_endpoint_needs_ca(auth: str | None) -> None:
    obj = cluster_obj(auth=auth, endpoint="https://10.0.0.2", token_file="/var/run/token")
    message = load_error(env_with(obj))
    assert message.startswith("DRAINER_CLUSTERS[0]: an explicit endpoint needs 'ca_data' (PEM) or 'ca_file'")


@pytest.mark.parametrize(
    ("endpoint", "ok"),
    [
        pytest.param("https://gke-0123456789abcdef.europe-west4.gke.goog", True, id="dns-endpoint"),
        pytest.param("https://gke-0123456789abcdef.europe-west4.gke.goog:443", True, id="dns-endpoint-port"),
        pytest.param("https://gke.goog.example.com", False, id="look-alike"),
        pytest.param("https://10.0.0.2", False, id="private-ip"),
    ],
)
def test_only_the_dns_based_endpoint_goes_without_a_ca(endpoint: str, ok: bool) -> None:
    env = env_with(cluster_obj(endpoint=endpoint))
    if ok:
        [cluster] = load(env).clusters
        assert cluster.endpoint == endpoint
        assert cluster.ca_data is None
        assert cluster.ca_file is None
    else:
        assert "needs 'ca_data' (PEM) or 'ca_file'" in load_error(env)


def test_kubeconfig_auth_endpoint_needs_no_ca() -> None:
    obj = cluster_obj(auth="kubeconfig", kubeconfig="/home/dev/.kube/config", endpoint="https://127.0.0.1:6443")
    cluster = load(env_with(obj)).clusters[0]
    assert cluster.auth is AuthMode.KUBECONFIG
    assert cluster.endpoint == "https://127.0.0.1:6443"
    assert cluster.ca_data is None
    assert cluster.ca_file is None


def test_duplicate_names_in_json() -> None:
    message = load_error(env_with(cluster_obj(), cluster_obj(project="acme-other"), cluster_obj(name="batch")))
    assert message == "DRAINER_CLUSTERS names a cluster twice: ['payments', 'payments', 'batch']"


def test_duplicate_names_across_forms() -> None:
    message = load_error({"DRAINER_CLUSTERS": f"{RESOURCE},projects/acme-eu/locations/europe-west1/clusters/payments"})
    assert message == "DRAINER_CLUSTERS names a cluster twice: ['payments', 'payments']"


@pytest.mark.parametrize("variable", ["DRAINER_DRY_RUN", "DRAINER_FORCE_CLEANUP"])
@pytest.mark.parametrize("raw", ["maybe", "2", "enabled", " "], ids=["maybe", "two", "enabled", "blank"])
def test_non_boolean(variable: str, raw: str) -> None:
    message = load_error(env_with(**{variable: raw}))
    assert message == f"{variable}={raw!r} is not a boolean; use true or false"


NUMBER_VARIABLES = [
    "DRAINER_EVICTION_CONCURRENCY",
    "DRAINER_API_TIMEOUT_SECONDS",
    *ALL_DEADLINE_VARS.values(),
]


@pytest.mark.parametrize("variable", NUMBER_VARIABLES)
@pytest.mark.parametrize("raw", ["ten", "10s", "1,5"], ids=["word", "unit", "comma"])
def test_non_number(variable: str, raw: str) -> None:
    message = load_error(env_with(**{variable: raw}))
    assert message == f"{variable}={raw!r} is not a number"


@pytest.mark.parametrize(
    ("variable", "raw", "bounds"),
    [
        ("DRAINER_EVICTION_CONCURRENCY", "0", "1 to 500"),
        ("DRAINER_EVICTION_CONCURRENCY", "501", "1 to 500"),
        ("DRAINER_EVICTION_CONCURRENCY", "-4", "1 to 500"),
        ("DRAINER_API_TIMEOUT_SECONDS", "0.4", "0.5 to 120"),
        ("DRAINER_API_TIMEOUT_SECONDS", "121", "0.5 to 120"),
        ("DRAINER_DEADLINE_PREEMPTED", "0", "1 to 3600"),
        ("DRAINER_DEADLINE_DELETE", "3601", "1 to 3600"),
        ("DRAINER_DEADLINE_TERMINATE_ON_HOST_MAINTENANCE", "-1", "1 to 3600"),
        ("DRAINER_DEADLINE_HOST_ERROR", "nan", "1 to 3600"),
        ("DRAINER_DEADLINE_RECREATE", "inf", "1 to 3600"),
    ],
    ids=[
        "concurrency-zero",
        "concurrency-too-high",
        "concurrency-negative",
        "timeout-too-low",
        "timeout-too-high",
        "deadline-zero",
        "deadline-too-high",
        "deadline-negative",
        "deadline-nan",
        "deadline-inf",
    ],
)
def test_out_of_range(variable: str, raw: str, bounds: str) -> None:
    message = load_error(env_with(**{variable: raw}))
    assert message == f"{variable}={raw!r} is out of range; use a value from {bounds}"


def test_first_bad_cluster_is_reported_by_index() -> None:
    message = load_error(env_with(cluster_obj(name="a"), cluster_obj(name="b"), cluster_obj(name="c", auth="x")))
    assert message.startswith("DRAINER_CLUSTERS[2].auth='x'")


# --- region_of, may_own, resource_name ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "region"),
    [
        ("europe-west4-b", "europe-west4"),
        ("us-central1-a", "us-central1"),
        ("northamerica-northeast1-c", "northamerica-northeast1"),
        ("europe-west4", "europe-west4"),
        ("us-central1", "us-central1"),
        ("asia-southeast1", "asia-southeast1"),
    ],
    ids=["zone-eu", "zone-us", "zone-long", "region-eu", "region-us", "region-asia"],
)
def test_region_of(location: str, region: str) -> None:
    assert region_of(location) == region


def test_cluster_region_and_resource_name() -> None:
    zonal = ClusterConfig(name="sandbox", project="acme-dev", location="europe-west4-b")
    regional = ClusterConfig(name="payments", project="acme-prod", location="europe-west4")
    assert zonal.region == "europe-west4"
    assert regional.region == "europe-west4"
    assert zonal.resource_name == ZONAL_RESOURCE
    assert regional.resource_name == RESOURCE


@pytest.mark.parametrize(
    ("location", "project", "zone", "expected"),
    [
        ("europe-west4", "acme-prod", "europe-west4-a", True),
        ("europe-west4", "acme-prod", "europe-west4-c", True),
        ("europe-west4-b", "acme-prod", "europe-west4-b", True),
        ("europe-west4-b", "acme-prod", "europe-west4-a", True),
        ("europe-west4", "acme-prod", "europe-west1-b", False),
        ("europe-west4-b", "acme-prod", "us-central1-b", False),
        ("europe-west4", "acme-dev", "europe-west4-a", False),
        ("europe-west4-b", "acme-dev", "europe-west4-b", False),
    ],
    ids=[
        "regional-zone-a",
        "regional-zone-c",
        "zonal-same-zone",
        "zonal-other-zone-same-region",
        "other-region",
        "zonal-other-region",
        "other-project",
        "zonal-other-project",
    ],
)
def test_may_own(location: str, project: str, zone: str, expected: bool) -> None:
    cluster = ClusterConfig(name="payments", project="acme-prod", location=location)
    assert cluster.may_own(project=project, zone=zone) is expected


# --- Settings -------------------------------------------------------------------------------------------------------


def test_summary_has_no_secrets() -> None:
    settings = load(
        env_with(
            cluster_obj(),
            cluster_obj(
                name="batch",
                project="acme-batch",
                location="us-central1-a",
                auth="token_file",
                endpoint="https://10.0.0.2",
                ca_data=CA_PEM,
                token_file="/var/run/secrets/drainer/token",
            ),
            DRAINER_AUDIT_LOG_NAME="drainer",
            DRAINER_DRY_RUN="true",
        )
    )
    shown = summary(settings)

    assert shown == {
        "clusters": [
            {
                "name": "payments",
                "project": "acme-prod",
                "location": "europe-west4",
                "auth": "google",
                "endpoint": "container-api",
            },
            {
                "name": "batch",
                "project": "acme-batch",
                "location": "us-central1-a",
                "auth": "token_file",
                "endpoint": "https://10.0.0.2",
            },
        ],
        "deadlines": {kind.value: 120.0 for kind in EventKind},
        "dry_run": True,
        "force_cleanup": True,
        "eviction_concurrency": 32,
        "api_timeout": 10.0,
        "audit_log_name": "drainer",
        "container_api": "https://container.googleapis.com",
        "compute_fence": True,
        "compute_api": "https://compute.googleapis.com",
        "out_of_service_taint": True,
        "max_event_age": 7200.0,
        "storm_share": 0.1,
        "storm_window": 600.0,
        "logging_api": None,
        "cleanup": {
            "ttl_succeeded": 3600.0,
            "ttl_failed": 86400.0,
            "ttl_orphan_pods": 3600.0,
            "include_namespaces": [],
            "exclude_namespaces": ["kube-system"],
            "include_cronjob_jobs": False,
            "sweep_other_pods": False,
        },
        "cleanup_budget": 300.0,
        "cleanup_concurrency": 32,
        "cleanup_page_size": 500,
        "recovery_deadline": 60.0,
        "http_audience": None,
        "allowed_callers": [],
        "id_token_certs_url": None,
        "outcome_topic": None,
        "outcome_type_prefix": "io.gke-node-drainer",
        "function_timeout": 540.0,
    }
    assert set(shown) - {"clusters", "deadlines", "cleanup"} <= {row.target for row in SETTINGS}
    text = json.dumps(shown)
    assert "BEGIN CERTIFICATE" not in text
    assert "MIIBszCCAVmgAwIBAgIUQ2FzZWNyZXQ=" not in text
    assert "/var/run/secrets/drainer/token" not in text
    assert "ca_data" not in text
    assert "token" not in text.replace("token_file", "").replace("id_token_certs_url", "")


def test_ca_data_is_not_in_repr() -> None:
    cluster = ClusterConfig(
        name="batch", project="acme-batch", location="us-central1-a", endpoint="https://10.0.0.2", ca_data=CA_PEM
    )
    assert "BEGIN CERTIFICATE" not in repr(cluster)
    assert "ca_data" not in repr(cluster)


def test_settings_cluster_lookup() -> None:
    settings = load(env_with(cluster_obj(), cluster_obj(name="batch", project="acme-batch")))
    found = settings.cluster("batch")
    assert found == ClusterConfig(name="batch", project="acme-batch", location="europe-west4")
    assert settings.cluster("payments") is settings.clusters[0]
    assert settings.cluster("missing") is None
    assert settings.cluster("Batch") is None


def test_settings_defaults_when_built_directly() -> None:
    settings = Settings(clusters=(), deadlines={EventKind.DELETE: 30.0})
    assert settings.dry_run is False
    assert settings.eviction_concurrency == 32
    assert settings.api_timeout == 10.0
    assert settings.audit_log_name is None
    assert settings.force_cleanup is True
    assert settings.container_api == "https://container.googleapis.com"
    assert settings.cluster("payments") is None
    assert summary(settings)["deadlines"] == {"delete": 30.0}


# --- the function's timeout and the HTTP callers ----------------------------------------------------------------------


def test_function_timeout_bounds_the_work_of_one_call() -> None:
    assert load(env_with(cluster_obj())).work_limit == 540 - FUNCTION_TIMEOUT_MARGIN
    settings = load(env_with(cluster_obj(), DRAINER_FUNCTION_TIMEOUT_SECONDS="900"))
    assert settings.function_timeout == 900
    assert settings.work_limit == 900 - FUNCTION_TIMEOUT_MARGIN


@pytest.mark.parametrize("value", ["10", "0", "-5", "3601", "nine minutes"])
def test_function_timeout_out_of_range_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigError, match="DRAINER_FUNCTION_TIMEOUT_SECONDS"):
        load(env_with(cluster_obj(), DRAINER_FUNCTION_TIMEOUT_SECONDS=value))


def test_allowed_callers_without_an_audience_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="DRAINER_ALLOWED_CALLERS is set but DRAINER_HTTP_AUDIENCE is not"):
        load(env_with(cluster_obj(), DRAINER_ALLOWED_CALLERS="oncall@acme-prod.iam.gserviceaccount.com"))
    settings = load(
        env_with(
            cluster_obj(),
            DRAINER_ALLOWED_CALLERS="oncall@acme-prod.iam.gserviceaccount.com",
            DRAINER_HTTP_AUDIENCE="https://example.test/fn",
        )
    )
    assert settings.allowed_callers == {"oncall@acme-prod.iam.gserviceaccount.com"}
    assert load(env_with(cluster_obj(), DRAINER_ALLOWED_CALLERS="")).allowed_callers == frozenset()


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        pytest.param("https://compute.googleapis.com", True, id="https"),
        pytest.param("http://127.0.0.1:8089", True, id="loopback-v4"),
        pytest.param("http://localhost:8089", True, id="localhost"),
        pytest.param("http://[::1]:8089", True, id="loopback-v6"),
        pytest.param("http://compute.googleapis.com", False, id="plain-http"),
        pytest.param("http://10.0.0.7", False, id="private-http"),
        pytest.param("http://127.0.0.1.evil.example", False, id="lookalike"),
    ],
)
def test_google_endpoints_must_be_https_except_on_loopback(url: str, ok: bool) -> None:
    env = env_with(DRAINER_COMPUTE_API_ENDPOINT=url, DRAINER_CONTAINER_API_ENDPOINT=url)
    if ok:
        assert load(env).compute_api == url
    else:
        assert "must be an https:// URL" in load_error(env)
