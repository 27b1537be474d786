"""npm-style version ranges: comparators, hyphen ranges, x-ranges, ~ and ^."""

import re

from .version import Version, InvalidVersion


class InvalidRange(ValueError):
    """Raised when a range expression cannot be parsed."""


_OPS = ("<=", ">=", "<", ">", "=")
_PARTIAL_RE = re.compile(
    r"^v?(?P<major>\d+|[xX*])"
    r"(?:\.(?P<minor>\d+|[xX*]))?"
    r"(?:\.(?P<patch>\d+|[xX*]))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?"
    r"(?:\+[0-9A-Za-z.-]+)?$"
)


def _is_wild(part):
    return part is None or part in ("x", "X", "*")


class Comparator:
    """A single `op version` test such as `>=1.2.3`."""

    __slots__ = ("op", "version")

    def __init__(self, op, version):
        if op not in _OPS:
            raise InvalidRange("unknown operator %r" % (op,))
        self.op = op
        self.version = Version.parse(version)

    def test(self, version):
        c = version.compare(self.version)
        if self.op == "=":
            return c == 0
        if self.op == "<":
            return c < 0
        if self.op == "<=":
            return c <= 0
        if self.op == ">":
            return c > 0
        return c >= 0

    def __str__(self):
        return ("" if self.op == "=" else self.op) + str(self.version)

    def __repr__(self):
        return "Comparator(%r)" % str(self)


def _partial(text):
    m = _PARTIAL_RE.match(text)
    if not m:
        raise InvalidRange("invalid version in range: %r" % (text,))
    major, minor, patch = m.group("major"), m.group("minor"), m.group("patch")
    pre = m.group("pre") or ""
    if _is_wild(major):
        return None, None, None, ""
    major = int(major)
    minor = None if _is_wild(minor) else int(minor)
    patch = None if (minor is None or _is_wild(patch)) else int(patch)
    return major, minor, patch, pre


def _lower(major, minor, patch, pre):
    return Version(major, minor or 0, patch or 0, pre)


def _expand_tilde(text):
    major, minor, patch, pre = _partial(text)
    if major is None:
        return [Comparator(">=", "0.0.0")]
    lo = _lower(major, minor, patch, pre)
    if minor is None:
        hi = Version(major + 1, 0, 0, ("0",))
    else:
        hi = Version(major, minor + 1, 0, ("0",))
    return [Comparator(">=", lo), Comparator("<", hi)]


def _expand_caret(text):
    major, minor, patch, pre = _partial(text)
    if major is None:
        return [Comparator(">=", "0.0.0")]
    lo = _lower(major, minor, patch, pre)
    if major != 0 or minor is None:
        hi = Version(major + 1, 0, 0, ("0",))
    elif minor != 0 or patch is None:
        hi = Version(0, minor + 1, 0, ("0",))
    else:
        hi = Version(0, 0, patch + 1, ("0",))
    return [Comparator(">=", lo), Comparator("<", hi)]


def _expand_xrange(op, text):
    major, minor, patch, pre = _partial(text)
    if major is None:
        if op in ("<", ">"):
            return [Comparator("<", "0.0.0-0")]
        return [Comparator(">=", "0.0.0")]
    if patch is not None:
        return [Comparator(op or "=", Version(major, minor, patch, pre))]
    # a partial version such as 1 or 1.2
    if minor is None:
        nxt = Version(major + 1, 0, 0, ("0",))
    else:
        nxt = Version(major, minor + 1, 0, ("0",))
    lo = Version(major, minor or 0, 0)
    if op in ("", "="):
        return [Comparator(">=", lo), Comparator("<", nxt)]
    if op == ">":
        return [Comparator(">=", nxt)]
    if op == ">=":
        return [Comparator(">=", lo)]
    if op == "<":
        return [Comparator("<", Version(lo.major, lo.minor, 0, ("0",)))]
    return [Comparator("<", nxt)]


def _expand_hyphen(lo_text, hi_text):
    lo_major, lo_minor, lo_patch, lo_pre = _partial(lo_text)
    hi_major, hi_minor, hi_patch, hi_pre = _partial(hi_text)
    out = []
    if lo_major is not None:
        out.append(Comparator(">=", _lower(lo_major, lo_minor, lo_patch, lo_pre)))
    if hi_major is not None:
        if hi_minor is None:
            out.append(Comparator("<", Version(hi_major + 1, 0, 0, ("0",))))
        elif hi_patch is None:
            out.append(Comparator("<", Version(hi_major, hi_minor + 1, 0, ("0",))))
        else:
            out.append(Comparator("<=", Version(hi_major, hi_minor, hi_patch, hi_pre)))
    return out or [Comparator(">=", "0.0.0")]


_TOKEN_RE = re.compile(r"(<=|>=|<|>|=|~|\^)?\s*([^\s]+)")


def _parse_set(text):
    text = text.strip()
    if not text or text == "*":
        return [Comparator(">=", "0.0.0")]
    hy = re.match(r"^(\S+)\s+-\s+(\S+)$", text)
    if hy:
        return _expand_hyphen(hy.group(1), hy.group(2))
    comparators = []
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise InvalidRange("cannot parse range: %r" % (text,))
        op, ver = m.group(1) or "", m.group(2)
        if op == "~":
            comparators.extend(_expand_tilde(ver))
        elif op == "^":
            comparators.extend(_expand_caret(ver))
        else:
            comparators.extend(_expand_xrange(op, ver))
        pos = m.end()
    return comparators


class Range:
    """A union (`||`) of intersections of comparators."""

    def __init__(self, text, include_prerelease=False):
        self.raw = text
        self.include_prerelease = include_prerelease
        self.sets = [_parse_set(part) for part in text.split("||")]

    def _prerelease_allowed(self, version, comparators):
        # a pre-release only matches if some comparator in the set names
        # a pre-release of the same major.minor.patch tuple
        if not version.prerelease or self.include_prerelease:
            return True
        for c in comparators:
            cv = c.version
            if cv.prerelease or cv._core() == version._core():
                return True
        return False

    def test(self, version):
        try:
            version = Version.parse(version)
        except InvalidVersion:
            return False
        for comparators in self.sets:
            if all(c.test(version) for c in comparators):
                if self._prerelease_allowed(version, comparators):
                    return True
        return False

    def __contains__(self, version):
        return self.test(version)

    def __str__(self):
        return " || ".join(" ".join(str(c) for c in s) for s in self.sets)

    def __repr__(self):
        return "Range(%r)" % self.raw


def satisfies(version, range_text, include_prerelease=False):
    return Range(range_text, include_prerelease).test(version)


def max_satisfying(versions, range_text, include_prerelease=False):
    rng = Range(range_text, include_prerelease)
    best = None
    for v in versions:
        try:
            pv = Version.parse(v)
        except InvalidVersion:
            continue
        if rng.test(pv) and (best is None or pv > best):
            best = pv
    return best
