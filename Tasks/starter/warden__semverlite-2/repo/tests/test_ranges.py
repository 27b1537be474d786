import pytest

from semverlite import Range, satisfies, max_satisfying


@pytest.mark.parametrize("version,rng", [
    ("1.2.3", "1.2.3"),
    ("1.2.3", ">=1.2.0"),
    ("1.2.3", ">1.2.2 <1.3.0"),
    ("1.2.3", "1.x"),
    ("1.2.3", "1.2.*"),
    ("1.2.3", "*"),
    ("1.2.3", "~1.2.0"),
    ("1.9.9", "^1.2.0"),
    ("3.0.0", "1.x || >=3.0.0"),
    ("1.5.0", "1.0.0 - 2.0.0"),
], ids=lambda v: v.replace(" ", "_"))
def test_satisfies(version, rng):
    assert satisfies(version, rng)


@pytest.mark.parametrize("version,rng", [
    ("1.3.0", "~1.2.0"),
    ("2.0.0", "^1.2.0"),
    ("1.1.9", ">=1.2.0"),
    ("2.0.1", "1.0.0 - 2.0.0"),
    ("2.5.0", "1.x || >=3.0.0"),
], ids=lambda v: v.replace(" ", "_"))
def test_not_satisfies(version, rng):
    assert not satisfies(version, rng)


def test_caret_zero_major():
    assert satisfies("0.2.5", "^0.2.3")
    assert not satisfies("0.3.0", "^0.2.3")
    assert satisfies("0.0.3", "^0.0.3")
    assert not satisfies("0.0.4", "^0.0.3")


def test_prerelease_excluded_by_default():
    assert not satisfies("1.3.0-beta.1", "^1.2.0")
    assert satisfies("1.3.0-beta.1", "^1.2.0", include_prerelease=True)


def test_prerelease_allowed_on_same_tuple():
    assert satisfies("1.2.3-beta.3", ">=1.2.3-beta.2")


def test_max_satisfying():
    vs = ["1.2.3", "1.2.4", "1.3.0", "2.0.0", "not-a-version"]
    assert str(max_satisfying(vs, "~1.2.0")) == "1.2.4"
    assert max_satisfying(vs, ">3") is None


def test_range_str():
    assert str(Range("~1.2.3")) == ">=1.2.3 <1.3.0-0"


def test_invalid_version_never_matches():
    assert not Range("*").test("banana")
