"""Writes argocd-cm-patch.yaml from the health check scripts in health/<Kind>.lua.

The .lua files are the source; the patch embeds each one verbatim under
``resource.customizations.health.foresight.dev_<Kind>`` because Argo CD reads health checks
from its argocd-cm ConfigMap, one key per kind. tests/unit/test_argocd_health.py fails when the
embedded copies drift from the files. Usage: ``python manifests/argocd/render.py [--check]``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEALTH_DIR = HERE / "health"
PATCH_FILE = HERE / "argocd-cm-patch.yaml"
GROUP = "foresight.dev"

HEADER = """\
# Argo CD custom health checks for the Foresight kinds. GENERATED from health/<Kind>.lua by
# render.py; edit the .lua files, then run `python manifests/argocd/render.py`.
#
# Merge into Argo CD's ConfigMap:
#   kubectl -n argocd patch configmap argocd-cm --type merge \\
#     --patch-file manifests/argocd/argocd-cm-patch.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
"""


def render(health_dir: Path = HEALTH_DIR) -> str:
    """The patch YAML: each script as a literal block, so its text survives byte for byte."""
    scripts = sorted(health_dir.glob("*.lua"))
    if not scripts:
        raise FileNotFoundError(f"no health/<Kind>.lua scripts in {health_dir}; nothing to embed")
    parts = [HEADER]
    for script in scripts:
        text = script.read_text(encoding="utf-8")
        if not text.endswith("\n") or text.endswith("\n\n"):
            # A literal block with default chomping keeps exactly one trailing newline.
            raise ValueError(f"{script} must end with exactly one newline to embed verbatim")
        parts.append(f"  resource.customizations.health.{GROUP}_{script.stem}: |\n")
        parts.extend(f"    {line}\n" if line else "\n" for line in text.splitlines())
    return "".join(parts)


def main(argv: Sequence[str] = ()) -> int:
    rendered = render()
    if "--check" in argv:
        if PATCH_FILE.read_text(encoding="utf-8") != rendered:
            print(f"{PATCH_FILE} is stale: run `python {Path(__file__).name}`", file=sys.stderr)
            return 1
        return 0
    PATCH_FILE.write_text(rendered, encoding="utf-8")
    print(f"wrote {PATCH_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
