import unittest

class OtherTests(unittest.TestCase):
    def test_alpha(self):
        pass

    def test_beta(self):
        pass
