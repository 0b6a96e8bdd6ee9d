"""Narrowing PromQL to a shard's keys: where matchers go, where they must not, and quoting."""

from __future__ import annotations

import json
import re

import pytest
from foresight.prometheus.promql import (
    RestrictionError,
    SeriesSource,
    is_plain_selector,
    regex_alternation,
    regex_escape,
    restriction_for,
    series_source,
)

ALICE_BOB = [{"user": "alice"}, {"user": "bob"}]
USER = 'user=~"alice|bob"'


def render(query: str, keys: list[dict[str, str]], labels: tuple[str, ...] = ("user",)) -> str:
    return restriction_for(query, labels).render(keys)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("x", f"x{{{USER}}}"),
        ('x{job="a"}', f'x{{job="a",{USER}}}'),
        ('x{job="a",}', f'x{{job="a",{USER}}}'),  # PromQL allows a trailing comma
        ("x{}", f"x{{{USER}}}"),
        ('{__name__=~"x|y"}', f'{{__name__=~"x|y",{USER}}}'),
        ("rate(x[5m])", f"rate(x{{{USER}}}[5m])"),
        ("max_over_time(rate(x[5m])[1d:1h])", f"max_over_time(rate(x{{{USER}}}[5m])[1d:1h])"),
        ("x[5m:]", f"x{{{USER}}}[5m:]"),  # a subquery stays a subquery
        ("sum by (user, group) (x)", f"sum by (user, group) (x{{{USER}}})"),
        ("sum(x) by (user)", f"sum(x{{{USER}}}) by (user)"),
        ("avg without (instance) (x offset 1h)", f"avg without (instance) (x{{{USER}}} offset 1h)"),
        (
            "histogram_quantile(0.9, sum by (le, user) (rate(x_bucket[5m])))",
            f"histogram_quantile(0.9, sum by (le, user) (rate(x_bucket{{{USER}}}[5m])))",
        ),
        ("topk by (user) (3, x)", f"topk by (user) (3, x{{{USER}}})"),
        ("quantile_over_time(0.9, x[1h])", f"quantile_over_time(0.9, x{{{USER}}}[1h])"),
        (
            'label_replace(x, "team", "$1", "group", "(.*)")',
            f'label_replace(x{{{USER}}}, "team", "$1", "group", "(.*)")',
        ),
        ("x > bool scalar(sum(y))", f"x{{{USER}}} > bool scalar(sum(y))"),  # never inside scalar()
        ("2 * x + 1", f"2 * x{{{USER}}} + 1"),
        ("x / y", f"x{{{USER}}} / y{{{USER}}}"),  # default matching: on every label, user included
        ("x / on(user) y", f"x{{{USER}}} / on(user) y{{{USER}}}"),
        # A join partner without the label is left alone; the label comes from the many side.
        ("x / on(cluster) group_left y", f"x{{{USER}}} / on(cluster) group_left y"),
        # group_left(user): the output's user is copied from the "one" side.
        ("x * on(cluster) group_left(user) y", f"x * on(cluster) group_left(user) y{{{USER}}}"),
        ("x * on(cluster) group_right z", f"x * on(cluster) group_right z{{{USER}}}"),
        ("x and on(cluster) y", f"x{{{USER}}} and on(cluster) y"),
        ("x unless y", f"x{{{USER}}} unless y{{{USER}}}"),
        ("x or y", f"x{{{USER}}} or y{{{USER}}}"),
        ("sort_desc(clamp_min(x, 0))", f"sort_desc(clamp_min(x{{{USER}}}, 0))"),
        ("x:recorded:rate5m", f"x:recorded:rate5m{{{USER}}}"),
        ("SUM BY (user) (x)", f"SUM BY (user) (x{{{USER}}})"),  # keywords are case-insensitive
    ],
)
def test_matchers_are_pushed_into_selectors_that_carry_the_label(query: str, expected: str) -> None:
    r = restriction_for(query, ("user",))
    assert r.exact["user"], r.note
    assert r.render(ALICE_BOB) == expected


