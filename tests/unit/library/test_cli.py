"""``foresight library list / show / activate-preview / fetch`` against the built-ins and a local store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from foresight.cli import main as cli_main
from foresight.library.builtin import builtin_path


def fetch(tmp_path: Path, name: str, source: dict[str, object], version: str, **env: str) -> int:
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "namespace": "ns",
                "store": str(tmp_path / "store"),
                "spec": {"source": source, "version": version},
            }
        )
    )
    return cli_main(["library", "fetch", "--config", str(cfg)])


def test_list_shows_the_builtins_with_their_checksums(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["library", "list", "-o", "json"]) == 0
    docs = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert set(docs) == {"postgresql-oltp", "mysql-tidb"}
    assert docs["mysql-tidb"]["cases"] == 300 and len(docs["mysql-tidb"]["sha256"]) == 64


def test_fetch_list_show_and_preview_against_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORESIGHT_TERMINATION_LOG", str(tmp_path / "term"))
    assert fetch(tmp_path, "pg", {"builtin": "postgresql-oltp"}, "2026.12") == 0
    capsys.readouterr()
    store = str(tmp_path / "store")
    assert cli_main(["library", "list", "--store", store]) == 0
    out = capsys.readouterr().out
    assert "postgresql-oltp  2026.12" in out and "ns/pg" in out

    assert cli_main(["library", "show", "postgresql-oltp", "--store", store, "-o", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == "2026.12" and shown["pointer"]["active"]["version"] == "2026.12"
    assert shown["quality"]["architectureAccuracy"] > shown["quality"]["baselineAccuracy"]
    assert shown["coverage"]["qps"]["max"] > shown["coverage"]["qps"]["min"] > 0

    doc = json.loads(builtin_path("postgresql-oltp").read_text())
    doc["version"], doc["cases"] = "2027.01", doc["cases"][:250]
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(doc))
    assert cli_main(["library", "activate-preview", str(newer), "--store", store, "-o", "json"]) == 0
    preview = json.loads(capsys.readouterr().out)
    assert preview["wouldActivate"] and preview["replaces"]["version"] == "2026.12"
    assert preview["changes"]["removed"] == 50 and preview["changes"]["added"] == 0
    assert preview["previousAfter"] == "2026.12"

    # The same version with other content is refused: a published version never changes.
    doc["version"] = "2026.12"
    newer.write_text(json.dumps(doc))
    assert cli_main(["library", "activate-preview", str(newer), "--store", store]) == 1
    assert "would NOT activate" in capsys.readouterr().out
    assert cli_main(["library", "activate-preview", "postgresql-oltp"]) == 2  # needs --store


def test_show_and_recommend_from_the_active_version_in_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORESIGHT_TERMINATION_LOG", str(tmp_path / "term"))
    store = str(tmp_path / "store")
    assert cli_main(["recommend", "--library", "mysql-tidb", "--store", store, "--set", "qps=3000"]) == 1
    assert "has no active version" in capsys.readouterr().err
    assert fetch(tmp_path, "my", {"builtin": "mysql-tidb"}, "2026.12") == 0
    capsys.readouterr()
    assert (
        cli_main(
            ["recommend", "--library", "mysql-tidb", "--store", store, "--set", "qps=3000", "-o", "json"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["version"] == "2026.12"
