"""The dataset quality report: what it counts, the thresholds as a gate, and how a run reports both."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from foresight.api.trainingjob import DatasetQuality
from foresight.timeseries import Panel
from foresight.training import TrainConfig, run_training
from foresight.training.errors import DataQualityError
from foresight.training.quality import (
    QualityReport,
    check_quality,
    image_folder_quality,
    panel_quality,
)
from foresight.training.tasks.classifier import ClassifierTask, make_shapes_dataset
from foresight.training.tasks.forecast import save_panel_npz
from training_helpers import json_lines


def _panel() -> Panel:
    t = np.arange(100, dtype=np.float64)
    values = np.stack([10 + np.sin(t / 5 + i) for i in range(5)])
    values[0, [3, 4, 5]] = np.nan  # 3 missing points
    values[1, 7] = np.inf  # out of range whatever the bounds
    values[1, 8] = -2.0  # below minValue 0
    values[2, 50] = 1000.0  # an anomaly: far outside its series' spread
    values[3] = values[4]  # a series copied under another label set
    keys = [{"user": "a"}, {"user": "b"}, {"user": "c"}, {"user": "d"}, {"user": "e"}]
    return Panel(start=0, step=3600, keys=keys, values=values)


def test_panel_report_counts_missing_duplicates_out_of_range_and_outliers() -> None:
    report = panel_quality(_panel(), DatasetQuality(min_value=0.0, max_value=100.0))
    assert (report.total, report.rows, report.missing) == (500, 5, 3)
    assert report.duplicates == 1  # d and e carry the same values
    assert report.out_of_range == 3  # inf, -2 (under 0), 1000 (over 100)
    assert report.outliers == 2  # the 1000 spike and the -2 dip (inf is not a finite outlier)
    status = report.to_status()
    assert status["passed"] is True and status["outOfRange"] == 3 and "classCounts" not in status


def test_a_repeated_label_set_is_a_duplicate_even_with_other_values() -> None:
    panel = _panel()
    panel.keys[2] = dict(panel.keys[0])
    assert panel_quality(panel).duplicates == 2


def test_without_a_range_only_infinite_values_are_out_of_range() -> None:
    assert panel_quality(_panel()).out_of_range == 1


def test_image_report_counts_unreadable_duplicate_small_images_and_classes(tmp_path: Path) -> None:
    root = make_shapes_dataset(tmp_path / "shapes", labels=("circle", "square"), per_label=4, size=24)
    (root / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")  # unreadable
    (root / "square" / "copy.png").write_bytes((root / "circle" / "circle-0000.png").read_bytes())
    task = ClassifierTask(root, {})
    report = task.quality_report(DatasetQuality(min_image_size=32))
    assert (report.total, report.missing, report.duplicates) == (10, 1, 1)
    assert report.out_of_range == 9  # every readable image is 24 px, under minImageSize 32
    assert report.class_counts == {"circle": 4, "square": 5}
    assert report.imbalance == pytest.approx(1.25)


def test_thresholds_fail_naming_the_counts_and_the_threshold() -> None:
    class Task:
        def quality_report(self, quality: DatasetQuality | None) -> QualityReport:
            return panel_quality(_panel(), quality)

    quality = DatasetQuality(max_missing_fraction=0.001, max_duplicate_fraction=0.1, max_outlier_fraction=0.5)
    with pytest.raises(DataQualityError) as info:
        check_quality(Task(), quality)
    err = info.value
    assert err.reason == "DataQualityFailed" and err.exit_code == 10 and not err.retryable
    assert err.failures == [
        "missing 3 of 500 points (0.60%) > maxMissingFraction 0.10%",
        "duplicate 1 of 5 series (20.00%) > maxDuplicateFraction 10.00%",
    ]
    assert err.details()["dataQuality"]["passed"] is False
    assert "clean the dataset or relax spec.dataset.quality" in str(err)
    # Within every threshold: the report comes back, passed.
    ok = check_quality(Task(), DatasetQuality(max_missing_fraction=0.01))
    assert ok is not None and ok.failures == []
    assert check_quality(object(), quality) is None  # a task without data to report on


def test_class_thresholds_apply_to_image_folders(tmp_path: Path) -> None:
    root = make_shapes_dataset(tmp_path / "shapes", labels=("circle", "square"), per_label=2, size=16)
    make_shapes_dataset(tmp_path / "more", labels=("circle",), per_label=6, size=16, seed=1)
    for i, src in enumerate(sorted((tmp_path / "more" / "circle").iterdir())):
        (root / "circle" / f"extra-{i}.png").write_bytes(src.read_bytes())
    report = image_folder_quality(ClassifierTask(root, {})._files)
    assert report.class_counts == {"circle": 8, "square": 2} and report.imbalance == 4.0

    class Task:
        def quality_report(self, quality: DatasetQuality | None) -> QualityReport:
            return report

    with pytest.raises(DataQualityError) as info:
        check_quality(Task(), DatasetQuality(max_class_imbalance=3, min_images_per_class=3))
    assert info.value.failures == [
        "class imbalance 4.00 (circle 8, square 2) > maxClassImbalance 3",
        "classes under minImagesPerClass 3: square 2",
    ]


def test_a_class_without_readable_images_is_infinitely_imbalanced() -> None:
    report = QualityReport(unit="images", total=3, rows=3, missing=1, class_counts={"a": 2, "b": 0})
    assert math.isinf(report.imbalance or 0)
    assert "imbalance" not in report.to_status()  # JSON has no infinity; the failure says it
    assert "imbalance inf" in report.summary()


def _forecast_config(tmp: Path, **dataset: object) -> TrainConfig:
    t = np.arange(120, dtype=np.float64)
    values = np.stack([10 + np.sin(t / 4 + i) for i in range(3)])
    values[0, ::4] = np.nan  # 30 of 360 points missing
    save_panel_npz(Panel(start=0, step=3600, keys=[{"s": str(i)} for i in range(3)], values=values),
                   tmp / "panel.npz")  # fmt: skip
    return TrainConfig.model_validate({
        "task": "forecast", "model": "gru", "epochs": 1, "batchSize": 32,
        "dataset": {"uri": str(tmp / "panel.npz"), **dataset},
        "hyperparameters": {"horizon": "6", "inputWindow": "12", "hiddenSize": "4", "windowsPerEpoch": "64"},
        "checkpoint": {"uri": str(tmp / "ckpt")},
    })  # fmt: skip


def test_a_run_over_a_threshold_fails_before_training_with_the_report_in_its_result(
    tmp_path: Path, environ: dict[str, str], stdout: io.StringIO
) -> None:
    config = _forecast_config(tmp_path, quality={"maxMissingFraction": 0.05})
    code, doc = run_training(config, environ=environ, stdout=stdout)
    assert code == 10
    assert doc["reason"] == "DataQualityFailed" and doc["retryable"] is False
    assert "missing 30 of 360 points (8.33%) > maxMissingFraction 5.00%" in doc["message"]
    assert doc["dataQuality"]["missing"] == 30 and doc["dataQuality"]["passed"] is False
    term = json.loads(Path(environ["FORESIGHT_TERMINATION_LOG"]).read_text())
    assert term["dataQuality"] == doc["dataQuality"]  # what the operator folds into status
    assert not (tmp_path / "ckpt").exists()  # nothing trained
    assert [e["event"] for e in json_lines(stdout.getvalue())] == ["result"]


def test_a_passing_run_reports_quality_before_the_first_epoch_and_in_its_result(
    tmp_path: Path, environ: dict[str, str], stdout: io.StringIO
) -> None:
    code, doc = run_training(_forecast_config(tmp_path), environ=environ, stdout=stdout)
    assert code == 0, doc
    events = json_lines(stdout.getvalue())
    assert [e["event"] for e in events][:2] == ["quality", "start"]
    assert events[0]["missing"] == 30 and "-> PASSED" in events[0]["summary"]
    assert doc["dataQuality"]["missing"] == 30 and doc["dataQuality"]["passed"] is True
