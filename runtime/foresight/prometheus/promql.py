"""Narrowing any PromQL query to a set of series keys, so a shard reads only its own series.

A sharded ForecastTask run gives each shard a set of series keys (label sets on the task's
``groupBy`` labels). Reading a shard's history means asking Prometheus for the task's query
*restricted to those keys*, for arbitrary PromQL (functions, aggregations, joins), without
changing a single value of the series that are kept. Two mechanisms, combined:

- **Push-down**: ``L=~"v1|v2|..."`` injected into the vector selectors whose series provably
  carry the output's ``L`` (a label-flow analysis of the query's syntax tree: through
  label-preserving functions, ``by``/``without`` aggregations that keep ``L``, vector matching on
  ``L``, the "one" side of ``group_left(L)``...). This is what bounds Prometheus' own work: it
  never loads the other shards' series. Where ``L`` cannot be traced (``label_replace`` writing
  ``L``, an aggregation that drops it, a join not on it, ``scalar()``), nothing below that node
  is touched, so values never change.
- **Exact filter**: ``(<query>) and on(L1, L2) (<one vector element per key>)`` when push-down
  alone cannot make the result exact (several ``groupBy`` labels whose per-label value sets
  cross into other shards' keys, or a label that could not be pushed down). The element vector
  is a balanced tree of ``or`` so Prometheus evaluates it in O(n log n) per step, not O(n^2).

Why a hand-written lexer next to the ``promql-parser`` package: the package parses PromQL's
structure well, but (0.12.0) it rejects valid string escapes (``"a\\"b"``, ``"\\n"``), and its
printer turns ``x[5m:]`` (a subquery) into ``x[5m]`` and raw strings into escaped ones, so its
output cannot be sent to Prometheus. Here the lexer finds the selectors' positions and replaces
every string literal by a placeholder before the package sees the text; the package gives the
tree for the analysis; the matchers are then inserted into the user's *original* text. When the
two disagree (a construct the package does not know), nothing is pushed down and the exact
filter alone keeps the result right (:attr:`Restriction.note` says why).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Restriction",
    "RestrictionError",
    "SeriesSource",
    "is_plain_selector",
    "promql_string",
    "regex_alternation",
    "regex_escape",
    "restriction_for",
    "series_source",
]


class RestrictionError(ValueError):
    """The query cannot be lexed (an unterminated string or brace): Prometheus would reject it too."""


# ---- quoting ---------------------------------------------------------------------------------

_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def regex_escape(value: str) -> str:
    """``value`` as an RE2 literal. Only RE2's metacharacters are escaped: Python's ``re.escape``
    also escapes spaces and ``-``, which RE2 (Go) rejects (``\\ `` is an invalid escape there)."""
    return _RE2_SPECIAL.sub(r"\\\1", value)


def regex_alternation(values: Sequence[str]) -> str:
    """A fully anchored Prometheus regex matching exactly ``values`` ("" also matches an absent
    label, as in Prometheus)."""
    return "|".join(regex_escape(v) for v in sorted(set(values)))


def promql_string(value: str) -> str:
    """A double-quoted PromQL string literal. JSON's escapes (``\\"``, ``\\\\``, ``\\n``,
    ``\\u00XX``) are a subset of Go's, which PromQL uses."""
    return json.dumps(value, ensure_ascii=False)


def _replacement(value: str) -> str:
    # label_replace expands $1 / ${name} in the replacement; $$ is a literal dollar.
    return value.replace("$", "$$")


# ---- lexing ------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<number>0[xX][0-9a-fA-F]+
             |(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=@:,{}()\[\]])
    """,
    re.VERBOSE,
)

_AGGREGATIONS = frozenset(
    {"sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
     "count_values", "quantile", "limitk", "limit_ratio"}
)  # fmt: skip
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = _AGGREGATIONS | _LABEL_LISTS | {"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class _Selector:
    """Where one vector selector sits in the query text."""

    name: str | None
    insert_at: int
    """Offset where matchers go: after the metric name (no braces) or before the closing ``}``."""
    braces: bool
    needs_comma: bool
    start: int = 0
    end: int = 0
    """The selector's text is ``query[start:end]``."""


