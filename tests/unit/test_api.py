"""The resource API: generated CRDs are fresh and well formed, examples are valid, bad input is
rejected naming the field.

Validation is checked twice, by two independent implementations: the generated CRD's
``openAPIV3Schema`` through the emulator's admission code (what a real API server enforces at
``kubectl apply``), and ``foresight validate`` (pydantic + the same CEL rules, offline).
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from foresight.api import API_VERSION, GROUP, KINDS
from foresight.api.crd import crd_filename, render_crd
from foresight.api.validation import validate_object
from foresight_operator.handlers.common import parse_spec
from foresight_operator.reconcile import SpecError

from tests.cluster.schema import admit

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SHORT_NAMES = {
    "ForecastTask": "ft",
    "TrainingJob": "tj",
    "ModelVersion": "mv",
    "ModelLibrary": "mlib",
    "ABExperiment": "ab",
    "ClassifierService": "cs",
}


def _crds() -> dict[str, dict[str, Any]]:
    out = {}
    for path in CRD_DIR.glob("*.yaml"):
        if path.name == "kustomization.yaml":
            continue
        doc = yaml.safe_load(path.read_text())
        out[doc["spec"]["names"]["kind"]] = doc
    return out


CRDS = _crds()


def _schema(kind: str) -> dict[str, Any]:
    version = CRDS[kind]["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def _admission_errors(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    _, _, errors = admit(obj, _schema(obj["kind"]), old)
    return [str(e) for e in errors]


# --- the generated CRDs --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_crd_file_is_what_the_models_generate(kind: str) -> None:
    """Fails when a model changed and `make crds` was not run (the CRDs are never edited by hand)."""
    info = KINDS[kind]
    path = CRD_DIR / crd_filename(info)
    assert path.exists(), f"{path} is missing: run `make crds`"
    assert path.read_text() == render_crd(info), f"{path.name} is stale: run `make crds` and commit crds/"


def test_crd_directory_holds_exactly_the_six_kinds() -> None:
    assert set(CRDS) == set(SHORT_NAMES)


def test_foresight_crds_writes_the_committed_files(tmp_path: Path) -> None:
    """`make crds` is `foresight crds -o crds`: the command itself reproduces the committed files."""
    subprocess.run([sys.executable, "-m", "foresight.cli", "crds", "-o", str(tmp_path)], check=True)
    for info in KINDS.values():
        assert (tmp_path / crd_filename(info)).read_text() == (CRD_DIR / crd_filename(info)).read_text()


@pytest.mark.parametrize("kind", sorted(SHORT_NAMES))
def test_crd_shape(kind: str) -> None:
    crd = CRDS[kind]
    spec = crd["spec"]
    assert spec["group"] == GROUP and spec["scope"] == "Namespaced"
    assert spec["names"]["shortNames"] == [SHORT_NAMES[kind]]
    assert "foresight" in spec["names"]["categories"]
    (version,) = spec["versions"]
    assert version["name"] == API_VERSION.split("/")[1] and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[0] == "Ready" and "Phase" in columns and columns[-1] == "Age"
    assert len(columns) >= 4, "Ready, Phase, at least one value users scan for, Age"


def _nodes(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        out += _nodes(sub, f"{path}.{name}")
    if "items" in schema:
        out += _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        out += _nodes(schema["additionalProperties"], f"{path}{{}}")
    return out


@pytest.mark.parametrize("kind", sorted(SHORT_NAMES))
def test_schema_is_structural_and_documented(kind: str) -> None:
    """Structural: every node typed, no $ref / anyOf null; every spec field has a description."""
    text = yaml.safe_dump(_schema(kind))
    assert "$ref" not in text and "anyOf" not in text and "nullable" not in text
    for path, node in _nodes(_schema(kind)):
        assert (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ), f"{kind}{path} has no type"
        if path.startswith(".spec.") and not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{kind}{path} has no description"


def test_cross_field_and_immutability_rules_are_in_the_crds() -> None:
    rules = {kind: yaml.safe_dump(CRDS[kind]) for kind in CRDS}
    assert "sum() == 100" in rules["ABExperiment"]
    assert "self == oldSelf" in rules["ModelVersion"]
    assert "duration(self.horizon) < duration(self.source.lookback)" in rules["ForecastTask"]


# --- examples ------------------------------------------------------------------------------------


def test_there_is_an_example_per_kind() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in EXAMPLES}
    assert kinds == set(SHORT_NAMES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("#"), "every example opens with a comment saying what it does"
    for doc in yaml.safe_load_all(text):
        assert doc["apiVersion"] == API_VERSION
        assert _admission_errors(doc) == []
        _, unknown, _ = admit(doc, _schema(doc["kind"]), None)
        assert unknown == [], f"fields the API server would silently drop: {unknown}"
        assert [str(e) for e in validate_object(doc)] == []


def test_foresight_validate_cli_accepts_examples_and_names_the_bad_field(tmp_path: Path) -> None:
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "foresight.cli",
            "validate",
            *[arg for p in EXAMPLES for arg in ("-f", str(p))],
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = yaml.safe_load((ROOT / "examples" / "abexperiment.yaml").read_text())
    bad["spec"]["variants"][1]["weight"] = 20
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    out = subprocess.run(
        [sys.executable, "-m", "foresight.cli", "validate", "-f", str(path)], capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "spec.variants" in out.stdout + out.stderr and "sum to 100" in out.stdout + out.stderr


# --- invalid resources ---------------------------------------------------------------------------


def _example(kind: str) -> dict[str, Any]:
    for path in EXAMPLES:
        doc = yaml.safe_load(path.read_text())
        if doc["kind"] == kind:
            return doc
    raise AssertionError(kind)


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


_DELETE = object()

RECOMMENDATION = {"library": "postgresql-oltp", "inputs": {"qps": {"series": {"team": "orders"}}}}

# (kind, [(dotted path, new value), ...], field the error must name)
INVALID: list[tuple[str, list[tuple[str, Any]], str]] = [
    # wrong types
    (
        "ForecastTask",
        [("spec.model.hyperparameters", {"epochs": "many"})],
        "spec.model.hyperparameters.epochs",
    ),
    ("ClassifierService", [("spec.replicas", "two")], "spec.replicas"),
    ("TrainingJob", [("spec.hyperparameters", ["lr=0.1"])], "spec.hyperparameters"),
    ("ModelLibrary", [("spec.active", "yes")], "spec.active"),
    # out of range
    ("ForecastTask", [("spec.threshold.ratio", -0.5)], "spec.threshold.ratio"),
    ("ForecastTask", [("spec.limits.maxSeries", 0)], "spec.limits.maxSeries"),
    ("TrainingJob", [("spec.epochs", 0)], "spec.epochs"),
    ("TrainingJob", [("spec.resources.gpu", 64)], "spec.resources.gpu"),
    ("ABExperiment", [("spec.confidence", 1.5)], "spec.confidence"),
    ("ClassifierService", [("spec.port", 80)], "spec.port"),
    ("ClassifierService", [("spec.deadlineSeconds", 0)], "spec.deadlineSeconds"),
    ("ClassifierService", [("spec.workers", 65)], "spec.workers"),
    ("ModelVersion", [("spec.optimize.parityThreshold", 0)], "spec.optimize.parityThreshold"),
    # bad formats
    ("ForecastTask", [("spec.horizon", "one day")], "spec.horizon"),
    ("ForecastTask", [("spec.source.unit", "bytes per second")], "spec.source.unit"),
    ("ModelVersion", [("spec.artifact.uri", "ftp://models/x.pt")], "spec.artifact.uri"),
    ("TrainingJob", [("spec.output.modelName", "Storage_Forecaster")], "spec.output.modelName"),
    ("ModelLibrary", [("spec.sha256", "not-a-checksum")], "spec.sha256"),
    # unknown enum values
    ("ForecastTask", [("spec.model.type", "prophet")], "spec.model.type"),
    ("TrainingJob", [("spec.distributed.backend", "horovod")], "spec.distributed.backend"),
    ("ModelVersion", [("spec.stage", "Live")], "spec.stage"),
    ("ClassifierService", [("spec.backend.type", "openai")], "spec.backend.type"),
    ("ABExperiment", [("spec.strategy.type", "random")], "spec.strategy.type"),
    # missing required fields
    ("ForecastTask", [("spec.source.query", _DELETE)], "spec.source.query"),
    ("ModelVersion", [("spec.artifact", _DELETE)], "spec.artifact"),
    # violated cross-field rules (CEL)
    ("ABExperiment", [("spec.variants.1.weight", 20)], "spec.variants"),
    ("ForecastTask", [("spec.horizon", "2000h"), ("spec.source.lookback", "1344h")], "spec.horizon"),
    ("ForecastTask", [("spec.threshold.capacity.value", 1e12)], "spec.threshold.capacity"),
    ("ForecastTask", [("spec.source.valueRange", {"min": 100, "max": 0})], "spec.source.valueRange"),
    ("TrainingJob", [("spec.distributed", {"backend": "none", "workers": 2})], "spec.distributed.workers"),
    ("TrainingJob", [("spec.dataset.promql", {"url": "http://p:9090", "query": "up"})], "spec.dataset"),
    ("ClassifierService", [("spec.replicas", 3)], "spec.cache.store"),
    ("ModelLibrary", [("spec.source.url", "https://example.com/lib.tar.gz")], "spec.source"),
    # spec.recommendation: at least one input from a forecast, none given twice, a horizon on the grid
    (
        "ForecastTask",
        [("spec.recommendation", {**RECOMMENDATION, "inputs": {}})],
        "spec.recommendation.inputs",
    ),
    (
        "ForecastTask",
        [("spec.recommendation", {**RECOMMENDATION, "constants": {"qps": 100}})],
        "spec.recommendation.constants.qps",
    ),
    (
        "ForecastTask",
        [("spec.recommendation", {**RECOMMENDATION, "horizon": "90m"})],
        "spec.recommendation.horizon",
    ),
    (
        "ForecastTask",
        [("spec.recommendation", {**RECOMMENDATION, "horizon": "48h"})],
        "spec.recommendation.horizon",
    ),
    (
        "ForecastTask",
        [("spec.recommendation", {**RECOMMENDATION, "inputs": {"qps": {"aggregate": "median"}}})],
        "spec.recommendation.inputs.qps.aggregate",
    ),
    (
        "ForecastTask",
        [("spec.recommendation", {**RECOMMENDATION, "inputs": {"queries_per_second": {}}})],
        "spec.recommendation.inputs",
    ),
    (
        "ForecastTask",
        [("spec.recommendation", {**RECOMMENDATION, "library": "Postgres OLTP"})],
        "spec.recommendation.library",
    ),
    # a recommendation adds series up across the task: a shard sees only its own
    (
        "ForecastTask",
        [("spec.recommendation", RECOMMENDATION), ("spec.parallelism", 3)],
        "spec.recommendation",
    ),
    ("ModelLibrary", [("spec.limits", {"maxCasesMib": 0})], "spec.limits.maxCasesMib"),
    ("ModelLibrary", [("spec.store", {"uri": "gs://libraries/"})], "spec.store.uri"),
    ("ABExperiment", [("spec.strategy.steps", [{"weight": 50}, {"weight": 10}])], "spec.strategy.steps"),
    (
        "ABExperiment",
        [
            (
                "spec.variants",
                [{"name": f"v{i}", "modelVersion": f"m{i}", "weight": w} for i, w in enumerate((50, 25, 25))],
            )
        ],
        "spec.variants",
    ),
    (
        "ABExperiment",
        [
            ("spec.strategy", {"type": "bandit", "bandit": {"floor": 50}}),
            ("spec.variants.0.weight", 40),
            (
                "spec.variants",
                [{"name": f"v{i}", "modelVersion": f"m{i}", "weight": w} for i, w in enumerate((40, 30, 30))],
            ),
        ],
        "spec.strategy.bandit.floor",
    ),
    (
        "ABExperiment",
        [("spec.strategy.type", "fixed"), ("spec.variants.0.weight", 0), ("spec.variants.1.weight", 100)],
        "spec.variants",
    ),
    (
        "ABExperiment",
        [
            (
                "spec.primaryMetric",
                {
                    "name": "latency",
                    "builtin": "latency",
                    "goal": "maximize",
                    "minimumDetectableEffect": 0.01,
                },
            )
        ],
        "spec.primaryMetric.goal",
    ),
    (
        "ABExperiment",
        [("spec.primaryMetric", {"name": "latency", "builtin": "latency", "goal": "minimize"})],
        "spec.primaryMetric.minimumDetectableEffect",
    ),
    (
        "ABExperiment",
        [("spec.primaryMetric", {"name": "accuracy", "builtin": "accuracy", "minimumDetectableEffect": 2})],
        "spec.primaryMetric.minimumDetectableEffect",
    ),
    (
        "ABExperiment",
        [
            (
                "spec.primaryMetric",
                {
                    "name": "accuracy",
                    "builtin": "accuracy",
                    "rate": {"successes": {"metric": "ok_total"}, "trials": {"metric": "all_total"}},
                },
            )
        ],
        "spec.primaryMetric",
    ),
    (
        "ABExperiment",
        [("spec.guardMetrics", [{"name": "errors", "builtin": "errorRate", "max": 0.05, "min": 0.01}])],
        "spec.guardMetrics[0].min",
    ),
    (
        "ABExperiment",
        [("spec.guardMetrics", [{"name": "errors", "builtin": "errorRate"}])],
        "spec.guardMetrics[0]",
    ),
    (
        "ABExperiment",
        [
            (
                "spec.guardMetrics",
                [
                    {
                        "name": "speed",
                        "moments": {
                            "count": {"metric": "c"},
                            "sum": {"metric": "s"},
                            "sumOfSquares": {"metric": "q"},
                        },
                        "margin": 0.1,
                    }
                ],
            )
        ],
        "spec.guardMetrics[0].goal",
    ),
    (
        "ABExperiment",
        [("spec.guardMetrics", [{"name": "accuracy", "builtin": "accuracy", "min": 0.5}])],
        "spec.guardMetrics",
    ),
]


@pytest.mark.parametrize(
    ("kind", "changes", "field"), INVALID, ids=[f"{k}:{f}:{i}" for i, (k, _, f) in enumerate(INVALID)]
)
def test_invalid_resource_is_rejected_naming_the_field(
    kind: str, changes: list[tuple[str, Any]], field: str
) -> None:
    doc = copy.deepcopy(_example(kind))
    for path, value in changes:
        _set(doc, path, value)
    admission = _admission_errors(doc)
    assert admission, f"the CRD schema accepted {changes}"
    assert any(e.startswith(field) for e in admission), admission
    offline = [str(e) for e in validate_object(doc)]
    assert offline, f"foresight validate accepted {changes}"
    assert any(e.startswith(field) for e in offline), offline


def test_invalid_table_is_large_and_covers_every_kind() -> None:
    assert len(INVALID) >= 20
    assert {kind for kind, _, _ in INVALID} == set(SHORT_NAMES)


# --- what cannot work: refused before anything runs (issue 13, item 8) ---------------------------

PROMQL = {"url": "http://prometheus:9090", "query": "gpu_used", "lookback": "48h", "step": "1h"}
FORECAST_TRAINING = [("spec.task", "forecast"), ("spec.model", "lstm")]
REDIS = {"store": "redis", "redis": {"url": "redis://redis:6379/0"}}
SHA = "a" * 64

# class -> [(kind, changes, field the error must name)]. Each one is refused twice, as the table
# above: by the generated CRD (schema + CEL, the emulator's admission, as an API server would at
# `kubectl apply`) and by `foresight validate`; and, unless it needs two fields at once or is a JSON
# type (ADMISSION_ONLY: the CRD is the one place it is checked), by the model itself, which is what
# the operator's spec parsing runs: Ready=False naming the field before any child exists.
REFUSED: dict[str, list[tuple[str, list[tuple[str, Any]], str]]] = {
    "zero or absurdly small durations": [
        ("ForecastTask", [("spec.source.step", "0s")], "spec.source.step"),
        ("ForecastTask", [("spec.source.step", "1ms")], "spec.source.step"),
        ("ForecastTask", [("spec.source.step", "0")], "spec.source.step"),
        ("ForecastTask", [("spec.source.lookback", "30m")], "spec.source.lookback"),
        ("ForecastTask", [("spec.horizon", "0s")], "spec.horizon"),
        ("ForecastTask", [("spec.output", {"horizons": ["0s"]})], "spec.output.horizons"),
        ("ForecastTask", [("spec.schedule", {"retrainEvery": "1ms"})], "spec.schedule.retrainEvery"),
        ("ForecastTask", [("spec.schedule", {"retrainEvery": "1m"})], "spec.schedule.retrainEvery"),
        ("ForecastTask", [("spec.schedule", {"predictEvery": "1ns"})], "spec.schedule.predictEvery"),
        ("ForecastTask", [("spec.output", {"horizons": ["90m"]})], "spec.output.horizons"),
        ("ForecastTask", [("spec.limits", {"minHistoryPoints": 2000})], "spec.source.lookback"),
        (
            "TrainingJob",
            [*FORECAST_TRAINING, ("spec.dataset", {"promql": {**PROMQL, "step": "0s"}})],
            "spec.dataset.promql.step",
        ),
        (
            "TrainingJob",
            [*FORECAST_TRAINING, ("spec.dataset", {"promql": {**PROMQL, "lookback": "1s"}})],
            "spec.dataset.promql.lookback",
        ),
        (
            "TrainingJob",
            [*FORECAST_TRAINING, ("spec.dataset", {"promql": {**PROMQL, "step": "72h"}})],
            "spec.dataset.promql.lookback",
        ),
        (
            "TrainingJob",
            [("spec.runPolicy.activeDeadlineSeconds", 1)],
            "spec.runPolicy.activeDeadlineSeconds",
        ),
        ("ABExperiment", [("spec.analysisInterval", "1ms")], "spec.analysisInterval"),
        ("ABExperiment", [("spec.strategy.steps.0.pause", "0s")], "spec.strategy.steps[0].pause"),
    ],
    "ratios and probabilities outside their range": [
        ("ForecastTask", [("spec.threshold.ratio", 1.5)], "spec.threshold.ratio"),
        ("ForecastTask", [("spec.threshold.ratio", 0)], "spec.threshold.ratio"),
        ("ForecastTask", [("spec.model.intervalLevel", 1.0)], "spec.model.intervalLevel"),
        ("TrainingJob", [("spec.hyperparameters.dropout", "1.5")], "spec.hyperparameters"),
        ("TrainingJob", [("spec.hyperparameters.valFraction", "0")], "spec.hyperparameters"),
        ("ModelVersion", [("spec.optimize.prune", {"sparsity": 1.0})], "spec.optimize.prune.sparsity"),
        ("ModelVersion", [("spec.optimize.parityThreshold", 2)], "spec.optimize.parityThreshold"),
        ("ABExperiment", [("spec.confidence", 0.3)], "spec.confidence"),
        ("ABExperiment", [("spec.variants.0.weight", 150)], "spec.variants[0].weight"),
        (
            "ClassifierService",
            [("spec.cache", REDIS), ("spec.autoscaling", {"targetCpuUtilization": 150})],
            "spec.autoscaling.targetCpuUtilization",
        ),
    ],
    "blank queries and prompts, placeholders missing": [
        ("ForecastTask", [("spec.source.query", "   ")], "spec.source.query"),
        (
            "ForecastTask",
            [("spec.source.covariates", [{"name": "w", "query": "\t\n"}])],
            "spec.source.covariates[0].query",
        ),
        ("ForecastTask", [("spec.threshold.capacity.query", " ")], "spec.threshold.capacity.query"),
        (
            "TrainingJob",
            [*FORECAST_TRAINING, ("spec.dataset", {"promql": {**PROMQL, "query": "  "}})],
            "spec.dataset.promql.query",
        ),
        (
            "ABExperiment",
            [
                (
                    "spec.primaryMetric",
                    {"name": "accuracy", "rate": {"successes": {"metric": "  "}, "trials": {"metric": "t"}}},
                )
            ],
            "spec.primaryMetric.rate.successes.metric",
        ),
        # A metric without its counters: the placeholder of where the numbers come from is missing.
        ("ABExperiment", [("spec.primaryMetric", {"name": "accuracy"})], "spec.primaryMetric"),
        ("ABExperiment", [("spec.guardMetrics", [{"name": "p99", "max": 0.2}])], "spec.guardMetrics[0]"),
        ("ABExperiment", [("spec.primaryMetric.name", " ")], "spec.primaryMetric.name"),
        ("ClassifierService", [("spec.prompt", "   ")], "spec.prompt"),
        ("ClassifierService", [("spec.prompt", "Classify this photo. Answer with one key.")], "spec.prompt"),
        (
            "ClassifierService",
            [
                (
                    "spec.categories",
                    [{"key": "pets", "zh": "宠物", "en": " "}, {"key": "other", "zh": "其他", "en": "Other"}],
                )
            ],
            "spec.categories[0].en",
        ),
    ],
    "duplicates in lists that are sets": [
        ("ForecastTask", [("spec.source.groupBy", ["cluster", "team", "cluster"])], "spec.source.groupBy"),
        ("ForecastTask", [("spec.model.candidates", ["ets", "theta", "ets"])], "spec.model.candidates"),
        (
            "ForecastTask",
            [("spec.source.covariates", [{"name": "w", "query": "a"}, {"name": "w", "query": "b"}])],
            "spec.source.covariates",
        ),
        ("ForecastTask", [("spec.output", {"horizons": ["1h", "6h", "1h"]})], "spec.output.horizons"),
        (
            "TrainingJob",
            [*FORECAST_TRAINING, ("spec.dataset", {"promql": {**PROMQL, "groupBy": ["user", "user"]}})],
            "spec.dataset.promql.groupBy",
        ),
        (
            "TrainingJob",
            [("spec.search", {"space": {"hiddenSize": {"type": "choice", "values": ["8", "8"]}}})],
            "spec.search.space.hiddenSize.values",
        ),
        ("ModelVersion", [("spec.optimize.batchSizes", [1, 1])], "spec.optimize.batchSizes"),
        ("ABExperiment", [("spec.variants.1.name", "control")], "spec.variants"),
        (
            "ABExperiment",
            [
                (
                    "spec.guardMetrics",
                    [
                        {"name": "p99", "builtin": "latency", "margin": 0.1},
                        {"name": "p99", "builtin": "errorRate", "max": 0.01},
                    ],
                )
            ],
            "spec.guardMetrics",
        ),
        (
            "ClassifierService",
            [
                (
                    "spec.categories",
                    [
                        {"key": "other", "zh": "其他", "en": "Other"},
                        {"key": "other", "zh": "别的", "en": "Else"},
                    ],
                )
            ],
            "spec.categories",
        ),
    ],
    "label names Prometheus reserves": [
        (
            "ABExperiment",
            [("spec.prometheus", {"selector": [{"label": "__name__", "value": "up"}]})],
            "spec.prometheus.selector[0].label",
        ),
        (
            "ABExperiment",
            [
                ("spec.guardMetrics.0", {"name": "errors", "builtin": "errorRate", "max": 0.01}),
                ("spec.prometheus", {"selector": [{"label": "variant", "value": "control"}]}),
            ],
            "spec.prometheus.selector[0].label",
        ),
        ("ForecastTask", [("spec.source.groupBy", ["__name__"])], "spec.source.groupBy"),
        ("ForecastTask", [("spec.source.groupBy", ["cluster", "__meta_pod"])], "spec.source.groupBy"),
        (
            "TrainingJob",
            [*FORECAST_TRAINING, ("spec.dataset", {"promql": {**PROMQL, "groupBy": ["__address__"]}})],
            "spec.dataset.promql.groupBy",
        ),
    ],
    "non-positive sizes": [
        (
            "ForecastTask",
            [("spec.recommendation", {**RECOMMENDATION, "inputs": {"qps": {"scale": 0}}})],
            "spec.recommendation.inputs.qps.scale",
        ),
        ("ModelVersion", [("spec.optimize.batchSizes", [0, 1000])], "spec.optimize.batchSizes[0]"),
        ("ModelVersion", [("spec.optimize.batchSizes", [1, -8])], "spec.optimize.batchSizes[1]"),
        ("TrainingJob", [("spec.hyperparameters.imageSize", "0")], "spec.hyperparameters"),
        ("TrainingJob", [("spec.resources.memory", "0")], "spec.resources.memory"),
        ("ForecastTask", [("spec.resources.cpu", "0m")], "spec.resources.cpu"),
        ("ClassifierService", [("spec.cache.size", "0Gi")], "spec.cache.size"),
    ],
    "paths and URIs with `..` or an unsupported scheme": [
        (
            "ForecastTask",
            [("spec.artifacts", {"uri": "pvc://foresight-artifacts/../../etc/"})],
            "spec.artifacts.uri",
        ),
        ("ForecastTask", [("spec.artifacts", {"uri": "gs://bucket/models/"})], "spec.artifacts.uri"),
        ("ForecastTask", [("spec.source.url", "file:///etc/prometheus")], "spec.source.url"),
        (
            "ForecastTask",
            [("spec.output", {"pushgatewayUrl": "http://pgw:9091/a/%2e%2e/b"})],
            "spec.output.pushgatewayUrl",
        ),
        (
            "TrainingJob",
            [("spec.dataset.uri", "pvc://foresight-artifacts/datasets/../../../root/")],
            "spec.dataset.uri",
        ),
        (
            "TrainingJob",
            [("spec.artifacts", {"uri": "s3://models/", "endpoint": "http://minio:9000"})],
            "spec.artifacts.endpoint",
        ),
        (
            "TrainingJob",
            [("spec.metrics", {"pushgatewayUrl": "tcp://pgw:9091"})],
            "spec.metrics.pushgatewayUrl",
        ),
        (
            "ModelVersion",
            [("spec.artifact.uri", "s3://foresight-models/storage-forecaster/../x/model.pt")],
            "spec.artifact.uri",
        ),
        ("ModelVersion", [("spec.artifact.store.uri", "gs://foresight-models/")], "spec.artifact.store.uri"),
        ("ABExperiment", [("spec.prometheus", {"url": "file:///etc/prometheus"})], "spec.prometheus.url"),
        (
            "ModelLibrary",
            [("spec.source", {"s3": "s3://libraries/../secret.tar.gz"}), ("spec.sha256", SHA)],
            "spec.source.s3",
        ),
        (
            "ModelLibrary",
            [("spec.source", {"url": "ftp://example.com/lib.tar.gz"}), ("spec.sha256", SHA)],
            "spec.source.url",
        ),
        (
            "ModelLibrary",
            [("spec.source", {"url": "https://example.com/a/../lib.tar.gz"}), ("spec.sha256", SHA)],
            "spec.source.url",
        ),
        (
            "ClassifierService",
            [("spec.backend.dashscope.baseUrl", "file:///etc/passwd")],
            "spec.backend.dashscope.baseUrl",
        ),
        (
            "ClassifierService",
            [("spec.cache", {"store": "redis", "redis": {"url": "http://redis:6379"}})],
            "spec.cache.redis.url",
        ),
    ],
    "hyperparameters that must be numbers": [
        ("TrainingJob", [("spec.hyperparameters.learningRate", "fast")], "spec.hyperparameters"),
        ("TrainingJob", [("spec.hyperparameters.imageSize", "96.5")], "spec.hyperparameters"),
        ("TrainingJob", [("spec.hyperparameters.learningRate", "0")], "spec.hyperparameters"),
        (
            "TrainingJob",
            [("spec.search", {"space": {"learningRate": {"type": "choice", "values": ["0.1", "big"]}}})],
            "spec.search.space",
        ),
        (
            "TrainingJob",
            [("spec.search", {"space": {"learningRate": {"type": "loguniform", "min": 0, "max": 1}}})],
            "spec.search.space.learningRate.min",
        ),
        (
            "ForecastTask",
            [("spec.model.hyperparameters.learningRate", "0.001")],
            "spec.model.hyperparameters.learningRate",
        ),
        (
            "ForecastTask",
            [("spec.model.hyperparameters.hiddenSize", "64")],
            "spec.model.hyperparameters.hiddenSize",
        ),
    ],
}
ADMISSION_ONLY = {
    # needs two fields at once: a CEL rule of the CRD, evaluated by the API server and `foresight validate`
    ("ABExperiment", "spec.primaryMetric", "'name': 'accuracy'}"),
    ("ABExperiment", "spec.guardMetrics[0]", "'p99'"),
    ("ForecastTask", "spec.output.horizons", "90m"),
    ("ForecastTask", "spec.source.lookback", "minHistoryPoints"),
    ("TrainingJob", "spec.dataset.promql.lookback", "72h"),
    ("TrainingJob", "spec.search.space.learningRate.min", "loguniform"),
    # a JSON type the CRD refuses: the operator only reads what the API server admitted, and its
    # lax parse would read "64" as 64, which works
    ("ForecastTask", "spec.model.hyperparameters.learningRate", "0.001"),
    ("ForecastTask", "spec.model.hyperparameters.hiddenSize", "64"),
}
# Where a class applies: every kind with a field of that class.
CLASS_KINDS = {
    "zero or absurdly small durations": {"ForecastTask", "TrainingJob", "ABExperiment"},
    "ratios and probabilities outside their range": set(SHORT_NAMES) - {"ModelLibrary"},
    "blank queries and prompts, placeholders missing": {
        "ForecastTask",
        "TrainingJob",
        "ABExperiment",
        "ClassifierService",
    },
    "duplicates in lists that are sets": set(SHORT_NAMES) - {"ModelLibrary"},
    "label names Prometheus reserves": {"ForecastTask", "TrainingJob", "ABExperiment"},
    "non-positive sizes": {"ModelVersion", "TrainingJob", "ForecastTask", "ClassifierService"},
    "paths and URIs with `..` or an unsupported scheme": set(SHORT_NAMES),
    "hyperparameters that must be numbers": {"TrainingJob", "ForecastTask"},
}
REFUSED_CASES = [(cls, *case) for cls, cases in REFUSED.items() for case in cases]


def _admission_only(kind: str, changes: list[tuple[str, Any]], field: str) -> bool:
    return any(k == kind and f == field and needle in repr(changes) for k, f, needle in ADMISSION_ONLY)


@pytest.mark.parametrize(
    ("cls", "kind", "changes", "field"),
    REFUSED_CASES,
    ids=[f"{c.split()[0]}:{k}:{f}:{i}" for i, (c, k, _, f) in enumerate(REFUSED_CASES)],
)
def test_what_cannot_work_is_refused_naming_the_field(
    cls: str, kind: str, changes: list[tuple[str, Any]], field: str
) -> None:
    changes = copy.deepcopy(changes)  # admission fills in defaults in place
    test_invalid_resource_is_rejected_naming_the_field(kind, copy.deepcopy(changes), field)
    doc = copy.deepcopy(_example(kind))
    for path, value in changes:
        _set(doc, path, value)
    if _admission_only(kind, changes, field):
        parse_spec(KINDS[kind].spec_model, doc["spec"])  # the model alone sees one field at a time
        return
    with pytest.raises(SpecError) as info:
        parse_spec(KINDS[kind].spec_model, doc["spec"])
    dotted = re.sub(r"\[(\d+)\]", r".\1", field)
    assert dotted in info.value.message, info.value.message


def test_every_class_is_covered_for_every_kind_it_applies_to() -> None:
    assert set(REFUSED) == set(CLASS_KINDS)
    for cls, cases in REFUSED.items():
        assert {kind for kind, _, _ in cases} == CLASS_KINDS[cls], cls


# Refused by `foresight validate` and the operator's spec parsing, not at admission: CEL has no
# time zone database and no cron parser.
BEYOND_CEL: list[tuple[str, list[tuple[str, Any]], str]] = [
    ("ForecastTask", [("spec.calendar", {"timeZone": "Mars/Olympus_Mons"})], "spec.calendar.timeZone"),
    ("ForecastTask", [("spec.calendar", {"timeZone": "../../etc/passwd"})], "spec.calendar.timeZone"),
    ("ForecastTask", [("spec.calendar", {"timeZone": "UTC+8"})], "spec.calendar.timeZone"),
    ("ForecastTask", [("spec.schedule.cron", "61 * * * *")], "spec.schedule.cron"),
    ("ForecastTask", [("spec.schedule.cron", "every day at noon")], "spec.schedule.cron"),
]


@pytest.mark.parametrize(("kind", "changes", "field"), BEYOND_CEL)
def test_what_cel_cannot_check_is_refused_offline_and_by_the_operator(
    kind: str, changes: list[tuple[str, Any]], field: str
) -> None:
    doc = copy.deepcopy(_example(kind))
    for path, value in changes:
        _set(doc, path, value)
    offline = [str(e) for e in validate_object(doc)]
    assert any(e.startswith(field) for e in offline), offline
    with pytest.raises(SpecError) as info:
        parse_spec(KINDS[kind].spec_model, doc["spec"])
    assert field in info.value.message


def test_known_time_zones_and_cron_schedules_pass() -> None:
    for zone in ("UTC", "Asia/Shanghai", "America/Argentina/Buenos_Aires", "Etc/GMT+8"):
        doc = copy.deepcopy(_example("ForecastTask"))
        doc["spec"]["calendar"] = {"timeZone": zone}
        assert validate_object(doc) == [] and _admission_errors(doc) == []
    doc = copy.deepcopy(_example("ForecastTask"))
    doc["spec"]["schedule"]["cron"] = "0 */6 * * 1-5"
    assert validate_object(doc) == []


def test_the_minimum_durations_themselves_pass() -> None:
    """The floors are inclusive and documented in each field's description."""
    doc = copy.deepcopy(_example("ForecastTask"))
    doc["spec"]["source"].update(step="1s", lookback="1h")
    doc["spec"].update(horizon="60s", output={"horizons": ["1s", "30s"]}, limits={"minHistoryPoints": 3600})
    doc["spec"]["schedule"] = {"retrainEvery": "10m", "predictEvery": "10s"}
    assert _admission_errors(doc) == [] and validate_object(doc) == []
    crd = yaml.safe_dump(CRDS["ForecastTask"])
    assert "at least 1s" in crd and "at least 10m" in crd and "at least 10s" in crd


