import pytest

from ttlcache import LRUCache


def test_set_and_get():
    c = LRUCache(2)
    c["a"] = 1
    assert c.get("a") == 1
    assert c["a"] == 1
    assert c.get("zz") is None
    assert c.get("zz", 5) == 5


def test_missing_key_raises():
    with pytest.raises(KeyError):
        LRUCache(2)["nope"]


def test_evicts_oldest_insert():
    c = LRUCache(2)
    c["a"] = 1
    c["b"] = 2
    c["c"] = 3
    assert "a" not in c
    assert c.keys() == ["b", "c"]


def test_overwrite_refreshes_recency():
    c = LRUCache(2)
    c["a"] = 1
    c["b"] = 2
    c["a"] = 10
    c["c"] = 3
    assert c.keys() == ["a", "c"]
    assert c.peek("a") == 10


def test_peek_does_not_touch():
    c = LRUCache(2)
    c["a"] = 1
    c["b"] = 2
    assert c.peek("a") == 1
    c["c"] = 3
    assert "a" not in c


def test_contains_does_not_touch():
    c = LRUCache(2)
    c["a"] = 1
    c["b"] = 2
    assert "a" in c
    c["c"] = 3
    assert c.keys() == ["b", "c"]


def test_stats():
    c = LRUCache(1)
    c["a"] = 1
    c.get("a")
    c.get("b")
    c["b"] = 2
    assert c.stats.as_dict() == {"hits": 1, "misses": 1, "evictions": 1}
    assert c.stats.hit_rate == 0.5


def test_on_evict_callback():
    seen = []
    c = LRUCache(1, on_evict=lambda k, v: seen.append((k, v)))
    c["a"] = 1
    c["b"] = 2
    assert seen == [("a", 1)]


def test_pop_and_delete():
    c = LRUCache(3)
    c["a"] = 1
    c["b"] = 2
    assert c.pop("a") == 1
    assert c.pop("a", None) is None
    del c["b"]
    assert len(c) == 0


def test_resize_evicts():
    c = LRUCache(3)
    for k in "abc":
        c[k] = k
    c.resize(1)
    assert c.keys() == ["c"]


def test_invalid_maxsize():
    with pytest.raises(ValueError):
        LRUCache(0)
