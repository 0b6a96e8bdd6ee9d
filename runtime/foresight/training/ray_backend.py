"""Ray Tune hyper-parameter search: every trial runs the same :class:`Trainer` with other hyperparameters.

The search space comes from ``TrainConfig.search`` (``uniform``, ``loguniform``, ``choice``,
``randint`` with an inclusive ``max``); ASHA stops poor trials after ``gracePeriod`` epochs. Each
trial reports after every epoch through ``tune.report`` and keeps no files (ASHA may stop it at
any epoch); the best configuration is then trained once more in this process, with checkpoints,
and published to ``output.uri``, and ``search.json`` (trials, best config, best metric) goes to
``<output.uri>-search/``. The summary is also the termination message.

Where Ray runs: ``ray.address`` set -> that cluster; inside a KubeRay RayJob ``ray.init()`` with no
arguments joins the job's cluster (``RAY_ADDRESS`` is set there); otherwise a local Ray with
``numCpus`` CPUs, no dashboard and a private temp dir is started and shut down at the end.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from .config import SearchParameter, TrainConfig, parse_hyperparameter
from .errors import TrainingError
from .launch import build_trainer_for_trial, train_once
from .progress import EpochStats, ProgressReporter
from .publish import open_publisher

__all__ = ["SearchFailedError", "build_search_space", "pick_best", "run_search"]

log = logging.getLogger(__name__)


class SearchFailedError(TrainingError):
    reason = "SearchFailed"
    exit_code = 7


def build_search_space(space: Mapping[str, SearchParameter]) -> dict[str, Any]:
    """Ray Tune sampling domains for a ``search.space`` (``randint``'s ``max`` is inclusive here)."""
    from ray import tune

    out: dict[str, Any] = {}
    for name, p in space.items():
        if p.type == "choice":
            out[name] = tune.choice([parse_hyperparameter(v) for v in p.values])
            continue
        assert p.min is not None and p.max is not None  # checked by SearchParameter
        if p.type == "uniform":
            out[name] = tune.uniform(p.min, p.max)
        elif p.type == "loguniform":
            out[name] = tune.loguniform(p.min, p.max)
        else:
            out[name] = tune.randint(int(p.min), int(p.max) + 1)
    return out


def _trial(trial_params: dict[str, Any], *, base: TrainConfig, s3: Any) -> None:
    """One trial, run in a Ray worker process: no checkpoints, no artifact, metrics via tune.report."""
    from ray import tune

    cfg = base.with_hyperparameters(trial_params).model_copy(
        update={"search": None, "checkpoint": None, "output": None}
    )

    def report(stats: EpochStats) -> None:
        tune.report({"epoch": stats.epoch, "loss": stats.loss, "val_loss": stats.val_loss, **stats.metrics})

    with tempfile.TemporaryDirectory(prefix="foresight-trial-") as tmp:
        build_trainer_for_trial(cfg, Path(tmp), s3, None, report).run()


def _ray_init(config: TrainConfig, environ: Mapping[str, str], workdir: Path) -> bool:
    """Connect to or start Ray; returns whether this process started (and must stop) it."""
    import ray

    if ray.is_initialized():
        return False
    if config.ray.address is not None:
        ray.init(address=config.ray.address, log_to_driver=False)
        return True
    if environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False)  # inside a RayJob: joins its cluster
        return True
    # A local Ray: these must be in the process environment before ray.init (see FACTS.md).
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    temp_dir = config.ray.temp_dir or tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    ray.init(
        num_cpus=config.ray.num_cpus or 2,
        include_dashboard=False,
        _temp_dir=temp_dir,
        log_to_driver=False,
        configure_logging=False,
    )
    return True


def pick_best(trials: list[dict[str, Any]], *, metric: str, mode: str) -> dict[str, Any]:
    """The best of ``trials`` (as :func:`run_search` lists them) by their last ``metric``.

    A trial ASHA stopped at an early rung reports an earlier epoch's metric, which is not
    comparable with a full run's (and the scheduler already judged it worse at that rung), so the
    best is chosen among the trials that trained every epoch when any did. Raises
    :class:`SearchFailedError` when no trial reported the metric.
    """
    scored = [t for t in trials if t["metric"] is not None and t["status"] != "ERROR"]
    if not scored:
        errors = "; ".join(f"{t['id']}: {t.get('error', t['status'])}" for t in trials)
        raise SearchFailedError(
            f"all {len(trials)} trials failed or reported no {metric!r}: {errors}; "
            "check the dataset and the search space bounds"
        )
    complete = [t for t in scored if t["status"] == "TERMINATED"] or scored
    pick = min if mode == "min" else max
    return pick(complete, key=lambda t: t["metric"])


