"""Reading resource YAML (``foresight.api.documents``) and ``foresight validate`` on odd files: no
crash, every document checked, the problem named, a non-zero exit when anything failed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from foresight.api.documents import DocumentError, load_documents, read_yaml
from foresight.api.validation import MAX_VALUES, validate_object

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = (ROOT / "examples" / "modellibrary-builtin.yaml").read_text()


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


# --- the loader ---------------------------------------------------------------------------------


def test_documents_keep_their_first_line_and_empty_ones_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "a.yaml", "a: 1\n---\n---\n# nothing\n---\nb: 2\nc: 3\n")
    loaded = read_yaml(path)
    assert [(d.line, d.value) for d in loaded.documents] == [(1, {"a": 1}), (6, {"b": 2, "c": 3})]
    assert loaded.warnings == ()


def test_a_key_given_twice_is_a_warning_with_both_lines_and_the_last_value_wins(tmp_path: Path) -> None:
    path = write(tmp_path, "dup.yaml", "a: 1\n---\nspec:\n  step: 1h\n  lookback: 48h\n  step: 2h\n")
    loaded = read_yaml(path)
    assert loaded.documents[1].value == {"spec": {"step": "2h", "lookback": "48h"}}
    assert loaded.warnings == ("line 6: key 'step' is given twice (first on line 4); the last value is used",)


def test_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    path = write(tmp_path, "merge.yaml", "base: &b {x: 1, y: 2}\nnew:\n  <<: *b\n  x: 3\n")
    loaded = read_yaml(path)
    assert loaded.documents[0].value["new"] == {"x": 3, "y": 2}
    assert loaded.warnings == ()


def test_a_syntax_error_spoils_only_its_own_document(tmp_path: Path) -> None:
    path = write(tmp_path, "mixed.yaml", "a: 1\n---\nb: [unclosed\n---\nc: 3\n")
    docs = read_yaml(path).documents
    assert [d.value for d in docs if d.error is None] == [{"a": 1}, {"c": 3}]
    (bad,) = [d for d in docs if d.error is not None]
    assert bad.line == 2 and bad.error is not None and bad.error.startswith("not valid YAML")
    assert "line 4" in bad.error  # PyYAML's own position is the file's line, not the piece's


def test_nesting_too_deep_for_the_parser_is_a_bad_document_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path, "deep.yaml", "[" * 5_000 + "]" * 5_000 + "\n---\nok: 1\n")
    docs = read_yaml(path).documents
    assert docs[0].error is not None and docs[-1].value == {"ok": 1}


def test_unsafe_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "tag.yaml", "a: !!python/object/apply:os.system ['true']\n")
    (doc,) = read_yaml(path).documents
    assert doc.error is not None and "could not determine a constructor" in doc.error


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not UTF-8 text"),
        (None, "cannot read"),
    ],
)
def test_unreadable_files_raise_a_document_error(tmp_path: Path, content: bytes | None, needle: str) -> None:
    path = write(tmp_path, "x.yaml", content) if content is not None else str(tmp_path / "missing.yaml")
    with pytest.raises(DocumentError, match=needle):
        read_yaml(path)
    with pytest.raises(DocumentError, match=needle):
        load_documents(path)


def test_load_documents_is_strict_about_bad_documents(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "a: 1\n---\nkind: [unclosed\n")
    with pytest.raises(DocumentError, match="not valid YAML"):
        load_documents(path)
    assert load_documents(write(tmp_path, "good.yaml", EXAMPLE))[0]["kind"] == "ModelLibrary"


# --- what YAML can say and JSON cannot ---------------------------------------------------------


def library(**spec: object) -> dict[str, object]:
    doc = yaml.safe_load(EXAMPLE)
    doc["spec"].update(spec)
    return doc


@pytest.mark.parametrize(
    ("text", "field", "needle"),
    [
        (".nan", "spec.extra", "JSON has no NaN"),
        (".inf", "spec.extra", "JSON has no NaN or infinity"),
        ("-.inf", "spec.extra", "JSON has no NaN or infinity"),
        ("123456789012345678901234567890", "spec.extra", "64 bits"),
        ("{2024-01-01: x}", "spec.extra.2024-01-01", "not a string"),
    ],
)
def test_values_json_cannot_carry_are_refused_naming_the_field(text: str, field: str, needle: str) -> None:
    doc = library(extra=yaml.safe_load(f"v: {text}")["v"])
    errors = [str(e) for e in validate_object(doc)]
    assert any(e.startswith(f"{field}: ") and needle in e for e in errors), errors


def test_nan_in_a_bounded_field_is_refused_too() -> None:
    doc = yaml.safe_load((ROOT / "examples" / "forecasttask-storage.yaml").read_text())
    doc["spec"]["threshold"]["ratio"] = float("nan")
    errors = [str(e) for e in validate_object(doc)]
    assert any(e.startswith("spec.threshold.ratio: ") for e in errors), errors


def test_aliases_expanding_past_the_limit_are_refused() -> None:
    lol: object = ["lol"] * 10
    for _ in range(6):  # 10**7 strings once expanded, a few hundred objects in memory
        lol = [lol] * 10
    errors = [str(e) for e in validate_object(library(extra=lol))]
    assert errors == [f"spec: more than {MAX_VALUES:,} values once YAML aliases are expanded"]
    selfish: list[object] = []
    selfish.append(selfish)  # `&a [*a]`
    assert "aliases are expanded" in str(validate_object(library(extra=selfish))[0])


@pytest.mark.parametrize(
    ("metadata", "field"), [([1, 2], "metadata.name"), ("x", "metadata.name"), ({"name": 7}, "metadata.name")]
)
def test_odd_metadata_is_a_field_error(metadata: object, field: str) -> None:
    doc = library()
    doc["metadata"] = metadata
    assert any(str(e).startswith(field) for e in validate_object(doc))


# --- foresight validate, the real command ----------------------------------------------------------


def validate(*paths: str) -> subprocess.CompletedProcess[str]:
    args = [arg for p in paths for arg in ("-f", p)]
    return subprocess.run(
        [sys.executable, "-m", "foresight.cli", "validate", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_validate_survives_odd_files_and_checks_everything_after_them(tmp_path: Path) -> None:
    odd = write(
        tmp_path,
        "odd.yaml",
        "\n---\n".join(
            [
                "- just\n- a list",
                "42",
                EXAMPLE.replace('version: "2026.12"', 'version: "2026.12"\n  version: "2026.13"'),
                EXAMPLE.replace("active: true", "active: .nan"),
                EXAMPLE.replace("active: true", "active: 123456789012345678901234567890"),
                "kind: [unclosed",
                EXAMPLE.replace("name: capacity-planning", "name: last-one"),
            ]
        ),
    )
    binary = write(tmp_path, "photo.yaml", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    missing = str(tmp_path / "missing.yaml")
    good = str(ROOT / "examples" / "abexperiment.yaml")
    out = validate(odd, binary, missing, good)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    err = out.stderr
    assert f"{odd}: <list>: <document>: expected a mapping" in err
    assert f"{odd}: <int>: <document>: expected a mapping" in err
    assert f"{odd}: warning: line " in err and "key 'version' is given twice" in err
    assert f"{odd}: ModelLibrary/capacity-planning: spec.active: nan is not a number the API accepts" in err
    assert f"{odd}: ModelLibrary/capacity-planning: spec.active: out of range" in err
    assert f"{odd}: document at line " in err and "not valid YAML" in err
    assert f"{binary}: not UTF-8 text" in err
    assert f"{missing}: cannot read" in err
    # the documents and files after every problem were still checked
    assert f"{odd}: ModelLibrary/last-one: valid" in out.stdout
    assert f"{good}: ABExperiment/photo-classifier-v2-vs-v1: valid" in out.stdout


def test_validate_exits_zero_when_only_warnings(tmp_path: Path) -> None:
    dup = write(tmp_path, "dup.yaml", EXAMPLE.replace("active: true", "active: true\n  active: true"))
    out = validate(dup)
    assert out.returncode == 0, out.stderr
    assert "key 'active' is given twice" in out.stderr and "valid" in out.stdout


def test_foresight_run_files_are_read_by_the_same_loader(tmp_path: Path) -> None:
    """`foresight run -f` of a ForecastTask and of a ClassifierService: odd files are refused with
    the loader's reason, not a traceback."""
    from foresight.run.local import TaskFileError, load_task
    from foresight.serving.local import ServiceFileError, load_classifier_service

    binary = write(tmp_path, "x.yaml", b"\x00\x01\xff\xfe binary")
    with pytest.raises(TaskFileError, match="not UTF-8 text"):
        load_task(binary)
    with pytest.raises(ServiceFileError, match="not UTF-8 text"):
        load_classifier_service(binary)
    broken = write(tmp_path, "y.yaml", "kind: ClassifierService\nspec: [unclosed\n")
    with pytest.raises(ServiceFileError, match="not valid YAML"):
        load_classifier_service(broken)
