"""ttlcache: bounded in-memory caches (LRU and TTL) and a memoizing decorator."""

from .lru import LRUCache, CacheStats
from .ttl import TTLCache
from .memo import memoize, make_key

__all__ = ["LRUCache", "TTLCache", "CacheStats", "memoize", "make_key"]
