import pytest

from confini import loads, ParseError, ConfigError


SAMPLE = """
# a comment
; another comment
[server]
host = example.org
port: 8080
debug = yes   ; inline comment

[paths]
root = /srv/app
"""


def test_sections_in_order():
    cfg = loads(SAMPLE)
    assert cfg.sections() == ["server", "paths"]


def test_basic_values():
    cfg = loads(SAMPLE)
    assert cfg.get("server", "host") == "example.org"
    assert cfg.get("server", "port") == "8080"
    assert cfg.get("paths", "root") == "/srv/app"


def test_inline_comment_removed():
    assert loads(SAMPLE).get("server", "debug") == "yes"


def test_hash_without_space_is_kept():
    cfg = loads("[a]\nid = item#3\n")
    assert cfg.get("a", "id") == "item#3"


def test_keys_are_case_insensitive_by_default():
    cfg = loads("[a]\nName = x\n")
    assert cfg.get("a", "NAME") == "x"


def test_case_sensitive_option():
    cfg = loads("[a]\nName = x\n", case_sensitive=True)
    assert not cfg.has_option("a", "name")
    assert cfg.get("a", "Name") == "x"


def test_quoted_value_escapes():
    cfg = loads('[a]\nmsg = "tab\\there \\"q\\""\n')
    assert cfg.get("a", "msg") == 'tab\there "q"'


def test_continuation_lines():
    cfg = loads("[a]\nitems =\n    one\n    two\n")
    assert cfg.get("a", "items") == "one\ntwo"


def test_duplicate_key_strict():
    with pytest.raises(ParseError) as exc:
        loads("[a]\nx = 1\nx = 2\n")
    assert "line 3" in str(exc.value)


def test_duplicate_key_lenient():
    assert loads("[a]\nx = 1\nx = 2\n", strict=False).get("a", "x") == "2"


def test_key_outside_section():
    with pytest.raises(ParseError):
        loads("x = 1\n")


def test_garbage_line():
    with pytest.raises(ParseError):
        loads("[a]\nthis is not a pair\n")


def test_missing_option_and_fallback():
    cfg = loads("[a]\nx = 1\n")
    with pytest.raises(ConfigError):
        cfg.get("a", "y")
    assert cfg.get("a", "y", fallback="d") == "d"


def test_default_section_inherited():
    cfg = loads("[DEFAULT]\nuser = root\n[a]\nx = 1\n")
    assert cfg.get("a", "user") == "root"
    assert cfg.sections() == ["a"]
    assert sorted(cfg.keys("a")) == ["user", "x"]


def test_to_dict():
    cfg = loads("[a]\nx = 1\n[b]\ny = 2\n")
    assert cfg.to_dict() == {"a": {"x": "1"}, "b": {"y": "2"}}
