"""Shortening text to a maximum width."""

import re

from .wrap import Wrapper


def shorten(text, width, placeholder=" [...]"):
    """Collapse whitespace and cut at a word boundary so the result fits in `width`."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    w = Wrapper(width, max_lines=1, placeholder=placeholder, break_on_hyphens=False,
                break_long_words=False)
    return w.wrap(text)[0]


def truncate(text, width, ellipsis="…"):
    """Cut `text` to at most `width` characters, ending with `ellipsis` if cut."""
    if width < len(ellipsis):
        raise ValueError("width smaller than the ellipsis")
    if len(text) <= width:
        return text
    cut = text[:width - len(ellipsis)]
    # avoid leaving a dangling space before the ellipsis
    cut = re.sub(r"\s+$", "", cut)
    return cut + ellipsis
