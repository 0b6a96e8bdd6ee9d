"""The library format's typed records: the manifest, one case, a whole verified library.

These are built only from documents that already passed :mod:`foresight.library.schema` (the JSON
Schemas are the published contract; docs/library-format.md explains every field), so they convert
and never validate. Field names are seed 000's, in snake_case, on purpose: a case file reads the
same in Python, in JSON and in the schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from foresight.api.recommendation import BOOLEAN_INPUTS, NUMERIC_INPUTS

__all__ = [
    "ARCHITECTURES",
    "BOOLEAN_INPUTS",
    "CASES_FILE",
    "INPUT_FIELDS",
    "MANIFEST_FILE",
    "NUMERIC_INPUTS",
    "SCHEMA_VERSION",
    "Architecture",
    "Case",
    "CaseInput",
    "CaseOutput",
    "Library",
    "Manifest",
    "ModelEntry",
    "ModelFile",
]

SCHEMA_VERSION = 1
"""The library format this runtime reads and writes (``schemaVersion`` in every manifest)."""
MANIFEST_FILE = "library.json"
CASES_FILE = "cases.json"

Architecture = Literal["standalone", "primary_standby", "read_write_split", "distributed"]
ARCHITECTURES: tuple[str, ...] = ("standalone", "primary_standby", "read_write_split", "distributed")

INPUT_FIELDS: tuple[str, ...] = NUMERIC_INPUTS + BOOLEAN_INPUTS


@dataclass(frozen=True)
class CaseInput:
    """The workload: what a team knows (or forecasts) about its database."""

    total_data_size_gb: float
    table_count: int
    qps: float
    tps: float
    concurrent_connections: int
    need_high_availability: bool
    need_disaster_recovery: bool
    need_read_write_split: bool
    data_growth_rate: float

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> CaseInput:
        return cls(
            total_data_size_gb=float(doc["total_data_size_gb"]),
            table_count=int(doc["table_count"]),
            qps=float(doc["qps"]),
            tps=float(doc["tps"]),
            concurrent_connections=int(doc["concurrent_connections"]),
            need_high_availability=bool(doc["need_high_availability"]),
            need_disaster_recovery=bool(doc["need_disaster_recovery"]),
            need_read_write_split=bool(doc["need_read_write_split"]),
            data_growth_rate=float(doc["data_growth_rate"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class CaseOutput:
    """The architecture sized for the workload."""

    architecture_type: str
    node_count: int
    shard_count: int
    replica_count: int
    proxy_count: int
    estimated_cost: float

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> CaseOutput:
        return cls(
            architecture_type=str(doc["architecture_type"]),
            node_count=int(doc["node_count"]),
            shard_count=int(doc["shard_count"]),
            replica_count=int(doc["replica_count"]),
            proxy_count=int(doc["proxy_count"]),
            estimated_cost=float(doc["estimated_cost"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class Case:
    """One capacity-planning case (seed 000's format)."""

    id: str
    source: str
    timestamp: str
    input: CaseInput
    output: CaseOutput
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Case:
        return cls(
            id=str(doc["id"]),
            source=str(doc["source"]),
            timestamp=str(doc["timestamp"]),
            input=CaseInput.from_json(doc["input"]),
            output=CaseOutput.from_json(doc["output"]),
            metadata=dict(doc.get("metadata") or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "timestamp": self.timestamp,
            "input": self.input.to_json(),
            "output": self.output.to_json(),
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True)
class ModelFile:
    path: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class ModelEntry:
    """A pre-trained forecasting model the library carries: a directory with config.json."""

    name: str
    type: str
    path: str
    files: tuple[ModelFile, ...]
    description: str = ""

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ModelEntry:
        return cls(
            name=str(doc["name"]),
            type=str(doc["type"]),
            path=str(doc["path"]).strip("/"),
            files=tuple(
                ModelFile(str(f["path"]), str(f["sha256"]), f.get("size")) for f in doc.get("files") or []
            ),
            description=str(doc.get("description") or ""),
        )

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "path": self.path,
            "files": [
                {"path": f.path, "sha256": f.sha256, **({"size": f.size} if f.size is not None else {})}
                for f in self.files
            ],
        }
        if self.description:
            doc["description"] = self.description
        return doc


@dataclass(frozen=True)
class Manifest:
    """``library.json``: who the library is, and what it holds besides its cases."""

    name: str
    version: str
    description: str
    licence: str
    schema_version: int = SCHEMA_VERSION
    homepage: str = ""
    created_at: str = ""
    currency: str = "USD"
    cost_period: str = "month"
    models: tuple[ModelEntry, ...] = ()
    cases_path: str = CASES_FILE
    extensions: Mapping[str, Any] = field(default_factory=dict)
    """``x-...`` keys, kept as they are (an author's own metadata)."""

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Manifest:
        cases = doc.get("cases")
        return cls(
            name=str(doc["name"]),
            version=str(doc["version"]),
            description=str(doc["description"]),
            licence=str(doc["licence"]),
            schema_version=int(doc["schemaVersion"]),
            homepage=str(doc.get("homepage") or ""),
            created_at=str(doc.get("createdAt") or ""),
            currency=str(doc.get("currency") or "USD"),
            cost_period=str(doc.get("costPeriod") or "month"),
            models=tuple(ModelEntry.from_json(m) for m in doc.get("models") or []),
            cases_path=cases if isinstance(cases, str) else CASES_FILE,
            extensions={k: v for k, v in doc.items() if k.startswith("x-")},
        )

    def to_json(self, *, cases: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """The manifest document; with ``cases`` the single-document form (cases inline)."""
        doc: dict[str, Any] = {
            "schemaVersion": self.schema_version,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "licence": self.licence,
            "currency": self.currency,
            "costPeriod": self.cost_period,
        }
        if self.homepage:
            doc["homepage"] = self.homepage
        if self.created_at:
            doc["createdAt"] = self.created_at
        if self.models:
            doc["models"] = [m.to_json() for m in self.models]
        doc.update(self.extensions)
        doc["cases"] = list(cases) if cases is not None else self.cases_path
        return doc


@dataclass(frozen=True)
class Library:
    """A verified library: its manifest, its cases and the checksum of what was read."""

    manifest: Manifest
    cases: tuple[Case, ...]
    checksum: str = ""

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    def architecture_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for case in self.cases:
            counts[case.output.architecture_type] = counts.get(case.output.architecture_type, 0) + 1
        return dict(sorted(counts.items()))

    def input_ranges(self) -> dict[str, tuple[float, float]]:
        """(min, max) of each numeric input over the cases: what the library covers."""
        out: dict[str, tuple[float, float]] = {}
        for name in NUMERIC_INPUTS:
            values = [float(getattr(c.input, name)) for c in self.cases]
            if values:
                out[name] = (min(values), max(values))
        return out


def _plain(value: Any) -> Any:
    # Whole floats are written as integers so a case file round-trips byte for byte (500, not 500.0).
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value
