import pytest

from ttlcache import TTLCache


class FakeTimer:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_entry_expires():
    t = FakeTimer()
    c = TTLCache(10, ttl=5, timer=t)
    c["a"] = 1
    t.now += 4.9
    assert c.get("a") == 1
    t.now += 0.2
    assert c.get("a") is None
    assert len(c) == 0


def test_expired_exactly_at_deadline():
    t = FakeTimer()
    c = TTLCache(10, ttl=5, timer=t)
    c["a"] = 1
    t.now += 5
    assert "a" not in c


def test_per_item_ttl():
    t = FakeTimer()
    c = TTLCache(10, ttl=5, timer=t)
    c.set("short", 1, ttl=1)
    c.set("long", 2)
    t.now += 2
    assert c.keys() == ["long"]


def test_ttl_remaining():
    t = FakeTimer()
    c = TTLCache(10, ttl=5, timer=t)
    c["a"] = 1
    t.now += 2
    assert c.ttl_remaining("a") == pytest.approx(3)
    assert c.ttl_remaining("b") is None


def test_expire_returns_count():
    t = FakeTimer()
    c = TTLCache(10, ttl=5, timer=t)
    c["a"] = 1
    c["b"] = 2
    t.now += 10
    assert c.expire() == 2


def test_capacity_still_applies():
    t = FakeTimer()
    c = TTLCache(2, ttl=5, timer=t)
    c["a"] = 1
    c["b"] = 2
    c["c"] = 3
    assert c.keys() == ["b", "c"]


def test_invalid_ttl():
    with pytest.raises(ValueError):
        TTLCache(2, ttl=0)
