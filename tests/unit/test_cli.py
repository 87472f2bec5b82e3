"""The command-line tool in-process (``main(argv)``): explain on every fixture and input shape,
settings, malformed input, stdin; output formats and exit codes, with the manual function's
answers served by a loopback HTTP server; one run as a real ``python -m functions`` process."""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from functions.entry import cli_output
from functions.entry.cli import main
from functions.entry.cli_output import ExitCode
from tests.support.deliveries import FIXTURES, load_fixture, log_entry
from tests.support.fakes import JsonApi

ROOT = Path(__file__).resolve().parents[2]
SPOT_NODE = "gke-payments-spot-pool-3f1c2a9e-x7k2"
MIG_NODE = "gke-payments-default-pool-81d0c4f2-q9zt"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No drainer settings and no Google credentials but what a test sets (no gcloud ADC file either)."""
    for name in list(os.environ):
        if name.startswith(("DRAINER_", "GOOGLE_", "CLOUDSDK_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))


# The fixtures' events happened on 2026-10-02 (the last at 09:30:11): explain judges them as of a
# minute after, as the function did when they arrived (later they are stale: see the tests below).
AT = "2026-10-02T09:31:11Z"
AT_TIME = datetime(2026, 10, 2, 9, 31, 11, tzinfo=UTC)


def run(argv: list[str], capsys: pytest.CaptureFixture[str], *, at: str | None = AT) -> tuple[int, str, str]:
    if argv[:1] == ["explain"] and "--at" not in argv and at is not None:
        argv = [*argv, "--at", at]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def explain_json(path: Path | str, capsys: pytest.CaptureFixture[str], *, at: str | None = AT) -> tuple[int, Any, str]:
    code, out, err = run(["explain", str(path), "-o", "json"], capsys, at=at)
    return code, json.loads(out), err


def write(tmp_path: Path, value: Any, name: str = "input.json") -> Path:
    path = tmp_path / name
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


# ----------------------------------------------------------------------------------------- explain
EXPECTED = {
    "background-event-legacy.json": ("1st-gen background event", "preempted", SPOT_NODE),
    "cloudevent-pubsub-binary.json": ("Pub/Sub push body", "preempted", SPOT_NODE),
    "logentry-mig-delete-first.json": ("LogEntry", "delete", MIG_NODE),
    "logentry-preempted.json": ("LogEntry", "preempted", SPOT_NODE),
}


def test_every_fixture_is_covered() -> None:
    assert sorted(EXPECTED) == [p.name for p in FIXTURE_FILES]


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_explain_every_fixture(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shape, kind, node = EXPECTED[path.name]
    code, body, err = explain_json(path, capsys)
    assert code == ExitCode.OK, err
    assert body["verdict"] == "act"
    assert body["input"].startswith(shape)
    assert body["kind"] == kind
    assert body["node"] == node
    assert body["project"] == "acme-prod"
    assert body["zone"].startswith("europe-west4-")
    assert body["instance_id"].isdigit()
    assert body["deadline_seconds"] == 120
    assert body["force_after_verified_down"] is (kind != "delete")
    assert body["graceful"] is (kind == "delete")
    event_time = datetime.fromisoformat(body["event_time"])
    assert body["age_seconds"] == pytest.approx((AT_TIME - event_time).total_seconds(), abs=0.01)
    assert "DRAINER_CLUSTERS not set" in body["settings"]
    assert err == ""


def test_explain_table_names_the_node_and_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["explain", str(FIXTURES / "logentry-preempted.json")], capsys)
    assert code == ExitCode.OK
    rows = dict(line.split(None, 1) for line in out.splitlines())
    assert rows["verdict"] == "act"
    assert rows["node"] == SPOT_NODE
    assert rows["force_after_verified_down"] == "yes"
    assert rows["age"].endswith("ago")
    assert "age_seconds" not in rows
    assert "force-delete what is left" in rows["decision"]


def test_explain_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    raw = (FIXTURES / "logentry-mig-delete-first.json").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    code, out, _ = run(["explain", "-", "-o", "json"], capsys)
    assert code == ExitCode.OK
    body = json.loads(out)
    assert (body["kind"], body["node"], body["graceful"]) == ("delete", MIG_NODE, True)
    assert "never forced" in body["decision"]


def _push_body() -> dict[str, Any]:
    return load_fixture("cloudevent-pubsub-binary.json")


def _structured(data_base64: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "16042958821190034",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/acme-prod/topics/gke-node-events",
        "datacontenttype": "application/json",
    }
    if data_base64:
        event["data_base64"] = base64.b64encode(json.dumps(_push_body()).encode()).decode()
    else:
        event["data"] = _push_body()
    return event


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        pytest.param(_structured(), "Eventarc CloudEvent", id="cloudevent-structured"),
        pytest.param(_structured(data_base64=True), "Eventarc CloudEvent", id="cloudevent-data-base64"),
        pytest.param(_push_body()["message"], "Pub/Sub message", id="pubsub-message"),
    ],
)
def test_explain_other_shapes(value: Any, shape: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, body, _ = explain_json(write(tmp_path, value), capsys)
    assert code == ExitCode.OK
    assert body["input"].startswith(shape)
    assert (body["verdict"], body["kind"], body["node"]) == ("act", "preempted", SPOT_NODE)
    assert body["message_id"] == "16042958821190034"


def test_explain_a_list_of_entries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``gcloud logging read --format=json`` prints a list."""
    entries = [load_fixture("logentry-preempted.json"), {"nope": 1}, load_fixture("logentry-mig-delete-first.json")]
    code, body, err = explain_json(write(tmp_path, entries), capsys)
    assert [b["verdict"] for b in body] == ["act", "malformed", "act"]
    assert code == ExitCode.FAILED
    assert "malformed" in err


