"""The only place that builds signed or hashed byte strings: statements and entries.

Statements are signed over ``suyuan/statement/v1\\n`` followed by their RFC 8785 (JCS)
encoding. Entries (the Merkle leaves) are the JCS encoding of
``{index, key_id, prev, received_at, signature, statement}``; because every value but the
statement is a plain ASCII token, the entry is built by concatenation around the statement's
own JCS bytes, which is byte-identical to running JCS over the whole object (tested against
``rfc8785`` and pinned by known-answer vectors in ``fixtures/``). Bulk import builds the part
after the index in its workers (:func:`entry_tail`) and the head in the parent.

It also reads them back fast: :func:`entry_parts` and :func:`signed_line_parts` recognise
the canonical shapes `suyuan` writes with one regular expression, for the audit and the
import, and leave anything else to the general parse.
"""

from __future__ import annotations

import functools
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
    _check_head(index, key_id, prev, received_at, signature)
    return LeafBytes(_head(index, key_id, prev, received_at) + _tail(signature, statement))


def entry_tail(signature: str, statement: StatementBytes) -> bytes:
    """The end of an entry, which does not depend on its place in the log:
    ``"signature":"…","statement":{…}}``. Bulk import builds it in worker processes, so the
    committing process only puts the head in front (:func:`entry_from_tail`); the result is
    byte for byte what :func:`entry_bytes` builds."""
    if not _TOKEN.match(signature):
        raise MalformedInput("entry field signature has characters JCS would escape")
    return _tail(signature, statement)


def entry_from_tail(*, index: int, key_id: str, prev: str, received_at: str,
                    tail: bytes) -> LeafBytes:
    """An entry from its place in the log and a tail made by :func:`entry_tail`."""
    _check_head(index, key_id, prev, received_at, None)
    return LeafBytes(_head(index, key_id, prev, received_at) + tail)


def _check_head(index: int, key_id: str, prev: str, received_at: str,
                signature: str | None) -> None:
    # One match over the fields run together (each is in the alphabet iff all of it is);
    # the field at fault is looked for only when it fails.
    if not _TOKEN.match(f"{key_id}{prev}{received_at}{signature or ''}"):
        for name, token in (("key_id", key_id), ("prev", prev), ("received_at", received_at),
                            ("signature", signature)):
            if token is not None and not _TOKEN.match(token):
                raise MalformedInput(f"entry field {name} has characters JCS would escape")
    if type(index) is not int or index < 0:  # (bool is not int here)
        raise MalformedInput("entry index must be a non-negative integer")


def _head(index: int, key_id: str, prev: str, received_at: str) -> bytes:
    return (f'{{"index":{index},"key_id":"{key_id}","prev":"{prev}",'
            f'"received_at":"{received_at}",').encode()


def _tail(signature: str, statement: StatementBytes) -> bytes:
    return b'"signature":"' + signature.encode() + b'","statement":' + statement + b"}"


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


# --- fast recognition of canonical statements ----------------------------------------------
#
# Bulk import and the audit handle statements by the ten thousand. Nearly all are what
# `suyuan` itself writes: the canonical envelope with plain ASCII values and a small body. The
# functions below recognise exactly that shape with regular expressions instead of a JSON
# parse, a JCS re-encoding and a comparison. They are *sound, not complete*: whatever they
# accept is canonical (the re-encoding of the parsed value is these bytes) and they return the
# values ``json.loads`` would; anything else (escapes, non-ASCII keys, floats, nesting in the
# envelope, an unknown field) is answered ``None`` and the caller takes the general path.

