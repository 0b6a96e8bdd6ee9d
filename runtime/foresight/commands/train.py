"""``foresight train --config FILE``: one training run (or a Ray Tune search) in this process.

This is what a TrainingJob's pods run; see :mod:`foresight.training.job`.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="run one training job from a TrainConfig file (what a TrainingJob's pods run)",
        description="Train (or search) from a TrainConfig (YAML or JSON); ends with a termination message.",
    )
    p.add_argument("--config", required=True, help="TrainConfig as JSON or YAML")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from foresight.training.job import main

    return main(["--config", args.config])