@pytest.mark.parametrize(
    ("query", "pushed"),
    [
        ("sum by (cluster) (x)", "sum by (cluster) (x)"),  # the aggregation drops user
        ("sum(x)", "sum(x)"),
        ("topk(3, x)", "topk(3, x)"),  # a global top 3 depends on every user
        (
            'label_replace(x, "user", "$1", "owner", "(.*)")',
            'label_replace(x, "user", "$1", "owner", "(.*)")',
        ),
        ('count_values("user", x)', 'count_values("user", x)'),
        ("absent(x)", "absent(x)"),
        ("x / on(cluster) y", "x / on(cluster) y"),  # one-to-one on(cluster): the result has no user
        ("x / ignoring(user) y", "x / ignoring(user) y"),
        ("x or on(cluster) y", f"x or on(cluster) y{{{USER}}}"),  # y's elements are kept only if x has none
        ("x or vector(0)", f"x{{{USER}}} or vector(0)"),
    ],
)
def test_where_the_label_cannot_be_traced_nothing_below_changes_and_the_filter_makes_it_exact(
    query: str, pushed: str
) -> None:
    r = restriction_for(query, ("user",))
    assert not r.exact["user"]
    assert r.note
    out = r.render(ALICE_BOB)
    assert out.startswith(f"(\n{pushed}\n) and on(user) ")
    alice, bob = (f'label_replace(vector(1), "user", "{u}", "", "")' for u in ("alice", "bob"))
    assert out.endswith(f"({alice} or {bob})")


def test_several_labels_get_the_exact_filter_only_when_their_values_cross() -> None:
    r = restriction_for("sum by (user, cluster) (x)", ("user", "cluster"))
    exact_product = [{"user": "a", "cluster": "c1"}, {"user": "b", "cluster": "c1"}]
    assert r.render(exact_product) == 'sum by (user, cluster) (x{user=~"a|b",cluster=~"c1"})'
    crossing = [{"user": "a", "cluster": "c1"}, {"user": "b", "cluster": "c2"}]  # (a, c2) is another shard's
    out = r.render(crossing)
    assert out.startswith(
        '(\nsum by (user, cluster) (x{user=~"a|b",cluster=~"c1|c2"})\n) and on(user, cluster) '
    )
    assert 'label_replace(label_replace(vector(1), "user", "a", "", ""), "cluster", "c1", "", "")' in out
    assert 'label_replace(label_replace(vector(1), "user", "b", "", ""), "cluster", "c2", "", "")' in out


def test_the_key_vector_is_a_balanced_tree() -> None:
    keys = [{"user": f"u{i}"} for i in range(8)]
    out = restriction_for("sum(x)", ("user",)).render(keys)
    # 8 elements, depth 3: never a left-deep chain of 7 `or`s (O(n^2) per step in Prometheus).
    assert out.count("((label_replace") == 2 and out.count("(((label_replace") == 1


def test_awkward_values_are_quoted_for_promql_and_escaped_for_re2() -> None:
    values = ['o"brien', "back\\slash", "a|b", "dot.user", "star*", "(p)", "[x]", "{y}", "^c$", "张三",
              "tab\tx", "dollar$1", "plus+q?", "sp ace-dash"]  # fmt: skip
    out = render("x", [{"user": v} for v in values])
    literal = re.fullmatch(r'x\{user=~(".*")\}', out, re.DOTALL)
    assert literal is not None
    regex = json.loads(literal.group(1))  # a PromQL double-quoted string is a JSON string here
    for v in values:
        assert re.fullmatch(regex, v), v
    for near_miss in ["obrien", "a", "b", "dotXuser", "starrr", "p", "x", "张", "dollar"]:
        assert not re.fullmatch(regex, near_miss), near_miss
    # RE2 (Go) rejects Python's escapes of space and '-'; only RE2 metacharacters are escaped.
    assert regex_escape("sp ace-dash") == "sp ace-dash"
    assert regex_escape("a.b|c") == r"a\.b\|c"


