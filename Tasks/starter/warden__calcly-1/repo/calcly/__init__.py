"""calcly: a tiny, safe arithmetic expression evaluator.

    >>> from calcly import evaluate
    >>> evaluate("2 * (x + 1)", {"x": 4})
    10
"""

from .errors import CalcError, CalcSyntaxError, CalcNameError
from .tokenizer import tokenize, Token
from .parser import parse
from .evaluator import evaluate, Evaluator

__all__ = ["evaluate", "Evaluator", "parse", "tokenize", "Token",
           "CalcError", "CalcSyntaxError", "CalcNameError"]
