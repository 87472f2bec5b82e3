"""Unit tests for functions.jobs selection (decide_job, decide_pod, job_of) and the Job/Pod JSON snapshots (pure)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.decisions.cleanup_policy import (
    JOB_OPT_OUT,
    JOB_UID_LABELS,
    CleanupPolicy,
    Verdict,
    decide_job,
    decide_pod,
    job_name_of,
    job_of,
    list_scopes,
)
from functions.decisions.model import Job, Owner, Pod

NOW = datetime(2026, 10, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)
SECOND = timedelta(seconds=1)

DEFAULT = CleanupPolicy()

JOB_UID = "6a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
OTHER_JOB_UID = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"

CRON_JOB = Owner(kind="CronJob", name="nightly-report", uid="cron-uid-1", api_version="batch/v1")
JOB_OWNER = Owner(kind="Job", name="nightly-report-29321", uid=JOB_UID, api_version="batch/v1")
REPLICA_SET = Owner(kind="ReplicaSet", name="checkout-7d9f8c6b5", uid="rs-uid-1")


def make_job(
    *,
    name: str = "nightly-report-29321",
    namespace: str = "batch",
    finished: str | None = "Complete",
    finished_at: datetime | None = NOW - 2 * DAY,
    ttl_after_finished: int | None = None,
    annotations: Mapping[str, str] | None = None,
    controller: Owner | None = None,
) -> Job:
    """A Job in "batch" that completed two days before NOW, without owner or TTL, unless told otherwise."""
    return Job(
        namespace=namespace,
        name=name,
        uid=JOB_UID,
        finished=finished,
        finished_at=finished_at,
        ttl_after_finished=ttl_after_finished,
        annotations=dict(annotations or {}),
        controller=controller,
    )


def make_pod(
    *,
    name: str = "nightly-report-29321-x8k2p",
    namespace: str = "batch",
    phase: str = "Succeeded",
    controller: Owner | None = JOB_OWNER,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    finished_at: datetime | None = NOW - 2 * DAY,
) -> Pod:
    """A Job-owned pod in "batch" that succeeded two days before NOW, unless told otherwise."""
    return Pod(
        namespace=namespace,
        name=name,
        uid=f"uid-{name}",
        node_name="gke-payments-spot-pool-3f1c2a9e-x7k2",
        phase=phase,
        controller=controller,
        annotations=dict(annotations or {}),
        labels=dict(labels or {}),
        deletion_timestamp=None,
        local_storage=False,
        priority=0,
        priority_class="",
        finished_at=finished_at,
    )


def kept(verdict: Verdict, category: str) -> None:
    assert verdict.delete is False
    assert verdict.category == category


def deleted(verdict: Verdict) -> None:
    assert verdict.delete is True
    assert verdict.category == "expired"


# --- decide_job: TTLs -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finished", "age", "delete", "category", "reason"),
    [
        pytest.param("Complete", HOUR, True, "expired", "finished 3600 s ago, TTL 3600 s", id="complete-at-ttl"),
        pytest.param(
            "Complete", HOUR - SECOND, False, "young", "finished 3599 s ago, TTL 3600 s", id="complete-1s-early"
        ),
        pytest.param(
            "Complete", HOUR + SECOND, True, "expired", "finished 3601 s ago, TTL 3600 s", id="complete-1s-late"
        ),
        pytest.param(
            "Complete", 30 * DAY, True, "expired", "finished 2592000 s ago, TTL 3600 s", id="complete-long-ago"
        ),
        pytest.param("Complete", timedelta(0), False, "young", "finished 0 s ago, TTL 3600 s", id="complete-just-now"),
        pytest.param("Failed", DAY, True, "expired", "finished 86400 s ago, TTL 86400 s", id="failed-at-ttl"),
        pytest.param("Failed", DAY - SECOND, False, "young", "finished 86399 s ago, TTL 86400 s", id="failed-1s-early"),
        pytest.param("Failed", HOUR, False, "young", "finished 3600 s ago, TTL 86400 s", id="failed-at-complete-ttl"),
        pytest.param("Failed", 7 * DAY, True, "expired", "finished 604800 s ago, TTL 86400 s", id="failed-long-ago"),
    ],
)
def test_decide_job_default_ttls(finished: str, age: timedelta, delete: bool, category: str, reason: str) -> None:
    verdict = decide_job(make_job(finished=finished, finished_at=NOW - age), policy=DEFAULT, now=NOW)
    assert verdict == Verdict(delete=delete, reason=reason, category=category)
    assert verdict.clock_skew is False


@pytest.mark.parametrize(
    ("finished", "policy", "age", "delete"),
    [
        pytest.param("Complete", CleanupPolicy(ttl_succeeded=timedelta(0)), timedelta(0), True, id="complete-ttl0-now"),
        pytest.param("Failed", CleanupPolicy(ttl_failed=timedelta(0)), timedelta(0), True, id="failed-ttl0-now"),
        pytest.param(
            "Complete",
            CleanupPolicy(ttl_succeeded=timedelta(minutes=5)),
            timedelta(minutes=5),
            True,
            id="complete-5m-at",
        ),
        pytest.param(
            "Complete",
            CleanupPolicy(ttl_succeeded=timedelta(minutes=5)),
            timedelta(minutes=5) - SECOND,
            False,
            id="complete-5m-1s-early",
        ),
        pytest.param("Failed", CleanupPolicy(ttl_failed=7 * DAY), 7 * DAY, True, id="failed-7d-at"),
        pytest.param("Failed", CleanupPolicy(ttl_failed=7 * DAY), 7 * DAY - SECOND, False, id="failed-7d-1s-early"),
        pytest.param(
            "Failed", CleanupPolicy(ttl_succeeded=timedelta(0)), 23 * HOUR, False, id="failed-ignores-succeeded-ttl"
        ),
        pytest.param(
            "Complete",
            CleanupPolicy(ttl_failed=timedelta(0)),
            59 * timedelta(minutes=1),
            False,
            id="complete-ignores-failed-ttl",
        ),
        pytest.param(
            "Complete",
            CleanupPolicy(ttl_orphan_pods=timedelta(0)),
            30 * timedelta(minutes=1),
            False,
            id="orphan-ttl-unused",
        ),
    ],
)
def test_decide_job_custom_ttls(finished: str, policy: CleanupPolicy, age: timedelta, delete: bool) -> None:
    verdict = decide_job(make_job(finished=finished, finished_at=NOW - age), policy=policy, now=NOW)
    assert verdict.delete is delete
    assert verdict.category == ("expired" if delete else "young")


def test_decide_job_ttl_zero_reason() -> None:
    verdict = decide_job(make_job(finished_at=NOW), policy=CleanupPolicy(ttl_succeeded=timedelta(0)), now=NOW)
    assert verdict == Verdict(delete=True, reason="finished 0 s ago, TTL 0 s", category="expired")


def test_decide_job_sub_second_short_of_ttl_is_young() -> None:
    now = NOW + timedelta(microseconds=500_000)
    verdict = decide_job(make_job(finished_at=NOW - HOUR + SECOND), policy=DEFAULT, now=now)
    kept(verdict, "young")


@pytest.mark.parametrize(
    ("finished", "policy"),
    [
        pytest.param("Complete", DEFAULT, id="complete"),
        pytest.param("Failed", DEFAULT, id="failed"),
        pytest.param("Complete", CleanupPolicy(ttl_succeeded=timedelta(0)), id="complete-ttl0"),
    ],
)
def test_decide_job_future_finish_time_is_clock_skew(finished: str, policy: CleanupPolicy) -> None:
    verdict = decide_job(make_job(finished=finished, finished_at=NOW + SECOND), policy=policy, now=NOW)
    assert verdict == Verdict(
        delete=False,
        reason=f"Job ({finished}) finish time 2026-10-02T12:00:01+00:00 is in the future (clock skew)",
        category="clock_skew",
    )
    assert verdict.clock_skew is True
    assert "clock skew" in verdict.reason


def test_decide_job_far_future_finish_time_is_clock_skew() -> None:
    verdict = decide_job(make_job(finished_at=NOW + DAY), policy=DEFAULT, now=NOW)
    kept(verdict, "clock_skew")
    assert "2026-10-03T12:00:00+00:00" in verdict.reason


def test_decide_job_finish_time_equal_to_now_is_not_skew() -> None:
    verdict = decide_job(make_job(finished_at=NOW), policy=DEFAULT, now=NOW)
    assert verdict == Verdict(delete=False, reason="finished 0 s ago, TTL 3600 s", category="young")


@pytest.mark.parametrize("finished", ["Complete", "Failed"])
def test_decide_job_without_finish_time(finished: str) -> None:
    verdict = decide_job(make_job(finished=finished, finished_at=None), policy=DEFAULT, now=NOW)
    assert verdict == Verdict(delete=False, reason=f"Job ({finished}) has no finish time", category="no_finish_time")


# --- decide_job: what is never cleaned ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "policy", "category", "reason"),
    [
        pytest.param(make_job(finished=None, finished_at=None), DEFAULT, "running", "still running", id="running"),
        pytest.param(
            make_job(finished=None, finished_at=NOW - 30 * DAY),
            DEFAULT,
            "running",
            "still running",
            id="running-with-stale-time",
        ),
        pytest.param(
            make_job(ttl_after_finished=600),
            DEFAULT,
            "ttl_controller",
            "sets ttlSecondsAfterFinished: the TTL-after-finished controller owns it",
            id="ttl-controller",
        ),
        pytest.param(
            make_job(ttl_after_finished=0),
            DEFAULT,
            "ttl_controller",
            "sets ttlSecondsAfterFinished: the TTL-after-finished controller owns it",
            id="ttl-controller-zero",
        ),
        pytest.param(
            make_job(finished="Failed", ttl_after_finished=86400, finished_at=NOW - 30 * DAY),
            DEFAULT,
            "ttl_controller",
            "sets ttlSecondsAfterFinished: the TTL-after-finished controller owns it",
            id="ttl-controller-failed-old",
        ),
        pytest.param(
            make_job(annotations={JOB_OPT_OUT: "true"}),
            DEFAULT,
            "opt_out",
            "opt-out annotation node-drainer.io/skip-cleanup=true",
            id="opt-out",
        ),
        pytest.param(
            make_job(annotations={JOB_OPT_OUT: " TRUE "}),
            DEFAULT,
            "opt_out",
            "opt-out annotation node-drainer.io/skip-cleanup=true",
            id="opt-out-padded-upper",
        ),
        pytest.param(
            make_job(annotations={JOB_OPT_OUT: "True\n"}),
            DEFAULT,
            "opt_out",
            "opt-out annotation node-drainer.io/skip-cleanup=true",
            id="opt-out-newline",
        ),
        pytest.param(
            make_job(controller=CRON_JOB),
            DEFAULT,
            "cronjob",
            "owned by CronJob nightly-report: its history limits apply",
            id="cronjob",
        ),
        pytest.param(
            make_job(controller=CRON_JOB, finished="Failed", finished_at=NOW - 30 * DAY),
            DEFAULT,
            "cronjob",
            "owned by CronJob nightly-report: its history limits apply",
            id="cronjob-failed-old",
        ),
    ],
)
def test_decide_job_kept(job: Job, policy: CleanupPolicy, category: str, reason: str) -> None:
    assert decide_job(job, policy=policy, now=NOW) == Verdict(delete=False, reason=reason, category=category)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("false", id="false"),
        pytest.param("", id="empty"),
        pytest.param("yes", id="yes"),
        pytest.param("1", id="one"),
        pytest.param("truee", id="truee"),
    ],
)
def test_decide_job_opt_out_only_for_true(value: str) -> None:
    verdict = decide_job(make_job(annotations={JOB_OPT_OUT: value}), policy=DEFAULT, now=NOW)
    deleted(verdict)


def test_decide_job_other_annotation_is_not_opt_out() -> None:
    job = make_job(annotations={"node-drainer.io/skip-eviction": "true", "skip-cleanup": "true"})
    deleted(decide_job(job, policy=DEFAULT, now=NOW))


def test_decide_job_cronjob_included_by_policy() -> None:
    policy = CleanupPolicy(include_cronjob_jobs=True)
    verdict = decide_job(make_job(controller=CRON_JOB), policy=policy, now=NOW)
    assert verdict == Verdict(delete=True, reason="finished 172800 s ago, TTL 3600 s", category="expired")


def test_decide_job_cronjob_included_still_honours_ttl() -> None:
    policy = CleanupPolicy(include_cronjob_jobs=True)
    verdict = decide_job(make_job(controller=CRON_JOB, finished_at=NOW - HOUR + SECOND), policy=policy, now=NOW)
    kept(verdict, "young")


# --- decide_job: Jobs another controller manages (invariant 10) ------------------------------------------------------


def owner_ref(api_version: str, kind: str, name: str, *, controller: bool | None = True) -> dict[str, Any]:
    ref: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "name": name, "uid": f"{kind.lower()}-uid"}
    if controller is not None:
        ref["controller"] = controller
        ref["blockOwnerDeletion"] = controller
    return ref


CRONJOB_REF = owner_ref("batch/v1", "CronJob", "nightly-report")
JOBSET_REF = owner_ref("jobset.x-k8s.io/v1alpha2", "JobSet", "trainer")
WORKFLOW_REF = owner_ref("argoproj.io/v1alpha1", "Workflow", "etl-8f2k")
RAYJOB_REF = owner_ref("ray.io/v1", "RayJob", "tune")
CONFIGMAP_REF = owner_ref("v1", "ConfigMap", "report-config", controller=None)
MULTIKUEUE = "kueue.x-k8s.io/multikueue"
CRONJOB_OWNED = "owned by CronJob nightly-report: its history limits apply"
DONE = "that controller deletes it when it is done"


def finished_job_json(*, owners: list[dict[str, Any]] | None = None, managed_by: str | None = None) -> Job:
    spec: dict[str, Any] = {"completions": 1}
    if managed_by is not None:
        spec["managedBy"] = managed_by
    return Job.from_json(
        job_json(owners=owners, spec=spec, conditions=[condition("Complete", "True", "2026-09-30T12:00:00Z")])
    )


EXPIRED = Verdict(delete=True, reason="finished 172800 s ago, TTL 3600 s", category="expired")


@pytest.mark.parametrize(
    ("owners", "managed_by", "default", "cronjobs_included"),
    [
        pytest.param(None, None, EXPIRED, EXPIRED, id="no owner"),
        pytest.param(
            [CRONJOB_REF],
            None,
            Verdict(delete=False, reason=CRONJOB_OWNED, category="cronjob"),
            EXPIRED,
            id="CronJob owner",
        ),
        pytest.param(
            [JOBSET_REF],
            None,
            Verdict(
                delete=False,
                reason="controlled by JobSet trainer (jobset.x-k8s.io/v1alpha2): " + DONE,
                category="foreign",
            ),
            None,
            id="JobSet owner",
        ),
        pytest.param(
            [WORKFLOW_REF],
            None,
            Verdict(
                delete=False,
                reason="controlled by Workflow etl-8f2k (argoproj.io/v1alpha1): " + DONE,
                category="foreign",
            ),
            None,
            id="Workflow owner",
        ),
        pytest.param([RAYJOB_REF], None, "foreign", None, id="RayJob owner"),
        pytest.param([CONFIGMAP_REF], None, EXPIRED, EXPIRED, id="non-controller owner ref"),
        pytest.param(
            [owner_ref("batch/v1", "CronJob", "nightly-report", controller=False)],
            None,
            EXPIRED,
            EXPIRED,
            id="CronJob ref with controller false",
        ),
        pytest.param([CONFIGMAP_REF, JOBSET_REF], None, "foreign", None, id="controller among other refs"),
        pytest.param(
            None,
            MULTIKUEUE,
            Verdict(
                delete=False,
                reason=f"spec.managedBy is {MULTIKUEUE}: that controller manages the Job, not the Job controller",
                category="foreign",
            ),
            None,
            id="managedBy other",
        ),
        pytest.param(None, "kubernetes.io/job-controller", EXPIRED, EXPIRED, id="managedBy job-controller"),
        pytest.param(None, "", EXPIRED, EXPIRED, id="managedBy empty"),
        pytest.param([CRONJOB_REF], MULTIKUEUE, "foreign", None, id="CronJob owner managedBy other"),
        pytest.param(
            [owner_ref("example.com/v1", "CronJob", "lookalike")], None, "foreign", None, id="CronJob of another group"
        ),
        pytest.param(
            [owner_ref("batch/v1beta1", "CronJob", "nightly-report")], None, "cronjob", EXPIRED, id="CronJob v1beta1"
        ),
        pytest.param([owner_ref("batch/v1", "cronjob", "lower")], None, "foreign", None, id="kind is case-sensitive"),
        pytest.param([owner_ref("batch/v1", "Job", "parent")], None, "foreign", None, id="Job owner"),
    ],
)
def test_decide_job_by_who_manages_it(
    owners: list[dict[str, Any]] | None,
    managed_by: str | None,
    default: Verdict | str,
    cronjobs_included: Verdict | str | None,
) -> None:
    """Only Jobs with no controller, or a CronJob's when that is enabled, are ever deleted; the Jobs of
    any other controller (or of another spec.managedBy) are kept whatever the policy says."""
    job = finished_job_json(owners=owners, managed_by=managed_by)
    included = CleanupPolicy(include_cronjob_jobs=True)
    for policy, expected in ((DEFAULT, default), (included, cronjobs_included or default)):
        verdict = decide_job(job, policy=policy, now=NOW)
        if isinstance(expected, Verdict):
            assert verdict == expected
        else:
            kept(verdict, expected)
        assert verdict.foreign is (verdict.category == "foreign")
        assert verdict.delete is (verdict.category == "expired")


@pytest.mark.parametrize(
    "job",
    [
        pytest.param(make_job(finished=None, finished_at=None), id="running"),
        pytest.param(make_job(ttl_after_finished=60), id="ttl-controller"),
        pytest.param(make_job(annotations={JOB_OPT_OUT: "true"}), id="opt-out"),
        pytest.param(make_job(namespace="kube-system"), id="namespace"),
    ],
)
def test_foreign_is_counted_only_for_jobs_otherwise_cleanable(job: Job) -> None:
    """A foreign Job that would be kept anyway keeps its first reason (the count is of finished Jobs
    the cleanup would otherwise have deleted)."""
    jobset = Owner(kind="JobSet", name="t", uid="u", api_version="jobset.x-k8s.io/v1alpha2")
    foreign = dataclasses.replace(job, controller=jobset, managed_by=MULTIKUEUE)
    assert decide_job(foreign, policy=DEFAULT, now=NOW).category == decide_job(job, policy=DEFAULT, now=NOW).category


def test_foreign_owner_without_api_version_is_foreign() -> None:
    verdict = decide_job(make_job(controller=Owner(kind="CronJob", name="x", uid="u")), policy=DEFAULT, now=NOW)
    assert verdict.foreign
    assert "(no apiVersion)" in verdict.reason


# --- decide_job: namespaces and order -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "policy", "allowed"),
    [
        pytest.param("kube-system", DEFAULT, False, id="kube-system-excluded-by-default"),
        pytest.param("batch", DEFAULT, True, id="default-allows-others"),
        pytest.param("default", DEFAULT, True, id="default-namespace"),
        pytest.param("kube-public", DEFAULT, True, id="only-kube-system-excluded"),
        pytest.param("batch", CleanupPolicy(include_namespaces=frozenset({"batch"})), True, id="included"),
        pytest.param("etl", CleanupPolicy(include_namespaces=frozenset({"batch"})), False, id="not-included"),
        pytest.param(
            "kube-system",
            CleanupPolicy(include_namespaces=frozenset({"kube-system"})),
            False,
            id="default-exclude-wins-over-include",
        ),
        pytest.param(
            "batch",
            CleanupPolicy(include_namespaces=frozenset({"batch", "etl"}), exclude_namespaces=frozenset({"batch"})),
            False,
            id="exclude-wins-over-include",
        ),
        pytest.param("kube-system", CleanupPolicy(exclude_namespaces=frozenset()), True, id="empty-exclude"),
        pytest.param("batch", CleanupPolicy(exclude_namespaces=frozenset({"batch"})), False, id="custom-exclude"),
        pytest.param(
            "kube-system", CleanupPolicy(exclude_namespaces=frozenset({"batch"})), True, id="custom-exclude-replaces"
        ),
    ],
)
def test_decide_job_namespace_rules(namespace: str, policy: CleanupPolicy, allowed: bool) -> None:
    verdict = decide_job(make_job(namespace=namespace), policy=policy, now=NOW)
    if allowed:
        deleted(verdict)
    else:
        assert verdict == Verdict(delete=False, reason="namespace excluded", category="namespace")


@pytest.mark.parametrize(
    ("job", "policy", "category"),
    [
        pytest.param(
            make_job(namespace="kube-system", finished=None, finished_at=None),
            DEFAULT,
            "namespace",
            id="ns-before-running",
        ),
        pytest.param(
            make_job(namespace="kube-system", ttl_after_finished=0, annotations={JOB_OPT_OUT: "true"}),
            DEFAULT,
            "namespace",
            id="ns-before-ttl-and-opt-out",
        ),
        pytest.param(
            make_job(namespace="kube-system", finished_at=NOW + DAY), DEFAULT, "namespace", id="ns-before-clock-skew"
        ),
        pytest.param(
            make_job(finished=None, ttl_after_finished=60, annotations={JOB_OPT_OUT: "true"}, controller=CRON_JOB),
            DEFAULT,
            "running",
            id="running-before-ttl-opt-out-cronjob",
        ),
        pytest.param(
            make_job(ttl_after_finished=60, annotations={JOB_OPT_OUT: "true"}, controller=CRON_JOB),
            DEFAULT,
            "ttl_controller",
            id="ttl-before-opt-out-and-cronjob",
        ),
        pytest.param(
            make_job(annotations={JOB_OPT_OUT: "true"}, controller=CRON_JOB),
            DEFAULT,
            "opt_out",
            id="opt-out-before-cronjob",
        ),
        pytest.param(
            make_job(controller=CRON_JOB, finished_at=None), DEFAULT, "cronjob", id="cronjob-before-no-finish-time"
        ),
        pytest.param(
            make_job(controller=CRON_JOB, finished_at=NOW + DAY), DEFAULT, "cronjob", id="cronjob-before-clock-skew"
        ),
        pytest.param(
            make_job(annotations={JOB_OPT_OUT: "true"}, finished_at=NOW + DAY),
            DEFAULT,
            "opt_out",
            id="opt-out-before-skew",
        ),
    ],
)
def test_decide_job_order_of_checks(job: Job, policy: CleanupPolicy, category: str) -> None:
    kept(decide_job(job, policy=policy, now=NOW), category)


# --- job_of ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("controller", "labels", "uid"),
    [
        pytest.param(JOB_OWNER, {}, JOB_UID, id="job-controller"),
        pytest.param(JOB_OWNER, {"batch.kubernetes.io/controller-uid": OTHER_JOB_UID}, JOB_UID, id="controller-wins"),
        pytest.param(REPLICA_SET, {}, None, id="replicaset"),
        pytest.param(
            REPLICA_SET,
            {"batch.kubernetes.io/controller-uid": OTHER_JOB_UID},
            None,
            id="non-job-controller-ignores-label",
        ),
        pytest.param(None, {}, None, id="bare"),
        pytest.param(None, {"batch.kubernetes.io/controller-uid": JOB_UID}, JOB_UID, id="label"),
        pytest.param(None, {"controller-uid": JOB_UID}, JOB_UID, id="legacy-label"),
        pytest.param(
            None,
            {"batch.kubernetes.io/controller-uid": JOB_UID, "controller-uid": OTHER_JOB_UID},
            JOB_UID,
            id="new-label-first",
        ),
        pytest.param(
            None,
            {"batch.kubernetes.io/controller-uid": "", "controller-uid": OTHER_JOB_UID},
            OTHER_JOB_UID,
            id="empty-new-label-falls-back",
        ),
        pytest.param(None, {"controller-uid": ""}, None, id="empty-legacy-label"),
        pytest.param(None, {"batch.kubernetes.io/job-name": "nightly-report-29321"}, None, id="job-name-label-only"),
    ],
)
def test_job_of(controller: Owner | None, labels: dict[str, str], uid: str | None) -> None:
    assert job_of(make_pod(controller=controller, labels=labels)) == uid


def test_job_uid_labels() -> None:
    assert JOB_UID_LABELS == ("batch.kubernetes.io/controller-uid", "controller-uid")


# --- decide_pod -----------------------------------------------------------------------------------------------------

NO_JOBS: frozenset[str] = frozenset()
LIVE = frozenset({JOB_UID})
SWEEP = CleanupPolicy(sweep_other_pods=True)


@pytest.mark.parametrize("phase", ["Pending", "Running", "Unknown", ""])
def test_decide_pod_not_finished(phase: str) -> None:
    verdict = decide_pod(make_pod(phase=phase), live_jobs=NO_JOBS, policy=SWEEP, now=NOW)
    assert verdict == Verdict(delete=False, reason="not finished", category="running")


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_decide_pod_job_exists(phase: str) -> None:
    verdict = decide_pod(make_pod(phase=phase), live_jobs=LIVE, policy=DEFAULT, now=NOW)
    assert verdict == Verdict(delete=False, reason="its Job still exists", category="job_exists")


def test_decide_pod_other_live_job_does_not_protect() -> None:
    verdict = decide_pod(make_pod(), live_jobs=frozenset({OTHER_JOB_UID}), policy=DEFAULT, now=NOW)
    deleted(verdict)


@pytest.mark.parametrize(
    ("phase", "age", "policy", "verdict"),
    [
        pytest.param(
            "Succeeded",
            HOUR,
            DEFAULT,
            Verdict(delete=True, reason="finished 3600 s ago, TTL 3600 s", category="expired"),
            id="at-ttl",
        ),
        pytest.param(
            "Failed",
            HOUR,
            DEFAULT,
            Verdict(delete=True, reason="finished 3600 s ago, TTL 3600 s", category="expired"),
            id="failed-at-orphan-ttl-not-failed-ttl",
        ),
        pytest.param(
            "Succeeded",
            HOUR - SECOND,
            DEFAULT,
            Verdict(delete=False, reason="finished 3599 s ago, TTL 3600 s", category="young"),
            id="1s-early",
        ),
        pytest.param(
            "Succeeded",
            timedelta(minutes=10),
            CleanupPolicy(ttl_orphan_pods=timedelta(minutes=10)),
            Verdict(delete=True, reason="finished 600 s ago, TTL 600 s", category="expired"),
            id="custom-ttl-at",
        ),
        pytest.param(
            "Succeeded",
            timedelta(0),
            CleanupPolicy(ttl_orphan_pods=timedelta(0)),
            Verdict(delete=True, reason="finished 0 s ago, TTL 0 s", category="expired"),
            id="ttl-zero",
        ),
        pytest.param(
            "Succeeded",
            timedelta(minutes=59),
            CleanupPolicy(ttl_succeeded=timedelta(0), ttl_failed=timedelta(0)),
            Verdict(delete=False, reason="finished 3540 s ago, TTL 3600 s", category="young"),
            id="job-ttls-unused",
        ),
    ],
)
def test_decide_pod_orphan_ttl(phase: str, age: timedelta, policy: CleanupPolicy, verdict: Verdict) -> None:
    pod = make_pod(phase=phase, finished_at=NOW - age)
    assert decide_pod(pod, live_jobs=NO_JOBS, policy=policy, now=NOW) == verdict


def test_decide_pod_orphan_clock_skew() -> None:
    verdict = decide_pod(make_pod(finished_at=NOW + SECOND), live_jobs=NO_JOBS, policy=DEFAULT, now=NOW)
    assert verdict == Verdict(
        delete=False,
        reason="orphaned pod finish time 2026-10-02T12:00:01+00:00 is in the future (clock skew)",
        category="clock_skew",
    )
    assert verdict.clock_skew is True


@pytest.mark.parametrize(
    "label",
    [pytest.param("batch.kubernetes.io/controller-uid", id="label"), pytest.param("controller-uid", id="legacy-label")],
)
def test_decide_pod_labelled_pod_is_treated_as_its_jobs(label: str) -> None:
    pod = make_pod(controller=None, labels={label: JOB_UID}, finished_at=NOW - HOUR)
    kept(decide_pod(pod, live_jobs=LIVE, policy=DEFAULT, now=NOW), "job_exists")
    assert decide_pod(pod, live_jobs=NO_JOBS, policy=DEFAULT, now=NOW) == Verdict(
        delete=True, reason="finished 3600 s ago, TTL 3600 s", category="expired"
    )
    young = make_pod(controller=None, labels={label: JOB_UID}, finished_at=NOW - HOUR + SECOND)
    kept(decide_pod(young, live_jobs=NO_JOBS, policy=DEFAULT, now=NOW), "young")


@pytest.mark.parametrize(
    "controller",
    [pytest.param(None, id="bare"), pytest.param(REPLICA_SET, id="replicaset")],
)
def test_decide_pod_not_job_owned(controller: Owner | None) -> None:
    pod = make_pod(controller=controller, finished_at=NOW - 30 * DAY)
    verdict = decide_pod(pod, live_jobs=NO_JOBS, policy=DEFAULT, now=NOW)
    assert verdict == Verdict(delete=False, reason="not owned by a Job", category="not_job_owned")


@pytest.mark.parametrize(
    ("controller", "age", "verdict"),
    [
        pytest.param(
            None,
            HOUR,
            Verdict(delete=True, reason="finished 3600 s ago, TTL 3600 s", category="expired"),
            id="bare-at-ttl",
        ),
        pytest.param(
            None,
            HOUR - SECOND,
            Verdict(delete=False, reason="finished 3599 s ago, TTL 3600 s", category="young"),
            id="bare-1s-early",
        ),
        pytest.param(
            REPLICA_SET,
            HOUR,
            Verdict(delete=True, reason="finished 3600 s ago, TTL 3600 s", category="expired"),
            id="replicaset-at-ttl",
        ),
        pytest.param(
            REPLICA_SET,
            HOUR - SECOND,
            Verdict(delete=False, reason="finished 3599 s ago, TTL 3600 s", category="young"),
            id="replicaset-1s-early",
        ),
    ],
)
def test_decide_pod_sweep_other_pods(controller: Owner | None, age: timedelta, verdict: Verdict) -> None:
    pod = make_pod(controller=controller, finished_at=NOW - age)
    assert decide_pod(pod, live_jobs=NO_JOBS, policy=SWEEP, now=NOW) == verdict


def test_decide_pod_sweep_other_pods_clock_skew_and_no_finish_time() -> None:
    skewed = make_pod(controller=None, finished_at=NOW + HOUR)
    assert decide_pod(skewed, live_jobs=NO_JOBS, policy=SWEEP, now=NOW) == Verdict(
        delete=False,
        reason="finished pod finish time 2026-10-02T13:00:00+00:00 is in the future (clock skew)",
        category="clock_skew",
    )
    unknown = make_pod(controller=None, finished_at=None)
    assert decide_pod(unknown, live_jobs=NO_JOBS, policy=SWEEP, now=NOW) == Verdict(
        delete=False, reason="finished pod has no finish time", category="no_finish_time"
    )


def test_decide_pod_sweep_other_pods_does_not_touch_live_job_pods() -> None:
    kept(decide_pod(make_pod(), live_jobs=LIVE, policy=SWEEP, now=NOW), "job_exists")


@pytest.mark.parametrize(
    ("annotations", "opted_out"),
    [
        pytest.param({JOB_OPT_OUT: "true"}, True, id="true"),
        pytest.param({JOB_OPT_OUT: " TRUE "}, True, id="padded-upper"),
        pytest.param({JOB_OPT_OUT: "false"}, False, id="false"),
        pytest.param({"node-drainer.io/skip-eviction": "true"}, False, id="eviction-opt-out-is-not-cleanup-opt-out"),
    ],
)
def test_decide_pod_opt_out(annotations: dict[str, str], opted_out: bool) -> None:
    verdict = decide_pod(make_pod(annotations=annotations), live_jobs=NO_JOBS, policy=DEFAULT, now=NOW)
    if opted_out:
        assert verdict == Verdict(
            delete=False, reason="opt-out annotation node-drainer.io/skip-cleanup=true", category="opt_out"
        )
    else:
        deleted(verdict)


def test_decide_pod_opt_out_beats_sweep_of_bare_pod() -> None:
    pod = make_pod(controller=None, annotations={JOB_OPT_OUT: "true"})
    kept(decide_pod(pod, live_jobs=NO_JOBS, policy=SWEEP, now=NOW), "opt_out")


@pytest.mark.parametrize(
    ("namespace", "policy", "allowed"),
    [
        pytest.param("kube-system", DEFAULT, False, id="kube-system"),
        pytest.param("batch", DEFAULT, True, id="batch"),
        pytest.param("batch", CleanupPolicy(include_namespaces=frozenset({"etl"})), False, id="not-included"),
        pytest.param("etl", CleanupPolicy(include_namespaces=frozenset({"etl"})), True, id="included"),
        pytest.param(
            "etl",
            CleanupPolicy(include_namespaces=frozenset({"etl"}), exclude_namespaces=frozenset({"etl"})),
            False,
            id="exclude-wins",
        ),
    ],
)
def test_decide_pod_namespace_rules(namespace: str, policy: CleanupPolicy, allowed: bool) -> None:
    verdict = decide_pod(make_pod(namespace=namespace), live_jobs=NO_JOBS, policy=policy, now=NOW)
    if allowed:
        deleted(verdict)
    else:
        assert verdict == Verdict(delete=False, reason="namespace excluded", category="namespace")


@pytest.mark.parametrize(
    ("pod", "category"),
    [
        pytest.param(make_pod(namespace="kube-system", phase="Running"), "running", id="running-before-namespace"),
        pytest.param(
            make_pod(namespace="kube-system", annotations={JOB_OPT_OUT: "true"}),
            "namespace",
            id="namespace-before-opt-out",
        ),
        pytest.param(make_pod(annotations={JOB_OPT_OUT: "true"}), "opt_out", id="opt-out-before-orphan-ttl"),
        pytest.param(
            make_pod(namespace="kube-system", controller=None), "namespace", id="namespace-before-not-job-owned"
        ),
    ],
)
def test_decide_pod_order_of_checks(pod: Pod, category: str) -> None:
    kept(decide_pod(pod, live_jobs=NO_JOBS, policy=DEFAULT, now=NOW), category)


def test_decide_pod_opt_out_before_job_exists() -> None:
    pod = make_pod(annotations={JOB_OPT_OUT: "true"})
    kept(decide_pod(pod, live_jobs=LIVE, policy=DEFAULT, now=NOW), "opt_out")


def test_decide_pod_without_finish_time() -> None:
    verdict = decide_pod(make_pod(finished_at=None), live_jobs=NO_JOBS, policy=DEFAULT, now=NOW)
    assert verdict == Verdict(delete=False, reason="orphaned pod has no finish time", category="no_finish_time")


def test_decide_pod_live_jobs_accepts_any_container() -> None:
    assert decide_pod(make_pod(), live_jobs=[JOB_UID], policy=DEFAULT, now=NOW).category == "job_exists"
    assert decide_pod(make_pod(), live_jobs={JOB_UID: object()}, policy=DEFAULT, now=NOW).category == "job_exists"


# --- Job.from_json --------------------------------------------------------------------------------------------------


def job_json(
    *,
    conditions: list[dict[str, Any]] | None = None,
    spec: dict[str, Any] | None = None,
    owners: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "nightly-report-29321", "namespace": "batch", "uid": JOB_UID}
    if owners is not None:
        meta["ownerReferences"] = owners
    if annotations is not None:
        meta["annotations"] = annotations
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": spec or {"backoffLimit": 6, "completions": 1},
        "status": {} if conditions is None else {"conditions": conditions},
    }


def condition(kind: str, status: str, at: str) -> dict[str, Any]:
    return {"type": kind, "status": status, "lastTransitionTime": at, "lastProbeTime": at}


def test_job_from_json_complete() -> None:
    job = Job.from_json(job_json(conditions=[condition("Complete", "True", "2026-10-02T09:30:15Z")]))
    assert job == Job(
        namespace="batch",
        name="nightly-report-29321",
        uid=JOB_UID,
        finished="Complete",
        finished_at=datetime(2026, 10, 2, 9, 30, 15, tzinfo=UTC),
        ttl_after_finished=None,
        annotations={},
        controller=None,
    )
    assert job.key == "batch/nightly-report-29321"


def test_job_from_json_failed() -> None:
    job = Job.from_json(
        job_json(
            conditions=[
                condition("FailureTarget", "True", "2026-10-02T09:00:00Z"),
                condition("Failed", "True", "2026-10-02T09:00:04Z"),
            ]
        )
    )
    assert job.finished == "Failed"
    assert job.finished_at == datetime(2026, 10, 2, 9, 0, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("conditions", "finished", "finished_at"),
    [
        pytest.param(None, None, None, id="no-status"),
        pytest.param([], None, None, id="no-conditions"),
        pytest.param([condition("Complete", "False", "2026-10-02T09:30:15Z")], None, None, id="complete-false"),
        pytest.param([condition("Failed", "False", "2026-10-02T09:30:15Z")], None, None, id="failed-false"),
        pytest.param([condition("Failed", "Unknown", "2026-10-02T09:30:15Z")], None, None, id="failed-unknown"),
        pytest.param([condition("Suspended", "True", "2026-10-02T09:30:15Z")], None, None, id="suspended"),
        pytest.param([condition("FailureTarget", "True", "2026-10-02T09:30:15Z")], None, None, id="failure-target"),
        pytest.param(
            [condition("SuccessCriteriaMet", "True", "2026-10-02T09:30:15Z")], None, None, id="success-criteria-met"
        ),
        pytest.param(
            [
                condition("Failed", "False", "2026-10-02T08:00:00Z"),
                condition("Complete", "True", "2026-10-02T09:30:15Z"),
            ],
            "Complete",
            datetime(2026, 10, 2, 9, 30, 15, tzinfo=UTC),
            id="false-condition-skipped",
        ),
        pytest.param(
            [{"type": "Complete", "status": "True"}],
            "Complete",
            None,
            id="complete-without-time",
        ),
    ],
)
def test_job_from_json_conditions(
    conditions: list[dict[str, Any]] | None, finished: str | None, finished_at: datetime | None
) -> None:
    job = Job.from_json(job_json(conditions=conditions))
    assert job.finished == finished
    assert job.finished_at == finished_at


@pytest.mark.parametrize(
    ("spec", "ttl"),
    [
        pytest.param({}, None, id="absent"),
        pytest.param({"ttlSecondsAfterFinished": None}, None, id="null"),
        pytest.param({"ttlSecondsAfterFinished": 0}, 0, id="zero"),
        pytest.param({"ttlSecondsAfterFinished": 3600}, 3600, id="hour"),
    ],
)
def test_job_from_json_ttl(spec: dict[str, Any], ttl: int | None) -> None:
    assert Job.from_json(job_json(spec={"completions": 1, **spec})).ttl_after_finished == ttl


def test_job_from_json_ttl_zero_goes_to_ttl_controller() -> None:
    job = Job.from_json(
        job_json(
            conditions=[condition("Complete", "True", "2026-10-02T09:30:15Z")],
            spec={"ttlSecondsAfterFinished": 0},
        )
    )
    kept(decide_job(job, policy=DEFAULT, now=NOW), "ttl_controller")


def test_job_from_json_controller_owner() -> None:
    owners = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "report-config", "uid": "cm-uid"},
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "nightly-report",
            "uid": "cron-uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        },
    ]
    job = Job.from_json(job_json(owners=owners))
    assert job.controller == CRON_JOB
    assert job.controller.group == "batch"


@pytest.mark.parametrize(
    "owners",
    [
        pytest.param([], id="empty"),
        pytest.param([{"kind": "CronJob", "name": "nightly-report", "uid": "cron-uid-1"}], id="not-controller"),
        pytest.param(
            [{"kind": "CronJob", "name": "nightly-report", "uid": "cron-uid-1", "controller": False}],
            id="controller-false",
        ),
    ],
)
def test_job_from_json_without_controller(owners: list[dict[str, Any]]) -> None:
    job = Job.from_json(job_json(owners=owners))
    assert job.controller is None
    deleted(
        decide_job(
            Job.from_json(job_json(owners=owners, conditions=[condition("Complete", "True", "2026-10-01T09:00:00Z")])),
            policy=DEFAULT,
            now=NOW,
        )
    )


@pytest.mark.parametrize(
    ("spec", "managed_by"),
    [
        pytest.param({}, None, id="absent"),
        pytest.param({"managedBy": None}, None, id="null"),
        pytest.param({"managedBy": ""}, None, id="empty"),
        pytest.param(
            {"managedBy": "kubernetes.io/job-controller"}, "kubernetes.io/job-controller", id="job-controller"
        ),
        pytest.param({"managedBy": MULTIKUEUE}, MULTIKUEUE, id="multikueue"),
    ],
)
def test_job_from_json_managed_by(spec: dict[str, Any], managed_by: str | None) -> None:
    assert Job.from_json(job_json(spec={"completions": 1, **spec})).managed_by == managed_by


def test_job_from_json_annotations() -> None:
    annotations = {JOB_OPT_OUT: "true", "team": "payments"}
    job = Job.from_json(job_json(annotations=annotations))
    assert job.annotations == {"node-drainer.io/skip-cleanup": "true", "team": "payments"}
    assert Job.from_json(job_json()).annotations == {}
    null_annotations = job_json()
    null_annotations["metadata"]["annotations"] = None
    assert Job.from_json(null_annotations).annotations == {}


def test_job_from_json_minimal() -> None:
    job = Job.from_json({"metadata": {"name": "bare"}})
    assert job == Job(
        namespace="",
        name="bare",
        uid="",
        finished=None,
        finished_at=None,
        ttl_after_finished=None,
        annotations={},
        controller=None,
    )


# --- Pod.from_json finished_at --------------------------------------------------------------------------------------


def terminated(finished_at: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": 0, "reason": "Completed", "startedAt": "2026-10-02T08:00:00Z"}
    if finished_at is not None:
        state["finishedAt"] = finished_at
    return {"name": "main", "ready": False, "restartCount": 0, "state": {"terminated": state}}


def running() -> dict[str, Any]:
    return {"name": "sidecar", "ready": True, "state": {"running": {"startedAt": "2026-10-02T08:00:00Z"}}}


def ready(at: str) -> dict[str, Any]:
    return {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": at}


def pod_json(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nightly-report-29321-x8k2p", "namespace": "batch", "uid": "pod-uid-1"},
        "spec": {"nodeName": "gke-payments-spot-pool-3f1c2a9e-x7k2", "containers": [{"name": "main"}]},
        "status": {"phase": "Succeeded", **status},
    }


@pytest.mark.parametrize(
    ("status", "finished_at"),
    [
        pytest.param(
            {"containerStatuses": [terminated("2026-10-02T09:10:00Z")]},
            datetime(2026, 10, 2, 9, 10, tzinfo=UTC),
            id="one-container",
        ),
        pytest.param(
            {
                "containerStatuses": [
                    terminated("2026-10-02T09:10:00Z"),
                    terminated("2026-10-02T09:12:30Z"),
                    terminated("2026-10-02T09:11:00Z"),
                ]
            },
            datetime(2026, 10, 2, 9, 12, 30, tzinfo=UTC),
            id="latest-container",
        ),
        pytest.param(
            {
                "initContainerStatuses": [terminated("2026-10-02T09:20:00Z")],
                "containerStatuses": [terminated("2026-10-02T09:15:00Z")],
            },
            datetime(2026, 10, 2, 9, 20, tzinfo=UTC),
            id="init-container-later",
        ),
        pytest.param(
            {
                "initContainerStatuses": [terminated("2026-10-02T08:01:00Z")],
                "containerStatuses": [terminated("2026-10-02T09:15:00Z")],
            },
            datetime(2026, 10, 2, 9, 15, tzinfo=UTC),
            id="container-later-than-init",
        ),
        pytest.param(
            {
                "initContainerStatuses": [terminated("2026-10-02T08:01:00Z")],
                "containerStatuses": [running()],
                "conditions": [ready("2026-10-02T10:00:00Z")],
            },
            datetime(2026, 10, 2, 8, 1, tzinfo=UTC),
            id="init-only-terminated",
        ),
        pytest.param(
            {
                "containerStatuses": [terminated("2026-10-02T09:10:00Z"), running()],
                "conditions": [ready("2026-10-02T10:00:00Z")],
            },
            datetime(2026, 10, 2, 9, 10, tzinfo=UTC),
            id="terminated-beats-ready",
        ),
        pytest.param(
            {
                "containerStatuses": [terminated(None), terminated("")],
                "conditions": [
                    {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-10-02T07:00:00Z"},
                    ready("2026-10-02T09:45:00Z"),
                ],
            },
            datetime(2026, 10, 2, 9, 45, tzinfo=UTC),
            id="no-finished-at-falls-back-to-ready",
        ),
        pytest.param(
            {"containerStatuses": [running()], "conditions": [ready("2026-10-02T09:45:00Z")]},
            datetime(2026, 10, 2, 9, 45, tzinfo=UTC),
            id="not-terminated-falls-back-to-ready",
        ),
        pytest.param(
            {"conditions": [ready("2026-10-02T09:45:00Z")]},
            datetime(2026, 10, 2, 9, 45, tzinfo=UTC),
            id="no-statuses-ready",
        ),
        pytest.param(
            {"containerStatuses": None, "initContainerStatuses": None, "conditions": [ready("2026-10-02T09:45:00Z")]},
            datetime(2026, 10, 2, 9, 45, tzinfo=UTC),
            id="null-statuses-ready",
        ),
        pytest.param(
            {"containerStatuses": [{"name": "main", "state": None}], "conditions": None},
            None,
            id="null-state-null-conditions",
        ),
        pytest.param(
            {"containerStatuses": [running()]},
            None,
            id="neither",
        ),
        pytest.param(
            {"conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-10-02T07:00:00Z"}]},
            None,
            id="no-ready-condition",
        ),
        pytest.param(
            {"conditions": [{"type": "Ready", "status": "False"}]},
            None,
            id="ready-without-time",
        ),
        pytest.param({}, None, id="empty-status"),
    ],
)
def test_pod_from_json_finished_at(status: dict[str, Any], finished_at: datetime | None) -> None:
    assert Pod.from_json(pod_json(status)).finished_at == finished_at


def test_pod_from_json_job_owner_and_labels_feed_job_of() -> None:
    obj = pod_json({"containerStatuses": [terminated("2026-10-02T09:10:00Z")]})
    obj["metadata"]["labels"] = {"batch.kubernetes.io/controller-uid": OTHER_JOB_UID, "job-name": "x"}
    assert job_of(Pod.from_json(obj)) == OTHER_JOB_UID
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "nightly-report-29321", "uid": JOB_UID, "controller": True}
    ]
    pod = Pod.from_json(obj)
    assert pod.controller == JOB_OWNER
    assert job_of(pod) == JOB_UID
    assert decide_pod(pod, live_jobs=NO_JOBS, policy=DEFAULT, now=NOW) == Verdict(
        delete=True, reason="finished 10200 s ago, TTL 3600 s", category="expired"
    )


@pytest.mark.parametrize(
    ("pod", "name"),
    [
        pytest.param(make_pod(), "nightly-report-29321", id="job-controller-ref"),
        pytest.param(make_pod(controller=REPLICA_SET), None, id="other-controller"),
        pytest.param(
            make_pod(controller=None, labels={"batch.kubernetes.io/job-name": "a", "job-name": "b"}), "a", id="label"
        ),
        pytest.param(make_pod(controller=None, labels={"job-name": "b"}), "b", id="legacy-label"),
        pytest.param(make_pod(controller=None), None, id="bare"),
        pytest.param(
            make_pod(controller=REPLICA_SET, labels={"job-name": "b"}), None, id="label-ignored-with-other-controller"
        ),
    ],
)
def test_job_name_of(pod: Pod, name: str | None) -> None:
    assert job_name_of(pod) == name


def test_pod_from_json_finalizers() -> None:
    obj = pod_json({})
    assert Pod.from_json(obj).finalizers == ()
    obj["metadata"]["finalizers"] = ["example.com/protect", "batch.kubernetes.io/job-tracking"]
    assert Pod.from_json(obj).finalizers == ("example.com/protect", "batch.kubernetes.io/job-tracking")
    obj["metadata"]["finalizers"] = None
    assert Pod.from_json(obj).finalizers == ()


@pytest.mark.parametrize(
    ("include", "exclude", "scopes"),
    [
        pytest.param(set(), set(), [None], id="everything-one-cluster-wide-list"),
        pytest.param(set(), {"kube-system"}, [None], id="exclusions-only-still-cluster-wide"),
        pytest.param({"team-b", "team-a"}, set(), ["team-a", "team-b"], id="included-sorted"),
        pytest.param({"team-a", "team-b"}, {"team-b"}, ["team-a"], id="excluded-wins"),
        pytest.param({"team-a"}, {"team-a"}, [], id="all-excluded-nothing-listed"),
    ],
)
def test_list_scopes(include: set[str], exclude: set[str], scopes: list[str | None]) -> None:
    policy = CleanupPolicy(include_namespaces=frozenset(include), exclude_namespaces=frozenset(exclude))
    assert list_scopes(policy) == scopes
