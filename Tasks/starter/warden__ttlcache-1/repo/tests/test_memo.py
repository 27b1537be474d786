from ttlcache import memoize, make_key


def test_memoize_caches_calls():
    calls = []

    @memoize(maxsize=4)
    def square(x):
        calls.append(x)
        return x * x

    assert square(3) == 9
    assert square(3) == 9
    assert calls == [3]
    assert square.cache_info()["hits"] == 1


def test_kwargs_order_independent():
    assert make_key((), {"a": 1, "b": 2}) == make_key((), {"b": 2, "a": 1})


def test_typed_keys():
    assert make_key((1,), {}) == make_key((1.0,), {})
    assert make_key((1,), {}, typed=True) != make_key((1.0,), {}, typed=True)


def test_cache_clear():
    @memoize()
    def f(x):
        return x

    f(1)
    f.cache_clear()
    assert f.cache_info()["size"] == 0
    assert f.cache_info()["hits"] == 0


def test_memoize_with_ttl():
    now = [0.0]

    calls = []

    @memoize(ttl=10, timer=lambda: now[0])
    def f(x):
        calls.append(x)
        return x

    f(1)
    f(1)
    now[0] = 11
    f(1)
    assert calls == [1, 1]
