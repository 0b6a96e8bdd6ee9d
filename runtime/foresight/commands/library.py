"""``foresight library ...`` and ``foresight recommend``: registration only (cheap to import).

The functions set as defaults import :mod:`foresight.library.cli` (numpy, jsonschema) when they run.
"""

from __future__ import annotations

import argparse
from typing import Any

from .cluster_flags import add_cluster_flags

VERIFY_EPILOG = """exit status:
  0  the library is valid
  1  the library is invalid (the first findings are printed, each with its case id and field)
  2  the command could not run (no such file, bad arguments)"""

RECOMMEND_EPILOG = """exit status:
  0  a recommendation
  3  the input lies outside what the library covers (the reasons and the nearest cases are printed)
  1  the library could not be loaded or is invalid
  2  bad arguments (an unknown input, a value of the wrong kind)

inputs: total_data_size_gb, table_count, qps, tps, concurrent_connections, data_growth_rate (numbers),
need_high_availability, need_disaster_recovery, need_read_write_split (true / false). Inputs not given
are left out of the distance, and the answer lists them."""


def _store_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        help="artifact store (file:///dir, a path, or s3://bucket/prefix) holding fetched "
        "libraries; without it, built-in libraries and local files",
    )
    p.add_argument(
        "--prefix",
        default="modellibraries",
        help="key prefix of libraries in the store (the operator keeps a namespace's under "
        "modellibraries/<namespace>)",
    )
    p.add_argument("--s3-endpoint", help="S3 endpoint host:port of an s3:// store (credentials: AWS_* env)")
    p.add_argument("--s3-insecure", action="store_true", help="plain HTTP to the S3 endpoint")


def _cluster_flags(p: argparse.ArgumentParser, *, all_namespaces: bool = False) -> None:
    g = p.add_argument_group("cluster", "read the cluster's ModelLibraries (their status) instead of a store")
    g.add_argument("--cluster", action="store_true", help="the ModelLibraries of a namespace of the cluster")
    add_cluster_flags(g)
    if all_namespaces:
        g.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")


def _limit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-cases-mib", type=int, default=16, help="largest cases file accepted (default 16)")
    p.add_argument("--max-archive-mib", type=int, default=64, help="largest archive accepted (default 64)")


def add_parser(subparsers: Any) -> None:
    """Add ``library`` (with its actions) and ``recommend``."""
    _add_library(subparsers)
    _add_recommend(subparsers)


def _add_library(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "library",
        help="verify, browse, preview and fetch model libraries (capacity-planning cases and models)",
        description="Model libraries: docs/library-format.md describes the format.",
    )
    actions = p.add_subparsers(dest="library_action", required=True, metavar="ACTION")

    a = actions.add_parser(
        "list", help="the built-in libraries, the libraries in a store, or a cluster's ModelLibraries"
    )
    _store_flags(a)
    _cluster_flags(a, all_namespaces=True)
    a.add_argument("-o", "--output", choices=("text", "json"), default="text")

    a = actions.add_parser("show", help="one library: manifest, cases by architecture, coverage, quality")
    a.add_argument(
        "library",
        metavar="NAME|FILE",
        help="a built-in name, a library file / directory, a name in --store, or a ModelLibrary (--cluster)",
    )
    a.add_argument("--version", help="a stored version (default: the active one)")
    _store_flags(a)
    _cluster_flags(a)
    a.add_argument("-o", "--output", choices=("text", "json"), default="text")

    a = actions.add_parser(
        "verify",
        help="check a library file offline: schema of every case, ids, ranges, archive safety",
        epilog=VERIFY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("file", metavar="FILE", help="a .tar.gz, a directory, or a JSON document")
    a.add_argument("--name", help="the library name it must have")
    a.add_argument("--version", help="the version it must have")
    a.add_argument("--sha256", help="the sha256 the file must have")
    _limit_flags(a)
    a.add_argument("-o", "--output", choices=("text", "json"), default="text")

    a = actions.add_parser(
        "activate-preview", help="what activating a library would change in a store or a cluster (no write)"
    )
    a.add_argument("library", metavar="NAME|FILE", help="a built-in name or a library file / directory")
    _store_flags(a)
    _cluster_flags(a)
    _limit_flags(a)
    a.add_argument("-o", "--output", choices=("text", "json"), default="text")

    a = actions.add_parser(
        "pack", help="verify a library and write it as a reproducible .tar.gz (or one JSON)"
    )
    a.add_argument(
        "directory",
        metavar="DIR|FILE",
        help="a directory holding library.json, cases.json and models/, or a single JSON document",
    )
    a.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="FILE.tar.gz, or FILE.json for the single-document form (no models; what a ConfigMap holds)",
    )

    a = actions.add_parser(
        "fetch", help="fetch, verify, store and activate one ModelLibrary (its Job runs this)"
    )
    a.add_argument(
        "--config", required=True, help="the Job's config (YAML or JSON; see foresight.library.job)"
    )
    a.add_argument(
        "--source-dir",
        help="where spec.source.configMap is mounted, one file per key (overrides configMapDir)",
    )
    p.set_defaults(func=_library)


def _add_recommend(subparsers: Any) -> None:
    r = subparsers.add_parser(
        "recommend",
        help="recommend a database architecture for a workload from a library's nearest cases",
        epilog=RECOMMEND_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument(
        "--library",
        required=True,
        metavar="NAME|FILE",
        help="a built-in name, a library file, or a name in --store (its active version)",
    )
    r.add_argument("--version", help="a stored version instead of the active one (with --store)")
    r.add_argument("--set", action="append", default=[], metavar="K=V[,K=V...]", help="inputs (repeatable)")
    r.add_argument("-k", type=int, default=5, help="neighbours (default 5)")
    _store_flags(r)
    r.add_argument("-o", "--output", choices=("text", "json"), default="text")
    r.set_defaults(func=_recommend)


def _library(args: argparse.Namespace) -> int:
    from foresight.library.cli import run_library

    return run_library(args)


def _recommend(args: argparse.Namespace) -> int:
    from foresight.library.cli import run_recommend

    return run_recommend(args)
