"""The dataset quality report computed before training (seed 002: completeness, anomalies, duplicates).

Every built-in task's data gets one report, shown on the run's output (a ``quality`` event line),
carried in the result message (``dataQuality``) and folded by the operator into the
TrainingJob's ``status.dataQuality``. With ``spec.dataset.quality`` thresholds it is a gate: a
dataset over any threshold fails the job with :class:`~foresight.training.errors.DataQualityError`
(reason ``DataQualityFailed``) before the first epoch, naming the counts and the threshold.

What is counted:

- a forecast **panel** (series x steps): ``missing`` NaN points; ``duplicates`` series identical
  to an earlier one (the same label set, or the same value at every step: a metric scraped twice);
  ``outOfRange`` infinite points and points outside ``[minValue, maxValue]``; ``outliers`` points
  more than :data:`OUTLIER_Z` robust standard deviations (1.4826 x MAD) from their series' median;
- a **classifier** image folder: ``missing`` files that cannot be decoded; ``duplicates`` files
  with the same bytes as an earlier one (in any class); ``outOfRange`` images with a side shorter
  than ``minImageSize``; the readable images per class and the imbalance (biggest / smallest).

Pure computation on data already loaded (the panel) or on local files (the folder).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from foresight.api.trainingjob import DatasetQuality

from .errors import DataQualityError

if TYPE_CHECKING:
    from foresight.timeseries import Panel

__all__ = [
    "OUTLIER_Z",
    "QualityChecked",
    "QualityReport",
    "check_quality",
    "image_folder_quality",
    "panel_quality",
]

OUTLIER_Z = 6.0
"""Robust z-score over which a point is an outlier: far enough that daily and weekly rhythms and
ordinary bursts stay under it, so what is counted is a stuck exporter, a unit change or a spike."""
_MAX_CLASSES_SHOWN = 20
"""Class counts kept in the report: the termination message that carries it is capped at 4 KiB."""


@dataclass
class QualityReport:
    """Counts of one dataset; fractions are taken over ``total`` (points / files) or ``rows``."""

    unit: str
    """``points`` (a panel) or ``images`` (a folder)."""
    total: int
    rows: int
    missing: int = 0
    duplicates: int = 0
    out_of_range: int = 0
    outliers: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def imbalance(self) -> float | None:
        """Biggest class / smallest class; ``inf`` when a class has no readable image."""
        if len(self.class_counts) < 2:
            return None
        lo, hi = min(self.class_counts.values()), max(self.class_counts.values())
        return math.inf if lo == 0 else hi / lo

    def fraction(self, count: int, of_rows: bool = False) -> float:
        denominator = self.rows if of_rows else self.total
        return count / denominator if denominator else 0.0

    def to_status(self) -> dict[str, Any]:
        """The report as the TrainingJob's ``status.dataQuality`` (camelCase, JSON-ready)."""
        doc: dict[str, Any] = {
            "total": self.total,
            "rows": self.rows,
            "missing": self.missing,
            "duplicates": self.duplicates,
            "outOfRange": self.out_of_range,
            "outliers": self.outliers,
            "passed": not self.failures,
            "failures": self.failures[:16],
        }
        if self.class_counts:
            top = sorted(self.class_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:_MAX_CLASSES_SHOWN]
            doc["classCounts"] = dict(sorted(top))
        imbalance = self.imbalance
        if imbalance is not None and math.isfinite(imbalance):
            doc["imbalance"] = round(imbalance, 4)
        return doc

    def summary(self) -> str:
        """One line for a person: the counts, then PASSED or the failures."""
        row_unit = "series" if self.unit == "points" else "files"
        parts = [
            f"{self.total} {self.unit}",
            f"missing {self.missing} ({100 * self.fraction(self.missing):.2f}%)",
            f"duplicate {row_unit} {self.duplicates} of {self.rows}",
            f"out of range {self.out_of_range}",
        ]
        if self.unit == "points":
            parts.append(f"outliers {self.outliers}")
        if self.class_counts:
            imbalance = self.imbalance
            shown = "-" if imbalance is None else ("inf" if math.isinf(imbalance) else f"{imbalance:.2f}")
            parts.append(f"{len(self.class_counts)} classes, imbalance {shown}")
        verdict = "PASSED" if not self.failures else "FAILED: " + "; ".join(self.failures)
        return ", ".join(parts) + f" -> {verdict}"


def _row_hash(row: np.ndarray[Any, Any]) -> bytes:
    # NaN != NaN: compare the bit patterns with every NaN made the same one.
    clean = np.where(np.isnan(row), np.float64(np.nan), row).astype(np.float64)
    return hashlib.sha256(np.ascontiguousarray(clean).tobytes()).digest()


def _outliers(row: np.ndarray[Any, Any]) -> int:
    finite = row[np.isfinite(row)]
    if finite.size < 3:
        return 0
    median = float(np.median(finite))
    scale = 1.4826 * float(np.median(np.abs(finite - median)))
    if scale == 0.0:
        # A series flat most of the time: MAD is 0 and every change would be "infinitely" far, so
        # fall back to the standard deviation (0 only for a constant series: no outliers).
        scale = float(np.std(finite))
        if scale == 0.0:
            return 0
    return int((np.abs(finite - median) / scale > OUTLIER_Z).sum())


