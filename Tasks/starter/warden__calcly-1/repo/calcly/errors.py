class CalcError(Exception):
    pass


class CalcSyntaxError(CalcError):
    def __init__(self, message, pos=None):
        self.pos = pos
        if pos is not None:
            message = "%s at position %d" % (message, pos)
        super().__init__(message)


class CalcNameError(CalcError):
    pass
