"""`${key}` and `${section:key}` interpolation."""

import re

from .errors import InterpolationError

MAX_DEPTH = 10
_REF_RE = re.compile(r"\$(\$|\{(?P<ref>[^}]*)\})")


def _lookup(config, section, ref):
    if ":" in ref:
        sec, _, key = ref.partition(":")
        sec, key = sec.strip(), key.strip()
    else:
        sec, key = section, ref.strip()
    key = config.normalize_key(key)
    raw = config.raw_sections()
    if sec in raw and key in raw[sec]:
        return sec, raw[sec][key]
    defaults = raw.get(config.default_section, {})
    if key in defaults:
        return config.default_section, defaults[key]
    raise InterpolationError("bad reference ${%s} in section %r" % (ref, section))


def interpolate(config, section, value, depth=0):
    """Expand references in `value` as seen from `section`.

    `$$` is a literal dollar sign.
    """
    if depth > MAX_DEPTH:
        raise InterpolationError("interpolation too deep (recursive reference?) in %r" % section)

    def repl(m):
        if m.group(1) == "$":
            return "$"
        ref = m.group("ref")
        if not ref.strip():
            raise InterpolationError("empty reference in section %r" % section)
        found_sec, raw_value = _lookup(config, section, ref)
        if found_sec == config.default_section:
            # values inherited from DEFAULT are expanded in the context of
            # the section that asked for them
            found_sec = section
        return interpolate(config, found_sec, raw_value, depth + 1)

    return _REF_RE.sub(repl, value)
