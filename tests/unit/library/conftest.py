"""Builders of small libraries in every form, valid or broken on purpose."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

LIB = "test-lib"


def case(case_id: str = "c1", **changes: Any) -> dict[str, Any]:
    """A valid primary_standby case; ``changes`` use dotted paths (``{"input.qps": -1}``)."""
    doc: dict[str, Any] = {
        "id": case_id,
        "source": LIB,
        "timestamp": "2026-12-01T00:00:00Z",
        "input": {
            "total_data_size_gb": 500,
            "table_count": 300,
            "qps": 25000,
            "tps": 4000,
            "concurrent_connections": 1000,
            "need_high_availability": True,
            "need_disaster_recovery": False,
            "need_read_write_split": False,
            "data_growth_rate": 20,
        },
        "output": {
            "architecture_type": "primary_standby",
            "node_count": 2,
            "shard_count": 1,
            "replica_count": 1,
            "proxy_count": 1,
            "estimated_cost": 1200,
        },
        "metadata": {
            "industry": "test",
            "scenario": "unit test",
            "verified": False,
            "notes": "made up for a test",
        },
    }
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return doc


DELETE = object()


def manifest(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 1,
        "name": LIB,
        "version": "1.0.0",
        "description": "a library for tests",
        "licence": "Apache-2.0",
    }
    doc.update(changes)
    return doc


def document(cases: Iterable[Mapping[str, Any]], **changes: Any) -> dict[str, Any]:
    return {**manifest(**changes), "cases": [copy.deepcopy(dict(c)) for c in cases]}


def write_document(path: Path, cases: Iterable[Mapping[str, Any]], **changes: Any) -> Path:
    path.write_text(json.dumps(document(cases, **changes)))
    return path


def tar_gz(path: Path, members: Mapping[str, bytes | str]) -> Path:
    """An archive of regular files (name -> content)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def archive(
    path: Path,
    cases: Iterable[Mapping[str, Any]],
    extra: Mapping[str, bytes | str] | None = None,
    **changes: Any,
) -> Path:
    members: dict[str, bytes | str] = {
        "library.json": json.dumps({**manifest(**changes), "cases": "cases.json"}),
        "cases.json": json.dumps(list(cases)),
    }
    members.update(extra or {})
    return tar_gz(path, members)


def spread_cases(n: int = 40) -> list[dict[str, Any]]:
    """Two well separated groups: small standalone workloads and large distributed ones."""
    out = []
    for i in range(n):
        small = i % 2 == 0
        scale = 1 + (i // 2) % 5 * 0.1
        out.append(
            case(
                f"c{i:03d}",
                **{
                    "input.total_data_size_gb": (20 if small else 5000) * scale,
                    "input.qps": (500 if small else 80000) * scale,
                    "input.tps": (50 if small else 9000) * scale,
                    "input.concurrent_connections": int((50 if small else 4000) * scale),
                    "input.need_high_availability": not small,
                    "output.architecture_type": "standalone" if small else "distributed",
                    "output.node_count": 1 if small else 12,
                    "output.shard_count": 1 if small else 6,
                    "output.replica_count": 0 if small else 1,
                    "output.proxy_count": 0 if small else 2,
                    "output.estimated_cost": 100.0 if small else 100.0 * 14,
                },
            )
        )
    return out
