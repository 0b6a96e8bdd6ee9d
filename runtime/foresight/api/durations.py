"""Durations: the one grammar of every duration in Foresight, Go's (``metav1.Duration``).

A spec's durations (``step: 1h``, ``retrainEvery: 24h``, ``horizons: [90m]``) are Go duration
strings because that is the Kubernetes convention and the only form CEL's ``duration()`` reads, so
the CRD's rules can compare them at admission. Everything that reads one (API validation, the
operator's schedule, the forecast pipeline, training) parses it here; horizon labels are written here.

The grammar is Go's ``time.ParseDuration`` without a sign (no Foresight duration is negative):
``0``, or one or more ``<number><unit>`` with a decimal number (``1``, ``1.5``, ``.5``, ``1.``) and
a unit out of ``ns``, ``us`` (or ``µs``), ``ms``, ``s``, ``m``, ``h``. There are no days: write
``24h``. Values are nanoseconds, at most 2^63 - 1 of them (about 2,562,047 hours), computed as
Go computes them, so that this module and the API server's CEL agree to the nanosecond.
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = [
    "DURATION_PATTERN",
    "duration_seconds",
    "format_compound",
    "format_duration",
    "nanoseconds",
    "parse_duration",
]

DURATION_PATTERN = r"^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"
"""The API's pattern (in the CRD and the models): the whole grammar, so pattern and parser agree."""

_COMPONENT = re.compile(r"([0-9]*)(?:\.([0-9]*))?(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU: Go accepts both
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_LIMIT = 1 << 63  # Go's time.Duration is an int64 of nanoseconds; CEL's duration() refuses more
_FULL = re.compile(DURATION_PATTERN)


def _fraction(digits: str) -> tuple[int, float]:
    """Go's ``leadingFraction``: the digits as an integer and their scale, ignoring digits past
    what 63 bits hold (so ``0.3333333333333333333h`` is exactly 20m, as in Go)."""
    value, scale = 0, 1.0
    for c in digits:
        if value > (_LIMIT - 1) // 10:
            break
        nxt = value * 10 + int(c)
        if nxt > _LIMIT:
            break
        value, scale = nxt, scale * 10
    return value, scale


def nanoseconds(text: str) -> int:
    """``text`` in nanoseconds, computed as Go's ``time.ParseDuration`` does (float64 included);
    ``ValueError`` saying what to write instead when it is not a duration or is too long."""
    if not isinstance(text, str) or not _FULL.match(text):
        hint = " (there are no days: write 24h)" if isinstance(text, str) and "d" in text else ""
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 1h30m or 720h{hint}")
    total = 0
    for whole, frac, unit_name in _COMPONENT.findall(text):
        unit = _UNIT_NS[unit_name]
        v = int(whole or "0")
        if v > _LIMIT // unit:
            raise ValueError(f"{text!r} is longer than the longest duration (about 2562047h)")
        v *= unit
        f, scale = _fraction(frac)
        if f > 0:
            v += int(float(f) * (float(unit) / scale))
        total += v
        if total > _LIMIT - 1:
            raise ValueError(f"{text!r} is longer than the longest duration (about 2562047h)")
    return total


def parse_duration(text: str) -> timedelta:
    """``text`` as a ``timedelta`` (to the microsecond): ``"1h30m"`` -> 90 minutes."""
    return timedelta(microseconds=nanoseconds(text) // 1000)


def duration_seconds(text: str) -> int:
    """``text`` in whole seconds, rounded (the runtime's resolution): ``"720h"`` -> 2592000."""
    return round(nanoseconds(text) / 1_000_000_000)


def format_duration(seconds: int) -> str:
    """The shortest of ``Nh``, ``Nm``, ``Ns`` for whole ``seconds``: 21600 -> ``6h``, 5400 -> ``90m``.

    This is how horizons are labelled (``horizon="6h"``), and it parses back with this grammar.
    """
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds}s")
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def format_compound(seconds: int) -> str:
    """Whole ``seconds`` as hours, minutes and seconds together: 7800 -> ``2h10m``, 45 -> ``45s``.

    The readable form for durations people set or read (an alert's ``for:``); labels use
    :func:`format_duration`, whose single unit never changes a series' identity.
    """
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds}s")
    if seconds == 0:
        return "0s"
    out = ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out += f"{n}{unit}"
    return out
