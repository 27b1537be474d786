"""Block structure: split the document into blocks and render them."""

import re

from .html import escape
from .inline import render_inline

_ATX_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_RE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_HR_RE = re.compile(r"^ {0,3}((\*[ \t]*){3,}|(-[ \t]*){3,}|(_[ \t]*){3,})$")
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$")
_UL_RE = re.compile(r"^ {0,3}([-+*])[ \t]+(.*)$")
_OL_RE = re.compile(r"^ {0,3}(\d{1,9})([.)])[ \t]+(.*)$")
_QUOTE_RE = re.compile(r"^ {0,3}> ?(.*)$")


class Block:
    def __init__(self, kind, **data):
        self.kind = kind
        self.data = data

    def __repr__(self):
        return "Block(%r, %r)" % (self.kind, self.data)


def _is_blank(line):
    return not line.strip()


def _starts_block(line):
    return bool(_ATX_RE.match(line) or _HR_RE.match(line) or _FENCE_RE.match(line)
                or _QUOTE_RE.match(line) or _UL_RE.match(line) or _OL_RE.match(line))


def parse_blocks(text):
    lines = text.replace("\r\n", "\n").replace("\t", "    ").split("\n")
    blocks = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        if _is_blank(line):
            i += 1
            continue

        m = _FENCE_RE.match(line)
        if m:
            fence, info = m.group(1), m.group(2)
            body = []
            i += 1
            while i < n and not (lines[i].strip().startswith(fence[0] * len(fence))
                                 and not lines[i].strip().strip(fence[0])):
                body.append(lines[i])
                i += 1
            i += 1  # closing fence (or end of document)
            blocks.append(Block("code", text="\n".join(body), lang=info or None))
            continue

        if line.startswith("    "):
            body = []
            while i < n and (lines[i].startswith("    ") or _is_blank(lines[i])):
                body.append(lines[i][4:])
                i += 1
            while body and not body[-1].strip():
                body.pop()
            blocks.append(Block("code", text="\n".join(body), lang=None))
            continue

        m = _ATX_RE.match(line)
        if m:
            blocks.append(Block("heading", level=len(m.group(1)), text=(m.group(2) or "").strip()))
            i += 1
            continue

        if _HR_RE.match(line):
            blocks.append(Block("hr"))
            i += 1
            continue

        m = _QUOTE_RE.match(line)
        if m:
            inner = []
            while i < n and not _is_blank(lines[i]):
                qm = _QUOTE_RE.match(lines[i])
                inner.append(qm.group(1) if qm else lines[i])
                i += 1
            blocks.append(Block("quote", children=parse_blocks("\n".join(inner))))
            continue

        if _UL_RE.match(line) or _OL_RE.match(line):
            ordered = bool(_OL_RE.match(line))
            item_re = _OL_RE if ordered else _UL_RE
            start = int(_OL_RE.match(line).group(1)) if ordered else None
            items = []
            while i < n:
                im = item_re.match(lines[i])
                if im:
                    items.append([im.group(im.lastindex)])
                    i += 1
                elif not _is_blank(lines[i]) and lines[i].startswith("  ") and items:
                    items[-1].append(lines[i].strip())
                    i += 1
                elif (not _is_blank(lines[i]) and items and not _starts_block(lines[i])):
                    items[-1].append(lines[i].strip())  # lazy continuation
                    i += 1
                else:
                    break
            blocks.append(Block("list", ordered=ordered, start=start,
                                items=["\n".join(it) for it in items]))
            continue

        para = [line]
        i += 1
        while i < n and not _is_blank(lines[i]):
            sm = _SETEXT_RE.match(lines[i])
            if sm:
                level = 1 if sm.group(1)[0] == "=" else 2
                blocks.append(Block("heading", level=level, text="\n".join(para).strip()))
                para = None
                i += 1
                break
            if _starts_block(lines[i]):
                break
            para.append(lines[i])
            i += 1
        if para is not None:
            blocks.append(Block("paragraph", text="\n".join(l.lstrip() for l in para).strip(" ")))
    return blocks


def render_block(block):
    k = block.kind
    d = block.data
    if k == "heading":
        return "<h%d>%s</h%d>" % (d["level"], render_inline(d["text"]), d["level"])
    if k == "paragraph":
        return "<p>%s</p>" % render_inline(d["text"])
    if k == "hr":
        return "<hr />"
    if k == "code":
        cls = ' class="language-%s"' % escape(d["lang"], quote=True) if d["lang"] else ""
        return "<pre><code%s>%s\n</code></pre>" % (cls, d["text"]) if d["text"] else \
            "<pre><code%s></code></pre>" % cls
    if k == "quote":
        inner = "\n".join(render_block(b) for b in d["children"])
        return "<blockquote>\n%s\n</blockquote>" % inner
    if k == "list":
        tag = "ol" if d["ordered"] else "ul"
        start = ' start="%d"' % d["start"] if d["ordered"] and d["start"] != 1 else ""
        items = "\n".join("<li>%s</li>" % render_inline(it) for it in d["items"])
        return "<%s%s>\n%s\n</%s>" % (tag, start, items, tag)
    raise ValueError("unknown block kind %r" % k)


def render(text):
    """Render a Markdown document to HTML."""
    return "\n".join(render_block(b) for b in parse_blocks(text)) + "\n"
