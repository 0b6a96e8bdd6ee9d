"""The Argo CD health check manifests/argocd/health.lua, run in a real Lua 5.1 for every kind.

Argo CD runs these scripts in gopher-lua (Lua 5.1) with the live object, converted from JSON to
nested Lua tables, in the global ``obj``; the script returns a table with ``status`` and
``message``. The tests do the same with lupa's bundled Lua 5.1, for every kind and state, and
check that argocd-cm-patch.yaml embeds the script byte for byte under every kind's key.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import lupa.lua51 as lupa_lua51
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "manifests" / "argocd"
HEALTH = ARGOCD / "health.lua"
KINDS = ["ForecastTask", "TrainingJob", "ModelVersion", "ModelLibrary", "ABExperiment", "ClassifierService"]
# How each suspendable kind says "suspended" (the others have no such field).
SUSPEND_SPECS: dict[str, dict[str, Any]] = {
    "ForecastTask": {"suspend": True},
    "TrainingJob": {"runPolicy": {"suspend": True}},
    "ABExperiment": {"suspend": True},
}
IN_PROGRESS_REASONS = [
    "Progressing", "Pending", "Running", "Training", "Verifying", "Fetching", "Withdrawing", "Waiting",
]  # fmt: skip


def run_health(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    """Run the kind's script as Argo CD does: ``obj`` global, script returns the health table."""
    runtime = lupa_lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(HEALTH.read_text(encoding="utf-8"))
    assert result is not None, f"health.lua returned nothing for {kind}"
    return {"status": result["status"], "message": result["message"]}


def resource(
    kind: str,
    *,
    generation: int = 3,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "foresight.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "demo", "namespace": "team-a", "generation": generation},
        "spec": spec if spec is not None else {},
    }
    if status is not None:
        obj["status"] = status
    return obj


def ready(status: str, reason: str, message: str, observed_generation: int = 3) -> dict[str, Any]:
    condition = {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2025-01-01T00:00:00Z",
        "observedGeneration": observed_generation,
    }
    other = {"type": "Progressing", "status": "False", "reason": "Succeeded", "message": "not this one"}
    return {"observedGeneration": observed_generation, "phase": "X", "conditions": [other, condition]}


@pytest.mark.parametrize("kind", KINDS)
def test_no_status_yet_is_progressing(kind: str) -> None:
    health = run_health(kind, resource(kind))
    assert health == {
        "status": "Progressing",
        "message": "Waiting for the Foresight operator to report status",
    }


@pytest.mark.parametrize("kind", KINDS)
def test_ready_true_is_healthy_with_the_condition_message(kind: str) -> None:
    health = run_health(kind, resource(kind, status=ready("True", "Reconciled", "42 series forecast")))
    assert health == {"status": "Healthy", "message": "42 series forecast"}


@pytest.mark.parametrize("kind", KINDS)
def test_ready_false_with_a_failure_reason_is_degraded(kind: str) -> None:
    status = ready("False", "Failed", "PromQL error: parse error at char 3")
    health = run_health(kind, resource(kind, status=status))
    assert health == {"status": "Degraded", "message": "PromQL error: parse error at char 3"}


@pytest.mark.parametrize("reason", IN_PROGRESS_REASONS)
@pytest.mark.parametrize("kind", KINDS)
def test_ready_false_with_an_in_progress_reason_is_progressing(kind: str, reason: str) -> None:
    health = run_health(kind, resource(kind, status=ready("False", reason, f"{reason}: 2/5")))
    assert health == {"status": "Progressing", "message": f"{reason}: 2/5"}


@pytest.mark.parametrize("kind", KINDS)
def test_generation_newer_than_observed_is_progressing_even_when_ready(kind: str) -> None:
    obj = resource(kind, generation=4, status=ready("True", "Reconciled", "fine", observed_generation=3))
    health = run_health(kind, obj)
    assert health == {
        "status": "Progressing",
        "message": "Waiting for the Foresight operator to observe generation 4",
    }


@pytest.mark.parametrize("kind", KINDS)
def test_status_without_observed_generation_is_progressing(kind: str) -> None:
    status = ready("False", "Failed", "boom")
    del status["observedGeneration"]
    assert run_health(kind, resource(kind, status=status))["status"] == "Progressing"


@pytest.mark.parametrize("kind", KINDS)
def test_ready_condition_from_an_older_generation_is_progressing(kind: str) -> None:
    status = ready("False", "Failed", "old failure", observed_generation=2)
    status["observedGeneration"] = 3
    health = run_health(kind, resource(kind, generation=3, status=status))
    assert health["status"] == "Progressing"
    assert "generation 3" in health["message"]


@pytest.mark.parametrize("kind", sorted(SUSPEND_SPECS))
def test_suspended_kinds_report_suspended(kind: str) -> None:
    status = ready("False", "Failed", "paused by the user")
    health = run_health(kind, resource(kind, spec=SUSPEND_SPECS[kind], status=status))
    assert health == {"status": "Suspended", "message": "paused by the user"}


@pytest.mark.parametrize("kind", sorted(SUSPEND_SPECS))
def test_suspend_false_is_not_suspended(kind: str) -> None:
    spec = {"suspend": False, "runPolicy": {"suspend": False}}
    health = run_health(kind, resource(kind, spec=spec, status=ready("True", "Reconciled", "ok")))
    assert health["status"] == "Healthy"


