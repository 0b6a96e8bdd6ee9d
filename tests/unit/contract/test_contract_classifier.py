"""The classifier's contract: the routes the operator reads, the config it renders (variants, workers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from foresight.api.classifierservice import DEFAULT_CATEGORIES, DEFAULT_PROMPT, ClassifierServiceSpec
from foresight.contract.classifier import (
    DEFAULT_VARIANT,
    FEEDBACK_PATH,
    HEALTH_PATH,
    STATS_PATH,
    ClassifierConfig,
    VariantSource,
    classifier_config_from_spec,
    workers_for,
)
from foresight.contract.experiment import ROUTING_DIR, ROUTING_FILE
from foresight.serving.classifier import create_app


def test_the_operator_probes_and_reads_routes_the_service_serves(tmp_path: Path) -> None:
    config = ClassifierConfig.model_validate({"cache": {"sqlite_path": str(tmp_path / "classifier.db")}})
    app = create_app(config, environ={"DASHSCOPE_API_KEY": "sk-unused"})
    # The paths the app serves (included routers are wrapped in app.routes; OpenAPI lists them all).
    paths = set(app.openapi()["paths"])
    assert HEALTH_PATH in paths and STATS_PATH in paths and FEEDBACK_PATH in paths


def test_the_config_defaults_are_the_apis_categories_and_prompt() -> None:
    config = ClassifierConfig()
    assert [c.key for c in config.categories] == [c.key for c in DEFAULT_CATEGORIES]
    assert config.prompt == DEFAULT_PROMPT


def _spec(**extra: object) -> ClassifierServiceSpec:
    return ClassifierServiceSpec.model_validate(
        {
            "backend": {
                "type": "dashscope",
                "dashscope": {"model": "qwen-vl-plus", "apiKeySecret": {"name": "s", "key": "k"}},
            },
            **extra,
        }
    )


def _render(spec: ClassifierServiceSpec, **kw: object) -> ClassifierConfig:
    return classifier_config_from_spec(
        spec,
        namespace="photos",
        name="cls",
        sqlite_path="c.db",
        host="0.0.0.0",
        **kw,  # type: ignore[arg-type]
    )


def test_a_config_without_variants_serves_its_backend_as_the_one_unnamed_variant() -> None:
    config = _render(_spec())
    assert config.variants == []
    [(name, backend, prompt)] = config.served_variants()
    assert (name, backend.type, backend.dashscope.model) == (DEFAULT_VARIANT, "dashscope", "qwen-vl-plus")
    assert "pets (Pets / 宠物)" in prompt
    assert config.routing.file == f"{ROUTING_DIR}/{ROUTING_FILE}"
    assert config.deadline_seconds == 20 and config.workers == 1  # resources.cpu 500m: one worker


def test_variants_render_onnx_models_and_dashscope_models_with_their_prompts() -> None:
    config = _render(
        _spec(),
        variants=[
            VariantSource("control", onnx_model_path="/var/lib/foresight/models/v1/model.onnx"),
            VariantSource("candidate", dashscope_model="qwen-vl-max", prompt="Pick one of {categories}."),
        ],
        routing_file="/tmp/routing.json",
    )
    served = config.served_variants()
    assert [name for name, _, _ in served] == ["control", "candidate"]
    control, candidate = served[0][1], served[1][1]
    assert control.type == "onnx" and control.onnx is not None
    assert control.onnx.model_path.endswith("v1/model.onnx") and control.price_per_call == 0
    assert candidate.type == "dashscope" and candidate.dashscope.model == "qwen-vl-max"
    assert candidate.price_per_call == 0.008  # the spec's DashScope settings
    assert served[1][2].startswith("Pick one of social_activities (")
    assert config.routing.file == "/tmp/routing.json"
    # The rendered file (what the ConfigMap holds) reads back as the same config.
    text = config.model_dump_json(by_alias=True)
    assert ClassifierConfig.model_validate_json(text) == config


def test_an_onnx_spec_needs_an_onnx_file_for_a_variant_without_one() -> None:
    spec = ClassifierServiceSpec.model_validate({"backend": {"type": "onnx", "onnx": {"modelVersion": "v1"}}})
    with pytest.raises(ValueError, match="variant 'b' has no ONNX model path"):
        _render(
            spec, onnx_model_path="/m/a.onnx", variants=[VariantSource("a", "/m/a.onnx"), VariantSource("b")]
        )


@pytest.mark.parametrize(
    ("resources", "workers", "expected"),
    [
        ({"cpu": "500m"}, None, 1),
        ({"cpu": "2"}, None, 2),
        ({"cpu": "1", "cpuLimit": "3500m"}, None, 3),  # the limit, when set, rounded down
        ({"cpu": "4"}, 1, 1),  # spec.workers wins
    ],
)
def test_workers_are_sized_from_the_pods_cpu(
    resources: dict[str, str], workers: int | None, expected: int
) -> None:
    spec = _spec(resources=resources, **({"workers": workers} if workers else {}))
    assert workers_for(spec) == expected
    assert _render(spec).workers == expected


def test_the_deadline_comes_from_the_spec() -> None:
    assert _render(_spec(deadlineSeconds=7)).deadline_seconds == 7


def test_variant_names_are_unique() -> None:
    with pytest.raises(ValueError, match="variant names must be unique"):
        ClassifierConfig.model_validate(
            {"variants": [{"name": "a", "backend": {}}, {"name": "a", "backend": {}}]}
        )
