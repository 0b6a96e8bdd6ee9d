"""The demo's built-in task (used when the example file is not installed) is the storage example."""

from __future__ import annotations

from foresight.run.demo import EXAMPLE_PATH, demo_spec
from foresight.run.local import load_task

from tests.cluster.operator_process import REPO


def test_built_in_demo_task_has_the_storage_examples_source_model_calendar_and_threshold() -> None:
    example = load_task(str(REPO / EXAMPLE_PATH), default_namespace="sre").spec
    built_in = demo_spec(artifacts_uri="file:///tmp/demo-artifacts")
    for field in ("model", "calendar", "horizon", "threshold"):
        assert getattr(built_in, field) == getattr(example, field), field
    for field in ("query", "group_by", "aggregation", "step", "covariates"):
        assert getattr(built_in.source, field) == getattr(example.source, field), f"source.{field}"
