"""``foresight models`` logic against an in-memory API: promote / rollback history, best, compare."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from foresight.modelversion.manage import (
    PREVIOUS_PRODUCTION,
    ModelsError,
    ModelVersions,
    best_version,
    compare_table,
    list_table,
)

Obj = dict[str, Any]


def merge(target: Obj, patch: Obj) -> Obj:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class FakeApi:
    """get / list / merge-patch over dicts, recording the order of patches."""

    def __init__(self, *objs: Obj) -> None:
        self.objs = {o["metadata"]["name"]: o for o in objs}
        self.patches: list[tuple[str, Obj]] = []

    def get(self, ref: Any, name: str, namespace: str | None) -> Obj | None:
        return copy.deepcopy(self.objs.get(name))

    def list(self, ref: Any, namespace: str | None, *, label_selector: str | None = None) -> list[Obj]:
        return [copy.deepcopy(o) for o in self.objs.values()]

    def patch(self, ref: Any, name: str, namespace: str | None, patch: Any) -> Obj:
        self.patches.append((name, patch))
        return merge(self.objs[name], patch)

    def stage(self, name: str) -> str:
        return str(self.objs[name]["spec"].get("stage", "None"))


def mv(name: str, stage: str = "None", model: str = "disk", **metrics: float) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"modelName": model, "version": name[-1], "stage": stage, "metrics": metrics},
    }


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 22, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.t += timedelta(minutes=1)
        return self.t


def test_promote_archives_the_old_production_first_and_records_it() -> None:
    api = FakeApi(mv("disk-1", "Production"), mv("disk-2", "Staging"), mv("other-1", "Production", "other"))
    ModelVersions(api, "ml", Clock()).promote("disk-2")
    assert [name for name, _ in api.patches] == ["disk-1", "disk-2"]  # never two Production at once
    assert (api.stage("disk-1"), api.stage("disk-2"), api.stage("other-1")) == (
        "Archived",
        "Production",
        "Production",
    )
    assert api.objs["disk-2"]["metadata"]["annotations"][PREVIOUS_PRODUCTION] == "disk-1"


def test_rollback_walks_back_through_the_history() -> None:
    api = FakeApi(mv("disk-1", "Production"), mv("disk-2"), mv("disk-3"))
    reg = ModelVersions(api, "ml", Clock())
    reg.promote("disk-2")
    reg.promote("disk-3")
    reg.rollback("disk")
    assert [api.stage(n) for n in ("disk-1", "disk-2", "disk-3")] == ["Archived", "Production", "Archived"]
    reg.rollback("disk")  # one step further, not back to disk-3
    assert [api.stage(n) for n in ("disk-1", "disk-2", "disk-3")] == ["Production", "Archived", "Archived"]
    with pytest.raises(ModelsError, match="no earlier Production version"):
        reg.rollback("disk")


def test_rollback_with_no_production_restores_the_last_demoted() -> None:
    api = FakeApi(mv("disk-1", "Production"), mv("disk-2"))
    reg = ModelVersions(api, "ml", Clock())
    reg.promote("disk-2")
    api.objs["disk-2"]["spec"]["stage"] = "Archived"  # a user archived it by hand
    api.objs["disk-2"]["metadata"]["annotations"]["foresight.dev/demoted-at"] = "2026-11-22T01:00:00Z"
    reg.rollback("disk")
    assert api.stage("disk-2") == "Production"


def test_unknown_names_and_models_say_what_to_do() -> None:
    reg = ModelVersions(FakeApi(mv("disk-1")), "ml", Clock())
    with pytest.raises(ModelsError, match="models list -n ml"):
        reg.promote("nope")
    with pytest.raises(ModelsError, match="no ModelVersions"):
        reg.rollback("nope")
    with pytest.raises(ModelsError, match="never had a Production"):
        reg.rollback("disk")


def test_best_compare_and_list() -> None:
    versions = [mv("disk-1", mae=3.0, rmse=4.0), mv("disk-2", "Production", mae=2.0), mv("disk-3", rmse=1.0)]
    assert best_version(versions, "mae", minimize=True)["metadata"]["name"] == "disk-2"
    assert best_version(versions, "mae", minimize=False)["metadata"]["name"] == "disk-1"
    with pytest.raises(ModelsError, match=r"metrics present: \['mae', 'rmse'\]"):
        best_version(versions, "r2", minimize=False)
    table = compare_table(versions).splitlines()
    assert table[0].split() == ["disk-1", "disk-2", "disk-3"]
    assert table[2].split() == ["mae", "3", "2", "-"]
    rows = list_table(versions).splitlines()
    assert rows[0].split()[:4] == ["NAME", "MODEL", "VERSION", "STAGE"]
    assert rows[2].split()[:4] == ["disk-2", "disk", "2", "Production"]
