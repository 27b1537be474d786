class ConfigError(Exception):
    """Base class for all confini errors."""


class ParseError(ConfigError):
    def __init__(self, message, lineno=None, line=None):
        self.lineno = lineno
        self.line = line
        if lineno is not None:
            message = "line %d: %s" % (lineno, message)
        super().__init__(message)


class InterpolationError(ConfigError):
    pass
