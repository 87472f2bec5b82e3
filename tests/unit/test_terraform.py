"""The Terraform configuration, checked offline: structure, references, the contract with the code
(entry points, environment, RBAC manifest), least privilege, the sink filter against every fixture
LogEntry, and checkov."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.decisions import envelope
from functions.decisions import settings as config
from functions.decisions.logentry import (
    AUDIT_LOG_NAME,
    AUDIT_LOG_TYPE,
    COMPUTE_SERVICE,
    DELETE_METHODS,
    LIVE_MIGRATION_METHOD,
    SYSTEM_EVENT_METHODS,
    EventKind,
    NodeEvent,
    log_entry_from_message,
    parse_log_entry,
)
from functions.decisions.settings_env import ENV_DEADLINE_PREFIX, SETTINGS
from functions.decisions.settings_env import load as load_settings
from functions.decisions.settings_readers import ENV_CLUSTERS
from functions.errors import MalformedEvent
from tests.support.forgeries import FORGERIES, Forgery
from tests.support.logfilter import LogFilter, compile_filter
from tests.support.terraform import (
    EXAMPLE,
    MODULE,
    MODULE_DIRS,
    RBAC_MODULE,
    README_BEGIN,
    ROOT,
    TERRAFORM,
    Module,
    first,
    load_module,
    module_arguments,
    parse_file,
    readme_with_tables,
    references,
    render,
    strings,
    unwrap,
)
from tests.unit import test_logentry as test_events

FIXTURES = ROOT / "tests" / "fixtures"
RBAC_MANIFEST = TERRAFORM / "rbac" / "drainer-rbac.yaml"
ENTRY_POINTS = {"on_node_event": "cloud_event", "on_schedule": "http", "on_manual": "http"}
NOW = test_events.NOW


@pytest.fixture(scope="module")
def modules() -> dict[Path, Module]:
    return {path: load_module(path) for path in MODULE_DIRS}


@pytest.fixture(scope="module")
def module(modules: dict[Path, Module]) -> Module:
    return modules[MODULE]


def functions_of(module: Module) -> dict[str, dict[str, Any]]:
    return module.resources_of("google_cloudfunctions2_function")


# --- parsing and references ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(TERRAFORM.rglob("*.tf")), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path: Path) -> None:
    parsed = parse_file(path)
    assert parsed, f"{path} parsed to nothing"


def test_every_module_directory_has_terraform() -> None:
    for path in MODULE_DIRS:
        assert list(path.glob("*.tf")), f"{path} has no .tf file"
    assert {p.parent for p in TERRAFORM.rglob("*.tf")} == set(MODULE_DIRS)


@pytest.mark.parametrize("path", MODULE_DIRS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_reference_resolves(modules: dict[Path, Module], path: Path) -> None:
    module = modules[path]
    known = {
        "var": set(module.variables),
        "local": set(module.locals),
        "module": set(module.modules),
        "data": {f"{t}.{n}" for t, n in module.data},
        "resource": {f"{t}.{n}" for t, n in module.resources},
    }
    unresolved = sorted(
        {
            f"{file}: {kind}.{name}"
            for file, text in module.expressions()
            for kind, name in references(text)
            if name not in known[kind]
        }
    )
    assert not unresolved, f"references to nothing declared: {unresolved}"


def test_the_reference_scanner_sees_every_kind() -> None:
    text = "${merge(var.a, local.b, module.c.x, data.google_project.this.number, google_pubsub_topic.events.id)}"
    assert set(references(text)) == {
        ("var", "a"),
        ("local", "b"),
        ("module", "c"),
        ("data", "google_project.this"),
        ("resource", "google_pubsub_topic.events"),
    }


@pytest.mark.parametrize("path", MODULE_DIRS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_declared_variable_is_used(modules: dict[Path, Module], path: Path) -> None:
    module = modules[path]
    used = {name for _, text in module.expressions() for kind, name in references(text) if kind == "var"}
    assert set(module.variables) - used == set()


@pytest.mark.parametrize("path", MODULE_DIRS, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_calls_match_the_called_module(modules: dict[Path, Module], path: Path) -> None:
    for name, call in modules[path].modules.items():
        source = (path / call["source"]).resolve()
        assert source in modules, f"module {name}: source {call['source']} is not a module of this repository"
        child = modules[source]
        passed = module_arguments(call)
        assert passed <= set(child.variables), f"module {name} passes undeclared {passed - set(child.variables)}"
        required = {v for v, body in child.variables.items() if "default" not in body}
        assert required <= passed, f"module {name} misses required {required - passed}"


def test_variables_have_types_and_descriptions(modules: dict[Path, Module]) -> None:
    for path, module in modules.items():
        for name, body in module.variables.items():
            assert body.get("type"), f"{path.name}: variable {name} has no type"
            assert body.get("description"), f"{path.name}: variable {name} has no description"


# --- the contract with the code --------------------------------------------------------------------------------


def _main_entry_points() -> dict[str, str]:
    """Top-level functions of main.py and their functions-framework decorator (cloud_event or http)."""
    tree = ast.parse((ROOT / "main.py").read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Attribute)
                    and isinstance(decorator.value, ast.Name)
                    and decorator.value.id == "functions_framework"
                ):
                    found[node.name] = decorator.attr
    return found


def _pushed_functions(module: Module) -> set[str]:
    """The functions a Pub/Sub push subscription posts to (its push endpoint is the function's URL)."""
    pushed = set()
    for name, subscription in module.resources_of("google_pubsub_subscription").items():
        for push in subscription.get("push_config", []):
            endpoint = re.fullmatch(
                r"\$\{google_cloudfunctions2_function\.(\w+)\.service_config\[0\]\.uri\}", push["push_endpoint"]
            )
            assert endpoint is not None, f"subscription {name} pushes to {push['push_endpoint']}, not a function's URL"
            pushed.add(endpoint[1])
    return pushed


def test_every_entry_point_exists_in_main_with_the_right_signature_type(module: Module) -> None:
    """No function has an event trigger: the event function is HTTP-triggered and receives Pub/Sub pushes,
    which functions-framework hands a CloudEvent entry point as the messagePublished CloudEvent."""
    declared = _main_entry_points()
    assert declared == ENTRY_POINTS
    pushed = _pushed_functions(module)
    assert pushed == {"events"}
    seen = {}
    for name, function in functions_of(module).items():
        assert "event_trigger" not in function, f"function {name} has an event trigger"
        entry_point = first(function["build_config"])["entry_point"]
        assert entry_point in declared, f"function {name}: entry point {entry_point} is not in main.py"
        expected = "cloud_event" if name in pushed else "http"
        assert declared[entry_point] == expected, f"{entry_point} is a {declared[entry_point]} function"
        seen[entry_point] = name
    assert set(seen) == set(ENTRY_POINTS), "every entry point is deployed"


_PUSHED_APP = """
import json, sys
import functions_framework
from tests.support.deliveries import delivery, log_entry

# as Cloud Functions starts a function deployed without an event trigger
app = functions_framework.create_app(target="on_node_event", source="main.py", signature_type="http")
received = []


class Events:
    def handle_delivery(self, data, *, trigger, delivery_id):
        received.append({"data": data, "trigger": trigger, "delivery_id": delivery_id})


sys.modules["main"].node_events = Events  # functions-framework loaded main.py as the module "main"
body, headers = delivery("push", log_entry("preempted", instance="gke-a-pool-0123abcd-x1y2"), message_id="4242")
response = app.test_client().post("/", data=body, headers=headers)
print(json.dumps({
    "endpoints": sorted(rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint != "static"),
    "status": response.status_code,
    "received": received,
}))
"""


def test_the_http_triggered_event_function_still_serves_on_node_event_as_a_cloudevent_function() -> None:
    """Cloud Functions builds a function without an event trigger with the signature type http; the
    cloud_event decorator of on_node_event wins over it, and a raw Pub/Sub push body reaches the handler as
    the messagePublished envelope with the message id as the delivery id (functions-framework's conversion)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FUNCTION_SIGNATURE_TYPE")}
    result = subprocess.run(
        [sys.executable, "-c", _PUSHED_APP],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["endpoints"] == ["cloudevent", "cloudevent"], "served as a CloudEvent function"
    assert served["status"] == 200
    [call] = served["received"]
    assert call["delivery_id"] == "4242"
    assert call["trigger"] == "pubsub"
    message = envelope.unwrap(call["data"])
    assert message.message_id == "4242"
    entry = log_entry_from_message(message)
    assert entry["protoPayload"]["methodName"] == "compute.instances.preempted"


def _env_parts(module: Module, expression: Any) -> list[str]:
    """What an environment expression merges, locals that merge others expanded: "local.X" (a literal map or
    the drain deadline map) and "var.extra_env"."""
    text = str(expression)
    match = re.fullmatch(r"\$\{(?:merge\(([^()]+)\)|(local\.\w+))\}", text)
    assert match is not None, f"an environment is a local or a merge of locals: {text!r}"
    parts: list[str] = []
    for name in (part.strip() for part in (match[1] or match[2]).split(",")):
        kind, _, key = name.partition(".")
        if kind == "var":
            assert name == "var.extra_env", f"{text}: the only variable merged whole is extra_env"
            parts.append(name)
            continue
        assert kind == "local", f"{text}: {name}"
        assert key.endswith("_env"), f"{text}: {name}"
        value = module.locals[key]
        parts += _env_parts(module, value) if isinstance(value, str) and value.startswith("${merge(") else [name]
    return parts


def _function_env(module: Module, function: dict[str, Any]) -> list[str]:
    return _env_parts(module, first(function["service_config"])["environment_variables"])


def _env_maps(module: Module) -> dict[str, dict[str, Any]]:
    """Every literal environment map the functions merge, by local name."""
    maps: dict[str, dict[str, Any]] = {}
    for function in functions_of(module).values():
        for part in _function_env(module, function):
            if part.startswith("local.") and isinstance(module.locals[part[6:]], dict):
                maps[part[6:]] = module.locals[part[6:]]
    return maps


def _config_env_names() -> set[str]:
    return {row.env for row in SETTINGS} | {ENV_CLUSTERS}


def test_every_environment_variable_set_is_one_the_config_reads(module: Module) -> None:
    readable = _config_env_names()
    static_keys: set[str] = set()
    for name, function in functions_of(module).items():
        parts = _function_env(module, function)
        assert parts[0] == "var.extra_env", f"function {name}: extra_env first, so the module's own keys win"
        for part in parts[1:]:
            value = module.locals[part.removeprefix("local.")]
            if isinstance(value, dict):
                static_keys |= set(value)
                unread = sorted(set(value) - readable)
                assert not unread, f"{part} sets {unread}, which the code never reads"
            else:  # the drain deadlines, one key per event kind given
                assert part == "local.deadline_env", part
                assert re.findall(r'"([A-Z][A-Z0-9_]*)\$\{', value) == [ENV_DEADLINE_PREFIX], value
    assert ENV_CLUSTERS in static_keys
    assert len(static_keys) >= 10, static_keys


def test_drain_deadline_keys_are_the_event_kinds(module: Module) -> None:
    variable = module.variables["drain_deadlines"]
    kinds = set(re.findall(r'"([a-z_]+)"', variable["validation"][0]["condition"]))
    assert kinds == {kind.value for kind in EventKind}


def test_scheduled_function_checks_the_scheduler_token_for_its_own_url(module: Module) -> None:
    schedule_env = module.locals["schedule_env"]
    assert schedule_env["DRAINER_HTTP_AUDIENCE"] == "${local.schedule_url}"
    assert schedule_env["DRAINER_ALLOWED_CALLERS"] == "${google_service_account.scheduler.email}"
    job = module.resources_of("google_cloud_scheduler_job")["operations"]
    target = first(job["http_target"])
    token = first(target["oidc_token"])
    assert token == {
        "service_account_email": "${google_service_account.scheduler.email}",
        "audience": "${local.schedule_url}",
        "__is_block__": True,
    }
    assert target["uri"] == "${local.schedule_url}"
    assert "jsonencode({action = each.key})" in target["body"].replace(" ", "").replace("=", " = ")
    assert "oauth_token" not in target
    assert module.locals["manual_env"]["DRAINER_HTTP_AUDIENCE"] == "${local.manual_url}"


def test_schedule_keys_are_the_scheduled_actions(module: Module) -> None:
    from functions.entry.http_api import SCHEDULED_ACTIONS

    condition = module.variables["schedules"]["validation"][0]["condition"]
    assert set(re.findall(r'"(\w+)"', condition)) == set(SCHEDULED_ACTIONS)
    assert set(module.variables["schedules"]["default"]) <= set(SCHEDULED_ACTIONS)


def test_source_archive_holds_what_main_imports(module: Module, tmp_path: Path) -> None:
    """Build the archive as archive_file would (same patterns) and import every module from it alone."""
    source = module.data[("archive_file", "source")]
    for_each = first(source["dynamic"])["source"]["for_each"]
    literal = re.findall(r'"([^"*]+)"', for_each.split("fileset(")[0])
    patterns = re.findall(r'fileset\(local\.source_root, "([^"]+)"\)', for_each)
    assert literal == ["main.py", "requirements.txt"]
    assert patterns == ["functions/**/*.py"]
    files = set(literal) | {str(p.relative_to(ROOT)) for p in ROOT.glob(patterns[0])}
    archive = tmp_path / "source.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name in sorted(files):
            zipped.write(ROOT / name, name)
    unpacked = tmp_path / "source"
    shutil.unpack_archive(archive, unpacked)
    modules = sorted(
        "functions." + p.stem if p.stem != "__init__" else "functions"
        for p in (unpacked / "functions").glob("*.py")
        if p.stem != "__main__"  # the command-line entry runs on import
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", f"import main, {', '.join(modules)}; print(main.__file__)"],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).resolve() == (unpacked / "main.py").resolve()
    assert (unpacked / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    # What ships is the compiled runtime lock: every requirement pinned with its hashes, and no
    # reference to a file (requirements.in, a constraints file) that the archive does not hold.
    shipped = (unpacked / "requirements.txt").read_text()
    entries = [e.strip() for e in re.sub(r"\\\n", " ", re.sub(r"#.*", "", shipped)).splitlines() if e.strip()]
    assert entries
    for entry in entries:
        assert re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==\S+ +--hash=sha256:[0-9a-f]{64}", entry), entry


# --- RBAC: the same manifest -----------------------------------------------------------------------------------


def test_rbac_module_applies_the_tested_manifest(modules: dict[Path, Module]) -> None:
    rbac = modules[RBAC_MODULE]
    manifest = rbac.locals["manifest"]
    path = re.search(r'"\$\{path\.module\}/([^"]+)"', manifest)
    assert path is not None, manifest
    assert (RBAC_MODULE / path[1]).resolve() == RBAC_MANIFEST
    passed = set(re.findall(r"(\w+) = var\.", manifest))
    placeholders = set(re.findall(r"\$\{(\w+)\}", RBAC_MANIFEST.read_text()))
    assert passed == placeholders == {"runtime_service_account_email"}
    call = modules[MODULE].modules["rbac"]
    assert call["runtime_service_account_email"] == "${google_service_account.runtime.email}"


def test_rbac_module_maps_every_field_the_manifest_uses(modules: dict[Path, Module]) -> None:
    documents = list(yaml.safe_load_all(RBAC_MANIFEST.read_text()))
    role = next(d for d in documents if d["kind"] == "ClusterRole")
    binding = next(d for d in documents if d["kind"] == "ClusterRoleBinding")
    rbac = modules[RBAC_MODULE]
    role_resource = rbac.resources[("kubernetes_cluster_role_v1", "drainer")]
    binding_resource = rbac.resources[("kubernetes_cluster_role_binding_v1", "drainer")]
    rule_mapping = " ".join(strings(first(role_resource["dynamic"])["rule"]["content"]))
    subject_mapping = " ".join(strings(first(binding_resource["dynamic"])["subject"]["content"]))
    for rule in role["rules"]:
        for key in rule:
            assert f"rule.value.{key}" in rule_mapping or f'"{key}"' in rule_mapping, f"rule key {key} is not applied"
    for subject in binding["subjects"]:
        for key in subject:
            assert f"subject.value.{key}" in subject_mapping, f"subject key {key} is not applied"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert set(binding["metadata"]) == set(role["metadata"]) == {"name", "labels"}


def test_rbac_module_applies_the_namespaced_lease_grant(modules: dict[Path, Module]) -> None:
    documents = list(yaml.safe_load_all(RBAC_MANIFEST.read_text()))
    assert sorted(d["kind"] for d in documents) == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    role = next(d for d in documents if d["kind"] == "Role")
    binding = next(d for d in documents if d["kind"] == "RoleBinding")
    rbac = modules[RBAC_MODULE]
    role_resource = rbac.resources[("kubernetes_role_v1", "lease")]
    binding_resource = rbac.resources[("kubernetes_role_binding_v1", "lease")]
    rule_mapping = " ".join(strings(first(role_resource["dynamic"])["rule"]["content"]))
    subject_mapping = " ".join(strings(first(binding_resource["dynamic"])["subject"]["content"]))
    for rule in role["rules"]:
        for key in rule:
            assert f"rule.value.{key}" in rule_mapping or f'"{key}"' in rule_mapping, f"rule key {key} is not applied"
    for subject in binding["subjects"]:
        for key in subject:
            assert f"subject.value.{key}" in subject_mapping, f"subject key {key} is not applied"
    for resource, local, document in (
        (role_resource, "lease_role", role),
        (binding_resource, "lease_binding", binding),
    ):
        metadata = first(resource["metadata"])
        for key in document["metadata"]:
            assert metadata[key] == f"${{local.{local}.metadata.{key}}}", f"{local} metadata.{key} is not applied"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "kube-system"


# --- least privilege -------------------------------------------------------------------------------------------


def test_no_public_principal_is_granted_anything(module: Module) -> None:
    for (kind, name), body in module.resources.items():
        for key in ("member", "members"):
            if key in body:
                text = json.dumps(body[key])
                assert "allUsers" not in text, f"{kind}.{name}"
                assert "allAuthenticatedUsers" not in text, f"{kind}.{name}"
    conditions = " ".join(v["condition"] for v in module.variables["manual_invokers"]["validation"])
    assert '"allUsers"' in conditions
    assert '"allAuthenticatedUsers"' in conditions


def test_runtime_account_holds_only_its_four_grants(module: Module) -> None:
    runtime = "${google_service_account.runtime.member}"
    grants = sorted(
        (kind, body.get("role"))
        for (kind, _), body in module.resources.items()
        if kind.endswith("_iam_member") and body.get("member") == runtime
    )
    assert grants == [
        ("google_project_iam_member", "${google_project_iam_custom_role.cluster_reader[each.value].id}"),
        ("google_project_iam_member", "${google_project_iam_custom_role.instance_reader[each.value].id}"),
        ("google_project_iam_member", "roles/logging.logWriter"),
        ("google_pubsub_topic_iam_member", "roles/pubsub.publisher"),
    ]
    role = module.resources[("google_project_iam_custom_role", "cluster_reader")]
    assert role["permissions"] == (
        '${concat(["container.clusters.get"], contains(local.dns_endpoint_projects, each.value) ? '
        '["container.clusters.connect"] : [])}'
    ), "container.clusters.connect only where a cluster is reached on its DNS-based endpoint"
    fence = module.resources[("google_project_iam_custom_role", "instance_reader")]
    assert fence["permissions"] == ["compute.instances.get"]
    assert fence["for_each"] == "${var.compute_fence ? local.cluster_projects : toset([])}"
    publisher = next(
        body
        for (kind, _), body in module.resources.items()
        if kind == "google_pubsub_topic_iam_member" and body.get("member") == runtime
    )
    assert publisher["topic"] == "${google_pubsub_topic.outcomes.name}"


def test_every_invoker_binding_is_on_one_function_for_its_own_caller(module: Module) -> None:
    bindings = module.resources_of("google_cloud_run_service_iam_member")
    assert {b["role"] for b in bindings.values()} == {"roles/run.invoker"}
    targets = {name: (b["service"], b["member"]) for name, b in bindings.items()}
    assert targets == {
        "events_invoker": (
            "${google_cloudfunctions2_function.events.service_config[0].service}",
            "${google_service_account.event_push.member}",
        ),
        "schedule_invoker": (
            "${google_cloudfunctions2_function.schedule.service_config[0].service}",
            "${google_service_account.scheduler.member}",
        ),
        "manual_invokers": ("${google_cloudfunctions2_function.manual.service_config[0].service}", "${each.value}"),
    }


def test_functions_are_internal_where_possible_and_retry_events(module: Module) -> None:
    functions = functions_of(module)
    assert first(functions["events"]["service_config"])["ingress_settings"] == "ALLOW_INTERNAL_ONLY"
    assert first(functions["schedule"]["service_config"])["ingress_settings"] == "ALLOW_INTERNAL_ONLY"
    assert first(functions["manual"]["service_config"])["ingress_settings"] == "${var.manual_ingress_settings}"
    assert module.variables["manual_ingress_settings"]["default"] == "ALLOW_INTERNAL_ONLY"
    push = module.resources[("google_pubsub_subscription", "events")]
    assert push["topic"] == "${google_pubsub_topic.events.id}"
    assert first(push["push_config"])["push_endpoint"] == (
        "${google_cloudfunctions2_function.events.service_config[0].uri}"
    ), "the run.app URL: what the internal ingress admits from Pub/Sub in the same project"
    for function in functions.values():
        assert first(function["service_config"])["service_account_email"] == "${google_service_account.runtime.email}"
        assert first(function["build_config"])["service_account"] == "${google_service_account.build.id}"


def _timeout(module: Module, name: str) -> Any:
    """A function's timeout_seconds: a number or a reference to a local that is one."""
    value = first(functions_of(module)[name]["service_config"])["timeout_seconds"]
    ref = re.fullmatch(r"\$\{local\.(\w+)\}", str(value))
    return module.locals[ref[1]] if ref else value


def test_each_function_is_told_its_own_timeout(module: Module) -> None:
    expected = {
        "events": ("event_env", "${tostring(local.event_timeout_seconds)}"),
        "schedule": ("schedule_env", "${tostring(var.schedule_timeout_seconds)}"),
        "manual": ("manual_env", "${tostring(local.manual_timeout_seconds)}"),
    }
    for name, (env_local, value) in expected.items():
        assert f"local.{env_local}" in _function_env(module, functions_of(module)[name])
        assert module.locals[env_local]["DRAINER_FUNCTION_TIMEOUT_SECONDS"] == value
    assert first(functions_of(module)["schedule"]["service_config"])["timeout_seconds"] == (
        "${var.schedule_timeout_seconds}"
    )
    assert _timeout(module, "events") == 540
    assert _timeout(module, "manual") == 900


def test_drain_deadlines_fit_in_the_event_function_timeout(module: Module) -> None:
    timeout = _timeout(module, "events")
    condition = module.variables["drain_deadlines"]["validation"][1]["condition"]
    limit = int(re.search(r"seconds <= (\d+)", condition)[1])  # type: ignore[index]
    assert limit < timeout
    assert max(config.DEFAULT_DEADLINES.values()) < timeout


# --- an event reaches the dead-letter topic before it can expire -------------------------------------------------

ARITHMETIC_VARIABLES = ("dead_letter_max_delivery_attempts", "event_retry_max_delay_seconds", "max_event_age_seconds")


def _evaluate(expression: str, values: dict[str, Any]) -> Any:
    from tests.support.hclexpr import evaluate

    return evaluate(expression, values)


def _accepted(module: Module, name: str, value: float) -> bool:
    """Whether every validation of variable ``name`` accepts ``value``."""
    return all(_evaluate(rule["condition"], {f"var.{name}": value}) for rule in module.variables[name]["validation"])


def _precondition(resource: dict[str, Any], reading: str) -> dict[str, Any]:
    """The one precondition of ``resource`` whose condition reads ``reading``."""
    lifecycle = first(resource["lifecycle"])
    found: list[dict[str, Any]] = [check for check in lifecycle["precondition"] if reading in check["condition"]]
    assert len(found) == 1, f"{len(found)} preconditions read {reading}"
    return found[0]


def _dead_letter_check(module: Module) -> dict[str, Any]:
    return _precondition(functions_of(module)["events"], "local.dead_letter_worst_case_seconds")


def _plan_refuses(module: Module, **overrides: float) -> tuple[bool, float]:
    """What the events function's precondition says at plan time with the defaults and ``overrides``:
    (refused, worst case in seconds), each variable first passing its own validations."""
    values: dict[str, Any] = {}
    for name in ARITHMETIC_VARIABLES:
        value = overrides.get(name, module.variables[name]["default"])
        assert _accepted(module, name, value), f"{name} = {value} is refused by its own validation"
        values[f"var.{name}"] = value
    values["local.event_timeout_seconds"] = _timeout(module, "events")
    values["local.sink_delay_allowance_seconds"] = module.locals["sink_delay_allowance_seconds"]
    worst = _evaluate(module.locals["dead_letter_worst_case_seconds"], values)
    values["local.dead_letter_worst_case_seconds"] = worst
    return not _evaluate(_dead_letter_check(module)["condition"], values), worst


def test_the_worst_case_to_the_dead_letter_topic_is_every_attempt_at_full_timeout_and_longest_backoff(
    module: Module,
) -> None:
    from tests.support.hclexpr import references

    worst = module.locals["dead_letter_worst_case_seconds"]
    assert references(worst) == {
        "local.sink_delay_allowance_seconds",
        "var.dead_letter_max_delivery_attempts",
        "local.event_timeout_seconds",
        "var.event_retry_max_delay_seconds",
    }
    symbols = {
        "local.sink_delay_allowance_seconds": 1000,
        "var.dead_letter_max_delivery_attempts": 10,
        "local.event_timeout_seconds": 100,
        "var.event_retry_max_delay_seconds": 1,
    }
    assert _evaluate(worst, symbols) == 1000 + 10 * (100 + 1)
    assert module.locals["sink_delay_allowance_seconds"] >= 300, "Logging's routing is near real time, not instant"
    check = _dead_letter_check(module)
    assert check["condition"] == "${local.dead_letter_worst_case_seconds < var.max_event_age_seconds}"
    # the refusal shows the numbers it was computed from
    for name in (
        "local.sink_delay_allowance_seconds",
        "var.dead_letter_max_delivery_attempts",
        "local.event_timeout_seconds",
        "var.event_retry_max_delay_seconds",
        "local.dead_letter_worst_case_seconds",
        "var.max_event_age_seconds",
    ):
        assert "${" + name + "}" in check["error_message"], name


def test_the_defaults_dead_letter_an_event_before_it_expires(module: Module) -> None:
    refused, worst = _plan_refuses(module)
    assert not refused
    assert worst == 600 + 7 * (540 + 300) == 6480
    assert worst < module.variables["max_event_age_seconds"]["default"]
    # the function ages events by the same maximum Terraform checks against
    assert module.variables["max_event_age_seconds"]["default"] == config.DEFAULT_MAX_EVENT_AGE
    assert module.locals["settings_env"]["DRAINER_MAX_EVENT_AGE_SECONDS"] == "${tostring(var.max_event_age_seconds)}"
    assert "local.settings_env" in _env_parts(module, module.locals["common_env"])


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({"dead_letter_max_delivery_attempts": 20}, True),  # the old default: 600 + 20 x 840 = 17400 s
        ({"dead_letter_max_delivery_attempts": 8}, True),  # 600 + 8 x 840 = 7320 s
        ({"event_retry_max_delay_seconds": 600}, True),  # Pub/Sub's default backoff: 600 + 7 x 1140 = 8580 s
        ({"max_event_age_seconds": 3600}, True),
        ({"dead_letter_max_delivery_attempts": 5, "event_retry_max_delay_seconds": 600}, False),  # 6300 s
        ({"dead_letter_max_delivery_attempts": 10, "event_retry_max_delay_seconds": 60}, False),  # 6600 s
        ({"dead_letter_max_delivery_attempts": 20, "max_event_age_seconds": 18000}, False),  # 17400 s
    ],
    ids=str,
)
def test_the_plan_refuses_retry_settings_that_let_an_event_expire_first(
    module: Module, overrides: dict[str, float], refused: bool
) -> None:
    assert _plan_refuses(module, **overrides)[0] is refused


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("dead_letter_max_delivery_attempts", 4, False),  # Pub/Sub's minimum is 5
        ("dead_letter_max_delivery_attempts", 5, True),
        ("dead_letter_max_delivery_attempts", 7.5, False),
        ("dead_letter_max_delivery_attempts", 101, False),
        ("event_retry_max_delay_seconds", -1, False),
        ("event_retry_max_delay_seconds", 0, True),  # Pub/Sub's limits: 0 to 600 s
        ("event_retry_max_delay_seconds", 601, False),
        ("event_retry_max_delay_seconds", 30.5, False),
        ("event_retry_min_delay_seconds", 0, True),
        ("event_retry_min_delay_seconds", 600, True),
        ("event_retry_min_delay_seconds", 601, False),
        ("max_event_age_seconds", 90000, False),  # more than a day
    ],
)
def test_each_retry_setting_is_validated_on_its_own(module: Module, name: str, value: float, accepted: bool) -> None:
    assert _accepted(module, name, value) is accepted


