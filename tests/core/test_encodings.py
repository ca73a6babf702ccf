"""Statement and entry encodings: JCS, domain separation, known-answer vectors."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from suyuan import canonical, crypto
from suyuan.errors import BadSignature, MalformedInput
from suyuan.model import Entry, Statement, parse_signed_statement, sign_statement

VECTORS = Path(__file__).resolve().parents[2] / "fixtures" / "vectors" / "encodings.json"


@pytest.fixture(scope="module")
def vectors() -> dict:
    return json.loads(VECTORS.read_text())


def test_known_answer_statement_signature_and_leaf_are_reproduced(vectors: dict) -> None:
    key = crypto.SigningKey(bytes.fromhex(vectors["seed_hex"]))
    assert str(crypto.verifier_key(vectors["actor"], key.public_key)) == vectors["vkey"]
    statement = Statement.from_json(vectors["statement"])
    signed = sign_statement(statement, key)
    assert base64.b64encode(signed.data).decode() == vectors["statement_jcs_b64"]
    assert hashlib.sha256(signed.message).hexdigest() == vectors["signing_message_sha256"]
    assert signed.signature_b64 == vectors["signature_b64"]
    e = vectors["entry"]
    entry = Entry.build(e["index"], e["prev"], signed, e["received_at"])
    assert base64.b64encode(entry.leaf).decode() == vectors["leaf_b64"]
    assert hashlib.sha256(b"\x00" + entry.leaf).hexdigest() == vectors["leaf_hash_hex"]


def test_entry_bytes_equal_jcs_of_the_whole_entry(vectors: dict) -> None:
    leaf = base64.b64decode(vectors["leaf_b64"])
    e = vectors["entry"]
    whole = {
        "index": e["index"], "prev": e["prev"], "received_at": e["received_at"],
        "key_id": vectors["statement"]["key_id"], "signature": vectors["signature_b64"],
        "statement": vectors["statement"],
    }
    assert rfc8785.dumps(whole) == leaf
    assert Entry.from_leaf(leaf).statement == base64.b64decode(vectors["statement_jcs_b64"])


def test_signature_is_domain_separated(vectors: dict) -> None:
    key = crypto.SigningKey(bytes.fromhex(vectors["seed_hex"]))
    signed = sign_statement(Statement.from_json(vectors["statement"]), key)
    assert signed.message.startswith(b"suyuan/statement/v1\n")
    with pytest.raises(BadSignature):
        crypto.verify(key.public_key, signed.data, signed.signature)  # no prefix: refused
    signed.verify(key.public_key)


@pytest.mark.parametrize("text, message", [
    ('{"a": 1.5}', "not an integer"),
    ('{"a": 1, "a": 2}', "duplicate key"),
    ('{"a": NaN}', "not valid JSON"),
    ('{"a": ', "malformed JSON"),
    ('[1, 2', "malformed JSON"),
])
def test_strict_json_refuses_floats_duplicates_and_garbage(text: str, message: str) -> None:
    with pytest.raises(MalformedInput, match=message):
        canonical.loads(text)


def test_integers_beyond_the_jcs_range_are_refused() -> None:
    with pytest.raises(MalformedInput):
        canonical.jcs({"n": 2**60})


def test_oversized_statement_is_refused() -> None:
    with pytest.raises(MalformedInput, match="limit"):
        canonical.statement_bytes({"text": "x" * (canonical.MAX_STATEMENT_BYTES + 1)})


@pytest.mark.parametrize("leaf", [
    b"",
    b"{}",
    b'{"index":01,"key_id":"00000000","prev":"' + b"0" * 64 + b'","received_at":"x",'
    b'"signature":"AA==","statement":{}}',
    b'{"index":1,"key_id":"00000000","prev":"' + b"0" * 63 + b'","received_at":"x",'
    b'"signature":"AA==","statement":{}}',
    b'{"index":1,"key_id":"00000000","prev":"' + b"0" * 64 + b'","received_at":"x",'
    b'"signature":"AA==","statement":{}',
])
def test_non_canonical_leaves_cannot_be_split(leaf: bytes) -> None:
    with pytest.raises(MalformedInput):
        canonical.split_entry(leaf)


def _signed_doc() -> dict:
    key = crypto.SigningKey.generate()
    statement = Statement(kind="note", actor="a", key_id=crypto.key_id("a", key.public_key).hex(),
                          time="2026-01-01T00:00:00Z", nonce="n" * 16, body={"text": "t"})
    return sign_statement(statement, key).to_json()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("signature"), "exactly the fields"),
    (lambda d: d.update(extra=1), "exactly the fields"),
    (lambda d: d.update(signature="***"), "base64"),
    (lambda d: d.update(signature="AAAA"), "64 bytes"),
    (lambda d: d["statement"].pop("nonce"), "missing nonce"),
    (lambda d: d["statement"].update(color="red"), "unknown field"),
    (lambda d: d["statement"].update(v=2), "version"),
    (lambda d: d["statement"].update(kind="Bad Kind"), "kind"),
    (lambda d: d["statement"].update(actor="has space"), "actor"),
    (lambda d: d["statement"].update(key_id="XYZ"), "key_id"),
    (lambda d: d["statement"].update(time="yesterday"), "RFC 3339"),
    (lambda d: d["statement"].update(time="2026-02-30T00:00:00Z"), "real date"),
    (lambda d: d["statement"].update(nonce="short"), "nonce"),
    (lambda d: d["statement"].update(body=[1]), "body must be"),
    (lambda d: d.update(statement="x"), "JSON object"),
])
def test_malformed_signed_statements_are_refused_with_a_reason(mutate, message: str) -> None:
    doc = _signed_doc()
    mutate(doc)
    with pytest.raises(MalformedInput, match=message):
        parse_signed_statement(json.dumps(doc))


def test_signed_statement_round_trips_through_its_line() -> None:
    doc = _signed_doc()
    parsed = parse_signed_statement(json.dumps(doc))
    assert parse_signed_statement(parsed.to_line()) == parsed


_json_values = st.recursive(
    st.none() | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(st.characters(blacklist_categories=("Cs",))),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
                      children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_json_values)
def test_canonical_encoder_equals_the_rfc8785_reference(value: object) -> None:
    assert canonical.jcs(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("key", ["é", "\U0001f352", "\ue000", "ａ"])
def test_non_ascii_keys_sort_by_utf16_code_units(key: str) -> None:
    value = {key: 1, "\U0001f600": 2, "\uffff": 3, "z": 4}
    assert canonical.jcs(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [1.0, {"a": [0.5]}, 2**53, {"a": "\ud800"}, {1: "x"}, b"x"])
def test_values_jcs_cannot_encode_are_refused(value: object) -> None:
    with pytest.raises(MalformedInput):
        canonical.jcs(value)


@pytest.mark.parametrize("data, expected", [
    (b'{"a":1,"b":"x"}', True),
    (b'{"b":"x","a":1}', False),           # keys out of order
    (b'{"a":1, "b":"x"}', False),          # whitespace
    (b'{"a":1,"a":1}', False),             # duplicate key
    (b'{"a":"\\u00e9"}', False),           # needless escape
    (b'{"\xc3\xa9":1,"z":2}', False),      # non-ASCII key sorted after "z" in JCS
    (b'{"z":2,"\xc3\xa9":1}', True),
])
def test_canonical_form_check_accepts_only_jcs_bytes(data: bytes, expected: bool) -> None:
    assert canonical.is_canonical(canonical.loads_fast(data), data) is expected


def test_fast_loader_still_refuses_floats() -> None:
    with pytest.raises(MalformedInput, match="not an integer"):
        canonical.loads_fast(b'{"q": 1.5}')
