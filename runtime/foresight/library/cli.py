"""The ``foresight library`` actions and ``foresight recommend``, against local files, the built-in
libraries, or an artifact store holding fetched libraries (the same store the fetch Job writes).

Every action prints text for a person or ``-o json`` for a program, and returns an exit status
(see the epilogs in :mod:`foresight.commands.library`); an error is one line that says what to do,
never a traceback.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foresight.artifacts import ArtifactError, S3Options, open_store, s3_credentials_from_environ
from foresight.console import table
from foresight.contract.s3 import AWS_ENDPOINT
from foresight.kube import KubeApiError

from .archive import Limits, MiB, file_sha256
from .builtin import BUILTINS, builtin_path
from .errors import LibraryError, LibraryReason
from .recommend import Recommendation, Recommender, case_inputs, leave_one_out
from .records import INPUT_FIELDS, MANIFEST_FILE, Library
from .store import LibraryStore, Pointer
from .verify import VerifyReport, verify_path

__all__ = ["parse_set", "run_library", "run_recommend"]

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_UNCOVERED = 0, 1, 2, 3
LIBRARY_GAP = 2
"""Columns of the library tables are two spaces apart (they are wide: a recommendation has 13)."""


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(max_cases_bytes=args.max_cases_mib * MiB, max_archive_bytes=args.max_archive_mib * MiB)


def _open_library_store(args: argparse.Namespace) -> LibraryStore:
    s3 = None
    if str(args.store).startswith("s3://"):
        s3 = S3Options(
            endpoint=args.s3_endpoint or AWS_ENDPOINT,
            secure=not args.s3_insecure,
            credentials=s3_credentials_from_environ(os.environ),
        )
    return LibraryStore(open_store(args.store, s3=s3), args.prefix)


@dataclass
class _Loaded:
    library: Library
    origin: str
    report: VerifyReport | None = None
    pointer: Pointer | None = None


def _verified_file(path: Path, limits: Limits | None = None) -> _Loaded:
    with tempfile.TemporaryDirectory(prefix="foresight-library-") as tmp:
        report = verify_path(path, Path(tmp), limits=limits)
    if not report.ok or report.library is None:
        assert report.reason is not None
        raise LibraryError(report.reason, f"{path}: {report.message}")
    return _Loaded(report.library, str(path), report)


def _load(name: str, args: argparse.Namespace, limits: Limits | None = None) -> _Loaded:
    """A library by store name, file path or built-in name, in that order."""
    if getattr(args, "store", None):
        lib_store = _open_library_store(args)
        library, ref = lib_store.load(name, getattr(args, "version", None))
        return _Loaded(library, ref.uri, pointer=lib_store.read_pointer(name))
    path = Path(name)
    if path.exists():
        return _verified_file(path, limits)
    if name in BUILTINS:
        return _verified_file(builtin_path(name), limits)
    raise LibraryError(
        LibraryReason.SOURCE_NOT_FOUND,
        f"no library {name!r}: not a file, and not a built-in "
        f"library (built-in: {', '.join(sorted(BUILTINS))}); give --store to read the active "
        "version of a fetched library",
    )


# -- list / show ------------------------------------------------------------------------------------


def _list_cluster(args: argparse.Namespace) -> int:
    from .cluster import LIST_HEADER, cluster_libraries, list_rows

    objs = cluster_libraries(args)
    if args.output == "json":
        _print_json(
            [{"metadata": o["metadata"], "spec": o.get("spec"), "status": o.get("status")} for o in objs]
        )
    else:
        print(table(LIST_HEADER, list_rows(objs), gap=LIBRARY_GAP))
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    if getattr(args, "cluster", False):
        return _list_cluster(args)
    if args.store:
        lib_store = _open_library_store(args)
        rows: list[list[Any]] = []
        docs: list[dict[str, Any]] = []
        for name in lib_store.names():
            pointer = lib_store.read_pointer(name)
            versions = lib_store.versions(name)
            active = pointer.active if pointer else None
            previous = pointer.previous if pointer else None
            docs.append(
                {
                    "name": name,
                    "versions": versions,
                    "pointer": pointer.to_json() if pointer else None,
                    "pointerUri": lib_store.pointer_uri(name),
                }
            )
            rows.append(
                [
                    name,
                    active.version if active else "-",
                    previous.version if previous else "-",
                    ",".join(versions) or "-",
                    active.cases if active else "-",
                    (active.owner or "-") if active else "-",
                ]
            )
        if args.output == "json":
            _print_json(docs)
        else:
            print(table(["NAME", "ACTIVE", "PREVIOUS", "STORED", "CASES", "OWNER"], rows, gap=LIBRARY_GAP))
        return EXIT_OK
    rows = []
    docs = []
    for name, entry in sorted(BUILTINS.items()):
        loaded = _verified_file(builtin_path(name))
        counts = loaded.library.architecture_counts()
        docs.append(
            {
                "name": name,
                "version": entry.version,
                "sha256": entry.sha256,
                "cases": len(loaded.library.cases),
                "architectures": counts,
                "summary": entry.summary,
            }
        )
        rows.append([name, entry.version, len(loaded.library.cases), entry.sha256[:12], entry.summary])
    if args.output == "json":
        _print_json(docs)
    else:
        print(table(["NAME", "VERSION", "CASES", "SHA256", "SUMMARY"], rows, gap=LIBRARY_GAP))
    return EXIT_OK


def _show_cluster(args: argparse.Namespace) -> int:
    from .cluster import MODEL_LIBRARIES, client_for, show_text

    client, namespace = client_for(args)
    obj = client.get(MODEL_LIBRARIES, args.library, namespace)
    if obj is None:
        _error(f"no ModelLibrary {namespace}/{args.library} (`foresight library list --cluster` lists them)")
        return EXIT_INVALID
    if args.output == "json":
        _print_json({"metadata": obj["metadata"], "spec": obj.get("spec"), "status": obj.get("status")})
    else:
        sys.stdout.write(show_text(obj))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    if getattr(args, "cluster", False):
        return _show_cluster(args)
    loaded = _load(args.library, args)
    lib = loaded.library
    m = lib.manifest
    quality = leave_one_out(lib)
    architectures = lib.architecture_counts()
    doc: dict[str, Any] = {
        "name": m.name,
        "version": m.version,
        "schemaVersion": m.schema_version,
        "licence": m.licence,
        "description": m.description,
        "origin": loaded.origin,
        "checksum": lib.checksum,
        "cases": len(lib.cases),
        "architectures": architectures,
        "coverage": {k: {"min": lo, "max": hi} for k, (lo, hi) in lib.input_ranges().items()},
        "models": [e.to_json() for e in m.models],
        "currency": m.currency,
        "costPeriod": m.cost_period,
        "rules": [r.get("id") for r in m.extensions.get("x-rules", []) if isinstance(r, dict)],
        "quality": quality.to_json() if quality else None,
        "pointer": loaded.pointer.to_json() if loaded.pointer else None,
    }
    if args.output == "json":
        _print_json(doc)
        return EXIT_OK
    out = [
        f"{m.name} {m.version} (schemaVersion {m.schema_version}, licence {m.licence})",
        f"from: {loaded.origin}",
        f"sha256: {lib.checksum or '-'}",
        "",
        m.description,
        "",
        f"cases: {len(lib.cases)}  " + ", ".join(f"{k} {v}" for k, v in architectures.items()),
        f"models: {len(m.models)}" + (" (" + ", ".join(e.name for e in m.models) + ")" if m.models else ""),
        "",
        "coverage (what the recommender answers for; beyond it, it says so):",
    ]
    out += [f"  {k:24} {lo:>14,.1f} .. {hi:,.1f}" for k, (lo, hi) in lib.input_ranges().items()]
    if quality is not None:
        out += [
            "",
            f"leave-one-out quality (k={quality.k}, {quality.held_out} cases held out):",
            f"  architecture accuracy {quality.architecture_accuracy:.3f} (always the most common: "
            f"{quality.baseline_accuracy:.3f}); {quality.abstained} outside coverage",
            f"  node count MAE {quality.node_count_mae or 0:.2f} (always the median: "
            f"{quality.baseline_node_count_mae or 0:.2f})",
        ]
    if loaded.pointer is not None:
        p = loaded.pointer
        out += [
            "",
            f"active version: {p.active.version if p.active else 'none'}; previous: "
            f"{p.previous.version if p.previous else 'none'}; updated {p.updated_at}",
        ]
    print("\n".join(out))
    return EXIT_OK


# -- verify / preview / pack --------------------------------------------------------------------------


def _print_report(path: str, report: VerifyReport) -> None:
    if report.ok and report.library is not None:
        print(
            f"{path}: valid: {report.name} {report.version}: {report.cases} cases ({report.valid} valid), "
            f"{report.models} models; architectures {report.library.architecture_counts()}"
        )
        print(f"sha256: {report.checksum} ({report.form}, {report.size_bytes} bytes)")
    else:
        assert report.reason is not None
        print(f"{path}: INVALID ({report.reason.value}): {report.message}")
        if report.checked:
            print(f"cases: {report.cases}, valid {report.valid}, invalid {report.invalid}")
        if report.findings:
            shown = len(report.findings)
            print(
                f"first {shown} of {report.finding_count} findings:"
                if report.finding_count > shown
                else "findings:"
            )
            for finding in report.findings:
                print(f"  {finding}")
        if report.checksum:
            print(f"sha256: {report.checksum}")
    for warning in report.warnings:
        print(f"warning: {warning}")


def _verify(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.exists():
        _error(f"{path}: no such file or directory")
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="foresight-library-") as tmp:
        report = verify_path(
            path, Path(tmp), limits=_limits(args), expect_name=args.name, expect_version=args.version
        )
    if args.sha256 and report.checksum and report.checksum != args.sha256.lower():
        report.reason = LibraryReason.CHECKSUM_MISMATCH
        report.message = (
            f"the file has sha256 {report.checksum}, not {args.sha256.lower()}: it is not the file "
            "that was pinned"
        )
    if args.output == "json":
        _print_json(report.to_json())
    else:
        _print_report(str(path), report)
    return EXIT_OK if report.ok else EXIT_INVALID


def _preview_cluster(args: argparse.Namespace) -> int:
    from .cluster import cluster_libraries, preview_document

    new = _load(args.library, argparse.Namespace(store=None), _limits(args)).library
    quality = leave_one_out(new)
    doc = preview_document(new, quality.to_json() if quality else None, cluster_libraries(args))
    if args.output == "json":
        _print_json(doc)
        return EXIT_OK
    print(f"{new.name} {new.version} ({len(new.cases)} cases, sha256 {(new.checksum or '-')[:12]})")
    old = doc["replaces"]
    if old is None:
        claimed = ", ".join(doc["claimedBy"]) or "none"
        print(f"no ModelLibrary of the namespace holds {new.name} (claimed by: {claimed}): it would be first")
    else:
        print(
            f"would replace version {old['version']} ({old['cases']} cases) held by ModelLibrary "
            f"{old['modelLibrary']}, kept as the previous version"
        )
        print(doc["note"])
    for label, q in (("now", (old or {}).get("quality")), ("after", doc.get("quality"))):
        if q:
            print(
                f"leave-one-out {label}: architecture accuracy {q['architectureAccuracy']:.3f} (baseline "
                f"{q['baselineAccuracy']:.3f}), node count MAE {q.get('nodeCountMAE')}"
            )
    return EXIT_OK


def _preview(args: argparse.Namespace) -> int:
    if getattr(args, "cluster", False):
        return _preview_cluster(args)
    if not args.store:
        _error(
            "activate-preview compares with the active version in a store (--store) or in the cluster's "
            "ModelLibraries (--cluster)"
        )
        return EXIT_USAGE
    new = _load(args.library, argparse.Namespace(store=None), _limits(args)).library
    lib_store = _open_library_store(args)
    pointer = lib_store.read_pointer(new.name)
    doc: dict[str, Any] = {
        "library": new.name,
        "version": new.version,
        "checksum": new.checksum,
        "cases": len(new.cases),
        "wouldActivate": True,
    }
    stored = lib_store.stored(new.name, new.version)
    if stored is not None and stored.checksum != new.checksum:
        doc["wouldActivate"] = False
        doc["reason"] = LibraryReason.VERSION_CONFLICT.value
        doc["message"] = (
            f"version {new.version} is already stored with checksum {stored.checksum}: a changed "
            "library needs a new version"
        )
    new_quality = leave_one_out(new)
    doc["quality"] = new_quality.to_json() if new_quality else None
    if pointer is not None and pointer.active is not None:
        old, _ = lib_store.load(new.name)
        doc["replaces"] = {"version": old.version, "cases": len(old.cases), "owner": pointer.active.owner}
        doc["changes"] = _diff(old, new)
        old_quality = leave_one_out(old)
        doc["replacesQuality"] = old_quality.to_json() if old_quality else None
        doc["previousAfter"] = old.version
    else:
        doc["replaces"] = None
        doc["previousAfter"] = pointer.previous.version if pointer and pointer.previous else None
    if args.output == "json":
        _print_json(doc)
    else:
        _print_preview(doc)
    return EXIT_OK if doc["wouldActivate"] else EXIT_INVALID


def _diff(old: Library, new: Library) -> dict[str, Any]:
    """Cases added / removed / changed, and how many of the old cases would be recommended otherwise."""
    old_by, new_by = {c.id: c for c in old.cases}, {c.id: c for c in new.cases}
    changed = sorted(i for i in old_by.keys() & new_by.keys() if old_by[i] != new_by[i])
    rec_old, rec_new = Recommender(old), Recommender(new)
    arch_changes = node_changes = 0
    probes = old.cases[:500]  # a bounded sample: previews stay fast on large libraries
    for case in probes:
        a, b = rec_old.recommend(case_inputs(case)), rec_new.recommend(case_inputs(case))
        arch_changes += a.architecture_type != b.architecture_type
        node_changes += a.node_count != b.node_count
    return {
        "added": len(new_by.keys() - old_by.keys()),
        "removed": len(old_by.keys() - new_by.keys()),
        "changed": len(changed),
        "firstChanged": changed[:5],
        "probes": len(probes),
        "architectureChanges": arch_changes,
        "nodeCountChanges": node_changes,
    }


def _print_preview(doc: Mapping[str, Any]) -> None:
    head = f"{doc['library']} {doc['version']} ({doc['cases']} cases, sha256 {doc['checksum'][:12]})"
    if not doc["wouldActivate"]:
        print(f"would NOT activate {head}: {doc['message']}")
        return
    old = doc.get("replaces")
    print(
        f"would activate {head}"
        + (
            f", replacing {old['version']} ({old['cases']} cases, owner "
            f"{old['owner'] or '-'}), which stays stored as the previous version"
            if old
            else ", the first active version of this library"
        )
    )
    changes = doc.get("changes")
    if changes:
        print(
            f"cases: {changes['added']} added, {changes['removed']} removed, {changes['changed']} changed"
            + (f" (first: {', '.join(changes['firstChanged'])})" if changes["firstChanged"] else "")
        )
        print(
            f"recommendations for {changes['probes']} cases of the active version: "
            f"{changes['architectureChanges']} change architecture, {changes['nodeCountChanges']} node count"
        )
    for key, label in (("replacesQuality", "now"), ("quality", "after")):
        q = doc.get(key)
        if q:
            print(
                f"leave-one-out {label}: architecture accuracy {q['architectureAccuracy']:.3f} (baseline "
                f"{q['baselineAccuracy']:.3f}), node count MAE {q['nodeCountMAE']}"
            )


def _pack(args: argparse.Namespace) -> int:
    src, dest = Path(args.directory), Path(args.output)
    if not src.exists():
        _error(f"{src}: no such file or directory (give a library directory or a single JSON document)")
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="foresight-library-") as tmp:
        report = verify_path(src, Path(tmp) / "read")
        if not report.ok or report.library is None or report.raw is None:
            _print_report(str(src), report)
            return EXIT_INVALID
        raw, manifest = report.raw, report.library.manifest
        if dest.suffix == ".json":
            if manifest.models:
                _error("the single-document form carries no models: write a .tar.gz")
                return EXIT_USAGE
            dest.write_text(
                json.dumps(manifest.to_json(cases=raw.cases), ensure_ascii=False, indent=1) + "\n",
                encoding="utf-8",
            )
        elif raw.root is None:  # a single document becomes library.json + cases.json
            root = Path(tmp) / "pack"
            root.mkdir()
            (root / MANIFEST_FILE).write_text(json.dumps(manifest.to_json(), ensure_ascii=False, indent=2))
            (root / manifest.cases_path).write_text(json.dumps(raw.cases, ensure_ascii=False, indent=1))
            _write_tar(root, [MANIFEST_FILE, manifest.cases_path], dest)
        else:
            _write_tar(raw.root, sorted(raw.files), dest)
    sha = file_sha256(dest)
    print(
        f"wrote {dest} ({dest.stat().st_size} bytes): {report.name} {report.version}, {report.cases} cases, "
        f"{report.models} models"
    )
    print(f"sha256: {sha}")
    print(f"spec: {{version: {report.version!r}, sha256: {sha}, source: {{url: <where you publish it>}}}}")
    return EXIT_OK


def _write_tar(root: Path, files: Sequence[str], dest: Path) -> None:
    """A reproducible .tar.gz: sorted members, no owners, time 0 (same input, same sha256)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in files:
            data = (root / rel).read_bytes()
            info = tarfile.TarInfo(rel)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(data))
    with open(dest, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(buffer.getvalue())


# -- dispatch -------------------------------------------------------------------------------------


def run_library(args: argparse.Namespace) -> int:
    """``foresight library ACTION``."""
    if args.library_action == "fetch":
        from .job import main

        return main(
            ["--config", args.config] + (["--source-dir", args.source_dir] if args.source_dir else [])
        )
    handlers = {"list": _list, "show": _show, "verify": _verify, "activate-preview": _preview, "pack": _pack}
    try:
        return handlers[args.library_action](args)
    except LibraryError as exc:
        _error(f"{exc.reason.value}: {exc.message}")
        return EXIT_INVALID
    except ArtifactError as exc:
        _error(str(exc))
        return EXIT_INVALID
    except KubeApiError as exc:
        _error(f"the Kubernetes API refused or failed ({exc}); check the kubeconfig, context and RBAC")
        return EXIT_INVALID


def parse_set(values: Sequence[str]) -> dict[str, str]:
    """``["qps=25000,tps=4000", "need_high_availability=true"]`` -> a dict (``ValueError`` if malformed)."""
    out: dict[str, str] = {}
    for chunk in values:
        for item in chunk.split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{item!r} is not NAME=VALUE (inputs: {', '.join(INPUT_FIELDS)})")
            out[key.strip()] = value.strip()
    return out


def _print_recommendation(rec: Recommendation, cases: int, k: int) -> None:
    print(f"library {rec.library} {rec.version} ({cases} cases), k={k}")
    if rec.features_missing:
        print(f"not given, left out of the distance: {', '.join(rec.features_missing)}")
    if rec.covered:
        votes = ", ".join(f"{a} {v:.2f}" for a, v in rec.votes.items())
        print(
            f"recommended: {rec.architecture_type}: {rec.node_count} nodes, {rec.shard_count} shards, "
            f"{rec.replica_count} replicas, {rec.proxy_count} proxies; about {rec.estimated_cost or 0:,.0f} "
            f"{rec.currency}/{rec.cost_period} (confidence {rec.confidence or 0:.2f}: {votes})"
        )
        print("from the nearest cases:")
    else:
        print(f"outside what {rec.library} {rec.version} covers, so no recommendation:")
        for reason in rec.reasons:
            print(f"  - {reason}")
        print("the nearest cases, for reference only:")
    rows = [
        [
            n.case_id,
            f"{n.distance:.3f}",
            f"{n.weight:.2f}",
            n.output.architecture_type,
            n.output.node_count,
            n.output.shard_count,
            n.output.replica_count,
            n.output.proxy_count,
            f"{n.output.estimated_cost:,.0f}",
            f"{n.input.qps:,.0f}",
            f"{n.input.tps:,.0f}",
            f"{n.input.total_data_size_gb:,.0f}",
            n.input.concurrent_connections,
            "".join(
                f
                for f, on in (
                    ("H", n.input.need_high_availability),
                    ("D", n.input.need_disaster_recovery),
                    ("R", n.input.need_read_write_split),
                )
                if on
            )
            or "-",
        ]
        for n in rec.neighbours
    ]
    print(
        table(
            [
                "CASE",
                "DISTANCE",
                "WEIGHT",
                "ARCHITECTURE",
                "NODES",
                "SHARDS",
                "REPLICAS",
                "PROXIES",
                "COST",
                "QPS",
                "TPS",
                "DATA_GB",
                "CONNS",
                "HA/DR/RW",
            ],
            rows,
            gap=LIBRARY_GAP,
        )
    )


def run_recommend(args: argparse.Namespace) -> int:
    """``foresight recommend``."""
    try:
        inputs = parse_set(args.set)
        if args.k < 1:
            raise ValueError("-k must be at least 1")
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    try:
        loaded = _load(args.library, args)
        rec = Recommender(loaded.library, k=args.k).recommend(inputs)
    except LibraryError as exc:
        _error(f"{exc.reason.value}: {exc.message}")
        return EXIT_INVALID
    except ArtifactError as exc:
        _error(str(exc))
        return EXIT_INVALID
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    if args.output == "json":
        _print_json(rec.to_json())
    else:
        _print_recommendation(rec, len(loaded.library.cases), args.k)
    return EXIT_OK if rec.covered else EXIT_UNCOVERED
