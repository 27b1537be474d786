import unittest

from wrapkit import shorten, truncate, indent, dedent, justify


class TestShorten(unittest.TestCase):
    def test_short_text_untouched(self):
        self.assertEqual(shorten("hello  world", 20), "hello world")

    def test_cut_at_word(self):
        self.assertEqual(shorten("Hello there, how are you today?", 20), "Hello there, [...]")

    def test_truncate(self):
        self.assertEqual(truncate("abcdef", 4), "abc…")
        self.assertEqual(truncate("abc", 4), "abc")

    def test_truncate_strips_space(self):
        self.assertEqual(truncate("ab cdef", 4, ellipsis="."), "ab.")


class TestIndent(unittest.TestCase):
    def test_indent_skips_blank_lines(self):
        self.assertEqual(indent("a\n\nb\n", "> "), "> a\n\n> b\n")

    def test_dedent(self):
        self.assertEqual(dedent("    a\n      b\n    c\n"), "a\n  b\nc\n")

    def test_dedent_mixed_margin(self):
        self.assertEqual(dedent("  a\n\tb\n"), "  a\n\tb\n")


class TestJustify(unittest.TestCase):
    def test_justify(self):
        lines = justify("aa b cc dd eeee f", 8)
        self.assertEqual(lines, ["aa  b cc", "dd  eeee", "f"])
        for line in lines[:-1]:
            self.assertEqual(len(line), 8)


if __name__ == "__main__":
    unittest.main()
