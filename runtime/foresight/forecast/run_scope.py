"""Which part of a ForecastTask one run covers, and so where it reads and writes.

A single-pod run covers the whole task (:meth:`RunScope.whole_task`): it keeps its models and its
last forecast under the task's store prefix, pushes the task's one Pushgateway group, writes the
task's scrape exposition, reads the lookback up to now and fits the task's models itself. A shard
of a sharded run (:mod:`foresight.forecast.shard_run`) covers its series only: its own store
prefix, its own group (``shard`` label) and exposition, the plan's grid (every shard reads the
same ``start..end``), and networks the plan pod trained once (:class:`ModelMaker`).

:class:`~foresight.forecast.pipeline.TaskRun` takes a scope and is otherwise the same code path
for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from foresight.api.forecasttask import ForecastTaskSpec
from foresight.contract.forecast import pushgateway_group

from . import persistence
from .models.base import EpochReport, Model

__all__ = ["ModelMaker", "RunScope"]


class ModelMaker(Protocol):
    """Makes the models a run fits, when they are not simply the task's (built from its spec)."""

    def task_model(self, spec: ForecastTaskSpec) -> Model:
        """The (unfitted) model of the task: what ``model.type`` asks for."""
        ...

    def fold_factory(
        self, spec: ForecastTaskSpec, name: str, on_epoch: Callable[[EpochReport], None] | None
    ) -> Callable[[], Model]:
        """Fresh models named ``name`` for the backtest of a single-model task."""
        ...


@dataclass(frozen=True)
class RunScope:
    """What one run covers: where its state lives, what it pushes and serves, which grid it reads."""

    prefix: str
    """Store prefix of its saved models and its last forecast."""
    group_key: dict[str, str] = field(default_factory=dict)
    """Its Pushgateway group."""
    exposition_key: str = ""
    """Scrape mode: the store key of its exposition (what ``foresight serve forecasts`` serves)."""
    window: tuple[int, int] | None = None
    """``(start, end)`` of the grid it reads, Unix seconds on the step; ``None``: the lookback up to
    the run's clock."""
    models: ModelMaker | None = None
    """``None``: the task's models, fitted by the run."""
    shard: int | None = None
    """The shard's index; ``None`` for the whole task."""

    @classmethod
    def whole_task(cls, namespace: str, name: str) -> RunScope:
        """A single-pod run: the task's prefix, group and exposition, the lookback up to now."""
        return cls(
            prefix=persistence.task_prefix(namespace, name),
            group_key=pushgateway_group(namespace, name),
            exposition_key=persistence.exposition_key(namespace, name),
        )

    @classmethod
    def of_shard(
        cls,
        namespace: str,
        name: str,
        index: int,
        *,
        window: tuple[int, int],
        models: ModelMaker | None,
    ) -> RunScope:
        """Shard ``index`` of a sharded run over the plan's grid ``window``."""
        return cls(
            prefix=persistence.shard_prefix(namespace, name, index),
            group_key=pushgateway_group(namespace, name, index),
            exposition_key=persistence.exposition_key(namespace, name, shard=index),
            window=window,
            models=models,
            shard=index,
        )
