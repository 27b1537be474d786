"""mdlite: a small Markdown-to-HTML converter.

Supported: ATX and setext headings, paragraphs, hard line breaks,
blockquotes, ordered and unordered lists (one level), fenced and indented
code blocks, thematic breaks; inline code spans, emphasis, strong
emphasis, links, images, autolinks and backslash escapes.
"""

from .block import render, parse_blocks
from .inline import render_inline
from .html import escape

__all__ = ["render", "parse_blocks", "render_inline", "escape"]
