"""Indentation helpers and full justification."""

import re

from .wrap import Wrapper


def indent(text, prefix, predicate=None):
    """Add `prefix` to lines for which `predicate` is true (default: non-blank lines)."""
    if predicate is None:
        def predicate(line):
            return line.strip() != ""
    return "".join(prefix + line if predicate(line) else line
                   for line in text.splitlines(keepends=True))


def dedent(text):
    """Remove the longest common leading whitespace from all non-blank lines."""
    lines = text.splitlines(keepends=True)
    margin = None
    for line in lines:
        if not line.strip():
            continue
        lead = re.match(r"[ \t]*", line).group(0)
        if margin is None:
            margin = lead
            continue
        i = 0
        while i < min(len(margin), len(lead)) and margin[i] == lead[i]:
            i += 1
        margin = margin[:i]
    if not margin:
        return "".join(l if l.strip() else l.lstrip(" \t") for l in lines)
    return "".join(l[len(margin):] if l.strip() else l.lstrip(" \t") for l in lines)


def justify(text, width):
    """Wrap `text` and pad every line but the last to exactly `width` characters
    by distributing extra spaces between words, left gaps first."""
    lines = Wrapper(width, break_on_hyphens=False).wrap(text)
    out = []
    for n, line in enumerate(lines):
        words = line.split(" ")
        if n == len(lines) - 1 or len(words) == 1:
            out.append(line)
            continue
        gaps = len(words) - 1
        total_spaces = width - sum(len(w) for w in words)
        base, extra = divmod(total_spaces, gaps)
        parts = []
        for i, w in enumerate(words[:-1]):
            parts.append(w + " " * (base + (1 if i < extra else 0)))
        parts.append(words[-1])
        out.append("".join(parts))
    return out
