"""The codebase's shape: layers import only downwards, one importer of ``kubernetes``, and README's
configuration table, audit actions and the Terraform metric filters in step with the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from functions.decisions.actions import Action
from functions.decisions.settings_env import markdown_table

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions"
README = (ROOT / "README.md").read_text(encoding="utf-8")
# Highest first: a module may import its own layer and the layers after it, never one before it.
LAYERS = ("entry", "usecases", "engines", "gateways", "decisions")


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) > 1 and parts[0] == "functions" and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_import_only_downwards(path: Path) -> None:
    own = LAYERS.index(path.relative_to(PACKAGE).parts[0])
    upward = sorted(m for m in _imports(path) if (layer := _layer(m)) is not None and layer < own)
    assert not upward, f"{path.relative_to(ROOT)} imports a higher layer: {upward}"


@pytest.mark.parametrize("path", [*MODULES, ROOT / "main.py"], ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_kubernetes_gateway_imports_kubernetes(path: Path) -> None:
    kube = {m for m in _imports(path) if m == "kubernetes" or m.startswith("kubernetes.")}
    if kube:
        assert path.parent == PACKAGE / "gateways" / "kube", f"{path.relative_to(ROOT)} imports {sorted(kube)}"


def test_readme_configuration_table_is_the_settings_table() -> None:
    assert markdown_table() in README


def test_readme_names_every_audit_action() -> None:
    section = README[README.index("## Audit records") :]
    section = section[: section.index("\n## ", 1)]
    missing = [action.value for action in Action if f"`{action.value}`" not in section]
    assert not missing, f"README's audit section does not name {missing}"


def test_metric_filters_use_only_actions_the_code_writes() -> None:
    monitoring = (ROOT / "terraform" / "monitoring.tf").read_text(encoding="utf-8")
    named = set(re.findall(r'\\?"((?:[a-z]+)\.(?:[a-z_]+))\\?"', monitoring))
    used = {name for name in named if name.split(".")[0] in {a.value.split(".")[0] for a in Action}}
    assert used, "no action found in the metric filters"
    unknown = sorted(used - {a.value for a in Action})
    assert not unknown, f"monitoring.tf filters on actions the code never writes: {unknown}"
