"""Version parsing, precedence and bumping."""

import re
from functools import total_ordering

_NUM = r"0|[1-9]\d*"
_IDENT = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_VERSION_RE = re.compile(
    r"^v?(?P<major>" + _NUM + r")\.(?P<minor>" + _NUM + r")\.(?P<patch>" + _NUM + r")"
    r"(?:-(?P<pre>" + _IDENT + r"(?:\." + _IDENT + r")*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


class InvalidVersion(ValueError):
    """Raised when a string is not a valid semantic version."""


def _split_identifiers(text):
    if not text:
        return ()
    return tuple(text.split("."))


def _compare_identifier(a, b):
    """Compare two pre-release identifiers following semver section 11.4."""
    a_num = a.isdigit()
    b_num = b.isdigit()
    if a_num and b_num:
        a_val, b_val = int(a), int(b)
        return (a_val > b_val) - (a_val < b_val)
    if a_num:
        # numeric identifiers always have lower precedence than alphanumeric ones
        return -1
    if b_num:
        return 1
    return (a > b) - (a < b)


def _compare_prerelease(a, b):
    """Compare two pre-release tuples. An empty tuple means a normal release."""
    if not a and not b:
        return 0
    if not a:
        return 1
    if not b:
        return -1
    for x, y in zip(a, b):
        c = _compare_identifier(x, y)
        if c:
            return c
    return (len(a) > len(b)) - (len(a) < len(b))


@total_ordering
class Version:
    """An immutable semantic version."""

    __slots__ = ("major", "minor", "patch", "prerelease", "build")

    def __init__(self, major, minor=0, patch=0, prerelease=(), build=()):
        for name, value in (("major", major), ("minor", minor), ("patch", patch)):
            if not isinstance(value, int) or value < 0:
                raise InvalidVersion("%s must be a non-negative integer, got %r" % (name, value))
        if isinstance(prerelease, str):
            prerelease = _split_identifiers(prerelease)
        if isinstance(build, str):
            build = _split_identifiers(build)
        object.__setattr__(self, "major", major)
        object.__setattr__(self, "minor", minor)
        object.__setattr__(self, "patch", patch)
        object.__setattr__(self, "prerelease", tuple(prerelease))
        object.__setattr__(self, "build", tuple(build))

    def __setattr__(self, name, value):
        raise AttributeError("Version objects are immutable")

    # -- parsing -----------------------------------------------------------
    @classmethod
    def parse(cls, text):
        if isinstance(text, Version):
            return text
        if not isinstance(text, str):
            raise InvalidVersion("expected a string, got %r" % (text,))
        m = _VERSION_RE.match(text.strip())
        if not m:
            raise InvalidVersion("invalid version: %r" % (text,))
        return cls(
            int(m.group("major")),
            int(m.group("minor")),
            int(m.group("patch")),
            _split_identifiers(m.group("pre")),
            _split_identifiers(m.group("build")),
        )

    # -- representation ----------------------------------------------------
    def __str__(self):
        s = "%d.%d.%d" % (self.major, self.minor, self.patch)
        if self.prerelease:
            s += "-" + ".".join(self.prerelease)
        if self.build:
            s += "+" + ".".join(self.build)
        return s

    def __repr__(self):
        return "Version(%r)" % str(self)

    # -- precedence --------------------------------------------------------
    def _core(self):
        return (self.major, self.minor, self.patch)

    def compare(self, other):
        other = Version.parse(other)
        a, b = self._core(), other._core()
        if a != b:
            return (a > b) - (a < b)
        return _compare_prerelease(self.prerelease, other.prerelease)

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = Version.parse(other)
            except InvalidVersion:
                return NotImplemented
        if not isinstance(other, Version):
            return NotImplemented
        return self.compare(other) == 0

    def __lt__(self, other):
        if isinstance(other, str):
            other = Version.parse(other)
        if not isinstance(other, Version):
            return NotImplemented
        return self.compare(other) < 0

    def __hash__(self):
        # build metadata does not take part in precedence, so not in the hash
        return hash((self._core(), self.prerelease))

    @property
    def is_prerelease(self):
        return bool(self.prerelease)

    # -- bumping -----------------------------------------------------------
    def bump_major(self):
        if self.prerelease and self.minor == 0 and self.patch == 0:
            return Version(self.major, 0, 0)
        return Version(self.major + 1, 0, 0)

    def bump_minor(self):
        if self.prerelease and self.patch == 0:
            return Version(self.major, self.minor, 0)
        return Version(self.major, self.minor + 1, 0)

    def bump_patch(self):
        if self.prerelease:
            return Version(self.major, self.minor, self.patch)
        return Version(self.major, self.minor, self.patch + 1)

    def bump_prerelease(self, token="rc"):
        """Increment the last numeric pre-release identifier, or start one."""
        if not self.prerelease:
            return Version(self.major, self.minor, self.patch + 1, (token, "0"))
        parts = list(self.prerelease)
        for i in range(len(parts) - 1, -1, -1):
            if parts[i].isdigit():
                parts[i] = str(int(parts[i]) + 1)
                return Version(self.major, self.minor, self.patch, parts)
        parts.append("0")
        return Version(self.major, self.minor, self.patch, parts)

    def finalize(self):
        return Version(self.major, self.minor, self.patch)


def parse(text):
    return Version.parse(text)


def compare(a, b):
    return Version.parse(a).compare(Version.parse(b))
