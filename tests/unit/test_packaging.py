"""The project installs as a package: a wheel built from the tree holds the ``functions`` package and
the ``gke-node-drainer`` command, its dependency ranges admit the hashed lock, and, installed into a
fresh venv, the command runs (``--help``, ``--version``, ``explain`` on a fixture)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from functions import __version__

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "logentry-preempted.json"


def locked() -> dict[str, str]:
    """name -> version of every package in the runtime lock."""
    versions = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, rest = line.partition("==")
            versions[name.strip().lower().replace("_", "-")] = rest.split()[0].rstrip("\\").strip()
    return versions


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the tree (the build leaves nothing in the working tree)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "functions", source / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(dist), "."],
        cwd=source,
        check=True,
        timeout=300,
    )
    [built] = dist.glob("gke_node_drainer-*.whl")
    return built


def test_the_wheel_holds_the_package_and_the_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        metadata = Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
    assert {n.split("/")[0] for n in names} == {"functions", dist_info}  # no tests, no bench
    assert "functions/decisions/verdict.py" in names
    assert "gke-node-drainer = functions.entry.cli:main" in entry_points
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "Apache-2.0"


def test_the_ranges_admit_the_lock_and_name_every_direct_dependency(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = Parser().parsestr(archive.read(meta).decode()).get_all("Requires-Dist") or []
    lock = locked()
    ranges = {Requirement(r).name.lower(): Requirement(r) for r in requires}
    direct = {
        line.split("==")[0].strip().lower()
        for line in (ROOT / "requirements.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert set(ranges) == direct
    for name, requirement in ranges.items():
        assert requirement.specifier.contains(lock[name]), (name, str(requirement.specifier), lock[name])
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert {Requirement(d).name.lower(): Requirement(d).specifier for d in declared} == {
        name: r.specifier for name, r in ranges.items()
    }


def test_installed_into_a_fresh_venv_the_command_runs(wheel: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True, timeout=120)
    python = fresh / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # the dependencies come from the locked venv (a .pth), the project only from the wheel
    (Path(purelib) / "locked-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        timeout=300,
    )
    command = fresh / "bin" / "gke-node-drainer"
    where = subprocess.run(
        [str(python), "-c", "import functions; print(functions.__file__)"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(purelib), where
    shown = subprocess.run(
        [str(command), "--help"], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "explain" in shown.stdout
    version = subprocess.run(
        [str(command), "--version"], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert version.stdout.strip() == f"gke-node-drainer {__version__}"
    explained = subprocess.run(
        [str(command), "explain", "-o", "json", "--at", "2026-10-02T08:15:00Z", str(FIXTURE)],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(fresh / "bin")},
    )
    assert explained.returncode == 0, explained.stderr
    body = json.loads(explained.stdout)
    assert body["verdict"] == "act"
    assert body["kind"] == "preempted"
