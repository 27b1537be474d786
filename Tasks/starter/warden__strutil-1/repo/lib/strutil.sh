#!/usr/bin/env bash
# strutil.sh - string helpers for bash scripts (source this file).
#
# All functions print their result on stdout and never modify globals,
# except str_split which fills the array named by its first argument.

# str_trim STRING - strip leading and trailing whitespace
str_trim() {
    local s="$1"
    s="${s#"${s%%[![:space:]]*}"}"
    s="${s%"${s##*[![:space:]]}"}"
    printf '%s' "$s"
}

# str_ltrim / str_rtrim STRING
str_ltrim() {
    local s="$1"
    printf '%s' "${s#"${s%%[![:space:]]*}"}"
}

str_rtrim() {
    local s="$1"
    printf '%s' "${s%"${s##*[![:space:]]}"}"
}

str_lower() { printf '%s' "${1,,}"; }
str_upper() { printf '%s' "${1^^}"; }

# str_capitalize STRING - upper-case the first letter, lower-case the rest
str_capitalize() {
    local s="${1,,}"
    printf '%s' "${s^}"
}

# str_starts_with STRING PREFIX / str_ends_with STRING SUFFIX - exit status only
str_starts_with() { [[ "$1" == "$2"* ]]; }
str_ends_with() { [[ "$1" == *"$2" ]]; }

# str_contains STRING NEEDLE - exit status only
str_contains() { [[ "$1" == *"$2"* ]]; }

# str_repeat STRING COUNT
str_repeat() {
    local s="$1" n="$2" out=""
    local i
    for ((i = 0; i < n; i++)); do
        out+="$s"
    done
    printf '%s' "$out"
}

# str_pad_left STRING WIDTH [CHAR] - right-align STRING in WIDTH columns
str_pad_left() {
    local s="$1" width="$2" ch="${3:- }"
    local need=$((width - ${#s}))
    if ((need > 0)); then
        printf '%s%s' "$(str_repeat "$ch" "$need")" "$s"
    else
        printf '%s' "$s"
    fi
}

# str_pad_right STRING WIDTH [CHAR] - left-align STRING in WIDTH columns
str_pad_right() {
    local s="$1" width="$2" ch="${3:- }"
    local need=$((width - ${#s}))
    if ((need > 0)); then
        printf '%s%s' "$s" "$(str_repeat "$ch" "$need")"
    else
        printf '%s' "$s"
    fi
}

# str_center STRING WIDTH [CHAR] - extra padding goes to the right
str_center() {
    local s="$1" width="$2" ch="${3:- }"
    local need=$((width - ${#s}))
    if ((need <= 0)); then
        printf '%s' "$s"
        return
    fi
    local left=$((need / 2))
    local right=$((need - left))
    printf '%s%s%s' "$(str_repeat "$ch" "$left")" "$s" "$(str_repeat "$ch" "$right")"
}

# str_split ARRAY_NAME STRING SEP - split on a literal (multi-character) separator
str_split() {
    local -n _out="$1"
    local s="$2" sep="$3"
    _out=()
    if [[ -z "$sep" ]]; then
        local i
        for ((i = 0; i < ${#s}; i++)); do
            _out+=("${s:i:1}")
        done
        return
    fi
    while [[ "$s" == *"$sep"* ]]; do
        _out+=("${s%%"$sep"*}")
        s="${s#*"$sep"}"
    done
    _out+=("$s")
}

# str_join SEP ITEMS... - join items with a literal separator
str_join() {
    local sep="$1"
    shift
    local out="" first=1 item
    for item in "$@"; do
        if ((first)); then
            out="$item"
            first=0
        else
            out+="$sep$item"
        fi
    done
    printf '%s' "$out"
}

# str_replace_all STRING FROM TO - literal replacement
str_replace_all() {
    local s="$1" from="$2" to="$3"
    if [[ -z "$from" ]]; then
        printf '%s' "$s"
        return
    fi
    printf '%s' "${s//"$from"/"$to"}"
}

# str_count STRING NEEDLE - number of non-overlapping occurrences
str_count() {
    local s="$1" needle="$2" n=0
    [[ -z "$needle" ]] && { printf '0'; return; }
    while [[ "$s" == *"$needle"* ]]; do
        s="${s#*"$needle"}"
        ((n++))
    done
    printf '%d' "$n"
}

# str_reverse STRING
str_reverse() {
    local s="$1" out="" i
    for ((i = ${#s} - 1; i >= 0; i--)); do
        out+="${s:i:1}"
    done
    printf '%s' "$out"
}

# str_slugify STRING - lower-case ASCII words joined by single dashes
str_slugify() {
    local s="${1,,}"
    s="${s//[^a-z0-9]/-}"
    while [[ "$s" == *--* ]]; do
        s="${s//--/-}"
    done
    s="${s#-}"
    s="${s%-}"
    printf '%s' "$s"
}

# str_truncate STRING WIDTH [ELLIPSIS] - result is at most WIDTH characters
str_truncate() {
    local s="$1" width="$2" ell="${3-...}"
    if ((${#s} <= width)); then
        printf '%s' "$s"
        return
    fi
    local keep=$((width - ${#ell}))
    ((keep < 0)) && keep=0
    printf '%s%s' "${s:0:keep}" "${ell:0:width}"
}

# str_urlencode STRING - percent-encode everything except unreserved characters
str_urlencode() {
    local s="$1" out="" i c
    local LC_ALL=C
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
            [a-zA-Z0-9.~_-]) out+="$c" ;;
            *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}

# str_urldecode STRING - decode %XX escapes and '+' as space
str_urldecode() {
    local s="${1//+/ }"
    printf '%b' "${s//%/\\x}"
}

# str_version_compare A B - prints -1, 0 or 1 comparing dotted numeric versions
str_version_compare() {
    local -a a b
    IFS=. read -r -a a <<<"$1"
    IFS=. read -r -a b <<<"$2"
    local n=${#a[@]} i x y
    ((${#b[@]} > n)) && n=${#b[@]}
    for ((i = 0; i < n; i++)); do
        x=$((${a[i]:-0}))
        y=$((${b[i]:-0}))
        if ((x < y)); then printf '%s' -1; return; fi
        if ((x > y)); then printf '%s' 1; return; fi
    done
    printf '%s' 0
}