def test_explain_ignored_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry = log_entry("preempted", instance="gke-a-b-c")  # stamped now
    entry["protoPayload"]["methodName"] = "compute.instances.migrateOnHostMaintenance"
    code, body, _ = explain_json(write(tmp_path, entry), capsys, at=None)
    assert code == ExitCode.OK
    assert body["verdict"] == "ignored"
    assert "live migration" in body["reason"]
    assert body["node"] == "gke-a-b-c"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{not json", "not valid JSON", id="not-json"),
        pytest.param('{"foo": 1}', "not a LogEntry, Pub/Sub message or CloudEvent", id="unknown-shape"),
        pytest.param('{"message": {"data": "%%%"}}', "not valid base64", id="bad-base64"),
        pytest.param("42", "not a LogEntry", id="not-an-object"),
    ],
)
def test_explain_malformed_input(text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["explain", str(write(tmp_path, text))], capsys)
    assert code == ExitCode.FAILED
    assert out.split()[:2] == ["verdict", "malformed"]
    assert message in err


def test_explain_malformed_log_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry = copy.deepcopy(load_fixture("logentry-preempted.json"))
    del entry["timestamp"]
    code, body, err = explain_json(write(tmp_path, entry), capsys)
    assert code == ExitCode.FAILED
    assert body["verdict"] == "malformed"
    assert "no timestamp" in body["error"]
    assert "no timestamp" in err


def test_explain_takes_deadlines_and_force_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRAINER_DEADLINE_PREEMPTED", "45")
    monkeypatch.setenv("DRAINER_FORCE_CLEANUP", "false")
    code, body, _ = explain_json(FIXTURES / "logentry-preempted.json", capsys)
    assert code == ExitCode.OK
    assert body["deadline_seconds"] == 45
    assert body["deadline_from"] == "DRAINER_DEADLINE_PREEMPTED"
    assert body["force_after_verified_down"] is False
    assert "DRAINER_FORCE_CLEANUP=false" in body["decision"]


