"""Single-process training: artifact, termination message, progress, resume, mismatch, NaN."""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from foresight.training import (
    CheckpointMismatchError,
    EpochStats,
    LocalDirStore,
    TrainConfig,
    run_training,
)
from foresight.training.checkpoint import latest_checkpoint, load_checkpoint
from foresight.training.trainer import Trainer
from torch import nn
from torch.utils.data import Dataset, TensorDataset
from training_helpers import json_lines, toy_config


def _term(environ: Mapping[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(Path(environ["FORESIGHT_TERMINATION_LOG"]).read_text())
    return doc


def test_single_process_run_writes_artifact_progress_and_termination_message(
    tmp_path: Path, environ: dict[str, str], stdout: io.StringIO
) -> None:
    config = toy_config(tmp_path)
    code, doc = run_training(config, environ=environ, stdout=stdout)
    assert code == 0, doc
    term = _term(environ)
    assert term == json.loads(json.dumps(doc, default=str))
    assert term["reason"] == "Succeeded" and term["epochs"] == 3 and term["resumedFromEpoch"] is None
    model_pt = tmp_path / "out" / "model.pt"
    assert term["sha256"] == hashlib.sha256(model_pt.read_bytes()).hexdigest()
    assert term["artifactUri"] == (tmp_path / "out").as_uri()
    assert set(term["files"]) >= {"model.pt", "training.json"}
    assert math.isfinite(term["metrics"]["val_loss"])
    # The artifact is loadable weights-only and equals the final state the summary hashes.
    state = torch.load(model_pt, weights_only=True)
    assert set(state) == {"0.weight", "0.bias", "3.weight", "3.bias"}
    epochs = [e for e in json_lines(stdout.getvalue()) if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert all(e["epochs"] == 3 and e["eta_seconds"] >= 0 and math.isfinite(e["loss"]) for e in epochs)
    assert epochs[-1]["eta_seconds"] == 0
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress["epoch"] == 3 and progress["epochs"] == 3
    training = json.loads((tmp_path / "out" / "training.json").read_text())
    assert [h["epoch"] for h in training["history"]] == [1.0, 2.0, 3.0]
    # The curves are published with the model (a PNG, listed and checksummed like every file).
    curves = tmp_path / "out" / "training-curves.png"
    assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and curves.stat().st_size > 5000
    assert term["files"]["training-curves.png"] == hashlib.sha256(curves.read_bytes()).hexdigest()


def test_same_seed_gives_identical_weights(tmp_path: Path, environ: dict[str, str]) -> None:
    a = run_training(toy_config(tmp_path / "a"), environ=environ, stdout=io.StringIO())[1]
    b = run_training(toy_config(tmp_path / "b"), environ=environ, stdout=io.StringIO())[1]
    c = run_training(toy_config(tmp_path / "c", seed=8), environ=environ, stdout=io.StringIO())[1]
    assert a["stateSha256"] == b["stateSha256"]
    assert a["stateSha256"] != c["stateSha256"]


class _Crash(RuntimeError):
    pass


def test_resume_after_crash_continues_at_next_epoch_with_optimizer_state(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    # Uninterrupted reference run.
    ref_out = io.StringIO()
    code, ref = run_training(toy_config(tmp_path / "ref"), environ=environ, stdout=ref_out)
    assert code == 0
    ref_losses = [e["loss"] for e in json_lines(ref_out.getvalue()) if e["event"] == "epoch"]

    # Same job, killed right after the epoch-2 checkpoint (the hook runs after checkpointing).
    def crash_after_2(stats: EpochStats) -> None:
        if stats.epoch == 2:
            raise _Crash("pod killed")

    config = toy_config(tmp_path / "job")
    code, failed = run_training(config, environ=environ, stdout=io.StringIO(), on_epoch_end=crash_after_2)
    assert code == 1 and failed["reason"] == "TrainingFailed" and "pod killed" in failed["message"]
    store = LocalDirStore(tmp_path / "job" / "ckpt")
    assert store.names() == ["epoch-000001.pt", "epoch-000002.pt"]
    ckpt = latest_checkpoint(store, ref["fingerprint"])
    assert ckpt is not None and ckpt.epoch == 2
    steps_per_epoch = math.ceil(int(256 * 0.8) / 32)
    assert all(int(s["step"]) == 2 * steps_per_epoch for s in ckpt.optimizer["state"].values())

    # Restart: resumes after epoch 2, runs only epoch 3, with AdamW's state carried over.
    seen_steps: list[int] = []
    trainer_ref: list[Trainer] = []

    def check_optimizer(stats: EpochStats) -> None:
        opt = trainer_ref[0].optimizer
        assert opt is not None
        seen_steps.extend(int(s["step"]) for s in opt.state.values())

    from foresight.training.progress import ProgressReporter
    from foresight.training.publish import open_publisher
    from foresight.training.tasks.toy import ToyRegressionTask

    out = io.StringIO()
    trainer = Trainer(
        config,
        ToyRegressionTask(config.hyperparameters, seed=config.seed),
        reporter=ProgressReporter(stdout=out),
        checkpoints=store,
        output=open_publisher(str(tmp_path / "job" / "out")),
        on_epoch_end=check_optimizer,
    )
    trainer_ref.append(trainer)
    result = trainer.run()
    assert result.resumed_from_epoch == 2
    events = json_lines(out.getvalue())
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [3]
    assert events[0] == {"checkpoint": store.uri, "epoch": 2, "event": "resumed"}
    # Without restored optimizer state AdamW's step counter would restart at 0.
    assert seen_steps and set(seen_steps) == {3 * steps_per_epoch}
    # Loss history continues, and on CPU (deterministic kernels, same shuffles, restored RNG for
    # dropout) the resumed run ends with exactly the uninterrupted run's weights.
    assert [h["loss"] for h in result.history] == pytest.approx(ref_losses)
    assert result.state_sha256 == ref["stateSha256"]


def test_resumed_run_reports_resumed_from_in_termination_message(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    config = toy_config(tmp_path, epochs=2)
    assert run_training(config, environ=environ, stdout=io.StringIO())[0] == 0
    longer = config.model_copy(update={"epochs": 3})
    code, doc = run_training(longer, environ=environ, stdout=io.StringIO())
    assert code == 0
    assert _term(environ)["resumedFromEpoch"] == 2 and doc["epochs"] == 3


def test_checkpoint_of_another_architecture_is_refused(tmp_path: Path, environ: dict[str, str]) -> None:
    code, first = run_training(toy_config(tmp_path, epochs=1), environ=environ, stdout=io.StringIO())
    assert code == 0
    other = toy_config(tmp_path, epochs=1, hyperparameters={"hidden": "8", "samples": "256"})
    code, doc = run_training(other, environ=environ, stdout=io.StringIO())
    assert code == 5
    assert doc["reason"] == "CheckpointMismatch" == _term(environ)["reason"]
    assert first["fingerprint"] in doc["message"]
    store = LocalDirStore(tmp_path / "ckpt")
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(store, "epoch-000001.pt", "0123456789abcdef")
    assert info.value.found == first["fingerprint"] and info.value.expected == "0123456789abcdef"


def test_learning_rate_change_keeps_fingerprint(tmp_path: Path, environ: dict[str, str]) -> None:
    config = toy_config(tmp_path, epochs=1)
    assert run_training(config, environ=environ, stdout=io.StringIO())[0] == 0
    hp = {**config.hyperparameters, "learningRate": 0.001}
    code, doc = run_training(
        config.model_copy(update={"epochs": 2, "hyperparameters": hp}), environ=environ, stdout=io.StringIO()
    )
    assert code == 0 and doc["resumedFromEpoch"] == 1


def test_checkpoint_files_load_with_weights_only(tmp_path: Path, environ: dict[str, str]) -> None:
    assert run_training(toy_config(tmp_path, epochs=2), environ=environ, stdout=io.StringIO())[0] == 0
    payload = torch.load(tmp_path / "ckpt" / "epoch-000002.pt", weights_only=True)
    assert payload["epoch"] == 2 and "optimizer" in payload and "rng_torch" in payload


class _NaNAfterTask:
    """A task whose loss turns NaN at a chosen global step (a diverging model)."""

    name = "nan-after"

    def __init__(self, nan_at_step: int) -> None:
        self.nan_at_step = nan_at_step
        self.calls = 0

    def architecture(self, hparams: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def build_model(self, hparams: Mapping[str, Any]) -> nn.Module:
        return nn.Linear(2, 1)

    def datasets(self) -> tuple[Dataset[Any], Dataset[Any]]:
        x = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
        return TensorDataset(x, x.sum(1, keepdim=True)), TensorDataset(x[:8], x[:8].sum(1, keepdim=True))

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        x, y = batch
        self.calls += 1
        loss = nn.functional.mse_loss(model(x), y)
        return loss * float("nan") if self.calls > self.nan_at_step else loss

    def evaluate(self, model: nn.Module, val: Dataset[Any]) -> dict[str, float]:
        return {"val_loss": 0.0}

    def export(self, model: nn.Module, directory: Path) -> str:
        torch.save(model.state_dict(), directory / "model.pt")
        return "model.pt"


def test_nan_loss_fails_with_reason_epoch_and_step(tmp_path: Path, environ: dict[str, str]) -> None:
    config = TrainConfig(task="nan-after", epochs=3, batch_size=10, output={"uri": str(tmp_path / "out")})
    out = io.StringIO()
    # 4 steps per epoch: global step 6 is epoch 2, step index 1.
    code, _ = run_training(config, environ=environ, stdout=out, task=_NaNAfterTask(nan_at_step=5))
    assert code == 4
    term = _term(environ)
    assert term["reason"] == "NaNLoss" and term["retryable"] is False
    assert "epoch 2, step 1" in term["message"] and "learning rate" in term["message"]
    assert not (tmp_path / "out").exists()  # no garbage artifact
    assert json_lines(out.getvalue())[-1]["exitCode"] == 4


def test_missing_dataset_and_custom_task_are_config_errors(tmp_path: Path, environ: dict[str, str]) -> None:
    missing = TrainConfig(task="classifier", dataset={"uri": str(tmp_path / "nope")})
    code, doc = run_training(missing, environ=environ, stdout=io.StringIO())
    assert code == 3 and doc["reason"] == "DatasetNotFound" and str(tmp_path / "nope") in doc["message"]
    code, doc = run_training(TrainConfig(task="custom"), environ=environ, stdout=io.StringIO())
    assert code == 2 and "own image" in doc["message"]