@pytest.mark.parametrize("kind", sorted(SUSPEND_SPECS))
def test_suspended_but_not_yet_observed_is_progressing(kind: str) -> None:
    obj = resource(kind, generation=5, spec=SUSPEND_SPECS[kind], status=ready("True", "Reconciled", "ok"))
    assert run_health(kind, obj)["status"] == "Progressing"


@pytest.mark.parametrize("kind", KINDS)
def test_ready_false_with_reason_suspended_is_suspended(kind: str) -> None:
    health = run_health(kind, resource(kind, status=ready("False", "Suspended", "")))
    assert health == {"status": "Suspended", "message": "Suspended"}


@pytest.mark.parametrize("kind", KINDS)
def test_empty_message_falls_back_to_the_reason(kind: str) -> None:
    health = run_health(kind, resource(kind, status=ready("False", "ChecksumMismatch", "")))
    assert health == {"status": "Degraded", "message": "ChecksumMismatch"}


@pytest.mark.parametrize("kind", KINDS)
def test_missing_or_unknown_ready_is_progressing(kind: str) -> None:
    no_ready = {"observedGeneration": 3, "conditions": []}
    assert run_health(kind, resource(kind, status=no_ready)) == {
        "status": "Progressing",
        "message": "Waiting for the Ready condition",
    }
    unknown = run_health(kind, resource(kind, status=ready("Unknown", "Pending", "scheduling")))
    assert unknown == {"status": "Progressing", "message": "scheduling"}


def test_a_model_library_retrying_is_progressing_until_degraded() -> None:
    status = ready("False", "SourceUnreachable", "connection refused; the next attempt starts at 12:00:35")
    status["phase"] = "Retrying"
    health = run_health("ModelLibrary", resource("ModelLibrary", status=status))
    assert health == {"status": "Progressing", "message": status["conditions"][1]["message"]}
    status["conditions"].append(
        {
            "type": "Degraded",
            "status": "True",
            "reason": "SourceUnreachable",
            "message": "3 fetches in a row failed",
        }
    )
    health = run_health("ModelLibrary", resource("ModelLibrary", status=status))
    assert health == {"status": "Degraded", "message": "3 fetches in a row failed"}


@pytest.mark.parametrize(
    ("phase", "ready_status", "reason", "health"),
    [
        ("Ready", "True", "Active", "Healthy"),
        ("Ready", "True", "Inactive", "Healthy"),
        ("Fetching", "False", "Fetching", "Progressing"),
        ("Fetching", "False", "Withdrawing", "Progressing"),
        ("Pending", "False", "Waiting", "Progressing"),
        ("Pending", "False", "ConfigMapNotFound", "Degraded"),
        ("Conflict", "False", "ActiveConflict", "Degraded"),
        ("Failed", "False", "ChecksumMismatch", "Degraded"),
        ("Failed", "False", "TooLarge", "Degraded"),
    ],
)
def test_model_library_phases(phase: str, ready_status: str, reason: str, health: str) -> None:
    status = ready(ready_status, reason, f"{reason} says why")
    status["phase"] = phase
    assert run_health("ModelLibrary", resource("ModelLibrary", status=status))["status"] == health


def test_kinds_match_the_generated_crds() -> None:
    kinds = set()
    for path in (REPO / "crds").glob("*.foresight.dev.yaml"):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        kinds.add(crd["spec"]["names"]["kind"])
    assert kinds == set(KINDS)


def _api_reasons() -> set[str]:
    """Every value of every string enum in foresight.api (reasons, phases, condition types)."""
    api = importlib.import_module("foresight.api")
    values: set[str] = set()
    for info in pkgutil.iter_modules(api.__path__):
        module = importlib.import_module(f"foresight.api.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, enum.StrEnum) and obj.__module__ == module.__name__:
                values.update(member.value for member in obj)
    return values


def test_in_progress_reasons_are_real_api_reasons() -> None:
    text = HEALTH.read_text(encoding="utf-8")
    match = re.search(r"local inProgressReasons = \{(.*?)\n\}", text, re.S)
    assert match, "inProgressReasons table not found"
    listed = set(re.findall(r"(\w+) = true", match.group(1)))
    assert set(IN_PROGRESS_REASONS) <= listed
    unknown = listed - _api_reasons()
    assert not unknown, f"reasons in the Lua that no foresight.api enum defines (typos?): {unknown}"


def test_argocd_cm_patch_embeds_the_script_verbatim_for_every_kind() -> None:
    patch = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text(encoding="utf-8"))
    assert patch["kind"] == "ConfigMap"
    assert patch["metadata"] == {**patch["metadata"], "name": "argocd-cm", "namespace": "argocd"}
    expected = {
        f"resource.customizations.health.foresight.dev_{kind}": HEALTH.read_text(encoding="utf-8")
        for kind in KINDS
    }
    assert patch["data"] == expected, "argocd-cm-patch.yaml is stale: run python manifests/argocd/render.py"


def test_application_syncs_the_manifests_path_automatically() -> None:
    app = yaml.safe_load((ARGOCD / "application.yaml").read_text(encoding="utf-8"))
    assert app["kind"] == "Application"
    assert app["spec"]["source"]["path"] == "manifests"
    policy = app["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    assert "ServerSideApply=true" in policy["syncOptions"]