def _push_subscription(module: Module) -> dict[str, Any]:
    return module.resources[("google_pubsub_subscription", "events")]


def test_the_push_subscription_sets_what_the_arithmetic_assumes(module: Module) -> None:
    """Delivery and dead-lettering are the push subscription's own policies, from the variables the
    arithmetic reads: nothing is left to set by hand."""
    push = _push_subscription(module)
    policy = first(push["dead_letter_policy"])
    assert policy == {
        "dead_letter_topic": "${google_pubsub_topic.dead_letter.id}",
        "max_delivery_attempts": "${var.dead_letter_max_delivery_attempts}",
        "__is_block__": True,
    }
    retry = first(push["retry_policy"])
    assert retry == {
        "minimum_backoff": "${var.event_retry_min_delay_seconds}s",
        "maximum_backoff": "${var.event_retry_max_delay_seconds}s",
        "__is_block__": True,
    }
    # Pub/Sub waits for a push's answer as long as the ack deadline: the function's timeout, the arithmetic's
    # longest attempt (Pub/Sub allows at most 600 s)
    assert push["ack_deadline_seconds"] == "${local.event_timeout_seconds}"
    assert _timeout(module, "events") <= 600
    assert first(push["expiration_policy"])["ttl"] == "", "the subscription never expires"
    retention = re.fullmatch(r"(\d+)s", push["message_retention_duration"])
    assert retention is not None
    assert int(retention[1]) > 86400, "an undelivered event is kept longer than the longest max_event_age_seconds"
    assert "attach_dead_letter_command" not in module.outputs
    # the backoff's bounds are ordered, checked at plan
    check = _precondition(push, "var.event_retry_min_delay_seconds")
    for low, high, accepted in ((10, 300, True), (300, 300, True), (0, 0, True), (301, 300, False)):
        values = {"var.event_retry_min_delay_seconds": low, "var.event_retry_max_delay_seconds": high}
        assert _evaluate(check["condition"], values) is accepted, (low, high)


