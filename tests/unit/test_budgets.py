"""Which PodDisruptionBudget governs a pod's eviction, matched as the API server's eviction
subresource matches, and how a drain orders its evictions by budget."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from functions.decisions.model import Budget, Pod
from functions.decisions.policy import budget_of, eviction_turns
from tests.unit.test_policy import make_pod


def budget(
    name: str,
    *,
    namespace: str = "payments",
    selector: dict[str, Any] | None = None,
    allowed: int = 1,
    generation: int = 1,
    observed: int = 1,
) -> Budget:
    return Budget.from_json(
        {
            "metadata": {"name": name, "namespace": namespace, "generation": generation, "resourceVersion": "7"},
            "spec": {"selector": selector} if selector is not None else {},
            "status": {"disruptionsAllowed": allowed, "observedGeneration": observed},
        }
    )


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": key, "operator": operator, "values": list(values)}]}


def labelled(labels: dict[str, str], *, name: str = "checkout-1", namespace: str = "payments") -> Pod:
    return replace(make_pod(name=name, namespace=namespace), labels=labels, uid=f"uid-{name}")


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({"matchLabels": {"app": "checkout"}}, {"app": "checkout", "tier": "web"}, True),
        ({"matchLabels": {"app": "checkout"}}, {"app": "cart"}, False),
        ({"matchLabels": {"app": "checkout", "tier": "web"}}, {"app": "checkout"}, False),
        (
            expr("app", "In", "a", "checkout"),
            {"app": "checkout"},
            True,
        ),
        (expr("app", "In", "a"), {"app": "checkout"}, False),
        (expr("app", "NotIn", "a"), {"app": "checkout"}, True),
        (expr("app", "NotIn", "a"), {}, True),
        (
            expr("app", "NotIn", "checkout"),
            {"app": "checkout"},
            False,
        ),
        (expr("app", "Exists"), {"app": ""}, True),
        (expr("app", "Exists"), {"tier": "web"}, False),
        (expr("app", "DoesNotExist"), {"tier": "web"}, True),
        (expr("app", "DoesNotExist"), {"app": "x"}, False),
        (
            {"matchLabels": {"tier": "web"}, "matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]},
            {"tier": "web", "app": "checkout"},
            False,
        ),
        (
            expr("app", "Sometimes", "checkout"),
            {"app": "checkout"},
            False,
        ),
        # policy/v1: an empty or missing selector selects no pod (policy/v1beta1 selected every pod)
        ({}, {"app": "checkout"}, False),
        (None, {"app": "checkout"}, False),
    ],
)
def test_a_budget_selects_as_the_eviction_subresource_does(
    selector: dict[str, Any] | None, labels: dict[str, str], selected: bool
) -> None:
    assert budget("b", selector=selector).selects(labelled(labels)) is selected


def test_a_budget_selects_only_pods_of_its_namespace() -> None:
    pdb = budget("b", selector={"matchLabels": {"app": "checkout"}})
    assert pdb.selects(labelled({"app": "checkout"}, namespace="payments"))
    assert not pdb.selects(labelled({"app": "checkout"}, namespace="shipping"))


@pytest.mark.parametrize(
    ("allowed", "generation", "observed", "allows"),
    [(1, 1, 1, True), (3, 2, 2, True), (0, 1, 1, False), (1, 2, 1, False), (-1, 1, 1, False)],
)
def test_a_budget_allows_an_eviction_only_with_a_current_status_and_room(
    allowed: int, generation: int, observed: int, allows: bool
) -> None:
    assert budget("b", allowed=allowed, generation=generation, observed=observed).allows_eviction is allows


def test_a_budget_without_status_allows_nothing() -> None:
    pdb = Budget.from_json({"metadata": {"name": "new", "namespace": "n", "generation": 1}, "spec": {}})
    assert (pdb.disruptions_allowed, pdb.observed_generation, pdb.allows_eviction) == (0, 0, False)
    assert pdb.key == "n/new"


def test_the_one_budget_of_a_pod_and_none_for_two_or_none() -> None:
    web = budget("web", selector={"matchLabels": {"app": "checkout"}})
    tier = budget("tier", selector={"matchLabels": {"tier": "web"}})
    other = budget("other", selector={"matchLabels": {"app": "cart"}})
    pod = labelled({"app": "checkout", "tier": "web"})
    assert budget_of(pod, [web, other]) == "payments/web"
    assert budget_of(pod, [web, tier]) is None  # the API server refuses its eviction (500): no turn
    assert budget_of(pod, [other]) is None


def test_eviction_turns_group_the_pods_of_each_budget_in_their_order() -> None:
    web = budget("web", selector={"matchLabels": {"app": "web"}})
    db = budget("db", selector={"matchLabels": {"app": "db"}})
    pods = [
        labelled({"app": "web"}, name="web-1"),
        labelled({"app": "db"}, name="db-1"),
        labelled({"app": "batch"}, name="batch-1"),
        labelled({"app": "web"}, name="web-2"),
        labelled({"app": "db"}, name="db-2", namespace="other"),  # same labels, another namespace
    ]
    turns, free = eviction_turns(pods, [web, db])
    assert {k: [p.name for p in v] for k, v in turns.items()} == {
        "payments/web": ["web-1", "web-2"],
        "payments/db": ["db-1"],
    }
    assert [p.name for p in free] == ["batch-1", "db-2"]


def test_eviction_turns_without_budgets_evict_everything_at_once() -> None:
    pods = [labelled({"app": "web"}, name=f"web-{i}") for i in range(3)]
    assert eviction_turns(pods, []) == ({}, pods)


def test_a_budget_lists_the_pods_whose_eviction_the_controller_has_not_seen_yet() -> None:
    pdb = Budget.from_json(
        {
            "metadata": {"name": "web", "namespace": "n", "generation": 2, "resourceVersion": "41"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
            "status": {
                "disruptionsAllowed": 2,
                "observedGeneration": 2,
                "disruptedPods": {"web-1": "2026-11-30T22:00:00Z", "web-2": "2026-11-30T22:00:01Z"},
            },
        }
    )
    assert pdb.disrupted_pods == frozenset({"web-1", "web-2"})
    assert (pdb.resource_version, pdb.allows_eviction) == ("41", True)
