"""The one command-line table (foresight.console.table)."""

from __future__ import annotations

from foresight.console import table


def test_columns_are_left_aligned_three_spaces_apart_without_trailing_blanks() -> None:
    out = table(["NAME", "READY", "AGE"], [["a", True, 3], ["longer-name", "", None]])
    assert out.splitlines() == [
        "NAME          READY   AGE",
        "a             True    3",
        "longer-name           None",
    ]
    assert not out.endswith("\n")


def test_the_gap_is_a_parameter_and_an_empty_table_is_its_header() -> None:
    assert table(["A", "B"], [["x", "y"]], gap=2).splitlines() == ["A  B", "x  y"]
    assert table(["A", "B"], []) == "A   B"