def test_the_push_carries_an_oidc_token_of_the_only_account_that_may_invoke_the_event_function(module: Module) -> None:
    push = first(_push_subscription(module)["push_config"])
    token = first(push["oidc_token"])
    assert token["service_account_email"] == "${google_service_account.event_push.email}"
    assert (
        token["audience"]
        == push["push_endpoint"]
        == ("${google_cloudfunctions2_function.events.service_config[0].uri}")
    )
    invokers = [
        binding
        for binding in module.resources_of("google_cloud_run_service_iam_member").values()
        if binding["service"] == "${google_cloudfunctions2_function.events.service_config[0].service}"
    ]
    assert [(b["role"], b["member"]) for b in invokers] == [
        ("roles/run.invoker", "${google_service_account.event_push.member}")
    ]
    others = [
        (kind, name)
        for (kind, name), body in module.resources.items()
        if kind.endswith("_iam_member") and body.get("member") == "${google_service_account.event_push.member}"
    ]
    assert others == [("google_cloud_run_service_iam_member", "events_invoker")], "the push account holds nothing else"
    assert functions_of(module)["events"]["service_config"][0]["ingress_settings"] == "ALLOW_INTERNAL_ONLY"


def test_pubsubs_service_agent_may_sign_the_push_tokens_and_dead_letter(module: Module) -> None:
    agent = module.locals["pubsub_service_agent"]
    assert agent == "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
    grants = {
        (kind, body["role"], body.get("topic") or body.get("subscription") or body.get("service_account_id"))
        for (kind, _), body in module.resources.items()
        if kind.endswith("_iam_member") and body.get("member") == "${local.pubsub_service_agent}"
    }
    assert grants == {
        ("google_pubsub_topic_iam_member", "roles/pubsub.publisher", "${google_pubsub_topic.dead_letter.name}"),
        (
            "google_pubsub_subscription_iam_member",
            "roles/pubsub.subscriber",
            "${google_pubsub_subscription.events.name}",
        ),
        (
            "google_service_account_iam_member",
            "roles/iam.serviceAccountTokenCreator",
            "${google_service_account.event_push.name}",
        ),
    }
    assert "gcp-sa-pubsub" not in json.dumps({k: v for k, v in module.locals.items() if k != "pubsub_service_agent"})
    # the first push finds the function invocable and the token mintable, the first dead letter its topic open
    assert set(_push_subscription(module)["depends_on"]) == {
        "${google_cloud_run_service_iam_member.events_invoker}",
        "${google_service_account_iam_member.pubsub_token_creator}",
        "${google_pubsub_topic_iam_member.dead_letter_publisher}",
    }


