"""Result cache and statistics stores: sqlite (embedded, one replica) and redis (shared by replicas)."""

from .base import CachedResult, DayStats, RequestRecord, ResultStore
from .lru import LruCache

__all__ = ["CachedResult", "DayStats", "LruCache", "RequestRecord", "ResultStore"]
