"""Field checkers: free text refuses control characters the databases treat differently."""

from __future__ import annotations

import re

import pytest

from suyuan import fields
from suyuan.errors import MalformedInput


@pytest.mark.parametrize("value", ["收获推迟 harvest delayed", "line one\nline two", "a\tb"])
def test_text_accepts_ordinary_text(value: str) -> None:
    assert fields.text()(value, "body.text") == value


@pytest.mark.parametrize(("value", "where"), [
    ("nul\x00byte", "U+0000 at position 3"),
    ("bell\x07", "U+0007 at position 4"),
    ("\x1bescape", "U+001B at position 0"),
    ("del\x7f", "U+007F at position 3"),
    ("lone \ud800 surrogate", "U+D800 at position 5"),
])
def test_text_refuses_control_characters(value: str, where: str) -> None:
    message = f"body.text contains a control character ({where})"
    with pytest.raises(MalformedInput, match=re.escape(message)):
        fields.text()(value, "body.text")


def test_text_refuses_empty_and_long() -> None:
    with pytest.raises(MalformedInput, match="must be non-empty text"):
        fields.text()("  ", "body.text")
    with pytest.raises(MalformedInput, match="longer than 5 characters"):
        fields.text(5)("123456", "body.text")
