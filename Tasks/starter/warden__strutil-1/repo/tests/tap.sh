#!/usr/bin/env bash
# Minimal TAP producer: source this file, call the assertions, then tap_done.

_tap_n=0
_tap_failed=0

# is ACTUAL EXPECTED DESCRIPTION
is() {
    _tap_n=$((_tap_n + 1))
    if [[ "$1" == "$2" ]]; then
        printf 'ok %d - %s\n' "$_tap_n" "$3"
    else
        printf 'not ok %d - %s\n' "$_tap_n" "$3"
        printf '#   got:      %q\n#   expected: %q\n' "$1" "$2"
        _tap_failed=$((_tap_failed + 1))
    fi
}

# ok_status DESCRIPTION COMMAND... - passes when COMMAND exits 0
ok_status() {
    local desc="$1"
    shift
    _tap_n=$((_tap_n + 1))
    if "$@"; then
        printf 'ok %d - %s\n' "$_tap_n" "$desc"
    else
        printf 'not ok %d - %s\n' "$_tap_n" "$desc"
        _tap_failed=$((_tap_failed + 1))
    fi
}

# not_ok_status DESCRIPTION COMMAND... - passes when COMMAND exits non-zero
not_ok_status() {
    local desc="$1"
    shift
    _tap_n=$((_tap_n + 1))
    if ! "$@"; then
        printf 'ok %d - %s\n' "$_tap_n" "$desc"
    else
        printf 'not ok %d - %s\n' "$_tap_n" "$desc"
        _tap_failed=$((_tap_failed + 1))
    fi
}

tap_done() {
    printf '1..%d\n' "$_tap_n"
    ((_tap_failed == 0))
}
