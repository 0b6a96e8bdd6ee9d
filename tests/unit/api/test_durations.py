"""The one duration grammar (Go's ``time.ParseDuration``, unsigned): parser, formatter, and that the
API's pattern, the CRD's CEL ``duration()`` and the runtime's parser agree on it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from foresight.api.durations import (
    DURATION_PATTERN,
    duration_seconds,
    format_duration,
    nanoseconds,
    parse_duration,
)
from foresight.api.validation import evaluate_rules
from pydantic import BaseModel, Field, ValidationError

from tests.cluster.schema import FieldError as AdmissionError
from tests.cluster.schema import validate as admission_validate

NS, US, MS, S = 1, 1_000, 1_000_000, 1_000_000_000
M, H = 60 * S, 3600 * S

# Go's own table (src/time/time_test.go, parseDurationTests), the signed cases left out.
GO_VALID = {
    "0": 0,
    "5s": 5 * S,
    "30s": 30 * S,
    "1478s": 1478 * S,
    "5.0s": 5 * S,
    "5.6s": 5 * S + 600 * MS,
    "5.s": 5 * S,
    ".5s": 500 * MS,
    "1.0s": 1 * S,
    "1.00s": 1 * S,
    "1.004s": 1 * S + 4 * MS,
    "1.0040s": 1 * S + 4 * MS,
    "100.00100s": 100 * S + 1 * MS,
    "10ns": 10 * NS,
    "11us": 11 * US,
    "12µs": 12 * US,  # U+00B5
    "12μs": 12 * US,  # U+03BC
    "13ms": 13 * MS,
    "14s": 14 * S,
    "15m": 15 * M,
    "16h": 16 * H,
    "3h30m": 3 * H + 30 * M,
    "10.5s4m": 4 * M + 10 * S + 500 * MS,
    "1h2m3s4ms5us6ns": 1 * H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
    "39h9m14.425s": 39 * H + 9 * M + 14 * S + 425 * MS,
    "52763797000ns": 52763797000 * NS,
    "0.3333333333333333333h": 20 * M,
    "9007199254740993ns": (1 << 53) + 1,
    "9223372036854775807ns": (1 << 63) - 1,
    "9223372036854775.807us": (1 << 63) - 1,
    "9223372036s854ms775us807ns": (1 << 63) - 1,
    "0.100000000000000000000h": 6 * M,
    "0.830103483285477580700h": 49 * M + 48 * S + 372539827 * NS,
}
GO_INVALID = [
    "",
    "3",
    "-",
    "s",
    ".",
    "-.",
    ".s",
    "+.s",
    "1d",
    "\x85\x85",
    "\xffff",
    "hello \xffff world",
    "9223372036854775810ns",
    "9223372036854775808ns",
    "9223372036854776us",
    "3000000h",
    "9223372036854775.808us",
    "9223372036854ms775us808ns",
    # a sign: Go reads it, no Foresight duration may be negative
    "-5s",
    "+5s",
    # not Go at all
    "1h 30m",
    " 1h",
    "6 hours",
    "1w",
]


@pytest.mark.parametrize(("text", "ns"), GO_VALID.items())
def test_parses_gos_own_cases_to_the_nanosecond(text: str, ns: int) -> None:
    assert nanoseconds(text) == ns


@pytest.mark.parametrize("text", GO_INVALID)
def test_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration|longer than the longest"):
        nanoseconds(text)


def test_days_are_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match="no days: write 24h"):
        parse_duration("1d")


def test_parse_duration_and_whole_seconds() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("500ms") == timedelta(milliseconds=500)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    assert [duration_seconds(t) for t in ("90s", "30m", "6h", "720h", "1h30m")] == [
        90,
        1800,
        21600,
        30 * 86400,
        5400,
    ]
    assert duration_seconds("1500ms") == 2  # rounded: the runtime works in whole seconds


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(3600, "1h"), (21600, "6h"), (86400, "24h"), (5400, "90m"), (90, "90s"), (45, "45s")],
)
def test_format_duration_is_the_horizon_label_and_parses_back(seconds: int, label: str) -> None:
    assert format_duration(seconds) == label
    assert duration_seconds(label) == seconds


def test_format_duration_refuses_negative_seconds() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)


class _Model(BaseModel):
    value: str = Field(pattern=DURATION_PATTERN)


@pytest.mark.parametrize("text", [*GO_VALID, *GO_INVALID])
def test_the_api_pattern_accepts_exactly_what_parses(text: str) -> None:
    """Pattern (pydantic's Rust regex, the CRD's RE2) and parser draw the same line, overflow aside."""
    try:
        _Model(value=text)
        pattern_ok = True
    except ValidationError:
        pattern_ok = False
    try:
        nanoseconds(text)
        parses = True
    except ValueError as exc:
        parses = False
        if "longer than the longest" in str(exc):
            assert pattern_ok  # well formed, only too long: CEL's duration() refuses it
            return
    assert pattern_ok == parses


RULE = {"x-kubernetes-validations": [{"rule": "duration(self) >= duration('1s')", "message": "too short"}]}


@pytest.mark.parametrize(
    ("text", "ok"),
    [("1s", True), ("1h30m", True), ("999ms", False), ("1000ms", True), ("1us", False), ("0", False)],
)
def test_cel_duration_reads_gos_grammar_offline_and_in_the_emulator(text: str, ok: bool) -> None:
    """cel-python's own duration() reads ``1us`` as 0s and refuses ``0``; both CEL evaluators of
    the project (``foresight validate`` and the emulator's admission) use Go's grammar instead."""
    offline = evaluate_rules({"type": "string", **RULE}, text)
    emulated: list[AdmissionError] = []
    admission_validate(text, {"type": "string", **RULE}, "spec.step", emulated)
    assert (offline == []) == ok
    assert (emulated == []) == ok


def test_cel_durations_compare_across_units() -> None:
    schema = {
        "type": "array",
        "items": {"type": "string"},
        "x-kubernetes-validations": [{"rule": "self.all(h, duration(h) <= duration('24h'))", "message": "m"}],
    }
    emulated: list[AdmissionError] = []
    admission_validate(["1h", "1440m", "86400s"], schema, "spec.horizons", emulated)
    assert evaluate_rules(schema, ["1h", "1440m", "86400s"]) == [] and emulated == []
    assert [str(e) for e in evaluate_rules(schema, ["1441m"])] == ["spec: m"]
