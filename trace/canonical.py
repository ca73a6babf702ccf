"""The only place that builds signed or hashed byte strings: statements and entries.

Statements are signed over ``suyuan/statement/v1\\n`` followed by their RFC 8785 (JCS)
encoding. Entries (the Merkle leaves) are the JCS encoding of
``{index, key_id, prev, received_at, signature, statement}``; because every value but the
statement is a plain ASCII token, the entry is built by concatenation around the statement's
own JCS bytes, which is byte-identical to running JCS over the whole object (tested against
``rfc8785`` and pinned by known-answer vectors in ``fixtures/``).
"""

from __future__ import annotations

import json
import re
from typing import Any, NewType

import rfc8785

from suyuan.errors import MalformedInput

StatementBytes = NewType("StatementBytes", bytes)
"""The JCS encoding of a statement (what is embedded in an entry)."""

LeafBytes = NewType("LeafBytes", bytes)
"""The exact bytes of an entry, as stored and as hashed into the Merkle tree."""

STATEMENT_PREFIX = b"suyuan/statement/v1\n"
"""Domain separation: a statement signature can never be replayed as another message."""

MAX_STATEMENT_BYTES = 32 * 1024
"""Leaves stay well under the 64 KiB a tlog-tiles entry bundle can carry."""

_TOKEN = re.compile(r"[A-Za-z0-9+/=:.\-]*\Z")
_ENTRY_HEAD = re.compile(
    rb'\{"index":(0|[1-9][0-9]*),"key_id":"([0-9a-f]{8})","prev":"([0-9a-f]{64})",'
    rb'"received_at":"([0-9TZ:.\-]+)","signature":"([A-Za-z0-9+/=]+)","statement":'
)


MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 64


def jcs(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value``; floats and out-of-range integers are refused.

    Signed data never holds floats, so for values whose object keys are all ASCII the
    standard library's encoder produces exactly the JCS bytes (same escapes, and code-point
    key order equals UTF-16 order for ASCII); a property test holds the two equal. Anything
    else goes through ``rfc8785``.
    """
    if _is_plain(value, 0):
        try:
            return json.dumps(
                value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                allow_nan=False,
            ).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise MalformedInput("text holds a lone surrogate, which is not valid UTF-8") from exc
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MalformedInput(f"cannot canonicalise: {exc}") from exc


def _is_plain(value: Any, depth: int) -> bool:
    """True when the fast encoder is exact for ``value``; raises on values JCS refuses."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return True
        raise MalformedInput(f"integer {value} is outside the range JSON numbers keep exactly")
    if depth > MAX_DEPTH:
        raise MalformedInput(f"JSON nested deeper than {MAX_DEPTH} levels")
    if kind is dict:
        plain = True
        for key, item in value.items():
            if type(key) is not str:
                raise MalformedInput("JSON object keys must be strings")
            if not key.isascii():
                plain = False
            if not _is_plain(item, depth + 1):
                plain = False
        return plain
    if kind is list or kind is tuple:
        plain = True
        for item in value:
            if not _is_plain(item, depth + 1):
                plain = False
        return plain
    if kind is float:
        raise MalformedInput(f"number {value!r} is not an integer: quantities are decimal strings")
    raise MalformedInput(f"cannot canonicalise a {kind.__name__}")


def statement_bytes(statement: dict[str, Any]) -> StatementBytes:
    """The JCS bytes of a statement, refusing oversized ones."""
    data = jcs(statement)
    if len(data) > MAX_STATEMENT_BYTES:
        raise MalformedInput(
            f"statement is {len(data)} bytes; the limit is {MAX_STATEMENT_BYTES} "
            "(store large documents beside the log and reference them by SHA-256)"
        )
    return StatementBytes(data)


def signing_message(data: StatementBytes) -> bytes:
    """The exact message an actor signs for a statement."""
    return STATEMENT_PREFIX + data


def entry_bytes(
    *,
    index: int,
    key_id: str,
    prev: str,
    received_at: str,
    signature: str,
    statement: StatementBytes,
) -> LeafBytes:
    """The JCS encoding of an entry, built around the statement's own JCS bytes."""
    for name, token in (("key_id", key_id), ("prev", prev), ("received_at", received_at),
                        ("signature", signature)):
        if not _TOKEN.match(token):
            raise MalformedInput(f"entry field {name} has characters JCS would escape")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise MalformedInput("entry index must be a non-negative integer")
    head = (
        f'{{"index":{index},"key_id":"{key_id}","prev":"{prev}",'
        f'"received_at":"{received_at}","signature":"{signature}","statement":'
    ).encode()
    return LeafBytes(head + statement + b"}")


def split_entry(leaf: bytes) -> tuple[int, str, str, str, str, StatementBytes]:
    """Take an entry apart without re-serialising: (index, key_id, prev, received_at,
    signature, statement bytes). Raises :class:`MalformedInput` if the leaf is not an
    entry in canonical form."""
    match = _ENTRY_HEAD.match(leaf)
    if match is None or not leaf.endswith(b"}"):
        raise MalformedInput("leaf is not a canonical entry")
    statement = StatementBytes(leaf[match.end() : -1])
    return (
        int(match.group(1)),
        match.group(2).decode(),
        match.group(3).decode(),
        match.group(4).decode(),
        match.group(5).decode(),
        statement,
    )


def _no_float(text: str) -> Any:
    raise MalformedInput(f"number {text} is not an integer: quantities are decimal strings")


def _no_constant(text: str) -> Any:
    raise MalformedInput(f"{text} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedInput(f"duplicate key {key!r} in a JSON object")
            seen.add(key)
    return result


def is_canonical(value: Any, data: bytes) -> bool:
    """Whether ``data`` is exactly the JCS encoding of ``value`` (checked fast first)."""
    try:
        fast = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        return False
    if fast == data and _is_plain(value, 0):
        return True
    try:
        return jcs(value) == data
    except MalformedInput:
        return False


def loads_fast(data: str | bytes) -> Any:
    """Parse JSON refusing floats and NaN but not duplicate keys: for bytes whose canonical
    form is checked afterwards (a duplicate key cannot survive that check)."""
    try:
        return json.loads(data, parse_float=_no_float, parse_constant=_no_constant)
    except MalformedInput:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedInput(f"malformed JSON: {exc}") from exc


def loads(data: str | bytes) -> Any:
    """Parse JSON strictly: no duplicate keys, no floats, no NaN/Infinity."""
    try:
        return json.loads(
            data,
            parse_float=_no_float,
            parse_constant=_no_constant,
            object_pairs_hook=_unique_keys,
        )
    except MalformedInput:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedInput(f"malformed JSON: {exc}") from exc
