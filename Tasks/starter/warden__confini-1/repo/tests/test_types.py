import pytest

from confini import loads, ConfigError


CONF = """
[t]
count = 42
hex = 0x1F
big = 1_000
ratio = 0.25
on = Yes
off = off
hosts = a, b ,c
multi =
    x
    y
"""


def test_getint():
    cfg = loads(CONF)
    assert cfg.getint("t", "count") == 42
    assert cfg.getint("t", "hex") == 31
    assert cfg.getint("t", "big") == 1000


def test_getfloat():
    assert loads(CONF).getfloat("t", "ratio") == 0.25


def test_getbool():
    cfg = loads(CONF)
    assert cfg.getbool("t", "on") is True
    assert cfg.getbool("t", "off") is False


def test_getbool_invalid():
    with pytest.raises(ConfigError):
        loads("[t]\nx = maybe\n").getbool("t", "x")


def test_getlist_commas():
    assert loads(CONF).getlist("t", "hosts") == ["a", "b", "c"]


def test_getlist_multiline():
    assert loads(CONF).getlist("t", "multi") == ["x", "y"]


def test_typed_fallback():
    cfg = loads(CONF)
    assert cfg.getint("t", "missing", fallback=7) == 7
    assert cfg.getlist("t", "missing", fallback=[]) == []