# --- every setting of the functions from the module ------------------------------------------------------------

# Settings the module sets from what it creates or from a function's own parameters rather than from a variable
# of their own, and why.
DERIVED_SETTINGS = {
    "DRAINER_FUNCTION_TIMEOUT_SECONDS": "each function's own timeout",
    "DRAINER_HTTP_AUDIENCE": "each HTTP function's own URL",
    "DRAINER_OUTCOME_TOPIC": "the outcome topic the module creates (outcome_topic_name names it)",
    "DRAINER_AUDIT_LOG_NAME": "the log the module's metrics and alerts read (NAME-audit)",
}


def _inputs(module: Module, text: str, seen: frozenset[str] = frozenset()) -> tuple[set[str], set[str]]:
    """The variables and the resources (or data sources) an expression is built from, through locals."""
    variables: set[str] = set()
    resources: set[str] = set()
    for kind, name in references(text):
        if kind == "var":
            variables.add(name)
        elif kind == "local" and name not in seen:
            for inner in strings(module.locals[name]):
                more_variables, more_resources = _inputs(module, inner, seen | {name})
                variables |= more_variables
                resources |= more_resources
        elif kind in ("resource", "data"):
            resources.add(name)
    return variables, resources


def _settings_set(module: Module) -> dict[str, list[str]]:
    """The expressions the module sets each setting to, over all functions."""
    found: dict[str, list[str]] = {}
    for values in _env_maps(module).values():
        for env, expression in values.items():
            found.setdefault(env, []).append(str(expression))
    return found


def test_every_setting_of_the_functions_can_be_set_from_the_module(module: Module) -> None:
    """Each row of the code's settings table is set from a typed variable, derived by the module from what it
    creates, or left to extra_env, and never two of these."""
    readable = _config_env_names()
    set_by_module = _settings_set(module)
    extra = module.locals["extra_env_settings"]
    assert extra == sorted(set(extra)), "extra_env_settings is a sorted list without repeats"
    assert set(extra) <= readable, (
        f"extra_env_settings names {sorted(set(extra) - readable)}, which the code never reads"
    )
    assert not set(extra) & set(set_by_module), "extra_env may not set what the module sets"
    assert set(DERIVED_SETTINGS) <= set(set_by_module)
    deadlines = {row.env for row in SETTINGS if row.env.startswith(ENV_DEADLINE_PREFIX)}
    assert deadlines, "the deadlines are settings of their own"
    assert _inputs(module, module.locals["deadline_env"]) == ({"drain_deadlines"}, set())
    unreachable = []
    for env in sorted(readable):
        if env in extra or env in deadlines or env in DERIVED_SETTINGS:
            continue
        if env not in set_by_module:
            unreachable.append(env)
            continue
        typed = [_inputs(module, expression) for expression in set_by_module[env]]
        assert any(variables and not resources for variables, resources in typed), (
            f"{env} is set only from {set_by_module[env]}: from no variable of its own"
        )
    assert not unreachable, f"no typed variable and not extra_env: {unreachable}"


def _typed(module: Module) -> dict[str, str]:
    """Settings set as one variable's value (tostring(var.X)): setting -> variable."""
    found = {}
    for env, expressions in _settings_set(module).items():
        for expression in expressions:
            match = re.fullmatch(r"\$\{tostring\(var\.(\w+)\)\}", expression)
            if match:
                found[env] = match[1]
    return found


def test_typed_settings_default_as_the_code_does_and_never_accept_what_the_code_refuses(module: Module) -> None:
    rows = {row.env: row for row in SETTINGS}
    typed = _typed(module)
    assert {
        "DRAINER_EVICTION_CONCURRENCY",
        "DRAINER_API_TIMEOUT_SECONDS",
        "DRAINER_FENCE_STORM_SHARE",
        "DRAINER_FENCE_STORM_WINDOW_SECONDS",
        "DRAINER_CLEANUP_CRONJOB_JOBS",
        "DRAINER_CLEANUP_OTHER_PODS",
        "DRAINER_CLEANUP_CONCURRENCY",
        "DRAINER_CLEANUP_PAGE_SIZE",
        "DRAINER_RECOVERY_DEADLINE_SECONDS",
    } <= set(typed)
    for env, name in sorted(typed.items()):
        if env in DERIVED_SETTINGS:
            continue
        row, variable = rows[env], module.variables[name]
        default = row.default.total_seconds() if isinstance(row.default, timedelta) else row.default
        assert variable["default"] == default, f"var.{name} defaults to {variable['default']}, the code to {default}"
        if isinstance(default, bool):
            assert variable["type"] == "bool", name
            continue
        assert variable["type"] == "number", name
        assert _accepted(module, name, variable["default"])
        step = 1 if row.read.__name__ == "_integer" else 1e-6
        for outside in (row.low - step, row.high + step):
            assert not _accepted(module, name, outside), f"var.{name} accepts {outside}, which {env} refuses"


@pytest.mark.parametrize(
    ("extra_env", "refused"),
    [
        ({}, []),
        ({"DRAINER_OUTCOME_TYPE_PREFIX": "com.acme.drainer"}, []),
        ({"DRAINER_CONTAINER_API_ENDPOINT": "https://container.googleapis.com"}, []),
        ({"DRAINER_DRY_RUN": "true"}, ["DRAINER_DRY_RUN"]),  # a typed variable sets it
        ({"DRAINER_FUNCTION_TIMEOUT_SECONDS": "60"}, ["DRAINER_FUNCTION_TIMEOUT_SECONDS"]),  # the module derives it
        ({"DRAINER_DEADLINE_PREEMPTED": "30"}, ["DRAINER_DEADLINE_PREEMPTED"]),  # drain_deadlines sets it
        ({"DRAINER_EVICTON_CONCURRENCY": "8"}, ["DRAINER_EVICTON_CONCURRENCY"]),  # the code reads no such name
        ({"DRAINER_LOGGING_API_ENDPOINT": "x", "DRAINER_CLUSTERS": "[]"}, ["DRAINER_CLUSTERS"]),
    ],
    ids=str,
)
def test_extra_env_takes_only_the_settings_the_module_leaves_alone(
    module: Module, extra_env: dict[str, str], refused: list[str]
) -> None:
    values: dict[str, Any] = {
        "var.extra_env": extra_env,
        "local.extra_env_settings": module.locals["extra_env_settings"],
    }
    values["local.extra_env_keys"] = _evaluate(module.locals["extra_env_keys"], values)
    values["local.extra_env_refused"] = _evaluate(module.locals["extra_env_refused"], values)
    assert values["local.extra_env_refused"] == refused
    check = _precondition(functions_of(module)["events"], "local.extra_env_refused")
    assert _evaluate(check["condition"], values) is (not refused)
    assert '${join(", ", local.extra_env_refused)}' in check["error_message"]


def test_every_key_the_module_sets_is_refused_in_extra_env(module: Module) -> None:
    allowed = set(module.locals["extra_env_settings"])
    assert not allowed & set(_settings_set(module))
    assert not {name for name in allowed if name.startswith(ENV_DEADLINE_PREFIX)}
    validation = first(module.variables["extra_env"]["validation"])
    assert "^DRAINER_[A-Z0-9_]+$" in validation["condition"]
    described = re.findall(r"DRAINER_[A-Z0-9_]+", module.variables["extra_env"]["description"])
    assert described == module.locals["extra_env_settings"], "extra_env's description lists what it takes"


# --- private clusters -------------------------------------------------------------------------------------------

DNS_ENDPOINT = "gke-0123456789abcdef0123456789abcdef-123456789012.europe-west4.gke.goog"
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _clusters_setting_as_terraform_renders_it(_module: Module, clusters: list[dict[str, Any]]) -> str:
    """DRAINER_CLUSTERS for ``clusters`` as local.clusters and local.clusters_setting compute it (the test below
    holds the HCL to these steps)."""
    rendered = []
    for c in clusters:
        endpoint = c.get("endpoint")
        url = None if endpoint is None else (endpoint if endpoint.startswith("https://") else f"https://{endpoint}")
        ca = c.get("ca_certificate")
        entry = {
            "name": c["name"],
            "project": c["project"],
            "location": c["location"],
            "endpoint": url,
            "ca_data": ca,  # none for the DNS-based endpoint: publicly trusted
        }
        rendered.append({key: value for key, value in entry.items() if value is not None})
    return json.dumps(rendered)


def test_the_clusters_setting_is_built_as_the_mirror_says(module: Module) -> None:
    clusters = module.locals["clusters"]
    assert 'endpoint_url = c.endpoint == null ? null : (startswith(c.endpoint, "https://") ? c.endpoint : ' in clusters
    assert 'endpoint_dns = c.endpoint == null ? false : can(regex("[.]gke[.]goog(:[0-9]+)?$", c.endpoint))' in clusters
    setting = module.locals["clusters_setting"]
    keys = re.findall(r"(\w+) = c\.", setting)
    assert keys == ["name", "project", "location", "endpoint", "ca_data"]
    assert ": key => value if value != null" in setting, "unset keys are left out, not sent as null"
    assert module.locals["settings_env"]["DRAINER_CLUSTERS"] == "${local.clusters_setting}"
    attributes = re.findall(r"(\w+) = ", unwrap(module.variables["clusters"]["type"]))
    assert attributes == ["project", "location", "name", "endpoint", "ca_certificate"]