def run_search(
    config: TrainConfig, *, environ: Mapping[str, str], stdout: TextIO, workdir: Path, s3: Any | None = None
) -> dict[str, Any]:
    """Run the search in ``config.search``; returns the summary (trials, best trial, best artifact)."""
    import ray

    search = config.search
    assert search is not None
    reporter = ProgressReporter(stdout=stdout)
    started = _ray_init(config, environ, workdir)
    try:
        reporter.event("search", trials=search.num_samples, metric=search.metric, mode=search.mode)
        grid = _tuner(config, workdir, s3).fit()
        trials = []
        for i in range(len(grid)):
            trial = _trial_row(grid[i], config)
            trials.append(trial)
            reporter.event("trial", **trial)
        best = pick_best(trials, metric=search.metric, mode=search.mode)
        summary: dict[str, Any] = {
            "reason": "Succeeded",
            "metric": search.metric,
            "mode": search.mode,
            "bestTrial": best,
            "bestConfig": best["config"],
            "bestMetric": best["metric"],
            "trials": trials,
        }
        if config.output is not None:
            reporter.event("refit", config=best["config"])
            summary.update(_refit_best(config, best["config"], summary, environ, stdout, workdir, s3))
        reporter.event("searchDone", bestConfig=best["config"], bestMetric=best["metric"])
        return summary
    finally:
        if started:
            ray.shutdown()


def _tuner(config: TrainConfig, workdir: Path, s3: Any | None) -> Any:
    """A Ray Tune ``Tuner`` of :func:`_trial` over ``search.space`` (ASHA or FIFO)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

    search = config.search
    assert search is not None
    scheduler: TrialScheduler = (
        ASHAScheduler(
            max_t=config.epochs, grace_period=min(search.grace_period, config.epochs), reduction_factor=2
        )
        if search.scheduler == "asha"
        else FIFOScheduler()
    )
    resources = {"cpu": config.ray.cpus_per_trial, "gpu": config.ray.gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(_trial, base=config, s3=s3), resources)
    return tune.Tuner(
        trainable,
        param_space=build_search_space(search.space),
        tune_config=tune.TuneConfig(
            metric=search.metric,
            mode=search.mode,
            num_samples=search.num_samples,
            scheduler=scheduler,
            max_concurrent_trials=search.max_concurrent,
        ),
        run_config=tune.RunConfig(
            name="foresight-search", storage_path=str(workdir / "ray-results"), verbose=0
        ),
    )


def _trial_row(r: Any, config: TrainConfig) -> dict[str, Any]:
    """One trial's ``ray.tune.Result`` as the summary lists it (id, config, metric, status, epochs)."""
    search = config.search
    assert search is not None
    metrics = r.metrics or {}
    epochs = int(metrics.get("training_iteration", 0) or 0)
    if r.error is not None:
        status = "ERROR"
    elif epochs < config.epochs:
        status = "STOPPED"  # ASHA ended it early
    else:
        status = "TERMINATED"
    value = metrics.get(search.metric)
    trial: dict[str, Any] = {
        "id": str(metrics.get("trial_id", Path(r.path).name)),
        "config": {k: r.config.get(k) for k in search.space} if r.config else {},
        "metric": float(value) if value is not None else None,
        "status": status,
        "epochs": epochs,
    }
    if r.error is not None:
        trial["error"] = str(r.error).splitlines()[-1][:300] if str(r.error) else type(r.error).__name__
    return trial


def _refit_best(
    config: TrainConfig, best_config: dict[str, Any], summary: Mapping[str, Any], environ: Mapping[str, str],
    stdout: TextIO, workdir: Path, s3: Any | None,
) -> dict[str, Any]:  # fmt: skip
    """Train the best configuration once more and publish it with ``search.json`` next to it.

    Trials keep no artifacts (ASHA may stop any of them mid-way); this model is the search's result.
    Returns what the summary gains: the artifact's URI and checksums, its metrics, ``searchUri``.
    """
    assert config.output is not None
    final = train_once(
        config.with_hyperparameters(best_config).model_copy(update={"search": None}),
        environ={k: v for k, v in environ.items() if k not in ("RANK", "WORLD_SIZE")},
        stdout=stdout,
        workdir=workdir,
    )
    keys = ("artifactUri", "sha256", "manifestSha256", "metrics")
    gained: dict[str, Any] = {k: final[k] for k in keys if k in final}
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "search.json").write_text(
            json.dumps({**summary, **gained}, indent=2, sort_keys=True, default=str)
        )
        published = open_publisher(f"{config.output.uri.rstrip('/')}-search", s3).publish(Path(tmp))
    return {**gained, "searchUri": published.uri}
