"""Sticky, weighted routing of requests to variants: weighted rendezvous hashing.

Runs in the serving pods on every request, so it is plain Python (stdlib only, no numpy or scipy)
and caches recent keys. Given the variants' weights and a stickiness key (the request's
stickiness header, else the client IP):

- the same key always gets the same variant for the same weights, on every pod (the hash is
  BLAKE2b, not Python's per-process ``hash``), and the experiment's name salts it so that the
  clients in one experiment's 10% are not the same clients in the next experiment's 10%;
- each variant gets its weight's share of keys: every variant draws ``E = -ln(u) / weight`` from
  a uniform ``u`` hashed from (key, variant name) and the smallest ``E`` wins, an exponential race
  in which variant ``i`` wins with probability ``weight_i / Σ weights`` exactly;
- raising one variant's weight only moves keys **to** it (its ``E`` shrinks, the others' stay),
  about ``Δweight`` of them: 10% -> 25% moves 15% of the clients, control to candidate, never the
  other way. Removing a variant moves only its own clients. Variant order does not matter.

Why rendezvous and not cumulative intervals on one hash: with two variants both move the
minimum, but with intervals a change of one weight shifts the boundaries of every variant after
it, so with three or more variants clients move between variants whose weights did not change.
No stateless scheme can move the minimum for every change of three or more weights (three
variants cycling through (½,½,0) -> (0,½,½) -> (½,0,½) cannot all be minimal), and rendezvous
hashing stays close to it (``bench/ab_routing.py`` measures both).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

__all__ = ["VariantRouter", "routing_key"]

_MASK = (1 << 64) - 1
_TO_UNIT = 1.0 / (1 << 53)


def _mix64(x: int) -> int:
    """SplitMix64's finaliser: decorrelates the key hash from each variant's seed."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def routing_key(header_value: str | None, client_ip: str | None) -> str | None:
    """The stickiness key of a request: its stickiness header, else the client IP, else None.

    With None the request cannot be sticky; the serving side then routes it by its request id.
    """
    if header_value and header_value.strip():
        return header_value.strip()
    if client_ip:
        return f"ip:{client_ip}"
    return None


class VariantRouter:
    """Picks a variant per stickiness key; build a new router when the weights change."""

    def __init__(self, weights: Mapping[str, float], salt: str = "", cache_size: int = 32768) -> None:
        """``weights``: any non-negative scale (percent from the serving config); ``salt``: the
        experiment's name; ``cache_size``: keys remembered (the cache is cleared when full)."""
        bad = {
            v: w
            for v, w in weights.items()
            if not (isinstance(w, int | float) and math.isfinite(w) and w >= 0)
        }
        if bad:
            raise ValueError(f"weights must be finite and >= 0, got {bad}; fix the serving config's weights")
        live = sorted((name, float(w)) for name, w in weights.items() if w > 0)
        if not live:
            raise ValueError(
                f"no variant has a positive weight in {dict(weights)}; give at least one variant weight > 0"
            )
        self.weights = {name: float(w) for name, w in weights.items()}
        self.salt = salt
        # A keyed hash of the salt: the same key in two experiments lands independently.
        self._hasher = hashlib.blake2b(
            digest_size=8, key=hashlib.blake2b(salt.encode(), digest_size=32).digest()
        )
        self._arms = tuple((name, _seed(name), 1.0 / w) for name, w in live)
        self._only = live[0][0] if len(live) == 1 else None
        self._cache: dict[str, str] = {}
        self._cache_size = cache_size

    def choose(self, key: str) -> str:
        """The variant for ``key`` (stable for these weights and salt)."""
        if self._only is not None:
            return self._only
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        chosen = self._race(key)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[key] = chosen
        return chosen

    def _race(self, key: str) -> str:
        hasher = self._hasher.copy()
        hasher.update(key.encode())
        h = int.from_bytes(hasher.digest(), "big")
        best, best_score = "", math.inf
        for name, seed, inv_weight in self._arms:
            u = ((_mix64(h ^ seed) >> 11) + 0.5) * _TO_UNIT  # in (0, 1): log is finite
            score = -math.log(u) * inv_weight
            if score < best_score:
                best, best_score = name, score
        return best