_PLAIN = rb'[\x20\x21\x23-\x5b\x5d-\x7e]*+'  # printable ASCII that JCS never escapes (no " or \)
# A body whose values are strings needing no escape, small integers, booleans or null, under
# plain ASCII keys: most bodies, and those JSON parsing is slowest for. Its bytes need only be
# valid UTF-8 (checked when decoded) and its keys sorted and unique (checked by _flat).
# (The string class is written as the bytes it allows, not as [^"\\\x00-\x1f]: the same set,
# which the regular expression engine tests in one step instead of two.)
_FLAT_VALUE = rb'"[\x20\x21\x23-\x5b\x5d-\xff]*+"|0|-?[1-9][0-9]{0,14}+|true|false|null'
_FLAT_KEY = rb'"[A-Za-z0-9_.:-]++"'
_FLAT_BODY = (rb"\{(?:" + _FLAT_KEY + rb":(?:" + _FLAT_VALUE + rb")(?:," + _FLAT_KEY
              + rb":(?:" + _FLAT_VALUE + rb"))*+)?\}")


# The nonce and the time in the shapes the model requires (model.NONCE and model.TIMESTAMP,
# whose \d meets only ASCII digits in an ASCII value): a statement whose nonce or time has
# another shape is left to the general path, which refuses it with the model's reason. (The
# time's date is the caller's to check, with datetime.fromisoformat, as the model does.)
_NONCE = rb'[A-Za-z0-9._:-]{8,64}+'
_TIME = rb'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z'


def _statement_shape(body: bytes, key_id: bytes = rb'(' + _PLAIN + rb')') -> bytes:
    return (rb'\{"actor":"(' + _PLAIN + rb')","body":(' + body + rb'),"key_id":"' + key_id
            + rb'","kind":"(' + _PLAIN + rb')",(?:"log":"(' + _PLAIN + rb')",)?"nonce":"('
            + _NONCE + rb')","time":"(' + _TIME + rb')","v":1\}')


_ANY_BODY = rb"\{.*\}"  # then parsed and re-encoded: see _body
_SIGNATURE_B64 = rb'([A-Za-z0-9+/]{86}==)'  # exactly 64 bytes, the only size a signature has
_ENTRY_FIELDS = (rb'\{"index":(0|[1-9][0-9]*+),"key_id":"([0-9a-f]{8})","prev":"([0-9a-f]{64})",'
                 rb'"received_at":"([0-9TZ:.\-]++)","signature":"' + _SIGNATURE_B64
                 + rb'","statement":(')


@functools.cache
def _patterns(kind: str) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """The (flat body, any body) patterns of a statement, a signed line or an entry: compiled
    on first use, as most commands need none of them (compiling all costs 2 ms a start)."""
    def compiled(body: bytes) -> re.Pattern[bytes]:
        if kind == "statement":
            return re.compile(_statement_shape(body) + rb"\Z", re.S)
        if kind == "line":
            return re.compile(rb'\{"signature":"' + _SIGNATURE_B64 + rb'","statement":('
                              + _statement_shape(body) + rb")\}\Z", re.S)
        # the statement's key_id: the entry's (group 2), matched again, not captured
        return re.compile(_ENTRY_FIELDS + _statement_shape(body, rb"\2") + rb")\}\Z", re.S)

    return compiled(_FLAT_BODY), compiled(_ANY_BODY)


_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


StatementParts = tuple[str, dict[str, Any], str, str, str | None, str, str]
"""(actor, body, key_id, kind, log or None, nonce, time) of a canonical statement. Plain
tuples, not named ones: these are made a million times per audit."""

EntryParts = tuple[int, str, bytes, bytes, bytes, StatementBytes, str, dict[str, Any], str,
                   str, str | None, str, str]
"""(index, key_id, prev, received_at, signature, statement bytes) as :func:`split_entry`
gives them, except that prev (hex), received_at and signature (base64) are left as the ASCII
bytes they are in the leaf, followed by the statement's :data:`StatementParts` (whose key_id
:func:`entry_parts` has checked equals the entry's)."""


def compile_recognisers(*kinds: str) -> None:
    """Compile the patterns of the functions below now (of ``kinds``: "statement", "line",
    "entry"; all by default): before forking worker processes that use them, so that each
    need not compile them again."""
    for kind in kinds or ("statement", "line", "entry"):
        _patterns(kind)