@pytest.mark.parametrize(
    ("cluster", "endpoint", "ca"),
    [
        ({}, None, None),  # the public endpoint and its CA from the Container API
        ({"endpoint": "10.0.0.2", "ca_certificate": "LS0tLS1CRUdJTg=="}, "https://10.0.0.2", "LS0tLS1CRUdJTg=="),
        ({"endpoint": "https://10.0.0.2:443", "ca_certificate": CA_PEM}, "https://10.0.0.2:443", CA_PEM),
        ({"endpoint": DNS_ENDPOINT}, f"https://{DNS_ENDPOINT}", None),
    ],
    ids=["container-api", "private-ip", "private-ip-url", "dns"],
)
def test_the_functions_read_each_kind_of_cluster_endpoint_the_module_writes(
    module: Module, cluster: dict[str, Any], endpoint: str | None, ca: str | None
) -> None:
    entry = {"project": "acme-prod", "location": "europe-west4", "name": "payments", **cluster}
    loaded = load_settings({ENV_CLUSTERS: _clusters_setting_as_terraform_renders_it(module, [entry])})
    [read] = loaded.clusters
    assert (read.name, read.project, read.location) == ("payments", "acme-prod", "europe-west4")
    assert read.endpoint == endpoint
    assert read.ca_data == ca
    assert read.ca_file is None  # the DNS-based endpoint is publicly trusted: no CA at all


def test_a_private_ip_needs_a_path_into_the_vpc_and_the_two_kinds_exclude_each_other(module: Module) -> None:
    events = functions_of(module)["events"]
    exclusive = _precondition(events, "var.vpc_connector == null")
    assert exclusive["condition"] == "${var.vpc_access == null || var.vpc_connector == null}"
    needs = _precondition(events, "local.private_ip_endpoint_clusters")
    assert needs["condition"] == (
        "${length(local.private_ip_endpoint_clusters) == 0 || var.vpc_access != null || var.vpc_connector != null}"
    )
    assert module.locals["private_ip_endpoint_clusters"] == (
        "${[for c in local.clusters : c.name if c.endpoint != null && !c.endpoint_dns]}"
    )
    assert module.locals["dns_endpoint_projects"] == "${toset([for c in local.clusters : c.project if c.endpoint_dns])}"
    conditions = " ".join(v["condition"] for v in module.variables["clusters"]["validation"])
    assert "c.ca_certificate != null" in conditions, "a private IP needs its CA"


def test_every_function_takes_the_same_vpc_egress(module: Module) -> None:
    assert (
        module.locals["direct_vpc_egress"] == '${var.vpc_access == null ? null : "VPC_EGRESS_${var.vpc_access.egress}"}'
    )
    for name, function in functions_of(module).items():
        service = first(function["service_config"])
        assert service["vpc_connector"] == "${try(var.vpc_connector.name, null)}", name
        assert service["vpc_connector_egress_settings"] == "${try(var.vpc_connector.egress, null)}", name
        assert service["direct_vpc_egress"] == "${local.direct_vpc_egress}", name
        [interface] = [block["direct_vpc_network_interface"] for block in service["dynamic"]]
        assert interface["for_each"] == "${var.vpc_access == null ? [] : [var.vpc_access]}", name
        assert first(interface["content"]) == {
            "network": "${direct_vpc_network_interface.value.network}",
            "subnetwork": "${direct_vpc_network_interface.value.subnetwork}",
            "tags": "${direct_vpc_network_interface.value.network_tags}",
            "__is_block__": True,
        }
    for variable in ("vpc_access", "vpc_connector"):
        conditions = " ".join(v["condition"] for v in module.variables[variable]["validation"])
        assert '["PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"]' in conditions, variable
        assert module.variables[variable]["default"] is None
    google = module.files["versions.tf"]["terraform"][0]["required_providers"][0]["google"]
    assert google["version"].startswith(">= 7.21"), "Direct VPC egress of google_cloudfunctions2_function"


# --- KMS, custom roles, RBAC ------------------------------------------------------------------------------------


