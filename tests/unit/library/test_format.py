"""The library format: shipped schemas, records in step with them, and honest built-in libraries."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import jsonschema
import pytest
from foresight.library.builtin import BUILTINS, builtin_path
from foresight.library.builtin.generate import main as generate_main
from foresight.library.records import ARCHITECTURES, CaseInput, CaseOutput
from foresight.library.schema import case_schema, manifest_schema
from foresight.library.verify import verify_path


def test_the_schemas_ship_with_the_package_and_are_valid_draft_2020_12() -> None:
    for schema in (case_schema(), manifest_schema()):
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"].startswith("https://foresight.dev/schemas/library/1/")


def test_the_typed_records_name_exactly_the_schemas_fields() -> None:
    props = case_schema()["properties"]
    assert [f.name for f in dataclasses.fields(CaseInput)] == list(props["input"]["properties"])
    assert [f.name for f in dataclasses.fields(CaseOutput)] == list(props["output"]["properties"])
    assert tuple(props["output"]["properties"]["architecture_type"]["enum"]) == ARCHITECTURES


def test_the_format_doc_lists_every_field() -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "library-format.md").read_text()
    props = case_schema()["properties"]
    for section in ("input", "output", "metadata"):
        for name in props[section]["properties"]:
            assert f"`{name}`" in doc, name
    for name in manifest_schema()["properties"]:
        assert f"`{name}`" in doc, name


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_file_has_the_sha256_pinned_in_the_code(name: str) -> None:
    assert hashlib.sha256(builtin_path(name).read_bytes()).hexdigest() == BUILTINS[name].sha256


def test_builtin_files_are_exactly_what_the_generator_writes(tmp_path: Path) -> None:
    assert generate_main(["--out", str(tmp_path)]) == 0
    for name in BUILTINS:
        assert (tmp_path / f"{name}.json").read_bytes() == builtin_path(name).read_bytes(), (
            f"{name}.json differs from its generator: run `python -m foresight.library.builtin.generate` "
            "and update the sha256 in foresight/library/builtin/__init__.py"
        )


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_cases_say_where_they_come_from_and_claim_nothing(name: str, tmp_path: Path) -> None:
    report = verify_path(builtin_path(name), tmp_path)
    assert report.ok, report.message
    assert report.version == BUILTINS[name].version and report.cases >= 200
    doc = json.loads(builtin_path(name).read_text())
    rule_ids = {r["id"] for r in doc["x-rules"]}
    assert all(r["kind"] in ("documented", "assumption") and r["source"] for r in doc["x-rules"])
    assert len(report.library.architecture_counts()) == 4  # type: ignore[union-attr]
    for case in doc["cases"]:
        meta = case["metadata"]
        assert meta["verified"] is False and meta["accuracy_rating"] is None
        assert meta["industry"] == "reference (rule-derived)"
        assert meta["notes"].startswith("Rule-derived reference case, not a customer deployment.")
        cited = set(re.findall(r"\[([A-Z0-9, ]+)\]", meta["notes"]))
        ids = {i.strip() for group in cited for i in group.split(",")}
        assert ids and ids <= rule_ids, (case["id"], ids - rule_ids)


def test_the_case_in_the_format_doc_is_valid() -> None:
    from foresight.library.schema import case_errors
    from foresight.library.verify import _consistency

    doc = (Path(__file__).resolve().parents[3] / "docs" / "library-format.md").read_text()
    block = doc.split("## A case", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    example = json.loads(block)
    assert case_errors(example) == [] and _consistency(example) == []
