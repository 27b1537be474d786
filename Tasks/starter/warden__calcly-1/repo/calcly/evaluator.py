"""Evaluate an AST produced by calcly.parser."""

import math
import operator

from .errors import CalcError, CalcNameError
from .parser import parse


def _factorial(x):
    if isinstance(x, float):
        if not x.is_integer():
            raise CalcError("factorial of non-integer %r" % x)
        x = int(x)
    if x < 0:
        raise CalcError("factorial of negative number")
    return math.factorial(x)


def _div(a, b):
    if b == 0:
        raise CalcError("division by zero")
    result = a / b
    if isinstance(a, int) and isinstance(b, int) and result.is_integer():
        return int(result)
    return result


def _floordiv(a, b):
    if b == 0:
        raise CalcError("division by zero")
    return a // b


def _mod(a, b):
    if b == 0:
        raise CalcError("modulo by zero")
    return a % b


def _pow(a, b):
    if abs(b) > 10000:
        raise CalcError("exponent too large")
    return a ** b


BINARY_OPS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul,
    "/": _div, "//": _floordiv, "%": _mod, "**": _pow,
    "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}

FUNCTIONS = {
    "abs": abs, "min": min, "max": max, "round": round,
    "sqrt": math.sqrt, "floor": math.floor, "ceil": math.ceil,
    "log": math.log, "exp": math.exp, "sin": math.sin, "cos": math.cos,
}

CONSTANTS = {"pi": math.pi, "e": math.e}


class Evaluator:
    def __init__(self, variables=None, functions=None):
        self.variables = dict(CONSTANTS)
        self.variables.update(variables or {})
        self.functions = dict(FUNCTIONS)
        self.functions.update(functions or {})

    def eval(self, node):
        kind = node[0]
        if kind in ("num", "bool"):
            return node[1]
        if kind == "name":
            try:
                return self.variables[node[1]]
            except KeyError:
                raise CalcNameError("unknown variable %r" % node[1]) from None
        if kind == "unary":
            op, value = node[1], self.eval(node[2])
            if op == "-":
                return -value
            if op == "+":
                return +value
            return _factorial(value)
        if kind == "binary":
            return BINARY_OPS[node[1]](self.eval(node[2]), self.eval(node[3]))
        if kind == "and":
            left = self.eval(node[1])
            return self.eval(node[2]) if left else left
        if kind == "or":
            left = self.eval(node[1])
            return left if left else self.eval(node[2])
        if kind == "not":
            return not self.eval(node[1])
        if kind == "cond":
            return self.eval(node[2]) if self.eval(node[1]) else self.eval(node[3])
        if kind == "call":
            name = node[1]
            if name not in self.functions:
                raise CalcNameError("unknown function %r" % name)
            args = [self.eval(a) for a in node[2]]
            try:
                return self.functions[name](*args)
            except (TypeError, ValueError) as exc:
                raise CalcError("%s(): %s" % (name, exc)) from None
        raise CalcError("bad node %r" % (kind,))

    def evaluate(self, text):
        return self.eval(parse(text))


def evaluate(text, variables=None, functions=None):
    return Evaluator(variables, functions).evaluate(text)
