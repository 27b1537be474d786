"""Typed conversion of raw string values."""

from .errors import ConfigError

TRUE_WORDS = {"1", "yes", "true", "on"}
FALSE_WORDS = {"0", "no", "false", "off"}


def to_bool(value):
    v = value.strip().lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    raise ConfigError("not a boolean: %r" % value)


def to_int(value):
    v = value.strip().replace("_", "")
    try:
        if v.lower().startswith(("0x", "-0x")):
            return int(v, 16)
        return int(v, 10)
    except ValueError:
        raise ConfigError("not an integer: %r" % value) from None


def to_float(value):
    try:
        return float(value.strip())
    except ValueError:
        raise ConfigError("not a number: %r" % value) from None


def split_list(value, sep=","):
    """Split on `sep` (or on newlines for multi-line values), honouring double quotes."""
    if "\n" in value:
        parts = value.split("\n")
    else:
        parts = []
        buf = []
        in_quotes = False
        for ch in value:
            if ch == '"':
                in_quotes = not in_quotes
                continue
            if ch == sep and not in_quotes:
                parts.append("".join(buf))
                buf = []
                continue
            buf.append(ch)
        parts.append("".join(buf))
    return [p.strip() for p in parts if p.strip()]
