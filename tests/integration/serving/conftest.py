"""Fixtures of the classifier-service integration tests: the DashScope stand-in, test images, configs."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from foresight.contract.classifier import ClassifierConfig  # noqa: E402

from tests.servers.dashscope_standin import DashScopeStandIn  # noqa: E402
from tests.servers.redis import RedisServer  # noqa: E402


@pytest.fixture
def standin() -> Iterator[DashScopeStandIn]:
    with DashScopeStandIn(answer="pets") as s:
        yield s


@pytest.fixture
def dashscope_config(standin: DashScopeStandIn, tmp_path: Path) -> Callable[..., ClassifierConfig]:
    def build(**overrides: object) -> ClassifierConfig:
        data: dict[str, object] = {
            "backend": {
                "type": "dashscope",
                "price_per_call": 0.01,
                "dashscope": {
                    "base_url": standin.base_url,
                    "max_retries": 2,
                    "backoff_seconds": 0.01,
                    "timeout_seconds": 5,
                },
            },
            "cache": {"store": "sqlite", "sqlite_path": str(tmp_path / "classifier.db")},
        }
        data.update(overrides)
        return ClassifierConfig.model_validate(data)

    return build


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server