def test_empty_values_match_series_without_the_label() -> None:
    assert regex_alternation(["b", "", "a", "a"]) == "|a|b"
    out = render("sum by (user) (x)", [{"user": ""}, {"user": "alice"}])
    assert out == 'sum by (user) (x{user=~"|alice"})'
    f = restriction_for("sum(x)", ("user",)).render([{"user": ""}, {"user": "a$1"}])
    assert (
        'vector(1) or label_replace(vector(1), "user", "a$$1", "", "")' in f
    )  # $ is literal in the replacement


def test_the_users_text_is_kept_byte_for_byte() -> None:
    # Escapes and raw strings the promql-parser package mis-reads or re-prints differently.
    query = 'x{a=`raw\\n`, b="q\\"\\\\", c=\'s\'} + ignoring(job) y  # a comment'
    out = render(query, ALICE_BOB)
    assert out == f'x{{a=`raw\\n`, b="q\\"\\\\", c=\'s\',{USER}}} + ignoring(job) y{{{USER}}}  # a comment'
    # With the filter, the comment cannot swallow the closing parenthesis.
    filtered = render("sum(x) # total", ALICE_BOB)
    assert filtered.startswith("(\nsum(x) # total\n) and on(user)")


def test_no_labels_means_the_query_as_is() -> None:
    r = restriction_for("sum(rate(x[5m]))", ())
    assert r.render([{}]) == "sum(rate(x[5m]))" and not r.pushed_down


def test_queries_the_parser_cannot_read_fall_back_to_the_filter() -> None:
    r = restriction_for("some_future_function(x)", ("user",))
    assert not r.pushed_down and "parser" in r.note
    assert r.render(ALICE_BOB).startswith("(\nsome_future_function(x)\n) and on(user) ")


def test_text_that_cannot_be_lexed_is_an_error() -> None:
    with pytest.raises(RestrictionError, match="quotes"):
        restriction_for('x{a="unterminated}', ("user",))
    with pytest.raises(RestrictionError, match="unbalanced"):
        restriction_for('x{a="b"', ("user",))


def test_plain_selectors_are_recognised() -> None:
    assert is_plain_selector("x")
    assert is_plain_selector('x{a="b", c=~"d.*"}')
    assert is_plain_selector('{__name__="x", a="\\"q"}')
    for q in ["rate(x[5m])", "x offset 5m", "x @ 100", "x + y", "sum(x)", "x[5m]", "(x)", "1"]:
        assert not is_plain_selector(q), q


@pytest.mark.parametrize(
    ("query", "selector", "reach"),
    [
        ('sum by (user) (rate(x{a="b"}[5m]))', 'x{a="b"}', 300),
        ("max_over_time(x[1d])", "x", 86400),
        ("histogram_quantile(0.9, sum by (le, user) (rate(x_bucket[5m])))", "x_bucket", 300),
        ('{__name__="x", job=~"a|b"} * 2', '{__name__="x", job=~"a|b"}', 0),
    ],
)
def test_a_query_whose_keys_come_from_its_one_selector_is_listed_through_it(
    query: str, selector: str, reach: int
) -> None:
    assert series_source(query, ["user"]) == SeriesSource(selector, reach)


@pytest.mark.parametrize(
    "query",
    [
        "x / on(user) y",  # two selectors
        "sum by (cluster) (x)",  # the key label is not the selector's
        'label_replace(x, "user", "$1", "owner", "(.*)")',
        "x offset 1h",  # shifted: the series API would be asked about the wrong time
        "x @ 100",
        "max_over_time(x[1d:1h])",  # a subquery
        'absent(x{user="a"})',  # output without any series of x
    ],
)
def test_other_queries_are_not_listed_through_a_selector(query: str) -> None:
    assert series_source(query, ["user"]) is None
    assert series_source("x", []) is None  # no key labels: nothing to trace
