"""Small checkers for statement bodies: each takes a value and a path, returns the value or
raises :class:`MalformedInput` naming the field (``body.lots[2].quantity``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from suyuan.errors import MalformedInput

Checker = Callable[[Any, str], Any]

DECIMAL = re.compile(r"-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,6})?\Z")
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}\Z")
EVENT_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})\Z"
)
SHA256 = re.compile(r"[0-9a-f]{64}\Z")

UNITS: dict[str, str] = {
    "KGM": "kilogram",
    "GRM": "gram",
    "TNE": "tonne",
    "LTR": "litre",
    "H87": "piece",
    "XBX": "box",
    "XCT": "carton",
    "XPK": "package",
    "XCR": "crate",
}
"""UN/CEFACT Recommendation 20/21 codes accepted for quantities."""


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
"""Control characters (other than tab and newline) and lone surrogates: never in text."""


def text(limit: int = 200) -> Checker:
    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise MalformedInput(f"{path} must be non-empty text")
        if len(value) > limit:
            raise MalformedInput(f"{path} is longer than {limit} characters")
        bad = _CONTROL.search(value)
        if bad:
            raise MalformedInput(f"{path} contains a control character "
                                 f"(U+{ord(bad.group()):04X} at position {bad.start()})")
        return value
    return check


def code(value: Any, path: str) -> str:
    """An identifier such as a lot code, location id or shipment (追溯码) code."""
    if not isinstance(value, str) or not CODE.match(value):
        raise MalformedInput(
            f"{path} must be 1-64 letters, digits or . _ : / - (starting with a letter or digit)"
        )
    return value


def enum(*choices: str) -> Checker:
    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise MalformedInput(f"{path} must be one of {', '.join(choices)}")
        return value
    return check


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise MalformedInput(f"{path} must be true or false")
    return value


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Checker:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedInput(f"{path} must be a whole number")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise MalformedInput(f"{path} must be between {minimum} and {maximum}")
        return value
    return check


def decimal(*, minimum: Decimal | None = None, positive: bool = False) -> Checker:
    """A decimal string ("12.5"), never a JSON number: signed data holds no floats."""
    def check(value: Any, path: str) -> Decimal:
        if not isinstance(value, str) or not DECIMAL.match(value):
            raise MalformedInput(f'{path} must be a decimal string such as "12.5"')
        try:
            number = Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - the pattern excludes it
            raise MalformedInput(f"{path} is not a decimal") from exc
        if positive and number <= 0:
            raise MalformedInput(f"{path} must be greater than 0")
        if minimum is not None and number < minimum:
            raise MalformedInput(f"{path} must be at least {minimum}")
        return number
    return check


def event_time(value: Any, path: str) -> datetime:
    """RFC 3339 with an explicit offset, as EPCIS eventTime + eventTimeZoneOffset."""
    if not isinstance(value, str) or not EVENT_TIME.match(value):
        raise MalformedInput(f"{path} must be a time with its offset, like 2026-06-01T08:30:00+08:00")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedInput(f"{path} is not a real date and time") from exc


def sha256_hex(value: Any, path: str) -> str:
    if not isinstance(value, str) or not SHA256.match(value):
        raise MalformedInput(f"{path} must be a SHA-256 in lowercase hex (64 characters)")
    return value


def unit(value: Any, path: str) -> str:
    if not isinstance(value, str) or value not in UNITS:
        raise MalformedInput(f"{path} must be a UN/CEFACT unit code: {', '.join(UNITS)}")
    return value


def quantity(value: Any, path: str) -> tuple[Decimal, str]:
    """``{"value": "120.5", "unit": "KGM"}``."""
    checked = obj({"value": (decimal(positive=True), True), "unit": (unit, True)})(value, path)
    return checked["value"], checked["unit"]


def list_of(item: Checker, *, min_items: int = 1, max_items: int = 1000,
            unique: str | None = None) -> Checker:
    """A list of items; ``unique`` names the field (or ``"."`` for the item itself) that no
    two items may share — a lot listed twice would be counted twice."""
    def check(value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise MalformedInput(f"{path} must be a list")
        if not min_items <= len(value) <= max_items:
            raise MalformedInput(f"{path} must have {min_items} to {max_items} items")
        items = [item(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if unique is not None:
            seen: set[Any] = set()
            for i, checked in enumerate(items):
                key = checked if unique == "." else checked[unique]
                if key in seen:
                    raise MalformedInput(f"{path}[{i}] repeats {key!r}: list each only once")
                seen.add(key)
        return items
    return check


Spec = Mapping[str, tuple[Checker, bool]]


def obj(spec: Spec, *, extra: bool = False) -> Checker:
    """An object with the given fields (checker, required); unknown fields are refused
    unless ``extra``. Returns the checked values by name (absent optional fields omitted)."""
    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise MalformedInput(f"{path} must be an object")
        if not extra:
            unknown = set(value) - set(spec)
            if unknown:
                raise MalformedInput(f"{path} has unknown field(s) {', '.join(sorted(unknown))}")
        out: dict[str, Any] = {}
        for name, (checker, required) in spec.items():
            if name in value and value[name] is not None:
                out[name] = checker(value[name], f"{path}.{name}")
            elif required:
                raise MalformedInput(f"{path}.{name} is required")
        return out
    return check


def any_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedInput(f"{path} must be an object")
    return value
