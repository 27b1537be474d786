"""Turn INI text into a stream of tokens.

Token kinds:
    ("section", name, lineno)
    ("pair", (key, value, quoted), lineno)
    ("continuation", text, lineno)
"""

import re

from .errors import ParseError

COMMENT_CHARS = "#;"
_SECTION_RE = re.compile(r"^\[\s*(?P<name>[^\]]+?)\s*\]\s*(?:[#;].*)?$")
_PAIR_RE = re.compile(r"^(?P<key>[^=:\s][^=:]*?)\s*(?P<sep>[=:])\s*(?P<value>.*)$")


def strip_inline_comment(value):
    """Remove a trailing inline comment.

    An inline comment starts with `#` or `;` preceded by whitespace, and
    only outside of double quotes.
    """
    in_quotes = False
    escaped = False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
            continue
        if ch == "\\":
            escaped = True
            continue
        if ch == '"':
            in_quotes = not in_quotes
            continue
        if ch in COMMENT_CHARS and not in_quotes and (i == 0 or value[i - 1].isspace()):
            return value[:i].rstrip()
    return value.rstrip()


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _is_single_quoted_body(body):
    """True if `body` contains no unescaped double quote."""
    escaped = False
    for ch in body:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            return False
    return True


def unquote(value):
    """Return (text, quoted). Double-quoted values have escapes decoded."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        body = value[1:-1]
        if not _is_single_quoted_body(body):
            return value, False
        out = []
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        return "".join(out), True
    return value, False


def tokenize(text):
    tokens = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if not stripped or stripped[0] in COMMENT_CHARS:
            continue
        if line[0].isspace():
            tokens.append(("continuation", strip_inline_comment(stripped), lineno))
            continue
        m = _SECTION_RE.match(stripped)
        if m:
            tokens.append(("section", m.group("name"), lineno))
            continue
        m = _PAIR_RE.match(stripped)
        if m:
            value, quoted = unquote(strip_inline_comment(m.group("value").strip()))
            tokens.append(("pair", (m.group("key").strip(), value, quoted), lineno))
            continue
        raise ParseError("cannot parse line", lineno, raw)
    return tokens
