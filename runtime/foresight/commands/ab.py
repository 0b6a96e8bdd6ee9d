"""``foresight ab ...``: an ABExperiment's status, its promotion, and its simulation without a cluster.

- ``status NAME``: the experiment as the operator last analysed it (weights, evidence, decisions);
- ``promote NAME [--apply]``: the spec changes that make the winner permanent (the service's
  model and the ModelVersion's stage), printed, or applied as a user would with ``--apply``;
- ``simulate -f FILE``: the experiment of a YAML file on synthetic traffic, with a plot (also what
  ``foresight run -f FILE --local`` does for an ABExperiment).

Cheap to import: the functions set as defaults import the Kubernetes client or the analysis when
they run.
"""

from __future__ import annotations

import argparse

from .cluster_flags import add_cluster_flags

__all__ = ["add_parser", "add_simulation_options"]


def add_simulation_options(p: argparse.ArgumentParser) -> None:
    """The simulation's options (``ab simulate`` and ``run --local`` of an ABExperiment)."""
    g = p.add_argument_group("ABExperiment simulation (local mode)")
    g.add_argument(
        "--truth",
        action="append",
        metavar="VARIANT=KEY:VALUE,...",
        help="a variant's true behaviour: accuracy, errorRate, latency (seconds); repeatable "
        "(default: control accuracy 0.80, candidates 0.82)",
    )
    g.add_argument("--requests-per-second", type=float, default=20.0, help="synthetic traffic (default 20)")
    g.add_argument(
        "--feedback-fraction", type=float, default=0.5, help="share of answers with feedback (default 0.5)"
    )
    g.add_argument("--intervals", type=int, default=2000, help="analyses at most (default 2000)")
    g.add_argument("--seed", type=int, default=0, help="seed of the synthetic stream (default 0)")
    g.add_argument("--plot", metavar="PNG", help="the plot's path (default <state-dir>/ab/<name>.png)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ab",
        help="ABExperiments: status, promote the winner, simulate one without a cluster",
        description="ABExperiments in the cluster (kubeconfig or in-cluster), or simulated locally.",
    )
    add_cluster_flags(p)
    actions = p.add_subparsers(dest="ab_action", required=True, metavar="ACTION")
    a = actions.add_parser("status", help="weights, evidence and decisions of one experiment")
    a.add_argument("name")
    a = actions.add_parser(
        "promote", help="print (or --apply) the spec changes that make the experiment's winner permanent"
    )
    a.add_argument("name")
    a.add_argument("--apply", action="store_true", help="patch the specs now, as a user would")
    s = actions.add_parser("simulate", help="run an ABExperiment file on synthetic traffic, with a plot")
    s.add_argument("-f", "--filename", required=True, metavar="FILE", help="the ABExperiment YAML")
    s.add_argument("--state-dir", help="where the plot goes (default .cache/foresight)")
    add_simulation_options(s)
    p.set_defaults(func=_ab)


def _ab(args: argparse.Namespace) -> int:
    if args.ab_action == "simulate":
        from foresight.run.ab_simulate import main_simulate

        return main_simulate(args)
    from foresight.modelversion.experiments import run

    return run(args)
