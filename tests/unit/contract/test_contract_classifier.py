"""The classifier's contract: the paths the operator probes and reads are routes the service has."""

from __future__ import annotations

from pathlib import Path

from foresight.api.classifierservice import DEFAULT_CATEGORIES, DEFAULT_PROMPT
from foresight.contract.classifier import HEALTH_PATH, STATS_PATH, ClassifierConfig
from foresight.serving.classifier import create_app


def test_the_operator_probes_and_reads_routes_the_service_serves(tmp_path: Path) -> None:
    config = ClassifierConfig.model_validate({"cache": {"sqlite_path": str(tmp_path / "classifier.db")}})
    app = create_app(config, environ={"DASHSCOPE_API_KEY": "sk-unused"})
    # The paths the app serves (included routers are wrapped in app.routes; OpenAPI lists them all).
    paths = set(app.openapi()["paths"])
    assert HEALTH_PATH in paths and STATS_PATH in paths


def test_the_config_defaults_are_the_apis_categories_and_prompt() -> None:
    config = ClassifierConfig()
    assert [c.key for c in config.categories] == [c.key for c in DEFAULT_CATEGORIES]
    assert config.prompt == DEFAULT_PROMPT
