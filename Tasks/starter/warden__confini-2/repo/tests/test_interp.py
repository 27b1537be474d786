import pytest

from confini import loads, InterpolationError


def test_same_section_reference():
    cfg = loads("[a]\nbase = /srv\nlogs = ${base}/logs\n")
    assert cfg.get("a", "logs") == "/srv/logs"


def test_cross_section_reference():
    cfg = loads("[a]\nhost = db\n[b]\nurl = pg://${a:host}/x\n")
    assert cfg.get("b", "url") == "pg://db/x"


def test_default_fallback():
    cfg = loads("[DEFAULT]\nroot = /opt\n[a]\nbin = ${root}/bin\n")
    assert cfg.get("a", "bin") == "/opt/bin"


def test_chained_references():
    cfg = loads("[a]\nx = 1\ny = ${x}2\nz = ${y}3\n")
    assert cfg.get("a", "z") == "123"


def test_dollar_escape():
    assert loads("[a]\nprice = $$5\n").get("a", "price") == "$5"


def test_raw_get():
    assert loads("[a]\nx = 1\ny = ${x}\n").get("a", "y", raw=True) == "${x}"


def test_missing_reference():
    with pytest.raises(InterpolationError):
        loads("[a]\ny = ${nope}\n").get("a", "y")


def test_recursive_reference():
    with pytest.raises(InterpolationError):
        loads("[a]\nx = ${y}\ny = ${x}\n").get("a", "x")


def test_default_value_expanded_in_section_context():
    cfg = loads("[DEFAULT]\nhome = /home/${user}\n[a]\nuser = bob\n[b]\nuser = eve\n")
    assert cfg.get("a", "home") == "/home/bob"
    assert cfg.get("b", "home") == "/home/eve"
