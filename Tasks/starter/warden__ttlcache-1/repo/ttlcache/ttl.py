"""An LRU cache whose entries also expire after `ttl` seconds."""

import time

from .lru import LRUCache, _MISSING


class TTLCache(LRUCache):
    """LRU cache with per-entry expiry.

    Each entry lives for `ttl` seconds after it was last written (or for a
    per-call `ttl=` given to `set`). An entry is expired once the timer has
    reached its expiry time. Expired entries are invisible to every method
    and are purged lazily.
    """

    def __init__(self, maxsize=128, ttl=60.0, timer=time.monotonic, on_evict=None):
        super().__init__(maxsize, on_evict)
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.ttl = ttl
        self.timer = timer
        self._expires = {}

    def _expired(self, key, now=None):
        now = self.timer() if now is None else now
        return self._expires.get(key, float("inf")) <= now

    def _lookup(self, key, touch=False):
        if key in self._data and self._expired(key):
            del self._data[key]
            del self._expires[key]
            return _MISSING
        return super()._lookup(key, touch)

    def _evict_one(self):
        key = next(iter(self._data))
        super()._evict_one()
        self._expires.pop(key, None)

    def set(self, key, value, ttl=None):
        with self._lock:
            ttl = self.ttl if ttl is None else ttl
            self.expire()
            self._expires[key] = self.timer() + ttl
            self._store(key, value)

    def __setitem__(self, key, value):
        self.set(key, value)

    def __delitem__(self, key):
        with self._lock:
            super().__delitem__(key)
            self._expires.pop(key, None)

    def pop(self, key, default=_MISSING):
        with self._lock:
            value = super().pop(key, default)
            self._expires.pop(key, None)
            return value

    def expire(self, now=None):
        """Drop every expired entry; return how many were dropped."""
        with self._lock:
            now = self.timer() if now is None else now
            dead = [k for k in self._data if self._expired(k, now)]
            for k in dead:
                del self._data[k]
                del self._expires[k]
            return len(dead)

    def ttl_remaining(self, key):
        with self._lock:
            if self._lookup(key) is _MISSING:
                return None
            return max(0.0, self._expires[key] - self.timer())

    def __len__(self):
        self.expire()
        return len(self._data)

    def keys(self):
        self.expire()
        return list(self._data)

    def items(self):
        self.expire()
        return list(self._data.items())

    def __iter__(self):
        return iter(self.keys())

    def clear(self):
        with self._lock:
            super().clear()
            self._expires.clear()
