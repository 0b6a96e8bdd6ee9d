"""The demo's built-in task (used when the example file is not installed) is the storage example, and
what the demo changes in it is exactly what it prints: ``foresight run --set`` of those changes runs
the demo's spec."""

from __future__ import annotations

import pytest
from foresight.run.demo import EXAMPLE_PATH, demo_budget, demo_spec, set_options, spec_changes
from foresight.run.local import load_task

from tests.cluster.operator_process import REPO


def test_built_in_demo_task_has_the_storage_examples_source_model_calendar_and_threshold() -> None:
    example = load_task(str(REPO / EXAMPLE_PATH), default_namespace="sre").spec
    built_in = demo_spec(artifacts_uri="file:///tmp/demo-artifacts")
    for field in ("model", "calendar", "horizon", "threshold"):
        assert getattr(built_in, field) == getattr(example, field), field
    for field in ("query", "group_by", "aggregation", "step", "covariates", "unit", "value_range"):
        assert getattr(built_in.source, field) == getattr(example.source, field), f"source.{field}"


@pytest.mark.parametrize("quick", [False, True])
def test_the_printed_differences_turn_foresight_run_of_the_example_into_the_demos_spec(quick: bool) -> None:
    example = load_task(str(REPO / EXAMPLE_PATH), default_namespace="sre").spec
    ran, _ = demo_budget(example, quick=quick)
    changes = spec_changes(example, ran)
    assert changes and all(key.startswith("model.") for key, _, _ in changes)
    epochs = (
        "model.hyperparameters.epochs",
        example.model.hyperparameters.epochs,
        ran.model.hyperparameters.epochs,
    )
    assert epochs in changes
    rerun = load_task(str(REPO / EXAMPLE_PATH), default_namespace="sre", sets=set_options(changes)).spec
    assert rerun == ran
    assert spec_changes(ran, rerun) == []
