"""Build a Config object from tokens."""

from . import convert
from .errors import ConfigError, ParseError
from .interp import interpolate
from .lexer import tokenize

_MISSING = object()


class Config:
    def __init__(self, default_section="DEFAULT", case_sensitive=False, strict=True,
                 interpolation=True):
        self.default_section = default_section
        self.case_sensitive = case_sensitive
        self.strict = strict
        self.interpolation = interpolation
        self._sections = {}
        self._order = []

    # -- building ----------------------------------------------------------
    def normalize_key(self, key):
        return key if self.case_sensitive else key.lower()

    def add_section(self, name):
        if name in self._sections:
            if self.strict and name != self.default_section:
                raise ConfigError("duplicate section %r" % name)
            return
        self._sections[name] = {}
        if name != self.default_section:
            self._order.append(name)

    def set(self, section, key, value):
        if section not in self._sections:
            raise ConfigError("no section %r" % section)
        self._sections[section][self.normalize_key(key)] = value

    def read_string(self, text):
        section = None
        last_key = None
        for kind, payload, lineno in tokenize(text):
            if kind == "section":
                if payload in self._sections and self.strict and payload != self.default_section:
                    raise ParseError("duplicate section %r" % payload, lineno)
                self.add_section(payload)
                section, last_key = payload, None
            elif kind == "pair":
                if section is None:
                    raise ParseError("key outside of any section", lineno)
                key, value, _quoted = payload
                key = self.normalize_key(key)
                if self.strict and key in self._sections[section]:
                    raise ParseError("duplicate key %r in section %r" % (key, section), lineno)
                self._sections[section][key] = value
                last_key = key
            else:  # continuation
                if last_key is None:
                    raise ParseError("continuation line without a key", lineno)
                prev = self._sections[section][last_key]
                self._sections[section][last_key] = (prev + "\n" + payload) if prev else payload
        return self

    # -- reading -----------------------------------------------------------
    def raw_sections(self):
        return self._sections

    def sections(self):
        return list(self._order)

    def has_section(self, name):
        return name in self._sections and name != self.default_section

    def keys(self, section):
        if section not in self._sections:
            raise ConfigError("no section %r" % section)
        merged = dict(self._sections.get(self.default_section, {}))
        merged.update(self._sections[section])
        return list(merged)

    def has_option(self, section, key):
        try:
            self._raw(section, key)
        except ConfigError:
            return False
        return True

    def _raw(self, section, key):
        key = self.normalize_key(key)
        if section in self._sections and key in self._sections[section]:
            return self._sections[section][key]
        defaults = self._sections.get(self.default_section, {})
        if section in self._sections and key in defaults:
            return defaults[key]
        if section not in self._sections:
            raise ConfigError("no section %r" % section)
        raise ConfigError("no option %r in section %r" % (key, section))

    def get(self, section, key, fallback=_MISSING, raw=False):
        try:
            value = self._raw(section, key)
        except ConfigError:
            if fallback is _MISSING:
                raise
            return fallback
        if raw or not self.interpolation:
            return value
        return interpolate(self, section, value)

    def getint(self, section, key, fallback=_MISSING):
        v = self.get(section, key, None if fallback is not _MISSING else _MISSING)
        return fallback if v is None else convert.to_int(v)

    def getfloat(self, section, key, fallback=_MISSING):
        v = self.get(section, key, None if fallback is not _MISSING else _MISSING)
        return fallback if v is None else convert.to_float(v)

    def getbool(self, section, key, fallback=_MISSING):
        v = self.get(section, key, None if fallback is not _MISSING else _MISSING)
        return fallback if v is None else convert.to_bool(v)

    def getlist(self, section, key, fallback=_MISSING, sep=","):
        v = self.get(section, key, None if fallback is not _MISSING else _MISSING)
        return fallback if v is None else convert.split_list(v, sep)

    def items(self, section):
        return [(k, self.get(section, k)) for k in self.keys(section)]

    def to_dict(self):
        return {s: dict(self.items(s)) for s in self.sections()}

    def __getitem__(self, section):
        if not self.has_section(section):
            raise KeyError(section)
        return dict(self.items(section))


def loads(text, **options):
    return Config(**options).read_string(text)


def load(fp, **options):
    return loads(fp.read(), **options)
