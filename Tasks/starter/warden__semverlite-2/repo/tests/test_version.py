import pytest

from semverlite import Version, parse, compare, InvalidVersion


def test_parse_basic():
    v = parse("1.2.3")
    assert (v.major, v.minor, v.patch) == (1, 2, 3)
    assert v.prerelease == ()
    assert v.build == ()


def test_parse_prerelease_and_build():
    v = parse("1.0.0-alpha.1+build.5")
    assert v.prerelease == ("alpha", "1")
    assert v.build == ("build", "5")
    assert str(v) == "1.0.0-alpha.1+build.5"


def test_parse_leading_v():
    assert parse("v2.0.1") == Version(2, 0, 1)


@pytest.mark.parametrize("text", ["1.2", "01.2.3", "1.2.3-", "1.2.3-01", "a.b.c", "1.2.3+"])
def test_parse_invalid(text):
    with pytest.raises(InvalidVersion):
        parse(text)


def test_core_ordering():
    assert parse("1.0.0") < parse("2.0.0")
    assert parse("2.0.0") < parse("2.1.0")
    assert parse("2.1.0") < parse("2.1.1")
    assert parse("1.10.0") > parse("1.9.0")


def test_build_metadata_ignored_for_precedence():
    assert parse("1.0.0+a") == parse("1.0.0+b")
    assert hash(parse("1.0.0+a")) == hash(parse("1.0.0"))


def test_compare_function():
    assert compare("1.0.0", "1.0.1") == -1
    assert compare("1.0.1", "1.0.0") == 1
    assert compare("1.0.0", "1.0.0") == 0


def test_sorting():
    versions = ["1.0.0", "0.9.0", "1.0.0-rc.1", "0.10.0"]
    assert [str(v) for v in sorted(parse(s) for s in versions)] == [
        "0.9.0", "0.10.0", "1.0.0-rc.1", "1.0.0"]


def test_bump_major_minor_patch():
    v = parse("1.2.3")
    assert str(v.bump_major()) == "2.0.0"
    assert str(v.bump_minor()) == "1.3.0"
    assert str(v.bump_patch()) == "1.2.4"


def test_bump_from_prerelease():
    assert str(parse("2.0.0-rc.1").bump_major()) == "2.0.0"
    assert str(parse("1.3.0-rc.1").bump_minor()) == "1.3.0"
    assert str(parse("1.2.4-rc.1").bump_patch()) == "1.2.4"


def test_bump_prerelease():
    assert str(parse("1.2.3").bump_prerelease()) == "1.2.4-rc.0"
    assert str(parse("1.2.4-rc.0").bump_prerelease()) == "1.2.4-rc.1"
    assert str(parse("1.2.4-beta").bump_prerelease()) == "1.2.4-beta.0"


def test_immutable():
    v = parse("1.2.3")
    with pytest.raises(AttributeError):
        v.major = 3
