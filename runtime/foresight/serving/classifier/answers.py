"""Turning a language model's free-text answer into exactly one category key.

Models are asked for the key only, but answer with JSON, code fences, a Chinese or English label,
a sentence around the key, or other casing. The match quality becomes the confidence: an exact key
is 1.0, an exact label 0.9, one category named inside a sentence 0.7, the first of several 0.5, and
an answer naming no category maps to the fallback category with confidence 0.0. A numeric
``confidence`` in a JSON answer, when present and in [0, 1], is used instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from foresight.api.classifierservice import Category

__all__ = ["ParsedAnswer", "parse_answer"]

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_JSON_OBJECT = re.compile(r"\{.*?\}", re.DOTALL)
_CATEGORY_FIELDS = ("category", "key", "label", "class", "answer", "result", "type")


@dataclass(frozen=True)
class ParsedAnswer:
    category: str
    confidence: float
    matched: str  # "key", "label", "text", "ambiguous", "json" or "none": how the answer was read


def _norm(text: str) -> str:
    text = text.strip().strip("\"'`“”‘’「」『』。.,，!！:：;；()（）[]【】").lower()
    return re.sub(r"[\s\-]+", "_", text)


def _variants(cat: Category) -> list[str]:
    """English ways of writing a category inside a sentence: key, key with spaces, label, singular."""
    out = {cat.key, cat.key.replace("_", " "), cat.en.lower(), cat.key.replace("_", "")}
    for v in list(out):
        if v.endswith("s") and len(v) > 3:
            out.add(v[:-1])
    return sorted(out, key=len, reverse=True)


def _exact(token: str, categories: Sequence[Category]) -> tuple[str, str] | None:
    n = _norm(token)
    if not n:
        return None
    for c in categories:
        if n == c.key:
            return c.key, "key"
    for c in categories:
        if n in (_norm(c.en), _norm(c.zh), c.zh):
            return c.key, "label"
    return None


def _json_answer(text: str) -> tuple[str, float | None] | None:
    candidates = [text]
    m = _JSON_OBJECT.search(text)
    if m:
        candidates.append(m.group(0))
    for cand in candidates:
        try:
            obj = json.loads(cand)
        except ValueError:
            continue
        if isinstance(obj, str):
            return obj, None
        if isinstance(obj, dict):
            value = next((obj[f] for f in _CATEGORY_FIELDS if isinstance(obj.get(f), str)), None)
            if value is None:
                continue
            conf = obj.get("confidence")
            if isinstance(conf, int | float) and not isinstance(conf, bool) and 0 <= conf <= 1:
                return value, float(conf)
            return value, None
    return None


def _mentions(text: str, categories: Sequence[Category], fallback: str) -> list[tuple[int, str]]:
    """(position, key) of every category named in the text; the fallback only counts when alone."""
    low = text.lower()
    found: dict[str, int] = {}
    for c in categories:
        positions = [low.find(c.zh)] if c.zh in text else []
        for v in _variants(c):
            m = re.search(rf"(?<![a-z0-9_]){re.escape(v)}(?![a-z0-9_])", low)
            if m:
                positions.append(m.start())
        positions = [p for p in positions if p >= 0]
        if positions:
            found[c.key] = min(positions)
    if len(found) > 1:
        # "other" appears in ordinary sentences ("no other category fits"): a real category wins.
        found.pop(fallback, None)
    return sorted((pos, key) for key, pos in found.items())


def parse_answer(text: str, categories: Sequence[Category], fallback: str = "other") -> ParsedAnswer:
    """Read one category key out of a model answer; unknown answers map to ``fallback``."""
    cleaned = _FENCE.sub("", text.strip()).strip()
    json_answer = _json_answer(cleaned)
    if json_answer is not None:
        value, conf = json_answer
        hit = _exact(value, categories)
        if hit is not None:
            return ParsedAnswer(
                hit[0], conf if conf is not None else (1.0 if hit[1] == "key" else 0.9), "json"
            )
        cleaned = value
    hit = _exact(cleaned, categories)
    if hit is not None:
        return ParsedAnswer(hit[0], 1.0 if hit[1] == "key" else 0.9, hit[1])
    mentions = _mentions(cleaned, categories, fallback)
    if len(mentions) == 1:
        return ParsedAnswer(mentions[0][1], 0.7, "text")
    if mentions:
        return ParsedAnswer(mentions[0][1], 0.5, "ambiguous")
    return ParsedAnswer(fallback, 0.0, "none")
