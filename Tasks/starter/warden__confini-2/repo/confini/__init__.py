"""confini: a small INI configuration parser.

Features: sections, `key = value` and `key: value` pairs, full-line and
inline comments, quoted values, indented continuation lines, a DEFAULT
section that every section inherits from, `${key}` / `${section:key}`
interpolation, and typed getters.
"""

from .errors import ConfigError, ParseError, InterpolationError
from .parser import Config, loads, load

__all__ = ["Config", "loads", "load", "ConfigError", "ParseError", "InterpolationError"]
