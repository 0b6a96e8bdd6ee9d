"""Writes argocd-cm-patch.yaml from the health check script health.lua.

health.lua is the source; the patch embeds it verbatim under
``resource.customizations.health.foresight.dev_<Kind>`` for every kind of ``foresight.api``,
because Argo CD reads health checks from its argocd-cm ConfigMap, one key per kind.
tests/unit/test_argocd_health.py fails when the embedded copies drift from the script.
Usage: ``python manifests/argocd/render.py [--check]``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEALTH_SCRIPT = HERE / "health.lua"
PATCH_FILE = HERE / "argocd-cm-patch.yaml"
GROUP = "foresight.dev"

HEADER = """\
# Argo CD custom health checks for the Foresight kinds. GENERATED from health.lua by
# render.py (one copy per kind); edit health.lua, then run `python manifests/argocd/render.py`.
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


def render(script: Path = HEALTH_SCRIPT, kinds: Sequence[str] | None = None) -> str:
    """The patch YAML: the script once per kind, as a literal block so it survives byte for byte."""
    if kinds is None:
        from foresight.api import KINDS

        kinds = list(KINDS)
    text = script.read_text(encoding="utf-8")
    if not text.endswith("\n") or text.endswith("\n\n"):
        # A literal block with default chomping keeps exactly one trailing newline.
        raise ValueError(f"{script} must end with exactly one newline to embed verbatim")
    parts = [HEADER]
    for kind in sorted(kinds):
        parts.append(f"  resource.customizations.health.{GROUP}_{kind}: |\n")
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
