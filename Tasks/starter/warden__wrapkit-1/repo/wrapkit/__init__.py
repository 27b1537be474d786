"""wrapkit: text wrapping, filling, justification and shortening."""

from .wrap import wrap, fill, Wrapper
from .shorten import shorten, truncate
from .indent import indent, dedent, justify

__all__ = ["wrap", "fill", "Wrapper", "shorten", "truncate", "indent", "dedent", "justify"]