def statement_parts(data: bytes) -> StatementParts | None:
    """The parts of ``data`` if it is a canonical statement of the common shape, else ``None``.

    Accepted means: ``data`` is exactly the JCS encoding of ``json.loads(data)``, an object
    with the keys actor, body, key_id, kind, (log,) nonce, time and v = 1, every value but the
    body a string of printable ASCII, the nonce and the time of the model's shapes (``NONCE``,
    ``TIMESTAMP``). Nothing else about the values is checked: the caller checks them as the
    model does (the time's date too)."""
    flat, general = _patterns("statement")
    match = flat.match(data) or general.match(data)
    if match is None:
        return None
    actor, body, key_id, kind, log, nonce, time = match.groups()
    parsed = _body(body, match.re is flat)
    if parsed is None:
        return None
    return (actor.decode(), parsed, key_id.decode(), kind.decode(),
            None if log is None else log.decode(), nonce.decode(), time.decode())


def signed_line_parts(line: bytes) -> tuple[str, StatementBytes, StatementParts] | None:
    """(signature base64, statement bytes, parts) if ``line`` is the canonical JCS line of a
    signed statement (what ``SignedStatement.to_line`` writes), else ``None``."""
    flat, general = _patterns("line")
    match = flat.match(line) or general.match(line)
    if match is None:
        return None
    signature, data, actor, body, key_id, kind, log, nonce, time = match.groups()
    parsed = _body(body, match.re is flat)
    if parsed is None:
        return None
    return signature.decode(), StatementBytes(data), (
        actor.decode(), parsed, key_id.decode(), kind.decode(),
        None if log is None else log.decode(), nonce.decode(), time.decode())


def entry_parts(leaf: bytes) -> EntryParts | None:
    """What :func:`split_entry` returns followed by the statement's parts (see
    :data:`EntryParts`), if ``leaf`` is a canonical entry whose statement has the common shape
    of :func:`statement_parts` and the entry's key_id; else ``None``. One regular expression,
    and no JSON parse for a flat body: the audit reads a million of these."""
    flat, general = _patterns("entry")
    match = flat.match(leaf) or general.match(leaf)
    if match is None:
        return None
    (index, key_id, prev, received_at, signature, data, actor, body, kind, log, nonce,
     time) = match.groups()
    parsed = _body(body, match.re is flat)
    if parsed is None:
        return None
    key_id_text = key_id.decode()
    return (int(index), key_id_text, prev, received_at, signature, StatementBytes(data),
            actor.decode(), parsed, key_id_text, kind.decode(),
            None if log is None else log.decode(), nonce.decode(), time.decode())


def _body(data: bytes, is_flat: bool) -> dict[str, Any] | None:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    if is_flat:
        return _flat(text)
    # Nested bodies: parsed and re-encoded, at the depth they have inside the statement.
    try:
        value = json.loads(text, parse_float=_no_float, parse_constant=_no_constant)
        if type(value) is not dict:
            return None
        encoded = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                             allow_nan=False)
        if encoded != text or not _is_plain(value, 1):
            return None
    except (ValueError, RecursionError, TypeError):  # MalformedInput is a ValueError
        return None
    return value


def _flat(text: str) -> dict[str, Any] | None:
    """The object ``text`` (which matched ``_FLAT_OBJECT``), or ``None`` if its keys are not
    sorted and unique. Split on quotes (no key or value holds one), the pieces alternate:
    ``{``, key, ``:``, string value, ``,``, key, ``:7,``, key, ``:``, string value, ``}``."""
    pieces = text.split('"')
    body: dict[str, Any] = {}
    last = ""
    i, count = 1, len(pieces)
    while i < count:
        key = pieces[i]
        if key <= last:  # sorted and unique (ASCII keys: code points = UTF-16 units)
            return None
        last = key
        after = pieces[i + 1]
        if after == ":":
            body[key] = pieces[i + 2]
            i += 4
        else:  # ":<literal>," or ":<literal>}"
            token = after[1:-1]
            body[key] = _LITERALS[token] if token in _LITERALS else int(token)
            i += 2
    return body