def test_model_version_artifact_is_immutable_once_set() -> None:
    old = _example("ModelVersion")
    new = copy.deepcopy(old)
    new["spec"]["artifact"]["uri"] = "s3://foresight-models/storage-forecaster/4/model.pt"
    assert any(e.startswith("spec.artifact") for e in _admission_errors(new, old))
    assert any(str(e).startswith("spec.artifact") for e in validate_object(new, old=old))
    # The checksum too, once it is set; adding one to an artifact that had none is allowed.
    pinned = copy.deepcopy(old)
    pinned["spec"]["artifact"]["sha256"] = "a" * 64
    changed = copy.deepcopy(pinned)
    changed["spec"]["artifact"]["sha256"] = "b" * 64
    assert any(e.startswith("spec.artifact.sha256: ") for e in _admission_errors(changed, pinned))
    assert any(str(e).startswith("spec.artifact.sha256") for e in validate_object(changed, old=pinned))
    dropped = copy.deepcopy(pinned)
    del dropped["spec"]["artifact"]["sha256"]
    assert any(e.startswith("spec.artifact.sha256: ") for e in _admission_errors(dropped, pinned))
    assert _admission_errors(pinned, old) == [] and validate_object(pinned, old=old) == []
    same = copy.deepcopy(old)
    same["spec"]["stage"] = "Archived"  # other fields stay editable: that is how rollback is declared
    assert _admission_errors(same, old) == []
    assert validate_object(same, old=old) == []


def test_unknown_spec_field_is_an_error_offline() -> None:
    """The API server prunes unknown fields silently; `foresight validate` catches the typo first."""
    doc = _example("ForecastTask")
    doc["spec"]["horizn"] = "6h"
    errors = [str(e) for e in validate_object(doc)]
    assert any("spec.horizn" in e for e in errors), errors
