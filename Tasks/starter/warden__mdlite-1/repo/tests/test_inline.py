from mdlite import render_inline


def test_emphasis_and_strong():
    assert render_inline("*a* and **b**") == "<em>a</em> and <strong>b</strong>"
    assert render_inline("_a_ __b__") == "<em>a</em> <strong>b</strong>"


def test_nested_emphasis():
    assert render_inline("**bold *it* here**") == "<strong>bold <em>it</em> here</strong>"


def test_code_span():
    assert render_inline("use `x = 1` here") == "use <code>x = 1</code> here"


def test_code_span_double_backticks():
    assert render_inline("``a ` b``") == "<code>a ` b</code>"


def test_code_span_keeps_stars():
    assert render_inline("`*x*`") == "<code>*x*</code>"


def test_link():
    assert render_inline('[docs](http://x.org "Docs")') == (
        '<a href="http://x.org" title="Docs">docs</a>')


def test_image():
    assert render_inline("![alt *x*](/i.png)") == '<img src="/i.png" alt="alt x" />'


def test_autolink():
    assert render_inline("<https://a.b/c>") == '<a href="https://a.b/c">https://a.b/c</a>'


def test_backslash_escape():
    assert render_inline(r"\*not em\*") == "*not em*"


def test_text_is_escaped():
    assert render_inline("a < b & c") == "a &lt; b &amp; c"


def test_hard_break():
    assert render_inline("a  \nb") == "a<br />\nb"
