"""A rule declared once in a model is enforced twice, as CEL in the CRD and in Python: both sides
must draw the same line, and the markers must produce what Kubernetes expects in the schema."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from foresight.api.meta import (
    NO_DOT_DOT,
    NOT_BLANK,
    PROMETHEUS_RESERVED,
    ApiModel,
    LabelName,
    PositiveQuantity,
)
from foresight.api.rules import SET, Rule, at_least, keyed_by
from foresight.api.validation import evaluate_rules
from pydantic import TypeAdapter, ValidationError

from tests.cluster.schema import FieldError as AdmissionError
from tests.cluster.schema import validate as admission_validate

CASES: list[tuple[str, Rule, list[str]]] = [
    ("not blank", NOT_BLANK, ["up", " x ", "", " ", "\t\n", "a\nb"]),
    (
        "no ..",
        NO_DOT_DOT,
        [
            "pvc://c/a/b",
            "pvc://c/../x",
            "s3://b/a/..",
            "s3://b/..a/b",
            "s3://b/a../b",
            "x/%2E%2e/y",
            "..",
            "a..b",
        ],
    ),
    ("no __", PROMETHEUS_RESERVED, ["user", "_user", "__name__", "a__b", "__"]),
    ("at least 1s", at_least("1s", "why"), ["1s", "999ms", "1000ms", "0", "1h", "0.5s", "1us", "2562047h"]),
]


@pytest.mark.parametrize(("name", "rule", "values"), CASES, ids=[c[0] for c in CASES])
def test_cel_and_python_agree(name: str, rule: Rule, values: list[str]) -> None:
    schema = {"type": "string", "x-kubernetes-validations": [{"rule": rule.rule, "message": rule.message}]}
    for value in values:
        python = rule.test(value)
        offline = evaluate_rules(schema, value) == []
        emulated: list[AdmissionError] = []
        admission_validate(value, schema, "spec.x", emulated)
        assert python == offline == (emulated == []), (name, value, python, offline, emulated)


def _schema(annotation: Any) -> dict[str, Any]:
    class M(ApiModel):
        x: annotation  # type: ignore[valid-type]

    return dict(M.model_json_schema(by_alias=True)["properties"]["x"])


def test_a_rule_adds_to_the_rules_a_field_has_and_checks_in_python() -> None:
    schema = _schema(Annotated[str, NOT_BLANK, PROMETHEUS_RESERVED])
    assert [r["rule"] for r in schema["x-kubernetes-validations"]] == [
        NOT_BLANK.rule,
        PROMETHEUS_RESERVED.rule,
    ]
    adapter = TypeAdapter(Annotated[str, NOT_BLANK])
    with pytest.raises(ValidationError) as info:
        adapter.validate_python("   ")
    (err,) = info.value.errors()
    assert err["msg"] == NOT_BLANK.message  # as written: no "Value error, " in front


def test_sets_and_list_maps_are_declared_and_refuse_duplicates() -> None:
    class Item(ApiModel):
        name: str

    assert _schema(Annotated[list[str], SET])["x-kubernetes-list-type"] == "set"
    keyed = _schema(Annotated[list[Item], keyed_by("name")])
    assert (keyed["x-kubernetes-list-type"], keyed["x-kubernetes-list-map-keys"]) == ("map", ["name"])
    with pytest.raises(ValidationError, match="duplicate value 'a': each item may appear only once"):
        TypeAdapter(Annotated[list[str], SET]).validate_python(["a", "b", "a"])
    with pytest.raises(ValidationError, match="duplicate value 'x': each name may appear only once"):
        TypeAdapter(Annotated[list[Item], keyed_by("name")]).validate_python([{"name": "x"}, {"name": "x"}])
    assert TypeAdapter(Annotated[list[str], SET]).validate_python(["a", "b"]) == ["a", "b"]


@pytest.mark.parametrize(
    ("value", "ok"), [("1", True), ("500m", True), ("0.5", True), ("0", False), ("0Gi", False)]
)
def test_positive_quantities(value: str, ok: bool) -> None:
    adapter = TypeAdapter(PositiveQuantity)
    if ok:
        adapter.validate_python(value)
    else:
        with pytest.raises(ValidationError, match="more than 0"):
            adapter.validate_python(value)


@pytest.mark.parametrize(
    "label", ["task", "namespace", "horizon", "bound", "metric", "model", "kind", "job", "instance"]
)
def test_group_by_takes_a_label_of_foresights_own_series_which_write_back_renames(label: str) -> None:
    from foresight.prometheus.labels import RESERVED_LABELS

    assert label in RESERVED_LABELS  # one definition: the API's is the one write-back renames
    assert TypeAdapter(list[LabelName]).validate_python([label]) == [label]