def _tokens(query: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(query):
        m = _TOKEN.match(query, pos)
        if m is None:
            raise RestrictionError(
                f"cannot read the PromQL {query!r} at offset {pos} ({query[pos : pos + 20]!r}): check quotes "
                "and brackets"
            )
        kind = m.lastgroup or ""
        if kind not in ("ws", "comment"):
            out.append(_Token(kind, m.group(), m.start(), m.end()))
        pos = m.end()
    return out


def _lex(query: str) -> tuple[list[_Token], str, list[str]]:
    """Tokens, the text with every string literal replaced by a placeholder ``"_s<i>"`` (what the
    parser package is given), and the strings' values."""
    tokens = _tokens(query)
    parts: list[str] = []
    strings: list[str] = []
    pos = 0
    for t in tokens:
        if t.kind == "string":
            parts += [query[pos : t.start], f'"_s{len(strings)}"']
            strings.append(_unquote(t.text))
            pos = t.end
    return tokens, "".join([*parts, query[pos:]]), strings


def _closing(tokens: Sequence[_Token], i: int, open_: str, close: str) -> int:
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].text == open_:
            depth += 1
        elif tokens[j].text == close:
            depth -= 1
            if depth == 0:
                return j
    raise RestrictionError(f"unbalanced {open_!r} in the PromQL query")


def _selectors(tokens: Sequence[_Token]) -> list[_Selector]:
    """The vector selectors in text order (what a depth-first walk of the syntax tree visits)."""
    found: list[_Selector] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1].text if i + 1 < len(tokens) else ""
        if tok.kind == "ident":
            low = tok.text.lower()
            if low in _LABEL_LISTS and nxt == "(":
                i = _closing(tokens, i + 1, "(", ")") + 1
                continue
            if low in _KEYWORDS or nxt == "(":  # a keyword or a function name
                i += 1
                continue
            if nxt == "{":
                close = _closing(tokens, i + 1, "{", "}")
                found.append(
                    _Selector(
                        tok.text,
                        tokens[close].start,
                        True,
                        tokens[close - 1].text not in "{,",
                        tok.start,
                        tokens[close].end,
                    )
                )
                i = close + 1
            else:
                found.append(_Selector(tok.text, tok.end, False, False, tok.start, tok.end))
                i += 1
        elif tok.text == "[":  # a range or subquery: durations only (`:1h` would lex as a name)
            i = _closing(tokens, i, "[", "]") + 1
        elif tok.text == "{":
            close = _closing(tokens, i, "{", "}")
            found.append(
                _Selector(
                    None,
                    tokens[close].start,
                    True,
                    tokens[close - 1].text not in "{,",
                    tok.start,
                    tokens[close].end,
                )
            )
            i = close + 1
        else:
            i += 1
    return found


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unquote(text: str) -> str:
    """The value of a PromQL string literal (Go's escapes; backquotes are raw)."""
    body = text[1:-1]
    if text[0] == "`":
        return body

    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "xuU":
            return chr(int(e[1:], 16))
        if e[0].isdigit():
            return chr(int(e, 8))
        return _SIMPLE_ESCAPES.get(e, e)

    return _ESCAPE.sub(one, body)


# ---- the label-flow analysis -------------------------------------------------------------------

# Functions whose output element i has the labels of input element i (at most __name__ dropped)
# and a value computed from that input series alone (or, for histogram_quantile, from series that
# differ only in `le`). Pushing a matcher on any other label through them keeps every value.
_LABEL_PRESERVING = frozenset(
    {"abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn", "round", "clamp", "clamp_max",
     "clamp_min", "changes", "delta", "deriv", "idelta", "increase", "irate", "rate", "resets",
     "predict_linear", "holt_winters", "double_exponential_smoothing", "timestamp", "sort", "sort_desc",
     "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year",
     "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
     "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
     "mad_over_time", "histogram_quantile", "histogram_count", "histogram_sum", "histogram_fraction",
     "histogram_avg", "histogram_stddev", "histogram_stdvar", "label_replace", "label_join",
     "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh",
     "deg", "rad"}
)  # fmt: skip


