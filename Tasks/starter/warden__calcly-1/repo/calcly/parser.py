"""A Pratt parser producing a small tuple-based AST.

Nodes:
    ("num", value) ("name", id) ("bool", value)
    ("unary", op, operand) ("binary", op, left, right)
    ("and", left, right) ("or", left, right) ("not", operand)
    ("cond", test, then, otherwise) ("call", name, [args])
"""

from .errors import CalcSyntaxError
from .tokenizer import tokenize

# binding powers: higher binds tighter
BINARY = {
    "==": 40, "!=": 40, "<": 40, "<=": 40, ">": 40, ">=": 40,
    "+": 50, "-": 50,
    "*": 60, "/": 60, "//": 60, "%": 60,
    "**": 80,
}
RIGHT_ASSOC = {"**"}
UNARY_BP = 70       # -x binds looser than ** (so -2**2 == -4) but tighter than *
POSTFIX_BP = 90     # factorial: 3! ; binds tighter than everything else


class Parser:
    def __init__(self, text):
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self):
        return self.tokens[self.i]

    def next(self):
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, kind, value=None):
        tok = self.next()
        if tok.kind != kind or (value is not None and tok.value != value):
            want = value if value is not None else kind
            got = tok.value if tok.value is not None else "end of input"
            raise CalcSyntaxError("expected %r, got %r" % (want, got), tok.pos)
        return tok

    def parse(self):
        node = self.expression(0)
        tok = self.peek()
        if tok.kind != "eof":
            raise CalcSyntaxError("unexpected %r" % (tok.value,), tok.pos)
        return node

    # -- Pratt core ---------------------------------------------------------
    def expression(self, min_bp):
        left = self.prefix()
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.value == "!":
                if POSTFIX_BP < min_bp:
                    break
                self.next()
                left = ("unary", "!", left)
                continue
            if tok.kind == "kw" and tok.value in ("and", "or", "if"):
                bp = {"if": 10, "or": 20, "and": 30}[tok.value]
                if bp < min_bp:
                    break
                self.next()
                if tok.value == "if":
                    test = self.expression(bp + 1)
                    self.expect("kw", "else")
                    otherwise = self.expression(bp)
                    left = ("cond", test, left, otherwise)
                else:
                    right = self.expression(bp + 1)
                    left = (tok.value, left, right)
                continue
            if tok.kind != "op" or tok.value not in BINARY:
                break
            bp = BINARY[tok.value]
            if bp < min_bp:
                break
            self.next()
            right_bp = bp + 1
            right = self.expression(right_bp)
            left = ("binary", tok.value, left, right)
        return left

    def prefix(self):
        tok = self.next()
        if tok.kind == "num":
            return ("num", tok.value)
        if tok.kind == "kw" and tok.value in ("true", "false"):
            return ("bool", tok.value == "true")
        if tok.kind == "kw" and tok.value == "not":
            return ("not", self.expression(35))
        if tok.kind == "name":
            if self.peek().kind == "op" and self.peek().value == "(":
                self.next()
                args = []
                if not (self.peek().kind == "op" and self.peek().value == ")"):
                    args.append(self.expression(0))
                    while self.peek().kind == "op" and self.peek().value == ",":
                        self.next()
                        args.append(self.expression(0))
                self.expect("op", ")")
                return ("call", tok.value, args)
            return ("name", tok.value)
        if tok.kind == "op" and tok.value in ("-", "+"):
            return ("unary", tok.value, self.expression(UNARY_BP))
        if tok.kind == "op" and tok.value == "(":
            node = self.expression(0)
            self.expect("op", ")")
            return node
        got = tok.value if tok.value is not None else "end of input"
        raise CalcSyntaxError("unexpected %r" % (got,), tok.pos)


def parse(text):
    return Parser(text).parse()
