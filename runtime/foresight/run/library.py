"""``foresight run -f modellibrary.yaml --local``: fetch, verify and activate a ModelLibrary on this machine.

The lightweight deployment (seed 002) has no operator to run a ModelLibrary's fetch Job, so this
runs the same Job (:func:`foresight.library.job.run_fetch`) with the config the operator would
render: the library is stored and activated in ``spec.store`` (``pvc://`` and ``file://`` resolve
under ``--state-dir`` as for ForecastTasks, so a ForecastTask run with the same ``--state-dir`` and
``spec.recommendation.library`` reads it), under ``modellibraries/<namespace>/``. A ``configMap``
source exists only in a cluster, so locally it is refused, saying what to do instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from foresight.api.documents import first_resource
from foresight.api.modellibrary import MODEL_LIBRARY, ModelLibrarySpec
from foresight.api.validation import validate_object
from foresight.contract import env as pod_env
from foresight.contract.library import FetchConfig, store_prefix

__all__ = ["is_model_library_file", "main_library_local"]

DEFAULT_STATE_DIR = ".cache/foresight"


def is_model_library_file(path: str) -> bool:
    """Whether the first ``foresight.dev`` resource of ``path`` is a ModelLibrary."""
    doc = first_resource(path)
    return doc is not None and doc.get("kind") == MODEL_LIBRARY.kind


def _config(doc: Mapping[str, Any], namespace: str) -> FetchConfig:
    meta = doc.get("metadata") or {}
    spec = ModelLibrarySpec.model_validate(doc.get("spec") or {})
    return FetchConfig(
        name=str(meta["name"]),
        namespace=str(meta.get("namespace") or namespace),
        generation=int(meta.get("generation") or 1),
        spec=spec,
        library_name=spec.source.builtin,
        store=spec.store.uri,
        store_endpoint=spec.store.endpoint,
        store_region=spec.store.region,
        store_insecure=spec.store.insecure,
        prefix=store_prefix(str(meta.get("namespace") or namespace)),
    )


def _print_result(doc: Mapping[str, Any], out: TextIO) -> None:
    out.write(f"{doc.get('phase')}: {doc.get('reason')}: {doc.get('message')}\n")
    if doc.get("cases") is not None:
        out.write(
            f"cases: {doc.get('cases')}, valid {doc.get('validCases', '-')}, invalid "
            f"{doc.get('invalidCases', '-')}; models {doc.get('models', 0)}\n"
        )
    for reason in doc.get("invalidReasons") or []:
        out.write(f"  {reason}\n")
    if doc.get("pointer"):
        out.write(
            f"active version: {doc.get('activeVersion') or 'none'} (pointer {doc['pointer']}); previous "
            f"{doc.get('previousVersion') or 'none'}\n"
        )
    quality = doc.get("quality") or {}
    if quality:
        out.write(
            f"leave-one-out: architecture accuracy {quality['architectureAccuracy']:.3f} (most common: "
            f"{quality['baselineAccuracy']:.3f}), node count MAE {quality.get('nodeCountMAE')}\n"
        )


def main_library_local(
    args: argparse.Namespace, *, environ: Mapping[str, str] | None = None, stdout: TextIO | None = None
) -> int:
    """``foresight run -f modellibrary.yaml --local``: 0 when the library is verified (and active)."""
    from foresight.library.job import run_fetch

    out = stdout or sys.stdout
    doc = first_resource(args.filename) or {}
    errors = validate_object(doc)
    if errors:
        print(f"{args.filename}: invalid: " + "; ".join(str(e) for e in errors), file=sys.stderr)
        return 2
    config = _config(doc, args.namespace or "default")
    if config.spec.source.config_map is not None:
        print(
            f"{args.filename}: a configMap source exists only in a cluster; locally, publish the document "
            "(`foresight library pack FILE -o lib.tar.gz`) and point spec.source at a url, or check it with "
            "`foresight library verify FILE`",
            file=sys.stderr,
        )
        return 2
    state = Path(args.state_dir or DEFAULT_STATE_DIR).resolve()
    env = {**(os.environ if environ is None else environ), pod_env.PVC_ROOT: str(state / "pvc")}
    print(
        f"running ModelLibrary {config.owner} locally (store {config.spec.store.uri} under {state})", file=out
    )
    with tempfile.TemporaryDirectory(prefix="foresight-library-") as tmp:
        code, result = run_fetch(config, environ=env, workdir=Path(tmp), emit=lambda e: None)
    _print_result(result, out)
    return 0 if result.get("phase") == "Ready" else (3 if code else 1)
