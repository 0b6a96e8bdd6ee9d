"""The optimisation toolkit on the reference LSTM (the FACTS.md model), a GRU and a Transformer encoder.

Most exports use the TorchScript exporter to keep the suite fast; one test runs the dynamo
exporter for real and one forces its failure to check the fallback.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from foresight.artifacts import sha256_file
from foresight.optimize import (
    ExportError,
    check_parity,
    compare_latency,
    export_onnx,
    make_session,
    measure,
    optimize_model,
    prune_model,
    quantize_int8,
)
from foresight.optimize import onnx_export as export_mod
from foresight.optimize.reference import ReferenceGRU, ReferenceLSTM, ReferenceTransformer, example_input
from torch import nn

MODELS = {"lstm": ReferenceLSTM, "gru": ReferenceGRU, "transformer": ReferenceTransformer}


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return MODELS[name]().eval()


@pytest.mark.parametrize("name", list(MODELS))
def test_export_has_parity_with_eager_and_a_dynamic_batch(name: str, tmp_path: Path) -> None:
    model = _model(name)
    x = example_input(batch=4, window=24)
    result = export_onnx(model, x, tmp_path / "m.onnx", exporter="torchscript")
    assert result.exporter == "torchscript" and result.dynamic_batch

    parity = check_parity(model, result.path, x, threshold=1e-4, batch_sizes=(1, 7))
    assert parity.passed, parity
    assert parity.max_abs_diff < 1e-4
    assert parity.batch_sizes == [4, 1, 7]
    assert parity.reference_max_abs > 0  # outputs are not trivially zero

    session = make_session(result.path)
    for batch in (1, 7):
        xb = example_input(batch=batch, window=24, seed=batch)
        got = session.run(None, {"input": xb.numpy()})[0]
        with torch.no_grad():
            want = model(xb).numpy()
        assert got.shape == (batch, 6)
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_parity_check_catches_a_model_that_differs(tmp_path: Path) -> None:
    model = _model("lstm")
    x = example_input(batch=2, window=16)
    path = export_onnx(model, x, tmp_path / "m.onnx", exporter="torchscript").path
    with torch.no_grad():
        model.head.bias += 0.01  # the eager model drifts from what was exported
    parity = check_parity(model, path, x, threshold=1e-4)
    assert not parity.passed
    assert parity.max_abs_diff == pytest.approx(0.01, rel=1e-3)


def test_dynamo_exporter_is_tried_first_and_works_for_an_lstm(tmp_path: Path) -> None:
    model = ReferenceLSTM(hidden_size=8, layers=1).eval()
    x = example_input(batch=1, window=8)  # batch 1 example: export must still keep the batch dynamic
    result = export_onnx(model, x, tmp_path / "m.onnx")
    assert result.exporter == "dynamo", result.fallback_reason
    assert result.fallback_reason is None
    assert check_parity(model, result.path, x, batch_sizes=(1, 5)).passed


def test_dynamo_failure_falls_back_to_torchscript_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = export_mod._run_exporter

    def dynamo_breaks(name: str, *args: object) -> None:
        if name == "dynamo":
            raise RuntimeError("unsupported operator aten::frobnicate")
        real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(export_mod, "_run_exporter", dynamo_breaks)
    model = _model("gru")
    result = export_onnx(model, example_input(2, 12), tmp_path / "m.onnx")
    assert result.exporter == "torchscript"
    assert result.fallback_reason is not None and "aten::frobnicate" in result.fallback_reason
    assert "falling back" in caplog.text

    monkeypatch.setattr(export_mod, "_run_exporter", lambda *a: (_ for _ in ()).throw(RuntimeError("nope")))
    with pytest.raises(ExportError) as caught:
        export_onnx(model, example_input(2, 12), tmp_path / "bad.onnx")
    assert set(caught.value.reasons) == {"dynamo", "torchscript"}
    assert not (tmp_path / "bad.onnx").exists()


def test_int8_lstm_is_smaller_and_close_to_fp32(tmp_path: Path) -> None:
    model = _model("lstm")
    x = example_input(batch=4, window=24)
    fp32 = export_onnx(model, x, tmp_path / "m.onnx", exporter="torchscript").path
    q = quantize_int8(fp32, tmp_path / "m.int8.onnx", model=model, inputs=x, parity_threshold=5e-2)
    assert q.int8_size_bytes < q.fp32_size_bytes
    assert q.size_ratio < 0.5  # the LSTM's weights dominate and all become int8
    assert q.parity is not None and q.parity.passed
    assert 0 < q.parity.max_abs_diff < 5e-2  # int8 really changed the numbers, within the bound
    ops = {node.op_type for node in onnx.load(q.path).graph.node}
    assert "DynamicQuantizeLSTM" in ops


@pytest.mark.parametrize("name", ["gru", "transformer"])
def test_int8_of_other_encoders_runs_within_the_loose_bound(name: str, tmp_path: Path) -> None:
    model = _model(name)
    x = example_input(batch=4, window=24)
    fp32 = export_onnx(model, x, tmp_path / "m.onnx", exporter="torchscript").path
    q = quantize_int8(fp32, tmp_path / "m.int8.onnx", model=model, inputs=x)
    assert q.parity is not None and q.parity.passed, q.parity
    # ORT has no int8 GRU kernel (only its Linear head quantises), so a GRU barely shrinks.
    if name == "transformer":
        assert q.size_ratio < 1.0


@pytest.mark.parametrize("name", list(MODELS))
def test_pruning_reaches_the_requested_sparsity_and_the_model_still_runs(name: str) -> None:
    model = _model(name)
    x = example_input(batch=3, window=16)
    result = prune_model(model, 0.6)
    assert result.sparsity == pytest.approx(0.6, abs=0.01)
    assert 0 < result.model_sparsity <= result.sparsity
    # Permanent: no masks or originals left behind, plain parameters that are really zero.
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.endswith("_orig") for n in names)
    assert not any(n.endswith("_mask") for n, _ in model.named_buffers())
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, 6) and torch.isfinite(out).all()
    with pytest.raises(ValueError):
        prune_model(model, 1.0)


def test_latency_report_fields_are_sane(tmp_path: Path) -> None:
    model = _model("gru")
    x = example_input(batch=2, window=16)
    path = export_onnx(model, x, tmp_path / "m.onnx", exporter="torchscript").path
    report = compare_latency(model, x, {"onnx": path}, batch_sizes=(1, 8), warmup=1, repeats=5)
    assert {(r.runtime, r.batch_size) for r in report.results} == {
        ("eager", 1),
        ("onnx", 1),
        ("eager", 8),
        ("onnx", 8),
    }
    for r in report.results:
        assert 0 < r.p50_ms <= r.p99_ms
        assert r.repeats == 5 and r.rows_per_s > 0
    assert report.get("onnx", 1).threads == 1
    assert report.speedup("onnx", 1) > 0
    assert report.sizes_bytes["onnx"] == Path(path).stat().st_size


def test_measure_uses_the_injected_clock() -> None:
    ticks = iter(range(100))
    calls = []
    samples = measure(lambda: calls.append(1), warmup=2, repeats=3, clock=lambda: float(next(ticks)))
    assert samples == [1000.0, 1000.0, 1000.0]
    assert len(calls) == 5


def test_optimize_model_writes_artifacts_and_a_json_report(tmp_path: Path) -> None:
    model = _model("lstm")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = optimize_model(
        model,
        example_input(batch=4, window=24),
        tmp_path / "out",
        prune_sparsity=0.3,
        batch_sizes=(1, 16),
        exporter="torchscript",
        latency_repeats=3,
        latency_warmup=1,
    )
    assert report.passed
    assert [a.name for a in report.artifacts] == ["weights", "onnx", "onnx-int8"]
    for record in report.artifacts:
        assert record.sha256 == sha256_file(record.path)
        assert record.size_bytes == Path(record.path).stat().st_size
    assert report.artifact("onnx-int8").size_bytes < report.artifact("onnx").size_bytes
    assert report.parity is not None and report.parity.max_abs_diff < 1e-4
    assert report.pruning is not None and report.pruning.sparsity == pytest.approx(0.3, abs=0.01)
    assert report.latency is not None and len(report.latency.results) == 6
    # The caller's model is untouched (pruning worked on a copy).
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])

    on_disk = json.loads((tmp_path / "out" / "optimization.json").read_text())
    assert on_disk == json.loads(json.dumps(report.to_dict()))
    assert on_disk["quantization"]["parity"]["passed"] is True
    assert on_disk["export"]["exporter"] == "torchscript"


def test_optimize_model_without_onnx_only_saves_weights(tmp_path: Path) -> None:
    report = optimize_model(_model("gru"), example_input(2, 8), tmp_path, onnx=False, batch_sizes=())
    assert [a.name for a in report.artifacts] == ["weights"]
    assert report.export is None and report.latency is None and report.passed
