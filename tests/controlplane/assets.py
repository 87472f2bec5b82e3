"""Locate or build the control-plane binaries (etcd, kube-apiserver, kube-controller-manager, kubectl).

The binaries are built from the wrapper Go modules beside this file through the Go module
proxy, into a cache outside the repository, and reused when present. ``KUBEBUILDER_ASSETS``
(the envtest convention) may point at a directory that already holds them instead.

    python -m tests.controlplane.assets ensure   # build when missing, print the directory
    python -m tests.controlplane.assets build    # force a rebuild
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GO_DIR = Path(__file__).resolve().parent / "go"
KUBE_MODULE = GO_DIR / "kube"
ETCD_MODULE = GO_DIR / "etcd"
PUBSUB_MODULE = GO_DIR / "pubsub"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")
CACHE_ENV = "GKE_DRAINER_CACHE"


def _required_version(module_dir: Path, module_path: str) -> str:
    text = (module_dir / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module_path)}\s+(v\S+)", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{module_dir / 'go.mod'} does not require {module_path}")
    return match.group(1)


def kubernetes_version() -> str:
    return _required_version(KUBE_MODULE, "k8s.io/kubernetes")


def etcd_version() -> str:
    return _required_version(ETCD_MODULE, "go.etcd.io/etcd/server/v3")


def pubsub_version() -> str:
    return _required_version(PUBSUB_MODULE, "cloud.google.com/go/pubsub/v2")


def cache_root() -> Path:
    base = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gke-node-drainer"
    )
    return Path(base)


def default_bin_dir() -> Path:
    return cache_root() / f"controlplane-k8s-{kubernetes_version()}-etcd-{etcd_version()}" / "bin"


@dataclass(frozen=True)
class Assets:
    directory: Path
    built_seconds: float | None  # set when this call built them

    def path(self, name: str) -> Path:
        return self.directory / name


def _complete(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in BINARIES)


def _go_build_tools(module_dir: Path, out_dir: Path) -> None:
    cmd = ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", f"{out_dir}{os.sep}", "tool"]
    env = dict(os.environ, GOFLAGS="-mod=mod -buildvcs=false", CGO_ENABLED="0")
    subprocess.run(cmd, cwd=module_dir, env=env, check=True)


def build(bin_dir: Path | None = None) -> Assets:
    """Build every binary into ``bin_dir`` (atomically: a half-built directory is never used)."""
    if shutil.which("go") is None:
        raise RuntimeError(
            "the Go toolchain is needed to build the control plane; install Go or set KUBEBUILDER_ASSETS"
        )
    target = bin_dir or default_bin_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        out = Path(tmp)
        _go_build_tools(KUBE_MODULE, out)
        _go_build_tools(ETCD_MODULE, out)
        # `go build` names a tool after its import path; etcd's is .../server/v3 -> "server".
        (out / "server").rename(out / "etcd")
        missing = [name for name in BINARIES if not (out / name).exists()]
        if missing:
            raise RuntimeError(f"build finished without {', '.join(missing)}")
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
        out.mkdir()  # let TemporaryDirectory clean up an empty directory
    return Assets(directory=target, built_seconds=time.monotonic() - started)


def ensure() -> Assets:
    """Return the binaries, from KUBEBUILDER_ASSETS, the cache, or a fresh build."""
    override = os.environ.get("KUBEBUILDER_ASSETS")
    if override:
        directory = Path(override)
        if not _complete(directory):
            missing = [n for n in BINARIES if not os.access(directory / n, os.X_OK)]
            raise RuntimeError(f"KUBEBUILDER_ASSETS={override} lacks executable {', '.join(missing)}")
        return Assets(directory=directory, built_seconds=None)
    directory = default_bin_dir()
    if _complete(directory):
        return Assets(directory=directory, built_seconds=None)
    return build(directory)


def _dir_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())


def ensure_pubsub_fake() -> Path:
    """The loopback Pub/Sub fake (pstest), built on first use into its own cache directory."""
    target = cache_root() / f"pubsub-fake-{pubsub_version()}" / "pubsub-fake"
    if os.access(target, os.X_OK):
        return target
    if shutil.which("go") is None:
        raise RuntimeError("the Go toolchain is needed to build the Pub/Sub fake")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        out = Path(tmp) / "pubsub-fake"
        env = dict(os.environ, GOFLAGS="-mod=mod -buildvcs=false", CGO_ENABLED="0")
        subprocess.run(
            ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(out), "."], cwd=PUBSUB_MODULE, env=env, check=True
        )
        out.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("ensure", "build", "where"))
    args = parser.parse_args(argv)
    if args.command == "where":
        print(default_bin_dir())
        return 0
    assets = build() if args.command == "build" else ensure()
    size_mb = _dir_size(assets.directory) / 1e6
    if assets.built_seconds is not None:
        print(
            f"control plane: cold build of Kubernetes {kubernetes_version()} and etcd {etcd_version()}"
            f" took {assets.built_seconds:.0f} s; binaries {size_mb:.0f} MB in {assets.directory}",
            file=sys.stderr,
        )
    else:
        print(f"control plane: reusing binaries ({size_mb:.0f} MB) in {assets.directory}", file=sys.stderr)
    print(assets.directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
