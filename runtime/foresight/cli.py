"""The ``foresight`` command line: one entry point for users, the operator and every runtime pod.

Subcommands import their heavy dependencies (torch, kopf, fastapi...) only when they run, so
``foresight validate`` and ``foresight crds`` work in the small operator image and on a laptop.
Settings are read here, once, from flags and the environment, and passed down.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]


def _cmd_version(args: argparse.Namespace) -> int:
    from .api import API_VERSION

    print(f"foresight {__version__} (API {API_VERSION})")
    return 0


def _cmd_crds(args: argparse.Namespace) -> int:
    from .api import KINDS
    from .api.crd import render_crd, write_crds

    kinds = list(KINDS.values())
    if args.output:
        for path in write_crds(Path(args.output), kinds):
            print(f"wrote {path}")
    else:
        sys.stdout.write("---\n".join(render_crd(info) for info in kinds))
    return 0


def _ident(doc: Any) -> str:
    """``Kind/name`` of a document, ``?`` for what it lacks."""
    if not isinstance(doc, dict):
        return f"<{type(doc).__name__}>"
    meta = doc.get("metadata")
    name = meta.get("name", "?") if isinstance(meta, dict) else "?"
    return f"{doc.get('kind', '?')}/{name}"


def _cmd_validate(args: argparse.Namespace) -> int:
    """Check every document of every file; exit 1 when any failed (odd input is a failure, not a crash)."""
    from .api.documents import DocumentError, read_yaml
    from .api.validation import validate_object

    failed = 0
    for path in args.filename:
        try:
            loaded = read_yaml(path)
        except DocumentError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            failed += 1
            continue
        for warning in loaded.warnings:
            print(f"{path}: warning: {warning}", file=sys.stderr)
        for doc in loaded.documents:
            if doc.error is not None:
                print(f"{path}: document at line {doc.line}: {doc.error}", file=sys.stderr)
                failed += 1
                continue
            ident = _ident(doc.value)
            if isinstance(doc.value, dict) and not str(doc.value.get("apiVersion", "")).startswith(
                "foresight.dev/"
            ):
                if not args.quiet:
                    print(f"{path}: {ident}: skipped (not a foresight.dev resource)")
                continue
            try:
                errors = [str(e) for e in validate_object(doc.value)]
            except Exception as exc:  # a bug of ours must not stop the other documents from being checked
                errors = [f"could not be validated ({type(exc).__name__}: {exc}); please report this"]
            if errors:
                failed += 1
                for err in errors:
                    print(f"{path}: {ident}: {err}", file=sys.stderr)
            elif not args.quiet:
                print(f"{path}: {ident}: valid")
    return 1 if failed else 0


def build_parser(
    extra: Sequence[Callable[[argparse._SubParsersAction], None]] = (),
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foresight", description="Foresight: forecasts and MLOps for GPU clusters, the Kubernetes way."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_cmd_version)

    p = sub.add_parser("crds", help="print the CustomResourceDefinitions (or write them with -o DIR)")
    p.add_argument("-o", "--output", metavar="DIR", help="write one file per kind into DIR")
    p.set_defaults(func=_cmd_crds)

    p = sub.add_parser("validate", help="validate resource YAML offline, as the API server would")
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="a YAML file (repeatable; - for stdin)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.set_defaults(func=_cmd_validate)

    for add in extra:
        add(sub)
    return parser


def _plugins() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Subcommands that live next to the code they run (each imports its heavy deps lazily)."""
    from .commands import SUBCOMMANDS

    return list(SUBCOMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_plugins())
    args = parser.parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
