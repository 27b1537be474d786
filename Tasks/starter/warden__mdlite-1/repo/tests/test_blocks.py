from mdlite import render


def test_atx_headings():
    assert render("# Title") == "<h1>Title</h1>\n"
    assert render("### Sub ###") == "<h3>Sub</h3>\n"


def test_setext_headings():
    assert render("Title\n=====") == "<h1>Title</h1>\n"
    assert render("Sub\n---") == "<h2>Sub</h2>\n"


def test_paragraphs():
    assert render("one\ntwo\n\nthree") == "<p>one\ntwo</p>\n<p>three</p>\n"


def test_hr():
    assert render("a\n\n***\n\nb") == "<p>a</p>\n<hr />\n<p>b</p>\n"


def test_unordered_list():
    assert render("- a\n- b\n") == "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"


def test_ordered_list_start():
    assert render("3. x\n4. y") == '<ol start="3">\n<li>x</li>\n<li>y</li>\n</ol>\n'


def test_list_continuation():
    assert render("- a\n  more\n- b") == "<ul>\n<li>a\nmore</li>\n<li>b</li>\n</ul>\n"


def test_blockquote():
    assert render("> quoted *text*\n> more") == (
        "<blockquote>\n<p>quoted <em>text</em>\nmore</p>\n</blockquote>\n")


def test_fenced_code_with_lang():
    assert render("```py\nx = 1\n```") == '<pre><code class="language-py">x = 1\n</code></pre>\n'


def test_indented_code():
    assert render("    a\n    b\n") == "<pre><code>a\nb\n</code></pre>\n"


def test_fence_keeps_markdown_literal():
    assert render("```\n*not em*\n```") == "<pre><code>*not em*\n</code></pre>\n"


def test_heading_interrupts_paragraph():
    assert render("text\n# H") == "<p>text</p>\n<h1>H</h1>\n"
