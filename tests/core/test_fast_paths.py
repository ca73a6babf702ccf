"""The shortcuts bulk import and the audit take for the statements `suyuan` itself writes.

Each one answers "I recognise this" or "take the general path"; whatever it recognises, it must
read exactly as the general path would (same values, same verdict on canonical form), and
what it builds must be byte for byte what the general code builds.
"""

from __future__ import annotations

import json

import nacl.bindings
import nacl.exceptions
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suyuan import canonical, crypto, prepare
from suyuan.errors import MalformedInput
from suyuan.model import (
    NONCE,
    TIMESTAMP,
    Entry,
    Statement,
    parse_signed_statement,
    parse_time,
    sign_statement,
)

KEY = crypto.SigningKey(bytes(range(32)))
KEY_ID = crypto.key_id("coop-jinzhou", KEY.public_key).hex()

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | _text,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)
_bodies = st.dictionaries(st.sampled_from(["text", "lot", "a_b", "x.y", "名称", "Z"]) | _text,
                          _values, max_size=5)
_statements = st.builds(
    lambda body, log, nonce: {"v": 1, "kind": "note", "actor": "coop-jinzhou",
                              "key_id": KEY_ID, "time": "2026-05-01T08:00:00.125Z",
                              "nonce": nonce, "body": body, **({"log": log} if log else {})},
    _bodies,
    st.sampled_from([None, "ledger.test/dalian", "例子.test/log"]),
    st.from_regex(r"[A-Za-z0-9._:-]{8,20}", fullmatch=True),
)


def _parsed(data: bytes) -> tuple:
    value = json.loads(data)
    return (value["actor"], value["body"], value["key_id"], value["kind"], value.get("log"),
            value["nonce"], value["time"])


@settings(max_examples=300, deadline=None)
@given(_statements)
def test_recognised_statements_read_as_json_reads_them(statement: dict) -> None:
    data = canonical.jcs(statement)
    parts = canonical.statement_parts(data)
    if parts is not None:
        assert parts == _parsed(data)


def test_common_statements_are_recognised() -> None:
    for body in ({"text": "冷链车到达 2°C", "lot": "DL-1"}, {}, {"n": -12, "ok": True, "z": None},
                 {"text": "two\nlines \"quoted\""}, {"items": [{"lot": "A", "q": "1.5"}]}):
        data = canonical.jcs({"v": 1, "kind": "note", "actor": "a", "key_id": KEY_ID,
                              "time": "2026-05-01T08:00:00Z", "nonce": "n-000001", "body": body,
                              "log": "o"})
        assert canonical.statement_parts(data) == _parsed(data)


_MUTATIONS = [
    lambda d: d.replace(b'":', b'": ', 1),                       # whitespace
    lambda d: d.replace(b'{"actor"', b'{ "actor"', 1),
    lambda d: d.replace(b'"v":1}', b'"v":1.0}'),                  # a float
    lambda d: d.replace(b'"v":1}', b'"v":true}'),
    lambda d: d.replace(b'"v":1}', b'"v":01}'),
    lambda d: d.replace(b'"v":1}', b'"v":1,"v":1}'),              # duplicate key
    lambda d: d.replace(b'"body":{', b'"body":{"text":"x",', 1),  # duplicate or unsorted
    lambda d: d.replace(b'"body":{', b'"body":{"zz":"x",', 1),    # keys out of order
    lambda d: d.replace(b'"text":"', b'"text":"\\u00e9', 1),      # a needless escape
    lambda d: d.replace(b'"text":"', b'"text":"\\/', 1),
    lambda d: d.replace(b'"text":"', b'"text":"\x01', 1),         # a raw control character
    lambda d: d.replace(b'"text":"', b'"text":"\xed\xa0\x80', 1), # a surrogate: not UTF-8
    lambda d: d.replace(b'"lot":"L-1"', b'"lot":-0', 1),
    lambda d: d.replace(b'"lot":"L-1"', b'"lot":12345678901234567890', 1),
    lambda d: d.replace(b'"actor":"coop-jinzhou"', b'"actor":"coop\\u002djinzhou"', 1),
    lambda d: d.replace(b',"v":1}', b',"v":1,"w":2}'),            # an unknown field
    lambda d: d.replace(b'"kind":"note",', b'', 1),              # a missing field
    lambda d: d[:-1],
    lambda d: d + b" ",
]


@pytest.mark.parametrize("mutate", _MUTATIONS)
def test_nothing_that_is_not_canonical_is_recognised(mutate) -> None:
    data = canonical.jcs({"v": 1, "kind": "note", "actor": "coop-jinzhou", "key_id": KEY_ID,
                          "time": "2026-05-01T08:00:00Z", "nonce": "nnnnnnnn",
                          "body": {"lot": "L-1", "text": "t"}})
    mutated = mutate(data)
    assert mutated != data
    parts = canonical.statement_parts(mutated)
    if parts is not None:  # only if the mutation happens to be canonical as well
        assert canonical.jcs(json.loads(mutated)) == mutated
        assert parts == _parsed(mutated)


