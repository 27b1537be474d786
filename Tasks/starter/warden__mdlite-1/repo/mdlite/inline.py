"""Inline Markdown: code spans, emphasis, links, images, autolinks, escapes."""

import re

from .html import escape, tag, void_tag

ESCAPABLE = set("\\`*_{}[]()#+-.!<>|~")

_AUTOLINK_RE = re.compile(r"<((?:https?|ftp)://[^\s<>]+|mailto:[^\s<>]+)>")
_LINK_RE = re.compile(r"(!?)\[((?:[^\[\]\\]|\\.)*)\]\(\s*(<[^>]*>|[^\s()]*)(?:\s+\"([^\"]*)\")?\s*\)")
_STRONG_RE = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EM_RE = re.compile(r"(\*|_)(?=\S)(.+?)(?<=\S)\1")


class _Stash:
    """Holds already-rendered HTML fragments behind placeholder tokens."""

    def __init__(self):
        self.items = []

    def put(self, html):
        self.items.append(html)
        return "\x00%d\x00" % (len(self.items) - 1)

    def restore(self, text):
        # fragments may contain placeholders themselves (e.g. emphasis in links)
        for _ in range(10):
            new = re.sub(r"\x00(\d+)\x00", lambda m: self.items[int(m.group(1))], text)
            if new == text:
                break
            text = new
        return text


def _code_spans(text, stash):
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] == "`":
            out.append(text[i:i + 2])
            i += 2
            continue
        if text[i] != "`":
            out.append(text[i])
            i += 1
            continue
        run = len(text[i:]) - len(text[i:].lstrip("`"))
        fence = "`" * run
        j = text.find(fence, i + run)
        while j != -1 and text[j + run:j + run + 1] == "`":
            j = text.find(fence, j + run + 1)
        if j == -1:
            out.append(fence)
            i += run
            continue
        body = text[i + run:j].replace("\n", " ")
        if len(body) > 2 and body[0] == " " and body[-1] == " " and body.strip():
            body = body[1:-1]
        out.append(stash.put(tag("code", body)))
        i = j + run
    return "".join(out)


def _escapes(text, stash):
    def repl(m):
        return stash.put(escape(m.group(1)))
    return re.sub(r"\\(.)", lambda m: repl(m) if m.group(1) in ESCAPABLE else m.group(0), text)


def _links(text, stash):
    def repl(m):
        bang, label, url, title = m.group(1), m.group(2), m.group(3), m.group(4)
        if url.startswith("<") and url.endswith(">"):
            url = url[1:-1]
        url = stash.restore(url)
        url = re.sub(r"\\(.)", r"\1", url)
        if bang:
            return stash.put(void_tag("img", src=url, alt=_plain(stash.restore(_emphasis(label, stash))), title=title))
        return stash.put(tag("a", _emphasis(label, stash), href=url, title=title))
    return _LINK_RE.sub(repl, text)


def _plain(text):
    return re.sub(r"<[^>]+>", "", text)


def _autolinks(text, stash):
    def repl(m):
        url = m.group(1)
        label = url[len("mailto:"):] if url.startswith("mailto:") else url
        return stash.put(tag("a", escape(label), href=url))
    return _AUTOLINK_RE.sub(repl, text)


def _emphasis(text, stash):
    text = _STRONG_RE.sub(lambda m: stash.put(tag("strong", _emphasis(m.group(2), stash))), text)
    text = _EM_RE.sub(lambda m: stash.put(tag("em", _emphasis(m.group(2), stash))), text)
    return text


def _escape_rest(text):
    parts = re.split(r"(\x00\d+\x00)", text)
    return "".join(p if re.fullmatch(r"\x00\d+\x00", p) else escape(p) for p in parts)


def render_inline(text):
    """Render a span of inline Markdown to HTML."""
    stash = _Stash()
    text = _code_spans(text, stash)
    text = _escapes(text, stash)
    text = _autolinks(text, stash)
    text = _links(text, stash)
    text = _emphasis(text, stash)
    text = _escape_rest(text)
    # hard line breaks: two trailing spaces or a backslash before a newline
    text = re.sub(r"(?: {2,}|\\)\n", "<br />\n", text)
    return stash.restore(text)
