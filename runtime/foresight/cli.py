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

import yaml

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


def load_documents(path: str) -> list[object]:
    """The YAML documents of a file (``-`` reads standard input); empty documents are skipped."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def _cmd_validate(args: argparse.Namespace) -> int:
    from .api.validation import validate_object

    failed = 0
    for path in args.filename:
        try:
            docs = load_documents(path)
        except (OSError, yaml.YAMLError) as exc:
            print(f"{path}: cannot read: {exc}", file=sys.stderr)
            failed += 1
            continue
        for doc in docs:
            meta = doc.get("metadata", {}) if isinstance(doc, dict) else {}
            kind = doc.get("kind", "?") if isinstance(doc, dict) else "?"
            ident = f"{kind}/{(meta or {}).get('name', '?')}"
            if isinstance(doc, dict) and not str(doc.get("apiVersion", "")).startswith("foresight.dev/"):
                if not args.quiet:
                    print(f"{path}: {ident}: skipped (not a foresight.dev resource)")
                continue
            errors = validate_object(doc)
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
