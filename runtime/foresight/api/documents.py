"""Reading resource YAML files as ``kubectl apply -f`` would: several documents, odd input survived.

``foresight validate``, ``foresight run -f`` (ForecastTask) and ``foresight run -f`` of a
ClassifierService all read their files here. :func:`read_yaml` never raises on content: a document
that is not YAML becomes a :class:`Document` with an ``error`` (the later documents of the file are
still read), and a key given twice in one mapping is a warning naming the key and both lines (the
last value wins, as in kubectl's YAML decoding). Only a file that cannot be read at all (missing,
unreadable, not UTF-8 text) raises :class:`DocumentError`. :func:`load_documents` is the strict
form for commands that run one file: any problem raises.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Document", "DocumentError", "YamlFile", "first_resource", "load_documents", "read_yaml"]


class DocumentError(Exception):
    """A file that cannot be read as YAML documents; the message says why (and starts with the cause)."""


@dataclass(frozen=True)
class Document:
    """One document of a file: its value, or why it could not be parsed."""

    line: int
    """1-based line of the file where the document starts."""
    value: Any = None
    error: str | None = None


@dataclass(frozen=True)
class YamlFile:
    path: str
    documents: tuple[Document, ...]
    warnings: tuple[str, ...]
    """``line N: ...`` notes about what parsed but is probably a mistake (a key given twice)."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, noting duplicate mapping keys instead of silently keeping the last."""

    def __init__(self, stream: str, warnings: list[str]) -> None:
        super().__init__(stream)
        self._warnings = warnings

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` keys are meant to be overridden
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:
                continue  # an unhashable key: the base class refuses it with its own error
            if first != line:
                self._warnings.append(
                    f"line {line}: key {key!r} is given twice (first on line {first}); the last value is used"
                )
        return super().construct_mapping(node, deep=deep)


# A document starts at a line beginning with `---` (a marker cannot be indented or quoted).
_DOCUMENT_START = re.compile(r"^---(?=\s|$)", re.MULTILINE)


def _parse(text: str, first_line: int, warnings: list[str]) -> list[Document]:
    """The documents of ``text``, a piece of a file that starts on line ``first_line`` of it."""
    # Blank lines in front keep every line number (in warnings and in PyYAML's own errors) the
    # file's, not the piece's.
    loader = _Loader("\n" * (first_line - 1) + text, warnings)
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            value = loader.construct_document(node)
            if value is not None:
                docs.append(Document(line=node.start_mark.line + 1, value=value))
    finally:
        loader.dispose()
    return docs


def _chunks(text: str) -> list[tuple[int, str]]:
    """``text`` cut at its document markers, each piece with its first line number."""
    starts = [0] + [m.start() for m in _DOCUMENT_START.finditer(text) if m.start() > 0]
    ends = [*starts[1:], len(text)]
    return [(text.count("\n", 0, a) + 1, text[a:b]) for a, b in zip(starts, ends, strict=True)]


def _problem(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "not valid YAML: nested too deeply"
    return f"not valid YAML: {exc}"


def _read_text(path: str) -> str:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"not UTF-8 text (byte {exc.start} is {data[exc.start : exc.start + 1]!r}); is it a binary file?"
        ) from exc


def read_yaml(path: str) -> YamlFile:
    """Every document of ``path`` (``-`` reads standard input); empty documents are skipped.

    A syntax error spoils only its own document: the file is then re-read piece by piece, cut at
    its ``---`` markers, so the documents around the bad one are still returned.
    """
    text = _read_text(path)
    warnings: list[str] = []
    try:
        docs = _parse(text, 1, warnings)
    except (yaml.YAMLError, RecursionError):
        warnings.clear()
        docs = []
        for first_line, chunk in _chunks(text):
            try:
                docs += _parse(chunk, first_line, warnings)
            except (yaml.YAMLError, RecursionError) as exc:
                docs.append(Document(line=first_line, error=_problem(exc)))
    return YamlFile(path=path, documents=tuple(docs), warnings=tuple(warnings))


def load_documents(path: str) -> list[Any]:
    """The documents of ``path``, for a command that runs the file: any unreadable document raises
    :class:`DocumentError`; duplicate keys are accepted (last value wins)."""
    loaded = read_yaml(path)
    for doc in loaded.documents:
        if doc.error is not None:
            raise DocumentError(doc.error)
    return [doc.value for doc in loaded.documents]


def first_resource(path: str) -> dict[str, Any] | None:
    """The first ``foresight.dev`` resource of ``path`` (``None``: standard input, which cannot be read
    twice, an unreadable file, or none in it), for commands that pick what to do by its kind."""
    if path == "-":
        return None
    try:
        docs = load_documents(path)
    except DocumentError:
        return None
    ours = [
        d for d in docs if isinstance(d, dict) and str(d.get("apiVersion", "")).startswith("foresight.dev/")
    ]
    return ours[0] if ours else None