@dataclass
class _Flow:
    """The walk's output for one label: selector indices to restrict; whether the root is exact."""

    inject: set[int] = field(default_factory=set)
    next_index: int = 0
    names: list[str | None] = field(default_factory=list)
    """The selectors' metric names in walk order (checked against the lexer's)."""


class _Analysis:
    """The label-flow walk for one label ``L``. Invariant of every restricted node: with the chosen
    matchers its output, cut to series whose ``L`` is in the key set, is exactly the original's cut
    the same way (same series, same values); series outside the key set may differ and are removed
    by the exact filter or the reader's guard."""

    def __init__(self, label: str, strings: Sequence[str], pp: Any) -> None:
        self.label = label
        self.strings = strings
        self.pp = pp
        self.flow = _Flow()

    def _string(self, node: Any) -> str | None:
        if not isinstance(node, self.pp.StringLiteral):
            return None
        m = re.fullmatch(r"_s(\d+)", node.val)
        return self.strings[int(m.group(1))] if m else node.val

    def _is_scalar(self, node: Any) -> bool:
        pp = self.pp
        if isinstance(node, pp.NumberLiteral):
            return True
        if isinstance(node, pp.ParenExpr | pp.UnaryExpr):
            return self._is_scalar(node.expr)
        if isinstance(node, pp.BinaryExpr):
            return self._is_scalar(node.lhs) and self._is_scalar(node.rhs)
        if isinstance(node, pp.Call):
            return bool(node.func.return_type == pp.ValueType.Scalar)
        return False

    def visit(self, node: Any, restrict: bool) -> bool:
        """Walk ``node`` (children in text order, so selector indices match the lexer's), restricting
        selectors where ``restrict`` survives; return whether the node's output is then exact (only
        series whose label is in the key set)."""
        pp = self.pp
        if isinstance(node, pp.VectorSelector):
            index = self.flow.next_index
            self.flow.next_index += 1
            self.flow.names.append(node.name)
            if restrict:
                self.flow.inject.add(index)
            return restrict
        if isinstance(node, pp.MatrixSelector):
            return self.visit(node.vector_selector, restrict)
        if isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
            return self.visit(node.expr, restrict)
        if isinstance(node, pp.NumberLiteral | pp.StringLiteral):
            return False
        if isinstance(node, pp.Call):
            return self._call(node, restrict)
        if isinstance(node, pp.AggregateExpr):
            return self._aggregate(node, restrict)
        if isinstance(node, pp.BinaryExpr):
            return self._binary(node, restrict)
        raise _Unsupported(f"unknown PromQL node {type(node).__name__}")

    def _call(self, node: Any, restrict: bool) -> bool:
        name = node.func.name
        args = list(node.args)
        ok = restrict and name in _LABEL_PRESERVING
        if name in ("label_replace", "label_join") and len(args) > 1 and self._string(args[1]) == self.label:
            ok = False  # the query writes the label itself: its value is not the selectors'
        if name == "histogram_quantile" and self.label == "le":
            ok = False
        types = list(node.func.arg_types)
        exact = False
        for i, arg in enumerate(args):
            kind = types[min(i, len(types) - 1)] if types else None
            series_arg = kind in (self.pp.ValueType.Vector, self.pp.ValueType.Matrix)
            exact = self.visit(arg, ok and series_arg) or exact
        return ok and exact

    def _aggregate(self, node: Any, restrict: bool) -> bool:
        op = str(node.op).lower()
        mod = node.modifier
        if mod is None:
            kept = False  # no grouping: one output over all series
        elif mod.type == self.pp.AggModifierType.By:
            kept = self.label in mod.labels
        else:
            kept = self.label not in mod.labels
        if op == "count_values" and self._string(node.param) == self.label:
            kept = False
        if node.param is not None:
            self.visit(node.param, False)
        return self.visit(node.expr, restrict and kept) and restrict and kept

    def _binary(self, node: Any, restrict: bool) -> bool:
        """Which sides of a vector/vector operation may be narrowed on ``L``.

        ``matched``: ``L`` is part of the matching (``on(..L..)``, or ``ignoring(...)`` without
        it, the default), so matched elements share their ``L``.

        - ``and`` / ``unless``: the result is the left side's elements: narrow the left; the right
          only when matched (else a left element could lose the partner that kept or removed it).
        - ``or``: matched: both. Otherwise only the right (narrowing the left would let right
          elements through that a left element of another ``L`` used to shadow).
        - one-to-one: matched: both, and the result keeps ``L``. Otherwise the result has no ``L``.
        - ``group_left`` / ``group_right``: ``L`` copied from the "one" side by ``group_x(L)``:
          narrow that side only (its ``L`` is the result's). Else matched: both; else the "many"
          side only, whose ``L`` the result keeps.
        """
        pp = self.pp
        lhs, rhs, op = node.lhs, node.rhs, str(node.op).lower()
        if self._is_scalar(lhs) or self._is_scalar(rhs):
            left = self.visit(lhs, restrict and not self._is_scalar(lhs))
            right = self.visit(rhs, restrict and not self._is_scalar(rhs))
            return left or right
        mod = node.modifier
        matching = mod.matching if mod is not None else None
        on = matching is not None and matching.type == pp.LabelModifierType.Include
        names = list(matching.labels) if matching is not None else []
        matched = (self.label in names) if on else (self.label not in names)
        card = mod.card if mod is not None else pp.VectorMatchCardinality.OneToOne
        include = list(mod.group_labels or []) if mod is not None else []
        # (narrow lhs, narrow rhs, which side's exactness makes the result exact)
        if op in ("and", "unless"):
            rl, rr, mode = True, matched, "lhs"
        elif op == "or":
            rl, rr, mode = (True, True, "both") if matched else (False, True, "none")
        elif card == pp.VectorMatchCardinality.OneToOne:
            rl, rr, mode = (True, True, "either") if matched else (False, False, "none")
        else:
            many_left = card == pp.VectorMatchCardinality.ManyToOne
            if self.label in include:  # the label is copied from the "one" side
                rl, rr, mode = (False, True, "rhs") if many_left else (True, False, "lhs")
            elif matched:
                rl, rr, mode = True, True, "either"
            else:
                rl, rr, mode = (True, False, "lhs") if many_left else (False, True, "rhs")
        left = self.visit(lhs, restrict and rl)
        right = self.visit(rhs, restrict and rr)
        if not restrict:
            return False
        return {
            "lhs": left, "rhs": right, "both": left and right, "either": left or right, "none": False
        }[mode]  # fmt: skip