_NONCES = ["nnnnnnnn", "n" * 64, "A-z_0.9:x", "n" * 7, "n" * 65, "nnnn nnnn", "nnnn/nnnn",
           "nnnnnnn\u00e9", "nnnnnnn\u0660", "", "nnnnnnnn\n"]
_TIMES = ["2026-05-01T08:00:00Z", "2026-05-01T08:00:00.1Z", "2026-05-01T08:00:00.123456Z",
          "2026-02-30T00:00:00Z", "2026-05-01T08:00:00.1234567Z", "2026-05-01T08:00:00.Z",
          "2026-05-01T08:00:00", "2026-05-01 08:00:00Z", "2026-05-01t08:00:00Z",
          "2026-05-01T08:00:00+00:00", "26-05-01T08:00:00Z", "2026-5-01T08:00:00Z",
          "\u0662026-05-01T08:00:00Z", "2026-05-01T08:00:00Z ", ""]


@pytest.mark.parametrize("nonce", _NONCES)
@pytest.mark.parametrize("time", _TIMES)
def test_nonce_and_time_are_recognised_exactly_in_the_models_shapes(nonce: str,
                                                                    time: str) -> None:
    """The fast patterns require the nonce and the time to have the shapes of the model's
    ``NONCE`` and ``TIMESTAMP`` (a date that does not exist is the caller's to refuse, with
    ``parse_time``); anything else is left to the general path."""
    data = canonical.jcs({"v": 1, "kind": "note", "actor": "coop-jinzhou", "key_id": KEY_ID,
                          "time": time, "nonce": nonce, "body": {"text": "t"}})
    # (TIMESTAMP's \d meets other digits too, which the model's date parse then refuses)
    in_shape = bool(NONCE.match(nonce)) and bool(TIMESTAMP.match(time)) and time.isascii()
    if TIMESTAMP.match(time) and not time.isascii():
        with pytest.raises(MalformedInput, match="real date"):
            parse_time(time)
    parts = canonical.statement_parts(data)
    assert (parts is not None) == in_shape
    if parts is not None:
        assert parts == _parsed(data)
    line = canonical.jcs({"signature": "A" * 86 + "==", "statement": json.loads(data)})
    assert (canonical.signed_line_parts(line) is not None) == in_shape
    leaf = canonical.entry_bytes(index=3, key_id=KEY_ID, prev="0" * 64,
                                 received_at="2026-05-01T08:00:01.000Z",
                                 signature="A" * 86 + "==", statement=data)
    assert (canonical.entry_parts(leaf) is not None) == in_shape


@pytest.mark.parametrize("byte", range(256))
def test_each_byte_in_a_body_string_is_recognised_exactly_when_jcs_leaves_it_alone(
        byte: int) -> None:
    """Every byte value inside a flat body's string: recognised if and only if the statement
    stays the canonical encoding of what it parses to (ASCII that JCS escapes, a quote, a
    backslash and a lone non-ASCII byte are not; any other ASCII byte is)."""
    data = canonical.jcs({"v": 1, "kind": "note", "actor": "coop-jinzhou", "key_id": KEY_ID,
                          "time": "2026-05-01T08:00:00Z", "nonce": "nnnnnnnn",
                          "body": {"lot": "L-1", "text": "t"}})
    mutated = data.replace(b'"text":"t"', b'"text":"t' + bytes([byte]) + b'"')
    parts = canonical.statement_parts(mutated)
    try:
        canonical_too = canonical.jcs(json.loads(mutated)) == mutated
    except ValueError:  # not JSON (a quote ends the string early), or not UTF-8
        canonical_too = False
    assert (parts is not None) == canonical_too == (0x20 <= byte < 0x80 and byte not in b'"\\')
    if parts is not None:
        assert parts == _parsed(mutated)


@settings(max_examples=200, deadline=None)
@given(_statements)
def test_a_recognised_line_parses_as_parse_signed_statement_parses_it(statement: dict) -> None:
    signed = sign_statement(Statement.from_json(statement), KEY)
    line = signed.to_line().encode()
    fast = prepare.parse_canonical_line(line)
    if fast is not None:
        assert fast == (signed.statement, signed.data, signed.signature, signed.signature_b64)
        assert fast[0] == parse_signed_statement(line).statement
    # Lines that are not canonical (spaces, other key order) are left to the general path.
    spaced = json.dumps(json.loads(line), ensure_ascii=False).encode()
    assert prepare.parse_canonical_line(spaced) is None