def test_a_kms_key_is_granted_to_the_service_agents_before_anything_uses_it(module: Module) -> None:
    grants = module.resources[("google_kms_crypto_key_iam_member", "service_agents")]
    assert grants["crypto_key_id"] == "${var.kms_key_name}"
    assert grants["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert grants["member"] == "${each.value}"
    assert grants["for_each"] == (
        "${var.kms_key_name == null ? {} : {pubsub = local.pubsub_service_agent, storage = "
        '"serviceAccount:${data.google_storage_project_service_account.this[0].email_address}"}}'
    )
    storage_agent = module.data[("google_storage_project_service_account", "this")]
    assert storage_agent["count"] == "${var.kms_key_name == null ? 0 : 1}"
    users = {
        (kind, name)
        for (kind, name), body in module.resources.items()
        if kind != "google_kms_crypto_key_iam_member" and "var.kms_key_name" in json.dumps(body)
    }
    assert users == {
        ("google_pubsub_topic", "events"),
        ("google_pubsub_topic", "dead_letter"),
        ("google_pubsub_topic", "outcomes"),
        ("google_storage_bucket", "source"),
    }
    expected_agent = {"google_pubsub_topic": "pubsub", "google_storage_bucket": "storage"}
    for kind, name in users:
        assert "${google_kms_crypto_key_iam_member.service_agents}" in module.resources[(kind, name)]["depends_on"]
        assert expected_agent[kind] in grants["for_each"]


def test_custom_role_ids_carry_a_suffix(module: Module) -> None:
    roles = module.resources_of("google_project_iam_custom_role")
    assert set(roles) == {"cluster_reader", "instance_reader"}
    for name, role in roles.items():
        assert role["role_id"].startswith("${local.role_id_prefix}_"), name
        assert role["role_id"].endswith("_${local.role_id_suffix}"), name
        assert first(role["lifecycle"])["create_before_destroy"] is True, name
    assert module.locals["role_id_suffix"] == (
        "${var.role_id_suffix != null ? var.role_id_suffix : random_id.role_suffix[0].hex}"
    )
    suffix = module.resources[("random_id", "role_suffix")]
    assert suffix["count"] == "${var.role_id_suffix == null ? 1 : 0}"
    assert "keepers" not in suffix, "drawn once per state: a new one only after a destroy"
    # NAME (at most 20) + _instance_get_ + a suffix of at most 16 fits IAM's 64 characters
    assert 20 + len("_instance_get_") + 16 <= 64
    assert suffix["byte_length"] * 2 <= 16


def test_rbac_is_applied_through_an_explicit_provider_configuration(modules: dict[Path, Module]) -> None:
    root = modules[MODULE]
    kubernetes = root.files["versions.tf"]["terraform"][0]["required_providers"][0]["kubernetes"]
    assert kubernetes["configuration_aliases"] == ["${kubernetes.rbac}"]
    assert root.modules["rbac"]["providers"] == {"kubernetes": "${kubernetes.rbac}"}
    assert not [block for parsed in root.files.values() for block in parsed.get("provider", [])], "no provider blocks"
    example = modules[EXAMPLE]
    assert example.modules["drainer"]["providers"] == {"${kubernetes.rbac}": "${kubernetes.primary}"}
    kubernetes_providers = [
        body
        for parsed in example.files.values()
        for block in parsed.get("provider", [])
        for kind, body in block.items()
        if kind == "kubernetes"
    ]
    assert kubernetes_providers, "the example configures the cluster it passes"
    assert all(body.get("alias") for body in kubernetes_providers), (
        "no default kubernetes configuration to fall back on"
    )
    readme = (MODULE / "README.md").read_text(encoding="utf-8")
    assert "kubernetes.rbac = kubernetes." in readme


# --- outputs and the module's README ----------------------------------------------------------------------------


def test_outputs_name_every_function_account_topic_subscription_and_the_dashboard(module: Module) -> None:
    values = " ".join(str(output["value"]) for output in module.outputs.values())
    for name in functions_of(module):
        assert f"google_cloudfunctions2_function.{name}.name" in values, f"function {name}: no name output"
    urls = {
        "events": "google_cloudfunctions2_function.events.service_config[0].uri",
        "schedule": "local.schedule_url",
        "manual": "local.manual_url",
    }
    assert set(urls) == set(functions_of(module))
    for name, url in urls.items():
        assert any(str(output["value"]) == "${" + url + "}" for output in module.outputs.values()), name
    for name in module.resources_of("google_service_account"):
        assert f"google_service_account.{name}.email" in values, f"service account {name}"
    for name in module.resources_of("google_pubsub_topic"):
        assert f"google_pubsub_topic.{name}.id" in values, f"topic {name}"
    for name in module.resources_of("google_pubsub_subscription"):
        assert f"google_pubsub_subscription.{name}.id" in values, f"subscription {name}"
    for name in module.resources_of("google_monitoring_dashboard"):
        assert f"google_monitoring_dashboard.{name}.id" in values, f"dashboard {name}"
    for name, output in module.outputs.items():
        assert output.get("description"), f"output {name} has no description"


def test_the_module_readme_tables_are_variables_tf_and_outputs_tf(module: Module) -> None:
    readme = (MODULE / "README.md").read_text(encoding="utf-8")
    assert readme == readme_with_tables(readme, module), (
        "terraform/README.md's tables differ from variables.tf and outputs.tf: "
        "run `.venv/bin/python -m tests.support.terraform`"
    )
    section = readme[readme.index(README_BEGIN) :]
    names = re.findall(r"^\| ([a-z_0-9]+) \|", section, flags=re.MULTILINE)
    assert names == sorted(module.variables) + sorted(module.outputs)


def test_the_module_readme_documents_no_removed_interface(module: Module) -> None:
    readme = (MODULE / "README.md").read_text(encoding="utf-8")
    upgrading = re.search(r"^## Upgrading.*?(?=^## )", readme, flags=re.MULTILINE | re.DOTALL)
    assert upgrading is not None, "the README says how to upgrade from the Eventarc trigger"
    current = readme.replace(upgrading[0], "")
    for gone in ("attach_dead_letter_command", "Eventarc", "gcloud pubsub subscriptions update"):
        assert gone not in current, f"the README still describes {gone} outside the upgrade notes"
    # every snake_case name the prose quotes is an input or output, or one of these
    others = {"ca_certificate", "retry_policy", "dead_letter_policy", "on_node_event"}
    mentioned = set(re.findall(r"`([a-z]+_[a-z0-9_]+)`", current[: current.index(README_BEGIN)]))
    unknown = mentioned - set(module.variables) - set(module.outputs) - others
    assert not unknown, f"the README names {sorted(unknown)}, which the module does not have"
    assert {"event_retry_min_delay_seconds", "vpc_access", "vpc_connector", "kms_key_name", "extra_env"} <= mentioned


def test_sink_has_its_own_writer_identity_and_publishes_to_the_event_topic(module: Module) -> None:
    project_sink = module.resources[("google_logging_project_sink", "node_events")]
    assert project_sink["unique_writer_identity"] is True
    assert project_sink["filter"] == "${local.sink_filter}"
    assert project_sink["destination"] == "pubsub.googleapis.com/${google_pubsub_topic.events.id}"
    binding = module.resources[("google_pubsub_topic_iam_member", "sink_publisher")]
    assert binding["member"] == "${google_logging_project_sink.node_events[each.value].writer_identity}"
    assert binding["role"] == "roles/pubsub.publisher"
    assert binding["topic"] == "${google_pubsub_topic.events.name}"


# --- the sink filter against every fixture LogEntry ------------------------------------------------------------


def rendered_sink_filter(module: Module, **overrides: str) -> str:
    call = unwrap(module.locals["sink_filter"])
    match = re.fullmatch(r'templatefile\("\$\{path\.module\}/([^"]+)", \{(.*)\}\)', call)
    assert match is not None, call
    template = (MODULE / match[1]).read_text(encoding="utf-8")
    values = {}
    for name, variable in re.findall(r"(\w+) = var\.(\w+)", match[2]):
        values[name] = overrides.get(name, module.variables[variable]["default"])
    rendered = re.sub(r"\$\{(\w+)\}", lambda m: values[m[1]], template)
    assert "${" not in rendered, "the template has a placeholder nobody fills"
    assert "%{" not in rendered, "template directives are not expected in a filter"
    return rendered


def fixture_log_entries() -> dict[str, dict[str, Any]]:
    """Every LogEntry the tests use: the JSON fixtures, the entries inside the delivery fixtures and every
    shape test_events builds."""
    found: list[dict[str, Any]] = []
    for path in sorted(FIXTURES.glob("logentry-*.json")):
        found.append(json.loads(path.read_text(encoding="utf-8")))
    cloudevent_data = json.loads((FIXTURES / "cloudevent-pubsub-binary.json").read_text(encoding="utf-8"))
    legacy = json.loads((FIXTURES / "background-event-legacy.json").read_text(encoding="utf-8"))
    for data in (cloudevent_data, {"message": legacy["data"]}):  # functions-framework converts the legacy shape
        found.append(log_entry_from_message(envelope.unwrap(data)))
    found.extend(test_events.log_entry_corpus())
    unique = {json.dumps(entry, sort_keys=True): entry for entry in found}
    return {f"{i:03d}-{_method(entry)}": entry for i, entry in enumerate(unique.values())}


@pytest.fixture(scope="module")
def sink(module: Module) -> LogFilter:
    """The sink filter as Terraform renders it with the default variables, compiled once."""
    return compile_filter(rendered_sink_filter(module))


def _method(entry: dict[str, Any]) -> str:
    payload = entry.get("protoPayload")
    return str(payload.get("methodName")) if isinstance(payload, dict) else "no-payload"


def acted_on(entry: dict[str, Any]) -> bool | None:
    """True when the parser acts on ``entry``; None when it is malformed (not something Logging emits)."""
    try:
        return isinstance(parse_log_entry(entry, now=NOW), NodeEvent)
    except MalformedEvent:
        return None


# Malformed entries (no insertId, no timestamp, an unparseable resourceName...) are left out: Cloud Logging
# never writes them, and the function acknowledges and audits them if anything else publishes one.
CORPUS = {name: entry for name, entry in fixture_log_entries().items() if acted_on(entry) is not None}


def test_the_corpus_covers_acted_on_and_ignored_entries() -> None:
    outcomes = [acted_on(entry) for entry in CORPUS.values()]
    assert outcomes.count(True) >= 14, "every system event and delete shape"
    assert outcomes.count(False) >= 10, "ignored deletes, failed deletes, live migration, other methods"


@pytest.mark.parametrize("entry", list(CORPUS.values()), ids=list(CORPUS))
def test_sink_filter_selects_exactly_what_the_parser_acts_on(sink: LogFilter, entry: dict[str, Any]) -> None:
    assert sink.matches(entry) is acted_on(entry)


@pytest.mark.parametrize(
    ("instance", "selected"),
    [
        ("gke-payments-default-pool-81d0c4f2-q9zt", True),
        ("gke-a-spot-pool-0123abcd-x1y2", True),
        ("gk3-autopilot-cluster-pool-2-7f3a9c1b-k8mz", True),
        ("web-frontend-1", False),
        ("my-gke-node", False),
        ("gke", False),
        ("xgke-payments-pool-1", False),
        ("GKE-payments-default-pool-81d0c4f2-q9zt", False),
    ],
)
def test_sink_filter_is_scoped_to_gke_node_instance_names(sink: LogFilter, instance: str, selected: bool) -> None:
    entry = test_events.preempted_entry()
    project, zone = entry["resource"]["labels"]["project_id"], entry["resource"]["labels"]["zone"]
    entry["protoPayload"]["resourceName"] = f"projects/{project}/zones/{zone}/instances/{instance}"
    if instance.islower():  # a valid Compute Engine name: the parser acts on any, the sink narrows to nodes
        assert acted_on(entry) is True
    assert sink.matches(entry) is selected


def test_sink_filter_excludes_other_resource_types(sink: LogFilter) -> None:
    entry = test_events.preempted_entry()
    entry["resource"]["type"] = "gce_instance_group_manager"
    assert sink.matches(entry) is False


# --- only genuine Compute Engine audit entries: the sink filter is the first check, the parser the second ----------

ACTED_ON = {name: entry for name, entry in CORPUS.items() if acted_on(entry)}


def test_the_sink_filter_requires_what_the_parser_requires(module: Module) -> None:
    lines = rendered_sink_filter(module).splitlines()
    assert f'logName=~"{AUDIT_LOG_NAME.pattern}"' in lines  # the very same regular expression
    assert f'protoPayload."@type"="{AUDIT_LOG_TYPE}"' in lines
    assert f'protoPayload.serviceName="{COMPUTE_SERVICE}"' in lines
    assert 'resource.type="gce_instance"' in lines


def fixture_file_entries() -> dict[str, dict[str, Any]]:
    """The LogEntries of the fixture files: the logentry-*.json files and the entries the delivery fixtures carry."""
    found = {
        path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(FIXTURES.glob("logentry-*.json"))
    }
    cloudevent_data = json.loads((FIXTURES / "cloudevent-pubsub-binary.json").read_text(encoding="utf-8"))
    legacy = json.loads((FIXTURES / "background-event-legacy.json").read_text(encoding="utf-8"))
    found["cloudevent-pubsub-binary.json"] = log_entry_from_message(envelope.unwrap(cloudevent_data))
    found["background-event-legacy.json"] = log_entry_from_message(envelope.unwrap({"message": legacy["data"]}))
    return found


@pytest.mark.parametrize(("name", "entry"), list(fixture_file_entries().items()), ids=list(fixture_file_entries()))
def test_sink_filter_selects_every_genuine_fixture(sink: LogFilter, name: str, entry: dict[str, Any]) -> None:
    assert acted_on(entry) is True, name
    assert sink.matches(entry), name


@pytest.mark.parametrize("entry", list(ACTED_ON.values()), ids=list(ACTED_ON))
@pytest.mark.parametrize("forgery", FORGERIES, ids=[f.id for f in FORGERIES])
def test_sink_filter_selects_no_forgery(sink: LogFilter, forgery: Forgery, entry: dict[str, Any]) -> None:
    assert sink.matches(entry)
    forged = forgery.apply(entry, now=NOW)

    assert acted_on(forged) is None  # the parser: malformed
    if forgery.sink_excludes:
        assert not sink.matches(forged)
    else:  # a filter has no clock; the audit logs hold no entries of the future, the parser rejects any
        assert forgery.timestamp_ahead is not None
        assert sink.matches(forged)


_LOG_NAME_PIECES = [
    "projects/",
    "folders/",
    "organizations/",
    "billingAccounts/",
    "acme-prod",
    "123",
    "/logs/",
    "/",
    "cloudaudit.googleapis.com",
    "cloudaudit",
    ".googleapis.com",
    "%2F",
    "%2f",
    "activity",
    "system_event",
    "data_access",
    "x-",
    "\n",
    " ",
    "A",
]


@settings(derandomize=True, database=None, deadline=None, max_examples=400)
@given(
    log_name=st.one_of(
        st.lists(st.sampled_from(_LOG_NAME_PIECES), max_size=9).map("".join),
        st.sampled_from(["projects/p", "folders/1", "organizations/2", "projects/"]).flatmap(
            lambda container: st.sampled_from(["activity", "system_event", "activityx", "", "system_event\n"]).map(
                lambda log: f"{container}/logs/cloudaudit.googleapis.com%2F{log}"
            )
        ),
    )
)
def test_sink_filter_and_parser_agree_on_every_log_name(sink: LogFilter, log_name: str) -> None:
    entry = test_events.preempted_entry()
    entry["logName"] = log_name

    assert sink.matches(entry) is (acted_on(entry) is True)


def test_a_custom_node_name_pattern_reaches_the_filter(module: Module) -> None:
    entry = test_events.preempted_entry()
    assert compile_filter(rendered_sink_filter(module, node_name_regex="gke-payments-.+")).matches(entry)
    assert not compile_filter(rendered_sink_filter(module, node_name_regex="gke-other-.+")).matches(entry)


# --- monitoring: alerts that say what to do, metrics that measure what they say ----------------------------------

ALERT_METRIC = re.compile(r'metric\.type=\\?"\$\{local\.metric_type\["(\w+)"\]\}\\?"')
ALERT_DISTRIBUTION = re.compile(r'metric\.type=\\?"\$\{local\.distribution_type\["(\w+)"\]\}\\?"')
MONITORING_VARIABLES = {"project_id": "acme-ops"}
ALERTS = {
    "failed_drains",
    "failed_force_cleanups",
    "held_nodes",
    "failed_recoveries",
    "dead_letters",
    "expired_events",
    "storm_held",
}
# What Monitoring fills in for ${metric.label.*} in a runbook, for the incident of the records below.
INCIDENT_LABELS = {
    "node": "gke-a-pool-1-x1y2",
    "instance": "gke-a-pool-1-x1y2",
    "cluster": "prod",
    "project": "acme-prod",
    "zone": "europe-west4-b",
}


def _counter_filter(module: Module, key: str) -> LogFilter:
    """A counter metric's filter as Terraform renders it."""
    template = module.resources_of("google_logging_metric")["counters"]["filter"]
    bindings = {"each.value.filter": module.locals["counter_metrics"][key]["filter"]}
    return compile_filter(render(template, module, variables=MONITORING_VARIABLES, bindings=bindings))


def _audit_record(action: str, **payload: Any) -> dict[str, Any]:
    return {
        "logName": "projects/acme-ops/logs/gke-node-drainer-audit",
        "jsonPayload": {"audit": True, "action": action, "cluster": "prod", "node": "gke-a-pool-1-x1y2", **payload},
    }


def _event_record(action: str, **payload: Any) -> dict[str, Any]:
    """A record of the event function written before the event's node is looked up (event.received,
    event.stale, event.expired): the event's context, no cluster or node (README, audit records)."""
    context = {
        "trigger": "pubsub",
        "event_id": "systemevent-1a2b3c",
        "event_kind": "preempted",
        "instance": "gke-a-pool-1-x1y2",
        "instance_id": "4711",
        "zone": "europe-west4-b",
        "project": "acme-prod",
        "insert_id": "abc123",
    }
    return {
        "logName": "projects/acme-ops/logs/gke-node-drainer-audit",
        "jsonPayload": {"audit": True, "action": action, **context, **payload},
    }


def _expired_record(**payload: Any) -> dict[str, Any]:
    documented = {
        "reason": "the event is 7300 s old; it was lost to failed deliveries (delivery attempt 6)",
        "event_age_seconds": 7300.2,
        "delivery_attempt": 6,
        "publish_time": "2026-12-05T08:00:01+00:00",
    }
    return _event_record("event.expired", **{**documented, **payload})


def _storm_record(**payload: Any) -> dict[str, Any]:
    return _audit_record("fence.storm_held", **{"fenced": 2, "cap": 2, "window_seconds": 600.0, **payload})


def _documentation(module: Module, name: str) -> str:
    alert = module.locals["alerts"][name]
    text: str = alert["documentation"]
    return text.replace('\\"', '"')  # python-hcl2 escapes the quotes of a heredoc; Terraform does not


def _incident(text: str) -> str:
    """``text`` with the ${metric.label.*} that Monitoring fills in for the incident."""
    for label, value in INCIDENT_LABELS.items():
        text = text.replace(f"$${{metric.label.{label}}}", value)
    assert "$${metric.label." not in text, f"a label no test fills in: {text}"
    return text


def test_every_alert_is_a_markdown_runbook_with_commands_and_queries(module: Module) -> None:
    policy = module.resources_of("google_monitoring_alert_policy")
    assert set(policy) == {"alerts"}, "every alert policy comes from local.alerts"
    assert policy["alerts"]["for_each"] == "${local.alerts}"
    assert first(policy["alerts"]["documentation"]) == {
        "mime_type": "text/markdown",
        "content": "${each.value.documentation}",
        "__is_block__": True,
    }
    assert set(module.locals["alerts"]) == ALERTS
    for name in module.locals["alerts"]:
        text = _documentation(module, name)
        assert text.startswith("## "), f"{name}: the runbook starts with what happened"
        assert "**Where to look**" in text, name
        assert "**What to do**" in text, name
        assert re.search(r"`gcloud logging read '[^']+'", text), f"{name}: no audit log query"
        assert re.search(r"`[^`]*gke-node-drainer \w+[^`]*`", text), f"{name}: no command of the CLI"
        # Monitoring fills in only the labels the condition groups by: the others are reduced away
        labels = set(re.findall(r"\$\$\{metric\.label\.(\w+)\}", text))
        grouped = {field.removeprefix("metric.label.") for field in module.locals["alerts"][name]["group_by"]}
        assert labels <= grouped, f"{name}: the runbook uses labels the incident does not carry: {labels - grouped}"


def test_every_cli_command_in_a_runbook_parses(module: Module) -> None:
    from functions.entry.cli import build_parser

    subcommands = set()
    for name in module.locals["alerts"]:
        text = _incident(_documentation(module, name))
        spans = re.findall(r"`([^`]+)`", text)
        for command in (m[1] for span in spans if (m := re.search(r"gke-node-drainer ([^|]+)", span))):
            args = shlex.split(command)
            assert build_parser().parse_args(args).command == args[0], f"{name}: {command}"
            subcommands.add(args[0])
    assert {"status", "drain", "uncordon", "explain"} <= subcommands


def test_every_log_query_in_a_runbook_is_a_valid_query_of_the_audit_log(module: Module) -> None:
    """The gcloud queries, rendered as Monitoring and Terraform would, select the incident's audit records
    (those of its node, instance or cluster, of the actions the query names) and no other node's."""
    records = [
        _audit_record("drain.failed", instance="gke-a-pool-1-x1y2"),
        _audit_record("node.taint_failed", error="403"),
        _audit_record("node.held", reason="a volume still attached", held_seconds=2400.0, back=True),
        _audit_record("node.recovery_failed", error="403"),
        _storm_record(),
        _expired_record(),
    ]
    other_node = _audit_record("drain.failed", node="gke-a-pool-1-zzzz", instance="gke-a-pool-1-zzzz")
    other_cluster = _storm_record(cluster="staging")
    node_query = _incident(module.locals["node_query"])
    for name in module.locals["alerts"]:
        text = _incident(_documentation(module, name))
        queries = re.findall(r"`gcloud logging read '([^']+)'", text)
        assert queries, name
        for query in queries:
            rendered = render(query, module, variables=MONITORING_VARIABLES, bindings={"local.node_query": node_query})
            log_filter = compile_filter(rendered)
            assert "logs/gke-node-drainer-audit" in rendered, f"{name}: {rendered}"
            scope = dict(re.findall(r'jsonPayload\.(node|cluster|instance)="([^"]+)"', rendered))
            if {"node", "instance"} & set(scope):
                assert not log_filter.matches(other_node), f"{name}: {rendered} is not scoped to the node"
            if "cluster" in scope:
                assert not log_filter.matches(other_cluster), f"{name}: {rendered} is not scoped to the cluster"
            named = set(re.findall(r'"([a-z]+\.[a-z_]+)"', rendered))
            expected = [
                r
                for r in records
                if all(r["jsonPayload"].get(field) == value for field, value in scope.items())
                and ("jsonPayload.action" not in rendered or r["jsonPayload"]["action"] in named)
            ]
            assert expected, f"{name}: no record of the incident for {rendered}"
            for record in expected:
                assert log_filter.matches(record), f"{name}: {rendered} misses {record['jsonPayload']['action']}"


def test_alerts_fire_on_what_needs_a_person_and_not_on_graceful_deletes_held_by_a_budget(module: Module) -> None:
    alerts = module.locals["alerts"]
    counted = {name: m[1] for name, alert in alerts.items() if (m := ALERT_METRIC.search(alert["filter"]))}
    assert counted == {
        "failed_drains": "failed_drains",
        "failed_force_cleanups": "failed_force_cleanups",
        "failed_recoveries": "recovery_failures",
        "expired_events": "expired_events",
        "storm_held": "storm_held",
    }
    filters = {name: _counter_filter(module, metric) for name, metric in counted.items()}

    def alerting(record: dict[str, Any]) -> set[str]:
        return {name for name, log_filter in filters.items() if log_filter.matches(record)}

    held_by_pdb = _audit_record(
        "drain.incomplete", event_kind="delete", verified_down=False, blocked=[{"pod": "db/db-0", "pdb": "db"}]
    )
    not_yet_down = _audit_record("drain.incomplete", event_kind="preempted", verified_down=False)
    assert alerting(held_by_pdb) == set()
    assert alerting(not_yet_down) == set(), "recovery finishes it once the node is verified down"
    assert alerting(_audit_record("pod.blocked", pdb="db")) == set()
    assert alerting(_audit_record("pod.force_deleted", pod="db/db-0")) == set(), "a force cleanup that worked"
    assert alerting(_audit_record("drain.completed", verified_down=True, failover_seconds=3.2)) == set()
    assert alerting(_audit_record("drain.failed", error="503")) == {"failed_drains"}
    assert alerting(_audit_record("drain.incomplete", event_kind="preempted", verified_down=True)) == {
        "failed_force_cleanups"
    }
    assert alerting(_audit_record("node.taint_failed", error="403")) == {"failed_force_cleanups"}
    assert alerting(_audit_record("node.recovery_failed", error="403")) == {"failed_recoveries"}
    assert alerting(_audit_record("drain.failed", error="503", dry_run=True)) == set()
    # a node held is measured (held_time), not counted: waiting for a node to come back is no failure
    assert alerting(_audit_record("node.held", reason="not back yet", held_seconds=120.0, back=False)) == set()
    # lost events and storms, and not their neighbours
    assert alerting(_expired_record()) == {"expired_events"}
    assert alerting(_expired_record(delivery_attempt=None)) == {"expired_events"}, "published young, then lost"
    assert alerting(_event_record("event.stale", reason="the event is 9000 s old")) == set(), "a replay"
    assert alerting(_event_record("event.received", event_age_seconds=7300.2)) == set()
    assert alerting(_expired_record(dry_run=True)) == set()
    assert alerting(_storm_record()) == {"storm_held"}
    assert alerting(_storm_record(error="403 listing nodes", fenced=None, cap=None)) == {"storm_held"}
    assert alerting(_audit_record("fence.unavailable", error="503", status=503)) == set()
    assert alerting(_audit_record("fence.vetoed", vm_status="RUNNING")) == set(), "Compute Engine answered"
    assert alerting(_audit_record("node.verified_down", signal="node")) == set()
    assert alerting(_storm_record(dry_run=True)) == set()

    dead = alerts["dead_letters"]
    assert "pubsub.googleapis.com/subscription/num_undelivered_messages" in dead["filter"]
    assert module.locals["dead_letter_filter"].endswith(
        'resource.label.subscription_id="${google_pubsub_subscription.dead_letter.name}"'
    )
    assert module.resources[("google_pubsub_subscription", "dead_letter")]["topic"] == (
        "${google_pubsub_topic.dead_letter.id}"
    )
    # any lost event and any storm alerts at once; a failing recovery only when it lasts
    for name in ("expired_events", "storm_held"):
        assert (alerts[name]["threshold"], alerts[name]["duration"], alerts[name]["severity"]) == (0, "0s", "ERROR")
    assert alerts["expired_events"]["group_by"] == [
        "metric.label.project",
        "metric.label.zone",
        "metric.label.instance",
    ]
    assert alerts["storm_held"]["group_by"] == ["metric.label.cluster"], "a storm is one incident per cluster"
    assert alerts["failed_recoveries"]["duration"] == "${var.recovery_alert_after_seconds}s"
    policy = module.resources_of("google_monitoring_alert_policy")["alerts"]
    aggregation = first(first(first(policy["conditions"])["condition_threshold"])["aggregations"])
    assert aggregation["cross_series_reducer"] == "${each.value.reducer}"
    assert aggregation["per_series_aligner"] == "${each.value.aligner}"


def test_expired_events_are_counted_by_the_instance_their_record_names(module: Module) -> None:
    """event.expired is written before the event's node is looked up: the counter is by the instance, not
    by a cluster label the record never carries."""
    counter = module.locals["counter_metrics"]["expired_events"]
    assert counter["by_cluster"] is False
    record = _expired_record()["jsonPayload"]
    assert "cluster" not in record
    for label, extractor in counter["labels"].items():
        field = re.fullmatch(r"EXTRACT\(jsonPayload\.(\w+)\)", extractor)
        assert field is not None, extractor
        assert record.get(field[1]), f"{label}: {field[1]} is not in an event.expired record"
    resource = module.resources_of("google_logging_metric")["counters"]
    assert resource["label_extractors"] == (
        '${merge(try(each.value.by_cluster, true) ? {cluster = "EXTRACT(jsonPayload.cluster)"} : {}, '
        "each.value.labels)}"
    )
    cluster_label = first(resource["metric_descriptor"])["dynamic"][0]["labels"]
    assert cluster_label["for_each"] == '${try(each.value.by_cluster, true) ? ["cluster"] : []}'
    others = {key for key, metric in module.locals["counter_metrics"].items() if "by_cluster" in metric}
    assert others == {"expired_events"}, "every other counter is by cluster"


def _held_time_bounds(module: Module, threshold: float) -> list[float]:
    bounds: list[float] = _evaluate(
        module.locals["held_time_bounds"],
        {"local.held_time_ladder": module.locals["held_time_ladder"], "var.recovery_alert_after_seconds": threshold},
    )
    return bounds


@pytest.mark.parametrize("threshold", [0, 45, 1000, 1800, 7200, 86400])
def test_the_held_node_alert_compares_held_seconds_at_a_bucket_bound(module: Module, threshold: float) -> None:
    """A percentile of a distribution is interpolated inside its bucket: with a bound at the threshold, the
    p99 of a window is above it exactly when a node.held record of the window says so."""
    assert _accepted(module, "recovery_alert_after_seconds", threshold)
    bounds = _held_time_bounds(module, threshold)
    assert threshold in bounds
    assert bounds == sorted(set(bounds)), "explicit bounds must increase strictly"
    assert bounds[-1] > 86400, "the longest threshold is never in the overflow bucket"
    assert len(bounds) <= 64
    held = module.locals["distribution_metrics"]["held_time"]
    assert held["buckets"] == {"bounds": "${local.held_time_bounds}"}
    alert = module.locals["alerts"]["held_nodes"]
    assert ALERT_DISTRIBUTION.search(alert["filter"])[1] == "held_time"  # type: ignore[index]
    assert alert["aligner"] == "ALIGN_PERCENTILE_99"  # valid for DELTA distributions: about the window's maximum
    assert alert["reducer"] == "REDUCE_MAX"
    assert alert["threshold"] == "${var.recovery_alert_after_seconds}"
    assert alert["duration"] == "0s", "held_seconds is the duration already"
    assert alert["group_by"] == ["metric.label.cluster", "metric.label.node"]
    assert set(held["labels"]) == {"cluster", "node"}
    resource = module.resources_of("google_logging_metric")["distributions"]
    options = first(resource["bucket_options"])["dynamic"]
    kinds = {kind: body for block in options for kind, body in block.items()}
    explicit = "${can(each.value.buckets.bounds) ? [each.value.buckets.bounds] : []}"
    assert kinds["explicit_buckets"]["for_each"] == explicit
    assert kinds["exponential_buckets"]["for_each"] == "${can(each.value.buckets.bounds) ? [] : [each.value.buckets]}"


def test_held_time_measures_every_held_node_and_nothing_else(module: Module) -> None:
    held = _distribution_filter(module, "held_time")
    not_back = _audit_record("node.held", reason="not back yet: Ready is Unknown", held_seconds=240.0, back=False)
    assert held.matches(not_back), "a node not back yet is held too"
    assert held.matches(_audit_record("node.held", reason="a volume still attached", held_seconds=2400.5, back=True))
    unread = "not known: the facts could not be read (503)"
    assert held.matches(_audit_record("node.held", reason=unread, held_seconds=60.0))
    assert not held.matches(_audit_record("node.held", reason=unread, held_seconds=None)), "no age, no value"
    assert not held.matches(_audit_record("node.recovery_failed", error="403", held_seconds=3000.0))
    assert not held.matches(_audit_record("node.uncordoned", held_seconds=3000.0))
    assert not held.matches(_audit_record("node.held", held_seconds=3000.0, dry_run=True))


def test_distributions_extract_a_field_their_filter_requires_and_their_buckets_span_the_range(module: Module) -> None:
    distributions = module.locals["distribution_metrics"]
    assert set(distributions) == {"event_age", "failover_time", "drain_duration", "held_time"}
    resource = module.resources_of("google_logging_metric")["distributions"]
    assert resource["value_extractor"] == "${each.value.value}"
    assert first(resource["metric_descriptor"])["value_type"] == "DISTRIBUTION"
    # seconds each must reach: the stale limit, a long failover, the longest drain deadline
    spans = {
        "event_age": config.DEFAULT_MAX_EVENT_AGE,
        "failover_time": 600,
        "drain_duration": 500,
    }
    fields = {
        "event_age": "event_age_seconds",
        "failover_time": "failover_seconds",
        "drain_duration": "duration_seconds",
        "held_time": "held_seconds",
    }
    for key, metric in distributions.items():
        assert metric["value"] == f"EXTRACT(jsonPayload.{fields[key]})", key
        assert f"jsonPayload.{fields[key]}>=0" in metric["filter"] or key == "drain_duration", key
        buckets = metric["buckets"]
        if key == "held_time":
            continue  # explicit bounds: test_the_held_node_alert_compares_held_seconds_at_a_bucket_bound
        assert buckets["scale"] <= 0.25, f"{key}: the first bucket must resolve sub-second values"
        assert buckets["scale"] * buckets["growth"] ** buckets["count"] >= spans[key], f"{key}: buckets end too early"
        assert buckets["count"] <= 64
    event_age = _distribution_filter(module, "event_age")
    assert event_age.matches(_audit_record("event.received", event_age_seconds=4.5))
    assert not event_age.matches(_audit_record("event.received", event_age_seconds=4.5, dry_run=True))
    assert not event_age.matches(_expired_record()), "a lost event is counted, not measured as an age"
    failover = _distribution_filter(module, "failover_time")
    assert failover.matches(_audit_record("drain.completed", failover_seconds=2.1, down_signal="compute"))
    assert not failover.matches(_audit_record("drain.completed", failover_seconds=None))
    assert not failover.matches(_audit_record("drain.completed"))
    assert not failover.matches(_audit_record("drain.incomplete", failover_seconds=2.1))
    assert "down_signal" in distributions["failover_time"]["labels"]
    drain = _distribution_filter(module, "drain_duration")
    assert drain.matches(_audit_record("drain.incomplete", duration_seconds=30.0))
    assert not drain.matches(_audit_record("drain.failed", duration_seconds=0.2))
    assert "drain_latency" not in module.resources_of("google_logging_metric"), "the old name said less"


def _distribution_filter(module: Module, key: str) -> LogFilter:
    template = module.resources_of("google_logging_metric")["distributions"]["filter"]
    bindings = {"each.value.filter": module.locals["distribution_metrics"][key]["filter"]}
    return compile_filter(render(template, module, variables=MONITORING_VARIABLES, bindings=bindings))


def test_the_dashboard_shows_what_the_alerts_and_the_issue_ask_for(module: Module) -> None:
    counters = {tile["metric"]: tile["group_by"] for tile in module.locals["counter_tiles"]}
    distributions = {tile["metric"]: tile["group_by"] for tile in module.locals["distribution_tiles"]}
    assert counters["drains"] == "metric.label.outcome"
    assert {
        "force_cleanups",
        "blocked_pods",
        "failed_drains",
        "failed_force_cleanups",
        "recovery_failures",
        "expired_events",
        "storm_held",
    } <= set(counters)
    assert counters["expired_events"] == "metric.label.project", "the records name no cluster"
    assert counters["storm_held"] == "metric.label.cluster"
    assert distributions == {
        "event_age": [],
        "failover_time": ["metric.label.down_signal"],
        "drain_duration": ["metric.label.outcome"],
        "held_time": ["metric.label.cluster"],
    }
    assert set(counters) <= set(module.locals["counter_metrics"])
    dead_letters = module.locals["dashboard_dead_letter_tile"]
    assert "num_undelivered_messages" in json.dumps(dead_letters)
    widgets = module.locals["dashboard_widgets"]
    assert "local.dashboard_dead_letter_tile" in widgets
    assert "local.dashboard_distribution_tiles" in widgets


# --- checkov -----------------------------------------------------------------------------------------------------


def checkov_binary() -> Path:
    path = Path(os.environ.get("CHECKOV_BIN") or ROOT / ".venv-checkov" / "bin" / "checkov")
    assert path.exists(), f"checkov is not installed at {path}: run `make checkov` (make test does it)"
    return path


def test_checkov_passes_with_zero_failed_checks_and_justified_skips(tmp_path: Path) -> None:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "HOME": str(tmp_path)}
    result = subprocess.run(
        [str(checkov_binary()), "-d", str(TERRAFORM), "--framework", "terraform", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == [], failed
    assert summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 30, summary
    for skipped in report["results"]["skipped_checks"]:
        reason = (skipped["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) >= 40, f"{skipped['check_id']} on {skipped['resource']} is skipped without a justification"
    assert result.returncode == 0, result.stderr[-2000:]


def test_example_passes_the_module_what_the_readme_documents() -> None:
    example = load_module(EXAMPLE)
    call = example.modules["drainer"]
    assert call["source"] == "../.."
    assert {"project_id", "region", "clusters", "schedules", "allowed_callers", "outcome_topic_name"} <= set(call)
    assert (EXAMPLE / "terraform.tfvars.example").exists()


@pytest.mark.parametrize("method", sorted(set(SYSTEM_EVENT_METHODS) | DELETE_METHODS | {LIVE_MIGRATION_METHOD}))
def test_sink_filter_knows_every_method_of_the_parser(sink: LogFilter, method: str) -> None:
    entry = test_events.delete_with_method(method)
    assert sink.matches(entry) is acted_on(entry)
    assert acted_on(entry) is (method != LIVE_MIGRATION_METHOD)
