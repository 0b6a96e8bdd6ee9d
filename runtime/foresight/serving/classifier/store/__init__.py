"""Result cache and statistics stores: sqlite (embedded, one pod's workers) and redis (shared by replicas)."""

from .base import CachedResult, LedgerBatch, RequestRecord, ResultStore, cache_key
from .lru import LruCache

__all__ = ["CachedResult", "LedgerBatch", "LruCache", "RequestRecord", "ResultStore", "cache_key"]
