"""The resource API: generated CRDs are fresh and well formed, examples are valid, bad input is
rejected naming the field.

Validation is checked twice, by two independent implementations: the generated CRD's
``openAPIV3Schema`` through the emulator's admission code (what a real API server enforces at
``kubectl apply``), and ``foresight validate`` (pydantic + the same CEL rules, offline).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from foresight.api import API_VERSION, GROUP, KINDS
from foresight.api.crd import crd_filename, render_crd
from foresight.api.validation import validate_object

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
    ("ModelVersion", [("spec.optimize.parityThreshold", 0)], "spec.optimize.parityThreshold"),
    # bad formats
    ("ForecastTask", [("spec.horizon", "one day")], "spec.horizon"),
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
    ("TrainingJob", [("spec.distributed", {"backend": "none", "workers": 2})], "spec.distributed.workers"),
    ("TrainingJob", [("spec.dataset.promql", {"url": "http://p:9090", "query": "up"})], "spec.dataset"),
    ("ClassifierService", [("spec.replicas", 3)], "spec.cache.store"),
    ("ModelLibrary", [("spec.source.url", "https://example.com/lib.tar.gz")], "spec.source"),
    ("ABExperiment", [("spec.strategy.steps", [])], "spec.strategy.steps"),
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