class _Unsupported(Exception):
    pass


_PARSER_LOCK = threading.Lock()
_PARSER: Any = None


def _parser() -> Any:
    """The ``promql_parser`` module, taught the Prometheus 2.x function it lacks (once)."""
    global _PARSER
    with _PARSER_LOCK:
        if _PARSER is None:
            import promql_parser as pp

            try:
                pp.parse("holt_winters(x[1h], 0.5, 0.5)")
            except ValueError:
                matrix, scalar = pp.ValueType.Matrix, pp.ValueType.Scalar
                pp.register_extra_functions(
                    [pp.Function("holt_winters", [matrix, scalar, scalar], pp.ValueType.Vector)]
                )
            _PARSER = pp
        return _PARSER


# ---- the restriction ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Restriction:
    """How one query is narrowed to key sets on ``labels``; :meth:`render` writes one batch's query.

    Build it with :func:`restriction_for` (once per query), render it per batch of keys.
    """

    query: str
    labels: tuple[str, ...]
    selectors: tuple[_Selector, ...]
    pushdown: Mapping[str, frozenset[int]]
    """Per label, the selectors (indices in text order) that get its matcher."""
    exact: Mapping[str, bool]
    """Per label, whether push-down alone leaves only series with that label in the key set."""
    note: str = ""
    """Why push-down is partial or absent (empty when every label is pushed down exactly)."""

    @property
    def pushed_down(self) -> bool:
        """Whether Prometheus' work is narrowed at all (some selector gets some matcher)."""
        return any(self.pushdown.values())

    def needs_filter(self, keys: Sequence[Mapping[str, str]]) -> bool:
        """Whether ``keys`` need the exact ``and on(...)`` filter on top of the push-down."""
        if not self.labels or not keys:
            return False
        if not all(self.exact.get(label, False) for label in self.labels):
            return True
        if len(self.labels) == 1:
            return False
        combos = math.prod(len({k.get(label, "") for k in keys}) for label in self.labels)
        return combos > len({tuple(k.get(label, "") for label in self.labels) for k in keys})

    def render(self, keys: Sequence[Mapping[str, str]]) -> str:
        """The query restricted to ``keys`` (label sets on :attr:`labels`; a missing label is ``""``)."""
        if not self.labels:
            return self.query
        if not keys:
            raise ValueError("render() needs at least one key: skip empty batches")
        matchers: dict[int, list[str]] = {}
        for label in self.labels:
            regex = regex_alternation([k.get(label, "") for k in keys])
            for index in sorted(self.pushdown.get(label, ())):
                matchers.setdefault(index, []).append(f"{label}=~{promql_string(regex)}")
        text = self.query
        # Insert from the end so earlier offsets stay valid.
        for index in sorted(matchers, reverse=True):
            sel = self.selectors[index]
            body = ",".join(matchers[index])
            insert = (("," if sel.needs_comma else "") + body) if sel.braces else "{" + body + "}"
            text = text[: sel.insert_at] + insert + text[sel.insert_at :]
        if not self.needs_filter(keys):
            return text
        # Newlines: the user's query may end in a # comment.
        return f"(\n{text}\n) and on({', '.join(self.labels)}) {_key_vector(keys, self.labels)}"

    def filter_chars(self, key: Mapping[str, str]) -> int:
        """Characters one key adds to the exact filter (for sizing batches)."""
        return len(_key_element(key, self.labels)) + 6


