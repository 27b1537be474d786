import unittest

class TestThings(unittest.TestCase):
    def test_ok(self):
        self.assertEqual(1, 1)

    def test_fail(self):
        self.assertEqual(1, 2)

    def test_error(self):
        raise ValueError("boom")

    @unittest.skip("not now")
    def test_skip(self):
        pass

    @unittest.expectedFailure
    def test_expected_failure(self):
        self.assertEqual(1, 2)

    @unittest.expectedFailure
    def test_unexpected_success(self):
        self.assertEqual(1, 1)

    def test_docstring(self):
        """Check that docstrings are printed.

        More lines here.
        """
        self.assertTrue(True)

    def test_docstring_fail(self):
        """A failing test with a docstring."""
        self.assertTrue(False)

    def test_prints(self):
        print("some output from the test", end="")
        self.assertTrue(True)

    def test_subtests(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertLess(i, 2)


class TestSetupClassFails(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise RuntimeError("setup failed")

    def test_never_runs(self):
        pass
