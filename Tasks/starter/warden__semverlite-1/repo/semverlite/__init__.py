"""semverlite: a small Semantic Versioning 2.0.0 library.

Parses versions, compares them with the precedence rules of the spec,
bumps them, and matches them against npm-style ranges.
"""

from .version import Version, parse, InvalidVersion, compare
from .ranges import Range, satisfies, max_satisfying, InvalidRange

__all__ = [
    "Version",
    "parse",
    "compare",
    "InvalidVersion",
    "Range",
    "satisfies",
    "max_satisfying",
    "InvalidRange",
]

__version__ = "1.0.0"