def _key_element(key: Mapping[str, str], labels: Sequence[str]) -> str:
    expr = "vector(1)"
    for label in labels:
        value = key.get(label, "")
        if value:  # an empty value is an absent label: nothing to set
            expr = f'label_replace({expr}, "{label}", {promql_string(_replacement(value))}, "", "")'
    return expr


def _key_vector(keys: Sequence[Mapping[str, str]], labels: Sequence[str]) -> str:
    """One element per key, as a balanced tree of ``or`` (a chain would cost O(n^2) per step)."""
    items = [_key_element(k, labels) for k in keys]

    def tree(lo: int, hi: int) -> str:
        if hi - lo == 1:
            return items[lo]
        mid = (lo + hi) // 2
        return f"({tree(lo, mid)} or {tree(mid, hi)})"

    return tree(0, len(items))


def restriction_for(query: str, labels: Sequence[str]) -> Restriction:
    """Analyse ``query`` once for narrowing by ``labels`` (the series keys' label names).

    Never changes what the kept series are worth: where the analysis cannot prove a matcher safe,
    it is left out and :meth:`Restriction.render` adds the exact filter instead.

    Raises:
        RestrictionError: the text cannot be lexed (Prometheus would reject it as well).
    """
    labels = tuple(labels)
    tokens, sanitized, strings = _lex(query)
    selectors = tuple(_selectors(tokens))

    def filter_only(note: str) -> Restriction:
        none = {label: frozenset[int]() for label in labels}
        return Restriction(query, labels, selectors, none, dict.fromkeys(labels, False), note)

    if not labels:
        return Restriction(query, labels, selectors, {}, {}, "")
    if "__name__" in labels:
        return filter_only("__name__ is dropped by most functions: exact filter only")
    pp = _parser()
    try:
        tree = pp.parse(sanitized)
    except Exception as exc:  # the package raises ValueError or its own errors
        return filter_only(f"the PromQL parser does not read this query ({exc}): exact filter only")
    pushdown: dict[str, frozenset[int]] = {}
    exact: dict[str, bool] = {}
    notes = []
    lexed = [sel.name for sel in selectors]
    for label in labels:
        analysis = _Analysis(label, strings, pp)
        try:
            exact[label] = analysis.visit(tree, True)
        except _Unsupported as exc:
            return filter_only(f"{exc}: exact filter only")
        parsed = analysis.flow.names
        if len(parsed) != len(lexed) or any(
            a is not None and a != b for a, b in zip(lexed, parsed, strict=True)
        ):
            return filter_only(
                f"the selectors found in the text ({lexed}) are not those of the parsed query ({parsed}): "
                "exact filter only"
            )
        pushdown[label] = frozenset(analysis.flow.inject)
        if not exact[label]:
            notes.append(
                f"{label}: not every series of the result comes from a selector that carries it "
                "(label_replace, an aggregation or a join without it): exact filter added"
            )
    return Restriction(query, labels, selectors, pushdown, exact, "; ".join(notes))


