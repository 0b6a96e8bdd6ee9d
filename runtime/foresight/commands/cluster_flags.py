"""The flags every command that talks to a cluster takes: which namespace, kubeconfig and context."""

from __future__ import annotations

import argparse

__all__ = ["add_cluster_flags"]


def add_cluster_flags(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``-n/--namespace``, ``--kubeconfig``, ``--context``: what :func:`foresight.kube.connect` takes."""
    p.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context")
