"""Character classes shared by the recognizers' boundary checks."""

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ALNUM = DIGITS + LETTERS
HEX = DIGITS + "ABCDEFabcdef"
#: Separators allowed between digit groups ("138 0013 8000", "6222-0212-…").
GROUP_SEPARATORS = " -"