def panel_quality(panel: Panel, quality: DatasetQuality | None = None) -> QualityReport:
    """The report of a forecast panel (the values only; covariates follow the same grid)."""
    values = np.asarray(panel.values, dtype=np.float64)
    nan = np.isnan(values)
    infinite = np.isinf(values)
    out = infinite.copy()
    if quality is not None and quality.min_value is not None:
        out |= np.isfinite(values) & (values < quality.min_value)
    if quality is not None and quality.max_value is not None:
        out |= np.isfinite(values) & (values > quality.max_value)
    seen_keys: set[str] = set()
    seen_rows: set[bytes] = set()
    duplicates = 0
    for key, row in zip(panel.keys, values, strict=True):
        k = json.dumps(dict(key), sort_keys=True)
        h = _row_hash(row)
        if k in seen_keys or h in seen_rows:
            duplicates += 1
        seen_keys.add(k)
        seen_rows.add(h)
    return QualityReport(
        unit="points",
        total=int(values.size),
        rows=int(values.shape[0]),
        missing=int(nan.sum()),
        duplicates=duplicates,
        out_of_range=int(out.sum()),
        outliers=sum(_outliers(row) for row in values),
    )


def _image_facts(path: Path) -> tuple[bool, int]:
    """``(readable, shorter side in pixels)``; a file Pillow cannot decode is not readable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            side = min(img.size)
            img.verify()  # reads the whole file: a truncated or corrupt image fails here
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return False, 0
    return True, int(side)


def image_folder_quality(
    files: Mapping[str, Sequence[Path]], quality: DatasetQuality | None = None
) -> QualityReport:
    """The report of a labelled image folder (``label -> image files``)."""
    min_side = quality.min_image_size if quality is not None else 1
    seen: set[bytes] = set()
    report = QualityReport(unit="images", total=0, rows=0)
    for label in sorted(files):
        readable = 0
        for path in files[label]:
            report.total += 1
            digest = hashlib.sha256(path.read_bytes()).digest()
            if digest in seen:
                report.duplicates += 1
            seen.add(digest)
            ok, side = _image_facts(path)
            if not ok:
                report.missing += 1
                continue
            readable += 1
            if side < min_side:
                report.out_of_range += 1
        report.class_counts[label] = readable
    report.rows = report.total
    return report


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _over(report: QualityReport, quality: DatasetQuality) -> list[str]:
    """Each threshold the report exceeds, as a sentence naming the counts and the threshold."""
    failures: list[str] = []
    unit, rows = report.unit, ("series" if report.unit == "points" else "files")

    def check(count: int, limit: float | None, what: str, name: str, of_rows: bool = False) -> None:
        frac = report.fraction(count, of_rows)
        if limit is not None and frac > limit:
            total = report.rows if of_rows else report.total
            failures.append(
                f"{what} {count} of {total} {rows if of_rows else unit} ({_pct(frac)}) > {name} {_pct(limit)}"
            )

    check(report.missing, quality.max_missing_fraction, "missing", "maxMissingFraction")
    check(report.duplicates, quality.max_duplicate_fraction, "duplicate", "maxDuplicateFraction", True)
    check(report.out_of_range, quality.max_out_of_range_fraction, "out of range", "maxOutOfRangeFraction")
    check(report.outliers, quality.max_outlier_fraction, "outliers", "maxOutlierFraction")
    if report.class_counts:
        imbalance = report.imbalance
        limit = quality.max_class_imbalance
        if limit is not None and imbalance is not None and imbalance > limit:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(report.class_counts.items()))
            shown = "inf" if math.isinf(imbalance) else f"{imbalance:.2f}"
            failures.append(f"class imbalance {shown} ({counts}) > maxClassImbalance {limit:g}")
        if quality.min_images_per_class is not None:
            small = {k: v for k, v in report.class_counts.items() if v < quality.min_images_per_class}
            if small:
                listed = ", ".join(f"{k} {v}" for k, v in sorted(small.items()))
                failures.append(f"classes under minImagesPerClass {quality.min_images_per_class}: {listed}")
    return failures


@runtime_checkable
class QualityChecked(Protocol):
    """A task that can report on its data (the built-in forecast and classifier tasks)."""

    def quality_report(self, quality: DatasetQuality | None) -> QualityReport:
        """The quality report of the task's dataset, with ``quality``'s ranges applied."""
        ...


def check_quality(task: object, quality: DatasetQuality | None) -> QualityReport | None:
    """The task's report with the thresholds checked; raises :class:`DataQualityError` when over one.

    ``None`` for a task without data to report on (the ``toy`` smoke test).
    """
    if not isinstance(task, QualityChecked):
        return None
    report = task.quality_report(quality)
    if quality is not None:
        report.failures = _over(report, quality)
    if report.failures:
        raise DataQualityError(report.failures, report.to_status())
    return report
