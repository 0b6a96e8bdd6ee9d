"""Turning a language model's free-text answer into one category key, and saying when it is a guess.

Models are asked for the key only, but answer with JSON, code fences, a Chinese or English label, a
sentence around the key, a negation or several candidates. The rules, in order:

1. **Clean**: surrounding whitespace, code fences and a leading ``Answer:`` / ``Category:`` /
   ``答案：`` / ``类别：`` / ``分类：`` label go.
2. **Structured**: a JSON object, a Python-style dict (single quotes), a JSON string or array, or
   ``field: value`` text is read first. The first of the fields ``category``, ``key``, ``label``,
   ``class``, ``answer``, ``result``, ``type``, ``categories`` is the answer (a list of several names
   several categories); a numeric ``confidence`` in [0, 1] is the model's own confidence. The value
   then goes through rules 3 to 5.
3. **Exact**: the whole answer is a category key (confidence 1.0) or its English or Chinese label,
   or the singular / plural of either (0.9); case, spaces, ``-`` / ``_`` and surrounding punctuation
   do not matter.
4. **Mentions**: every category named inside the text, by key, key with spaces, English label
   (singular or plural) or Chinese label, counts, except where a negation comes before it in the
   same clause (English ``not``, ``no``, ``isn't``, ``never``, ``neither`` / ``nor``, ``without``,
   ``rather than``, ``instead of``... within four words; Chinese ``不是``, ``并非``, ``不属于``,
   ``没有``, ``而非``, ``不像`` up to three characters before, ``不`` / ``非`` right before). Clauses
   end at ``.,;:!?`` (and
   their full-width forms), new lines and ``but`` / ``但``. ``other`` counts only when nothing
   else is named ("no other category fits").
5. **Decide**: exactly one category named (once or more) is the answer with confidence 0.7 (the
   model's own confidence when it gave one). Several categories, none, or only negated ones are
   **not a result**: the answer is the first named (several, confidence 0.5) or the fallback
   category (none, confidence 0.0), ``certain`` is False, and the service returns it marked
   ``low_confidence`` without caching it (seed 003: only real results are cached).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from foresight.api.classifierservice import Category

__all__ = ["ParsedAnswer", "parse_answer"]

_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_LEAD = re.compile(r"^\s*(answer|category|class|label|result|答案|类别|分类|类型)\s*[:：]\s*", re.IGNORECASE)
_OBJECT = re.compile(r"\{.*?\}|\[.*?\]", re.DOTALL)
_FIELDS = ("category", "key", "label", "class", "answer", "result", "type", "categories")
_FIELD_TEXT = re.compile(
    r"""(?:^|[\s{,"'])(category|key|label|class|answer|result|type|categories)["']?\s*[:=]\s*"""
    r"""["']?([^"',}\]\n]+)""",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"[.;:!?,，。；：！？\n]|\bbut\b|但是?")
_EN_NEGATION = re.compile(
    r"\b(not|no|never|neither|nor|without|isn'?t|aren'?t|wasn'?t|doesn'?t|don'?t|hardly|"
    r"rather\s+than|instead\s+of)\b(\W+\w+){0,3}\W*$"
)
# Single 不 / 非 only right before the label: 不错的美食 ("nice food") is not a negation.
_ZH_NEGATION = re.compile(r"((不是|并非|并不是|不属于|没有|而非|不像).{0,3}|[不非])$")
_MAX_ANSWER = 4000
"""Characters of an answer that are read (the prompt asks for one word)."""

CERTAIN_TEXT = 0.7
SEVERAL = 0.5


@dataclass(frozen=True)
class ParsedAnswer:
    category: str
    confidence: float
    matched: str
    """How the answer was read: ``key``, ``label``, ``json``, ``text`` (certain), ``ambiguous``
    (several categories) or ``none`` (no category)."""

    @property
    def certain(self) -> bool:
        """A real result (cacheable), not a guess."""
        return self.matched not in ("ambiguous", "none")


def _norm(text: str) -> str:
    text = text.strip().strip("\"'`“”‘’「」『』。.,，!！:：;；()（）[]【】*").lower()
    return re.sub(r"[\s\-]+", "_", text)


def _singular_plural(word: str) -> set[str]:
    out = {word}
    if word.endswith("ies") and len(word) > 4:
        out.add(word[:-3] + "y")
    elif word.endswith("s") and len(word) > 3:
        out.add(word[:-1])
    elif word.endswith("y"):
        out.add(word[:-1] + "ies")
    else:
        out.add(word + "s")
    return out


def _english_forms(cat: Category) -> list[str]:
    """English ways of writing a category in a sentence: key, key with spaces, label, singular/plural."""
    base = {cat.key, cat.key.replace("_", " "), cat.en.lower(), cat.key.replace("_", "")}
    out: set[str] = set()
    for form in base:
        out |= _singular_plural(form)
    return sorted(out, key=len, reverse=True)


def _exact(token: str, categories: Sequence[Category]) -> tuple[str, str] | None:
    n = _norm(token)
    if not n:
        return None
    for c in categories:
        if n == c.key:
            return c.key, "key"
    for c in categories:
        labels = {_norm(c.en), _norm(c.zh), c.zh}
        labels |= {_norm(f) for f in _singular_plural(_norm(c.en))} | _singular_plural(c.key)
        if n in labels:
            return c.key, "label"
    return None


def _structured(text: str) -> tuple[list[str], float | None] | None:
    """The answer field(s) and the model's confidence of a JSON-ish answer, or None."""
    candidates = [text, *(m.group(0) for m in _OBJECT.finditer(text))]
    for cand in candidates:
        obj: Any
        try:
            obj = json.loads(cand)
        except ValueError:
            try:
                obj = ast.literal_eval(cand)  # {'category': 'pets'}: literals only, never code
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
        found = _fields_of(obj)
        if found is not None:
            return found
    m = _FIELD_TEXT.search(text)
    if m:
        return [m.group(2).strip()], None
    return None


def _fields_of(obj: Any) -> tuple[list[str], float | None] | None:
    if isinstance(obj, str):
        return [obj], None
    if isinstance(obj, list) and obj and all(isinstance(v, str) for v in obj):
        return list(obj), None
    if not isinstance(obj, dict):
        return None
    lowered = {str(k).lower(): v for k, v in obj.items()}
    for name in _FIELDS:
        value = lowered.get(name)
        if isinstance(value, str):
            values = [value]
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            values = list(value)
        else:
            continue
        conf = lowered.get("confidence")
        if isinstance(conf, int | float) and not isinstance(conf, bool) and 0 <= conf <= 1:
            return values, float(conf)
        return values, None
    return None


def _negated(text: str, start: int) -> bool:
    """Whether a negation comes before position ``start`` in the same clause."""
    before = text[:start]
    ends = list(_CLAUSE_END.finditer(before))
    clause = before[ends[-1].end() :] if ends else before
    return bool(_EN_NEGATION.search(clause.lower()) or _ZH_NEGATION.search(clause))


def _mentions(text: str, categories: Sequence[Category], fallback: str) -> list[tuple[int, str]]:
    """(first position, key) of every category named and not negated; the fallback only when alone."""
    low = text.lower()
    found: dict[str, int] = {}
    for c in categories:
        positions = [m.start() for m in re.finditer(re.escape(c.zh), text)]
        for form in _english_forms(c):
            positions += [
                m.start() for m in re.finditer(rf"(?<![a-z0-9_]){re.escape(form)}(?![a-z0-9_])", low)
            ]
        kept = [p for p in positions if not _negated(text, p)]
        if kept:
            found[c.key] = min(kept)
    if len(found) > 1:
        # "other" appears in ordinary sentences ("no other category fits"): a real category wins.
        found.pop(fallback, None)
    return sorted((pos, key) for key, pos in found.items())


def _decide(text: str, categories: Sequence[Category], fallback: str) -> ParsedAnswer:
    hit = _exact(text, categories)
    if hit is not None:
        return ParsedAnswer(hit[0], 1.0 if hit[1] == "key" else 0.9, hit[1])
    mentions = _mentions(text, categories, fallback)
    if len(mentions) == 1:
        return ParsedAnswer(mentions[0][1], CERTAIN_TEXT, "text")
    if mentions:
        return ParsedAnswer(mentions[0][1], SEVERAL, "ambiguous")
    return ParsedAnswer(fallback, 0.0, "none")


def parse_answer(text: str, categories: Sequence[Category], fallback: str = "other") -> ParsedAnswer:
    """Read one category key out of a model answer (see the module docstring for the rules)."""
    cleaned = _LEAD.sub("", _FENCE.sub("", text[:_MAX_ANSWER].strip()).strip()).strip()
    structured = _structured(cleaned)
    if structured is None:
        return _decide(cleaned, categories, fallback)
    values, confidence = structured
    parsed = [_decide(v, categories, fallback) for v in values]
    named = [p for p in parsed if p.certain]
    if len({p.category for p in named}) > 1:
        return ParsedAnswer(named[0].category, SEVERAL, "ambiguous")
    if not named:
        return parsed[0] if len(parsed) == 1 else ParsedAnswer(fallback, 0.0, "none")
    one = named[0]
    if one.matched in ("key", "label"):
        return ParsedAnswer(one.category, confidence if confidence is not None else one.confidence, "json")
    return ParsedAnswer(one.category, confidence if confidence is not None else one.confidence, "text")
