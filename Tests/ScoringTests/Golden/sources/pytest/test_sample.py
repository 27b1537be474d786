import pytest

def test_pass():
    assert 1 + 1 == 2

def test_fail():
    assert 1 + 1 == 3, "math is broken"

@pytest.mark.parametrize("text,expected", [("a b", 2), ("x - y", 3), ("single", 1), ("tab\there", 1)])
def test_words(text, expected):
    assert len(text.split()) == expected

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

def test_skip_inside():
    pytest.skip("runtime skip")

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False

@pytest.mark.xfail(reason="fixed already")
def test_xpass():
    assert True

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

def test_fixture_error(broken):
    pass

class TestGroup:
    def test_method(self):
        assert "abc".upper() == "ABC"

    @pytest.mark.parametrize("n", [1, 2])
    def test_param_method(self, n):
        assert n == 1