def is_plain_selector(query: str) -> bool:
    """Whether ``query`` is one vector selector without ``offset`` / ``@`` (the series API can then
    list its series from the index alone)."""
    try:
        tokens, sanitized, _ = _lex(query)
        if len(_selectors(tokens)) != 1:
            return False
        pp = _parser()
        tree = pp.parse(sanitized)
    except Exception:  # a query the parser cannot read is not listed through the series API
        return False
    return isinstance(tree, pp.VectorSelector) and tree.offset is None and tree.at is None


@dataclass(frozen=True)
class SeriesSource:
    """The one selector whose series carry every output series' key labels (see :func:`series_source`)."""

    selector: str
    """Its text, for the series API's ``match[]``."""
    reach: int
    """Seconds before an evaluation time that the query reads (its longest range selector)."""


def series_source(query: str, labels: Sequence[str]) -> SeriesSource | None:
    """The selector from which every output series of ``query`` takes its ``labels``, when there is
    exactly one and nothing shifts or builds its series (no offset, ``@``, subquery, ``absent``,
    ``vector``...); else ``None``.

    Then the keys of the query's result are among the keys of that selector's series, and the
    series API can list them from the index alone: ``sum by (user) (rate(x{a="b"}[5m]))`` is
    listed through ``x{a="b"}``. Only a superset: a series whose samples give no output (one
    sample under ``rate``) is listed too, and simply has no data in its shard.
    """
    if not labels:
        return None
    try:
        tokens, sanitized, _ = _lex(query)
        selectors = _selectors(tokens)
        if len(selectors) != 1:
            return None
        restriction = restriction_for(query, labels)
        pp = _parser()
        tree = pp.parse(sanitized)
    except Exception:  # unreadable here: the caller lists the exact way instead
        return None
    if not all(restriction.exact.get(label) for label in labels):
        return None
    reach = 0
    shifted = False

    def look(node: Any) -> None:
        nonlocal reach, shifted
        if isinstance(node, pp.SubqueryExpr):
            shifted = True
        elif isinstance(node, pp.VectorSelector):
            shifted = shifted or node.offset is not None or node.at is not None
        elif isinstance(node, pp.MatrixSelector):
            reach = max(reach, math.ceil(node.range.total_seconds()))

    pp.walk(tree, look)
    if shifted:
        return None
    sel = selectors[0]
    return SeriesSource(query[sel.start : sel.end], reach)
