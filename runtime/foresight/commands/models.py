"""``foresight models ...`` (ModelVersions in a cluster) and ``foresight model-job`` (a ModelVersion's Job).

Cheap to import: the functions set as defaults import the Kubernetes client or torch when they run.
"""

from __future__ import annotations

import argparse

from .cluster_flags import add_cluster_flags

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models",
        help="list, compare, promote and roll back ModelVersions in the cluster",
        description="The model registry, against the cluster (kubeconfig or in-cluster).",
    )
    add_cluster_flags(p)
    actions = p.add_subparsers(dest="models_action", required=True, metavar="ACTION")
    a = actions.add_parser("list", help="a table of versions")
    a.add_argument("--model", help="only this modelName")
    a = actions.add_parser("show", help="one version's spec, status and history")
    a.add_argument("name")
    a.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    a = actions.add_parser("compare", help="metrics side by side")
    a.add_argument("names", nargs="*", help="ModelVersion names (default: every version of --model)")
    a.add_argument("--model", help="compare every version of this modelName")
    a = actions.add_parser("best", help="the version with the best value of a metric")
    a.add_argument("--metric", required=True, help="a key of spec.metrics")
    a.add_argument("--min", action="store_true", help="lower is better (errors, losses)")
    a.add_argument("--model", help="only this modelName")
    a = actions.add_parser("promote", help="make NAME the Production version of its model")
    a.add_argument("name")
    a = actions.add_parser("rollback", help="re-promote the previous Production version of MODEL")
    a.add_argument("model_name", metavar="MODEL")
    p.set_defaults(func=_models)

    j = subparsers.add_parser(
        "model-job",
        help="verify (and optimise) one ModelVersion artifact (what its verify Job runs)",
        description="Reads the operator's config file; ends with a JSON termination message.",
    )
    j.add_argument("--config", required=True, help="YAML with name, namespace, generation and spec")
    j.add_argument("--latency-repeats", type=int, default=50, help="timed runs per latency figure")
    j.set_defaults(func=_model_job)


def _models(args: argparse.Namespace) -> int:
    from foresight.modelversion.manage import run

    return run(args)


def _model_job(args: argparse.Namespace) -> int:
    from foresight.modelversion.verify import main

    return main(["--config", args.config, "--latency-repeats", str(args.latency_repeats)])
