import math

import pytest

from calcly import evaluate, CalcError, CalcNameError, CalcSyntaxError


@pytest.mark.parametrize("expr,expected", [
    ("1 + 2", 3),
    ("2 * 3 + 4", 10),
    ("2 * (3 + 4)", 14),
    ("10 - 4 - 3", 3),
    ("7 // 2", 3),
    ("7 % 4", 3),
    ("8 / 2", 4),
    ("7 / 2", 3.5),
    ("1_000 + 1", 1001),
    ("2.5e1", 25.0),
    ("1.5e-1 * 10", 1.5),
], ids=lambda v: str(v).replace(" ", ""))
def test_arithmetic(expr, expected):
    assert evaluate(expr) == expected


def test_unary_minus():
    assert evaluate("-3 + 5") == 2
    assert evaluate("2 * -3") == -6
    assert evaluate("--4") == 4


def test_power_binds_tighter_than_unary_minus():
    assert evaluate("-2 ** 2") == -4


def test_negative_exponent():
    assert evaluate("2 ** -1") == 0.5


def test_factorial():
    assert evaluate("5!") == 120
    assert evaluate("3! + 1") == 7


def test_variables_and_constants():
    assert evaluate("x * y", {"x": 3, "y": 4}) == 12
    assert evaluate("pi") == math.pi


def test_functions():
    assert evaluate("max(1, 5, 3)") == 5
    assert evaluate("sqrt(16)") == 4.0
    assert evaluate("double(4)", functions={"double": lambda v: v * 2}) == 8


def test_comparisons_and_logic():
    assert evaluate("1 < 2 and 3 >= 3") is True
    assert evaluate("not 1 == 2") is True
    assert evaluate("0 or 5") == 5


def test_conditional():
    assert evaluate("1 if x > 0 else -1", {"x": 5}) == 1
    assert evaluate("1 if x > 0 else -1", {"x": -5}) == -1


def test_division_by_zero():
    with pytest.raises(CalcError):
        evaluate("1 / 0")


def test_unknown_name():
    with pytest.raises(CalcNameError):
        evaluate("y + 1")


@pytest.mark.parametrize("expr", ["1 +", "(1", "1 2", "3 $ 4", "max(1,"],
                         ids=["trailing-op", "unclosed-paren", "two-numbers", "bad-char", "unclosed-call"])
def test_syntax_errors(expr):
    with pytest.raises(CalcSyntaxError):
        evaluate(expr)
