import unittest

from wrapkit import wrap, fill, Wrapper


TEXT = "The quick brown fox jumps over the lazy dog"


class TestWrap(unittest.TestCase):
    def test_basic_wrap(self):
        self.assertEqual(wrap(TEXT, 15), ["The quick brown", "fox jumps over", "the lazy dog"])

    def test_lines_never_exceed_width(self):
        for width in range(5, 30):
            for line in wrap(TEXT, width):
                self.assertLessEqual(len(line), width)

    def test_fill_joins_lines(self):
        self.assertEqual(fill("a b c d", 3), "a b\nc d")

    def test_collapses_whitespace(self):
        self.assertEqual(wrap("  a \n\t b   c  ", 80), ["a b c"])

    def test_empty_text(self):
        self.assertEqual(wrap("", 10), [])

    def test_long_word_is_broken(self):
        self.assertEqual(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"])

    def test_long_word_kept_when_not_breaking(self):
        self.assertEqual(wrap("a abcdefghij b", 4, break_long_words=False), ["a", "abcdefghij", "b"])

    def test_hyphen_break(self):
        self.assertEqual(wrap("a well-known fact", 8), ["a well-", "known", "fact"])

    def test_no_hyphen_break(self):
        self.assertEqual(wrap("a well-known fact", 8, break_on_hyphens=False), ["a", "well-kno", "wn fact"])

    def test_indents(self):
        lines = wrap("one two three four", 10, initial_indent="* ", subsequent_indent="  ")
        self.assertEqual(lines, ["* one two", "  three", "  four"])

    def test_invalid_width(self):
        with self.assertRaises(ValueError):
            Wrapper(0)


if __name__ == "__main__":
    unittest.main()
