#!/usr/bin/env bash
# Tests for lib/strutil.sh (TAP output). Run: bash tests/run.sh

is "$(str_trim $'  \t hello world \n ')" "hello world" "trim strips both ends"
is "$(str_ltrim '  x  ')" "x  " "ltrim strips the left"
is "$(str_rtrim '  x  ')" "  x" "rtrim strips the right"
is "$(str_lower 'MiXeD')" "mixed" "lower"
is "$(str_upper 'MiXeD')" "MIXED" "upper"
is "$(str_capitalize 'hELLO')" "Hello" "capitalize"

ok_status "starts_with matches prefix" str_starts_with "foobar" "foo"
not_ok_status "starts_with rejects non-prefix" str_starts_with "foobar" "bar"
ok_status "ends_with matches suffix" str_ends_with "foobar" "bar"
ok_status "contains finds glob characters literally" str_contains "a*b" "*"
not_ok_status "contains is literal" str_contains "abc" "a?c"

is "$(str_repeat ab 3)" "ababab" "repeat"
is "$(str_repeat ab 0)" "" "repeat zero times"
is "$(str_pad_left 42 5 0)" "00042" "pad_left with zeros"
is "$(str_pad_right ab 4)" "ab  " "pad_right with spaces"
is "$(str_pad_left toolong 3)" "toolong" "pad_left never truncates"
is "$(str_center ab 7 '*')" "**ab***" "center puts extra padding right"

str_split parts "a,b,,c" ","
is "${#parts[@]}:${parts[2]}:${parts[3]}" "4::c" "split keeps empty fields"
str_split parts "one::two::three" "::"
is "${parts[*]}" "one two three" "split on multi-char separator"
str_split parts "abc" ""
is "${parts[*]}" "a b c" "split on empty separator gives characters"

is "$(str_join ', ' a b c)" "a, b, c" "join"
is "$(str_join - solo)" "solo" "join single item"
is "$(str_replace_all 'a.b.c' '.' '/')" "a/b/c" "replace_all is literal"
is "$(str_count 'banana' 'an')" "2" "count occurrences"
is "$(str_reverse 'abc d')" "d cba" "reverse"

is "$(str_slugify 'Hello, World!')" "hello-world" "slugify punctuation"
is "$(str_slugify '  --Already--slugged--  ')" "already-slugged" "slugify trims dashes"

is "$(str_truncate 'hello world' 8)" "hello..." "truncate adds ellipsis"
is "$(str_truncate 'hello' 8)" "hello" "truncate leaves short strings"

is "$(str_urlencode 'a b&c/d~')" "a%20b%26c%2Fd~" "urlencode"
is "$(str_urldecode 'a%20b+c%2F')" "a b c/" "urldecode"

is "$(str_version_compare 1.2.10 1.2.9)" "1" "version compare numeric fields"
is "$(str_version_compare 1.2 1.2.0)" "0" "version compare missing fields are zero"
is "$(str_version_compare 0.9 1.0)" "-1" "version compare less"
