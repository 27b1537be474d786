"""Split an expression into tokens."""

from collections import namedtuple

from .errors import CalcSyntaxError

Token = namedtuple("Token", "kind value pos")

OPERATORS = ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "<", ">", "(", ")", ",", "!"]
KEYWORDS = {"and", "or", "not", "if", "else", "true", "false"}


def _number(text, i):
    start = i
    n = len(text)
    seen_digit = False
    while i < n and (text[i].isdigit() or text[i] == "_"):
        seen_digit = seen_digit or text[i].isdigit()
        i += 1
    if i < n and text[i] == ".":
        i += 1
        while i < n and text[i].isdigit():
            seen_digit = True
            i += 1
    if not seen_digit:
        raise CalcSyntaxError("malformed number", start)
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and text[j].isdigit():
            while j < n and text[j].isdigit():
                j += 1
            i = j
    raw = text[start:i].replace("_", "")
    if any(c in raw for c in ".eE"):
        return Token("num", float(raw), start), i
    return Token("num", int(raw), start), i


def tokenize(text):
    tokens = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            tok, i = _number(text, i)
            tokens.append(tok)
            continue
        if ch.isalpha() or ch == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            tokens.append(Token("kw" if word in KEYWORDS else "name", word, i))
            i = j
            continue
        for op in OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("op", op, i))
                i += len(op)
                break
        else:
            raise CalcSyntaxError("unexpected character %r" % ch, i)
    tokens.append(Token("eof", None, n))
    return tokens
