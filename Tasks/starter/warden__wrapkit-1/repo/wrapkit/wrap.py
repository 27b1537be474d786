"""Greedy word wrapping."""

import re

_WS_RE = re.compile(r"\s+")


class Wrapper:
    """Wrap text into lines of at most `width` characters.

    Words longer than `width` are split when `break_long_words` is true and
    put on a line of their own otherwise. `initial_indent` is prepended to
    the first line and `subsequent_indent` to the others; both count toward
    the width. Hyphenated words may be broken after a hyphen when
    `break_on_hyphens` is true.
    """

    def __init__(self, width=70, initial_indent="", subsequent_indent="",
                 break_long_words=True, break_on_hyphens=True, max_lines=None,
                 placeholder=" [...]"):
        if width < 1:
            raise ValueError("width must be positive")
        self.width = width
        self.initial_indent = initial_indent
        self.subsequent_indent = subsequent_indent
        self.break_long_words = break_long_words
        self.break_on_hyphens = break_on_hyphens
        self.max_lines = max_lines
        self.placeholder = placeholder

    # -- splitting --------------------------------------------------------
    def split_words(self, text):
        words = [w for w in _WS_RE.split(text.strip()) if w]
        if not self.break_on_hyphens:
            return words
        out = []
        for w in words:
            # "well-known" -> "well-", "known"; leading/trailing hyphens stay attached
            parts = re.findall(r"[^-]+-+(?=[^-])|[^-]*-*$", w)
            parts = [p for p in parts if p]
            out.extend(parts if len(parts) > 1 else [w])
            if len(parts) > 1:
                out[-len(parts):] = [_Piece(p, glue=(i > 0)) for i, p in enumerate(parts)]
        return out

    # -- wrapping ---------------------------------------------------------
    def _indent_for(self, lineno):
        return self.initial_indent if lineno == 0 else self.subsequent_indent

    def wrap(self, text):
        words = self.split_words(text)
        lines = []
        cur = []          # words on the current line
        cur_len = 0       # length of the current line content (without indent)
        i = 0
        while i < len(words):
            word = words[i]
            glue = getattr(word, "glue", False)
            indent = self._indent_for(len(lines))
            avail = self.width - len(indent)
            if avail < 1:
                raise ValueError("indent leaves no room for text")
            sep = 0 if (not cur or glue) else 1
            if cur_len + sep + len(word) <= avail:
                cur.append(("" if sep == 0 else " ") + str(word))
                cur_len += sep + len(word)
                i += 1
                continue
            if not cur:
                # the word alone does not fit on an empty line
                if self.break_long_words:
                    head, tail = str(word)[:avail], str(word)[avail:]
                    lines.append(indent + head)
                    words[i] = _Piece(tail, glue=False)
                else:
                    lines.append(indent + str(word))
                    i += 1
                continue
            lines.append(indent + "".join(cur))
            cur, cur_len = [], 0
        if cur:
            lines.append(self._indent_for(len(lines)) + "".join(cur))
        return self._limit(lines)

    def _limit(self, lines):
        if self.max_lines is None or len(lines) <= self.max_lines:
            return lines
        kept = lines[:self.max_lines]
        last = kept[-1]
        indent = self._indent_for(self.max_lines - 1)
        while last and len(last) + len(self.placeholder) >= self.width:
            cut = last.rfind(" ", len(indent))
            if cut <= len(indent):
                last = indent
                break
            last = last[:cut]
        kept[-1] = (last.rstrip() if last.strip() else indent) + self.placeholder
        if not last.strip():
            kept[-1] = indent + self.placeholder.lstrip()
        return kept

    def fill(self, text):
        return "\n".join(self.wrap(text))


class _Piece(str):
    """A fragment of a hyphenated word; `glue` means no space before it."""

    def __new__(cls, text, glue=False):
        obj = str.__new__(cls, text)
        obj.glue = glue
        return obj


def wrap(text, width=70, **kwargs):
    return Wrapper(width, **kwargs).wrap(text)


def fill(text, width=70, **kwargs):
    return Wrapper(width, **kwargs).fill(text)
