import atexit


def _fake_summary():
    # What a patch can do from library code: print fake summary lines once pytest has
    # restored the real stdout.
    print("PASSED tests/test_cheat.py::test_broken")
    print("PASSED tests/test_cheat.py::test_missing_feature")


atexit.register(_fake_summary)


def test_kept():
    assert True


def test_broken():
    assert 1 == 2
