"""A least-recently-used cache built on an OrderedDict."""

from collections import OrderedDict
from threading import RLock

_MISSING = object()


class CacheStats:
    __slots__ = ("hits", "misses", "evictions")

    def __init__(self):
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    @property
    def hit_rate(self):
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def as_dict(self):
        return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions}

    def __repr__(self):
        return "CacheStats(hits=%d, misses=%d, evictions=%d)" % (
            self.hits, self.misses, self.evictions)


class LRUCache:
    """A mapping that holds at most `maxsize` entries.

    Reading an entry with `get()` or `cache[key]` makes it the most recently
    used one; `peek()` and `key in cache` look without touching recency.
    When full, inserting a new key evicts the least recently used entry.
    `on_evict(key, value)` is called for each evicted entry.
    """

    def __init__(self, maxsize=128, on_evict=None):
        if maxsize is None or maxsize < 1:
            raise ValueError("maxsize must be a positive integer")
        self.maxsize = maxsize
        self.on_evict = on_evict
        self.stats = CacheStats()
        self._data = OrderedDict()
        self._lock = RLock()

    # -- internal helpers -------------------------------------------------
    def _lookup(self, key, touch=False):
        """Return the stored value or _MISSING; optionally mark as recently used."""
        try:
            value = self._data[key]
        except KeyError:
            return _MISSING
        if touch:
            self._data.move_to_end(key)
        return value

    def _evict_one(self):
        key, value = self._data.popitem(last=False)
        self.stats.evictions += 1
        if self.on_evict is not None:
            self.on_evict(key, value)

    def _store(self, key, value):
        if key in self._data:
            self._data.move_to_end(key)
        self._data[key] = value
        while len(self._data) > self.maxsize:
            self._evict_one()

    # -- public API -------------------------------------------------------
    def get(self, key, default=None):
        with self._lock:
            value = self._lookup(key)
            if value is _MISSING:
                self.stats.misses += 1
                return default
            self.stats.hits += 1
            return value

    def peek(self, key, default=None):
        with self._lock:
            value = self._lookup(key)
            return default if value is _MISSING else value

    def __getitem__(self, key):
        with self._lock:
            value = self.get(key, _MISSING)
            if value is _MISSING:
                raise KeyError(key)
            return value

    def __setitem__(self, key, value):
        with self._lock:
            self._store(key, value)

    def set(self, key, value):
        self[key] = value

    def __delitem__(self, key):
        with self._lock:
            del self._data[key]

    def pop(self, key, default=_MISSING):
        with self._lock:
            value = self._lookup(key)
            if value is _MISSING:
                if default is _MISSING:
                    raise KeyError(key)
                return default
            del self._data[key]
            return value

    def __contains__(self, key):
        with self._lock:
            return self._lookup(key) is not _MISSING

    def __len__(self):
        return len(self._data)

    def __iter__(self):
        # least recently used first
        return iter(list(self._data))

    def keys(self):
        return list(self._data)

    def items(self):
        return list(self._data.items())

    def clear(self):
        with self._lock:
            self._data.clear()

    def resize(self, maxsize):
        if maxsize < 1:
            raise ValueError("maxsize must be a positive integer")
        with self._lock:
            self.maxsize = maxsize
            while len(self._data) > self.maxsize:
                self._evict_one()

    def __repr__(self):
        return "%s(maxsize=%d, size=%d)" % (type(self).__name__, self.maxsize, len(self))
