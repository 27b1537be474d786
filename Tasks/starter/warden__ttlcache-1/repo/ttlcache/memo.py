"""A memoizing decorator backed by an LRUCache or TTLCache."""

import functools

from .lru import LRUCache, _MISSING
from .ttl import TTLCache


class _HashedKey(tuple):
    """A tuple subclass so cache keys are distinguishable from user tuples."""

    __slots__ = ()

    def __hash__(self):
        return tuple.__hash__(self)


_KWMARK = object()


def make_key(args, kwargs, typed=False):
    """Build a hashable key from call arguments.

    Keyword arguments are order-independent. With typed=True, 1 and 1.0
    are different keys.
    """
    key = tuple(args)
    if kwargs:
        key += (_KWMARK,)
        for k in sorted(kwargs):
            key += (k, kwargs[k])
    if typed:
        key += tuple(type(a) for a in args)
        if kwargs:
            key += tuple(type(kwargs[k]) for k in sorted(kwargs))
    return _HashedKey(key)


def memoize(maxsize=128, ttl=None, typed=False, timer=None):
    """Cache a function's results.

    The wrapper gains `.cache`, `.cache_clear()` and `.cache_info()`.
    """

    def decorate(fn):
        if ttl is None:
            cache = LRUCache(maxsize)
        elif timer is None:
            cache = TTLCache(maxsize, ttl)
        else:
            cache = TTLCache(maxsize, ttl, timer=timer)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            key = make_key(args, kwargs, typed)
            value = cache.get(key, _MISSING)
            if value is not _MISSING:
                return value
            value = fn(*args, **kwargs)
            cache[key] = value
            return value

        def cache_clear():
            cache.clear()
            cache.stats.__init__()

        def cache_info():
            d = cache.stats.as_dict()
            d.update(maxsize=cache.maxsize, size=len(cache))
            return d

        wrapper.cache = cache
        wrapper.cache_clear = cache_clear
        wrapper.cache_info = cache_info
        return wrapper

    return decorate
