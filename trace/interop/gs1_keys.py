"""The GS1 keys with a mod-10 check digit (GTIN, GLN): what the event kinds check a product's
code with at every statement, apart from the rest of :mod:`suyuan.interop.gs1` (the AI table
and Digital Link syntax), which every command would otherwise load at its start.

Re-exported by :mod:`suyuan.interop.gs1`; see GS1 General Specifications §7.9.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from suyuan.errors import MalformedInput

_DIGITS = frozenset("0123456789")

# --------------------------------------------------------------------------------------------
# GS1 keys with a mod-10 check digit


def gs1_check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit for ``digits``, the digits that come before it.

    Weights 3 and 1 alternate from the rightmost digit (which weighs 3), as for every
    GS1 key with a standard check digit: GTIN, GLN, SSCC, GSIN, GRAI, GDTI, GCN, GSRN.
    """
    if not isinstance(digits, str) or not digits:
        raise MalformedInput("a check digit needs at least one digit to be computed from")
    bad = _first_outside(digits, _DIGITS)
    if bad is not None:
        raise MalformedInput(
            f"cannot compute a check digit: {_describe_char(digits[bad])} at position "
            f"{bad + 1} is not a digit"
        )
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str(-total % 10)


def _key_digits(value: Any, what: str) -> str:
    """Shared front half of GTIN and GLN checks: text, NFKC-folded, trimmed, digits only.

    NFKC folds full-width digits (１２３, what Chinese input methods often produce) to ASCII,
    so a clerk's correct number is not rejected for its code points.
    """
    if not isinstance(value, str):
        raise MalformedInput(f"{what} must be text, not {type(value).__name__}")
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        raise MalformedInput(f"{what} is empty")
    bad = _first_outside(text, _DIGITS)
    if bad is not None:
        raise MalformedInput(
            f"{what} '{text}' contains {_describe_char(text[bad])} at position {bad + 1}; "
            f"a {what} has digits only"
        )
    return text


def _check_key_digit(text: str, what: str) -> None:
    expected = gs1_check_digit(text[:-1])
    if text[-1] != expected:
        raise MalformedInput(
            f"{what} '{text}' check digit should be {expected}, not {text[-1]} "
            f"(mistyped or mis-scanned digit?)"
        )


def normalize_gtin(value: str) -> str:
    """A GTIN-8, -12, -13 or -14 as its canonical 14-digit form, after checking it.

    Leading zeros are added (they do not change the check digit); surrounding whitespace and
    full-width digits are tolerated. Anything else raises ``MalformedInput`` saying what is wrong.
    """
    text = _key_digits(value, "GTIN")
    if len(text) not in (8, 12, 13, 14):
        raise MalformedInput(
            f"GTIN '{text}' has {len(text)} digits; a GTIN has 8, 12, 13 or 14 digits"
        )
    _check_key_digit(text, "GTIN")
    return text.zfill(14)


def is_valid_gtin(value: str) -> bool:
    """Whether ``value`` is a GTIN-8/12/13/14 with a correct check digit."""
    try:
        normalize_gtin(value)
    except MalformedInput:
        return False
    return True


def normalize_gln(value: str) -> str:
    """A Global Location Number (13 digits with a check digit), checked and trimmed."""
    text = _key_digits(value, "GLN")
    if len(text) != 13:
        raise MalformedInput(f"GLN '{text}' has {len(text)} digits; a GLN has exactly 13 digits")
    _check_key_digit(text, "GLN")
    return text


def is_valid_gln(value: str) -> bool:
    """Whether ``value`` is a 13-digit GLN with a correct check digit."""
    try:
        normalize_gln(value)
    except MalformedInput:
        return False
    return True


def _first_outside(text: str, allowed: frozenset[str]) -> int | None:
    for i, char in enumerate(text):
        if char not in allowed:
            return i
    return None


def _describe_char(char: str) -> str:
    if char == " ":
        return "a space"
    if not char.isprintable():
        return f"the control character U+{ord(char):04X}"
    return f"'{char}'"
