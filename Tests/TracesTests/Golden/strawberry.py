def count_letters(s, letter):
    n = 0
    for c in s:
        n += int(c == letter)
    return n