@pytest.mark.parametrize("change, message", [
    ({"nonce": "short"}, "nonce"),
    ({"time": "2026-02-30T00:00:00Z"}, "real date"),
    ({"actor": "has space"}, "actor"),
    ({"kind": "Bad"}, "kind"),
    ({"log": "has space"}, "log"),
    ({"body": {"text": "x" * (canonical.MAX_STATEMENT_BYTES + 1)}}, "limit"),
])
def test_a_line_the_model_refuses_is_left_to_the_general_path(change: dict, message: str) -> None:
    statement = {"v": 1, "kind": "note", "actor": "coop-jinzhou", "key_id": KEY_ID,
                 "time": "2026-05-01T08:00:00Z", "nonce": "nnnnnnnn", "body": {"text": "t"},
                 **change}
    line = canonical.jcs({"signature": "A" * 86 + "==", "statement": statement})
    assert prepare.parse_canonical_line(line) is None
    with pytest.raises(MalformedInput, match=message):
        parse_signed_statement(line)


@settings(max_examples=100, deadline=None)
@given(_statements, st.integers(min_value=0, max_value=10**12))
def test_entries_built_from_a_tail_are_the_entries_and_read_back(statement: dict,
                                                                  index: int) -> None:
    signed = sign_statement(Statement.from_json(statement), KEY)
    prev, received_at = "ab" * 32, "2026-05-01T08:00:01.000Z"
    entry = Entry.build(index, prev, signed, received_at)
    tail = canonical.entry_tail(signed.signature_b64, signed.data)
    assert canonical.entry_from_tail(index=index, key_id=KEY_ID, prev=prev,
                                     received_at=received_at, tail=tail) == entry.leaf
    parts = canonical.entry_parts(entry.leaf)
    if parts is not None:
        index_, key_id, prev_, received, signature, data = canonical.split_entry(entry.leaf)
        assert parts[:6] == (index_, key_id, prev_.encode(), received.encode(),
                             signature.encode(), data)
        assert parts[6:] == _parsed(signed.data)


def test_entry_fields_that_need_escaping_are_refused_from_a_tail_too() -> None:
    tail = canonical.entry_tail("AA==", canonical.StatementBytes(b"{}"))
    with pytest.raises(MalformedInput, match="received_at"):
        canonical.entry_from_tail(index=0, key_id="00000000", prev="0" * 64,
                                  received_at='x"y', tail=tail)
    with pytest.raises(MalformedInput, match="index"):
        canonical.entry_from_tail(index=True, key_id="00000000", prev="0" * 64,
                                  received_at="x", tail=tail)
    with pytest.raises(MalformedInput, match="signature"):
        canonical.entry_tail('"', canonical.StatementBytes(b"{}"))


@pytest.mark.parametrize("case", ["good", "other message", "other key", "flipped signature",
                                  "short signature", "short key", "empty message"])
def test_signature_checks_agree_with_libsodium_through_pynacl(case: str) -> None:
    prefix, message = canonical.STATEMENT_PREFIX, b'{"a":"b"}'
    key, signature = KEY.public_key, KEY.sign(prefix + message)
    if case == "other message":
        message = b'{"a":"c"}'
    elif case == "other key":
        key = crypto.SigningKey.generate().public_key
    elif case == "flipped signature":
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    elif case == "short signature":
        signature = signature[:63]
    elif case == "short key":
        key = key[:31]
    elif case == "empty message":
        prefix = message = b""
    try:
        nacl.bindings.crypto_sign_open(signature + prefix + message, key)
        expected = True
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        expected = False
    assert crypto.is_valid_prefixed_signature(key, signature, prefix, message) is expected
    assert crypto.is_valid_signature(key, prefix + message, signature) is expected
    assert crypto.is_valid_signature(bytearray(key), memoryview(prefix + message),
                                     bytearray(signature)) is expected
    assert crypto.is_valid_signature("not bytes", prefix + message, signature) is False  # type: ignore[arg-type]


def test_an_entry_whose_statement_names_another_key_is_left_to_the_general_path() -> None:
    signed = sign_statement(Statement.from_json({
        "v": 1, "kind": "note", "actor": "coop-jinzhou", "key_id": KEY_ID,
        "time": "2026-05-01T08:00:00Z", "nonce": "nnnnnnnn", "body": {"text": "t"}}), KEY)
    leaf = canonical.entry_bytes(index=3, key_id="0badf00d", prev="0" * 64,
                                 received_at="2026-05-01T08:00:01.000Z",
                                 signature=signed.signature_b64, statement=signed.data)
    assert canonical.entry_parts(leaf) is None
    assert canonical.split_entry(leaf)[1] == "0badf00d"