@pytest.mark.parametrize(
    ("location", "owner"),
    [pytest.param("europe-west4", "payments", id="owner"), pytest.param("us-central1", "none", id="no-owner")],
)
def test_explain_with_configured_clusters(
    location: str, owner: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clusters = [{"name": "payments", "project": "acme-prod", "location": location}]
    monkeypatch.setenv("DRAINER_CLUSTERS", json.dumps(clusters))
    monkeypatch.setenv("DRAINER_DRY_RUN", "true")
    code, body, _ = explain_json(FIXTURES / "logentry-preempted.json", capsys)
    assert code == ExitCode.OK
    assert body["clusters"].startswith(owner)
    assert body["dry_run"] is True
    assert body["decision"].startswith("dry run")
    assert body["settings"].startswith("environment")


def test_explain_configuration_errors_are_usage_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DRAINER_DEADLINE_DELETE", "0")
    code, _, err = run(["explain", str(FIXTURES / "logentry-preempted.json")], capsys)
    assert code == ExitCode.USAGE
    assert "DRAINER_DEADLINE_DELETE" in err


def test_explain_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["explain", str(tmp_path / "missing.json")], capsys)
    assert code == ExitCode.USAGE
    assert "cannot read" in err


def test_explain_as_a_real_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "functions", "explain", "-o", "json", "--at", AT, "-"],
        input=(FIXTURES / "cloudevent-pubsub-binary.json").read_bytes(),
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert (body["verdict"], body["node"]) == ("act", SPOT_NODE)
    bad = subprocess.run(
        [sys.executable, "-m", "functions", "explain", "-"],
        input=b"[1",
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1
    assert b"not valid JSON" in bad.stderr


# ----------------------------------------------------------------------------------------- usage
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([], id="no-command"),
        pytest.param(["reboot"], id="unknown-command"),
        pytest.param(["drain"], id="drain-without-node"),
        pytest.param(["drain", "n1", "--timeout", "0"], id="timeout-too-small"),
        pytest.param(["status", "-o", "yaml"], id="unknown-output"),
        pytest.param(["status", "--no-auth", "--impersonate-service-account", "a@b.c"], id="auth-options-clash"),
        pytest.param(["worker", "--subscription", "topics/t"], id="bad-subscription"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == ExitCode.USAGE
    assert "usage:" in capsys.readouterr().err


def test_missing_url_says_what_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["status"], capsys)
    assert code == ExitCode.USAGE
    assert "--url" in err
    assert "DRAINER_MANUAL_URL" in err


def test_no_credentials_is_an_auth_error(capsys: pytest.CaptureFixture[str]) -> None:
    """GCE_METADATA_HOST is a closed loopback port here (conftest) and no key file is set."""
    code, _, err = run(["status", "--url", "http://127.0.0.1:9/"], capsys)
    assert code == ExitCode.AUTH
    assert "gcloud auth application-default login" in err
    assert "GOOGLE_APPLICATION_CREDENTIALS" in err


def test_user_credentials_are_told_to_impersonate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What gcloud auth application-default login writes: user credentials, which mint no ID token
    for another audience (recognised offline, before any token request)."""
    adc = {"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(write(tmp_path, adc, "adc.json")))
    code, _, err = run(["status", "--url", "http://127.0.0.1:9/"], capsys)
    assert code == ExitCode.AUTH
    assert "user credentials" in err
    assert "--impersonate-service-account" in err


def test_unreachable_function_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["status", "--url", "http://127.0.0.1:9/", "--no-auth"], capsys)
    assert code == ExitCode.UNREACHABLE
    assert "could not be reached" in err


# ------------------------------------------------------------------------- answers of the function
class Function:
    """The manual function's HTTP answers, canned: (status, body) per action."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.api = JsonApi(self._route)

    def _route(self, method: str, path: str, headers: Any, body: Any) -> tuple[int, Any]:
        self.requests.append({"method": method, "body": body, "authorization": headers.get("Authorization")})
        return self.answers[body["action"]]


@pytest.fixture
def function(monkeypatch: pytest.MonkeyPatch) -> Iterator[Function]:
    fake = Function()
    monkeypatch.setenv("DRAINER_MANUAL_URL", fake.api.url + "/")
    yield fake
    fake.api.stop()


STATUS = {
    "action": "status",
    "nodes": [
        {
            "node": "gke-a-pool-1",
            "cluster": "payments",
            "reason": "preempted",
            "event_id": "systemevent-1",
            "cordoned_at": "2026-10-02T08:14:08Z",
            "ready": "Unknown",
            "next": "force_cleanup",
            "why": "verified down since the event",
        }
    ],
}
DRAIN = {
    "action": "drain",
    "node": "gke-a-pool-1",
    "cluster": "payments",
    "outcome": "incomplete",
    "cordoned": True,
    "duration_seconds": 20.004,
    "counts": {"evicted": 1, "blocked": 1},
    "blocked": [{"pod": "shop/db-0", "pdb": "shop/db", "message": "Cannot evict pod"}],
    "remaining": ["shop/db-0"],
    "note": "",
    "pods": [
        {"pod": "shop/web-1", "result": "evicted", "reason": "", "pdb": None},
        {"pod": "shop/db-0", "result": "blocked", "reason": "Cannot evict pod", "pdb": "shop/db"},
    ],
}


def test_status_table(function: Function, capsys: pytest.CaptureFixture[str]) -> None:
    function.answers["status"] = (200, STATUS)
    code, out, _ = run(["status", "--no-auth", "--cluster", "payments"], capsys)
    assert code == ExitCode.OK
    header, row = out.splitlines()
    assert header.split() == ["NODE", "CLUSTER", "REASON", "CORDONED", "AT", "READY", "NEXT", "WHY"]
    assert row.split()[:6] == [
        "gke-a-pool-1",
        "payments",
        "preempted",
        "2026-10-02T08:14:08Z",
        "Unknown",
        "force_cleanup",
    ]
    assert row.endswith("verified down since the event")
    assert header.index("NEXT") == row.index("force_cleanup")
    assert function.requests[-1]["body"] == {"action": "status", "cluster": "payments"}
    assert function.requests[-1]["authorization"] is None


def test_status_json_is_the_answer(function: Function, capsys: pytest.CaptureFixture[str]) -> None:
    function.answers["status"] = (200, STATUS)
    code, out, _ = run(["status", "--no-auth", "-o", "json"], capsys)
    assert code == ExitCode.OK
    assert json.loads(out) == STATUS


def test_status_without_nodes(function: Function, capsys: pytest.CaptureFixture[str]) -> None:
    function.answers["status"] = (200, {"action": "status", "nodes": []})
    code, out, _ = run(["status", "--no-auth"], capsys)
    assert code == ExitCode.OK
    assert "no node is cordoned" in out


def test_incomplete_drain_exits_1_and_shows_the_pods(function: Function, capsys: pytest.CaptureFixture[str]) -> None:
    function.answers["drain"] = (200, DRAIN)
    code, out, err = run(["drain", "gke-a-pool-1", "--no-auth", "--timeout", "20", "--dry-run"], capsys)
    assert code == ExitCode.FAILED
    assert function.requests[-1]["body"] == {
        "action": "drain",
        "node": "gke-a-pool-1",
        "dry_run": True,
        "timeout_seconds": 20.0,
    }
    assert "outcome   incomplete" in out
    pods = out[out.index("POD") :].splitlines()
    assert pods[0].split() == ["POD", "RESULT", "PDB", "REASON"]
    assert pods[2].split()[:3] == ["shop/db-0", "blocked", "shop/db"]
    assert "drain incomplete: 1 pods" in err
    assert "shop/db" in err
    assert "planning the drain of gke-a-pool-1" in err  # progress line (stderr is no TTY here)


def test_completed_drain_exits_0(function: Function, capsys: pytest.CaptureFixture[str]) -> None:
    function.answers["drain"] = (200, {**DRAIN, "outcome": "completed", "blocked": [], "remaining": []})
    code, _, _ = run(["drain", "gke-a-pool-1", "--no-auth"], capsys)
    assert code == ExitCode.OK


def test_uncordon_and_cleanup(function: Function, capsys: pytest.CaptureFixture[str]) -> None:
    function.answers["uncordon"] = (
        200,
        {"action": "uncordon", "cluster": "c", "dry_run": False, "node": "n1", "result": "uncordoned", "reason": "x"},
    )
    code, out, _ = run(["uncordon", "n1", "--force", "--no-auth"], capsys)
    assert code == ExitCode.OK
    assert "result   uncordoned" in out
    assert function.requests[-1]["body"]["force"] is True
    report = {
        "cluster": "c",
        "deleted_jobs": 3,
        "deleted_pods": 1,
        "jobs_seen": 9,
        "complete": True,
        "duration_seconds": 0.5,
        "kept": {"young": 2},
        "errors": ["job a/b: 500"],
    }
    function.answers["cleanup"] = (200, {"action": "cleanup", "dry_run": True, "clusters": [report]})
    code, out, err = run(["cleanup", "--dry-run", "--no-auth"], capsys)
    assert code == ExitCode.FAILED  # an error in the report is a problem found
    assert out.splitlines()[1].split()[:4] == ["c", "3", "1", "9"]
    assert "job a/b: 500" in err


@pytest.mark.parametrize(
    ("status", "answer", "code", "message"),
    [
        pytest.param(401, {"error": "missing bearer token"}, ExitCode.AUTH, "answered 401: missing bearer", id="401"),
        pytest.param(403, {"error": "caller x not allowed"}, ExitCode.AUTH, "answered 403: caller x", id="403"),
        pytest.param(400, {"error": "unknown cluster 'x'"}, ExitCode.USAGE, "unknown cluster", id="400"),
        pytest.param(404, {"error": "node n1 does not exist"}, ExitCode.FAILED, "does not exist", id="404"),
        pytest.param(409, {"error": "send force=true"}, ExitCode.FAILED, "--force", id="409"),
        pytest.param(503, {"error": "the cluster could not be reached"}, ExitCode.UNREACHABLE, "503", id="503"),
        pytest.param(500, {"error": "boom"}, ExitCode.UNREACHABLE, "500: boom", id="500"),
        pytest.param(200, ["not", "an", "object"], ExitCode.FAILED, "not with a JSON object", id="200-not-object"),
    ],
)
def test_answers_map_to_exit_codes(
    status: int, answer: Any, code: ExitCode, message: str, function: Function, capsys: pytest.CaptureFixture[str]
) -> None:
    function.answers["uncordon"] = (status, answer)
    got, out, err = run(["uncordon", "n1", "--no-auth"], capsys)
    assert got == code
    assert out == ""
    assert message in err


# ----------------------------------------------------------------------------------------- packaging
def test_console_script_is_the_cli() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["gke-node-drainer"] == "functions.entry.cli:main"
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["functions*"]
    assert "setuptools" in project["build-system"]["requires"][0]


def test_table_pads_columns() -> None:
    text = cli_output.table(["a", "bb"], [["xxx", None], ["y", True]])
    assert text.splitlines() == ["A    BB", "xxx  -", "y    yes"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_spins_on_a_terminal_and_clears_its_line() -> None:
    from tests.controlplane.cluster import wait_until

    terminal = _Terminal()
    with cli_output.Progress("draining n1", terminal):
        assert wait_until(lambda: "draining n1" in terminal.getvalue(), timeout=10)
    text = terminal.getvalue()
    assert text.startswith("\r")
    assert " s" in text
    assert text.endswith("\r\033[K")
