"""Tests of C2SP signed notes, checkpoints, cosignatures, tlog-proofs and tlog-policy files."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suyuan import crypto, merkle
from suyuan.crypto import ALG_COSIGNATURE, SigningKey, VerifierKey
from suyuan.errors import InclusionProofError, MalformedInput, NoteError
from suyuan.note import (
    MAX_SIGNATURES,
    Checkpoint,
    Note,
    NoteSignature,
    Policy,
    TlogProof,
    WitnessGroup,
    cosign,
    cosignature_message,
    open_checkpoint,
    parse_checkpoint,
    parse_note,
    parse_policy,
    parse_signature_lines,
    parse_tlog_proof,
    sign_checkpoint,
    sign_note,
    verify_cosignature,
    verify_note,
    verify_tlog_proof,
    witness_verifier_key,
)

# --- known-answer vectors (read from ../shared, never copied) ----------------------------------

# The corpora live beside the project (../shared); a checkout elsewhere simply lacks them.
_PARENTS = Path(__file__).resolve().parents
VECTORS_PATH = (
    _PARENTS[3] if len(_PARENTS) > 3 else Path("/nonexistent")
) / "shared/corpora/merkle/merkle_vectors.json"
VECTORS: dict[str, Any] | None = (
    json.loads(VECTORS_PATH.read_text("utf-8")) if VECTORS_PATH.is_file() else None
)
needs_vectors = pytest.mark.skipif(VECTORS is None, reason=f"{VECTORS_PATH} is not present")


def vector_params(block: str) -> list[Any]:
    if VECTORS is None:
        return [pytest.param(None, marks=needs_vectors, id="absent")]
    return [pytest.param(v, id=v["verifier_key"].split("+")[0]) for v in VECTORS[block]]


def signed_note_of(vector: dict[str, Any]) -> str:
    return vector.get("signed_note") or vector["text"] + "\n" + vector["signature_line"] + "\n"


@pytest.mark.parametrize("vector", vector_params("signed_notes"))
def test_signed_note_vector_parses_verifies_and_formats_back(vector: dict[str, Any]) -> None:
    text = signed_note_of(vector)
    note = parse_note(text)
    assert note.text == vector["text"]
    assert str(note) == text
    assert parse_note(text.encode("utf-8")) == note
    sig = verify_note(note, crypto.parse_verifier_key(vector["verifier_key"]))
    assert sig.line() == vector["signature_line"] + "\n"


@pytest.mark.parametrize("vector", vector_params("signed_notes"))
def test_signed_note_vector_fails_with_a_flipped_text_bit(vector: dict[str, Any]) -> None:
    note = parse_note(signed_note_of(vector))
    flipped = chr(ord(note.text[0]) ^ 1) + note.text[1:]
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(
            Note(flipped, note.signatures), crypto.parse_verifier_key(vector["verifier_key"])
        )


@needs_vectors
def test_peter_neumann_note_is_re_signed_byte_exact_from_its_seed() -> None:
    assert VECTORS is not None
    vector = VECTORS["signed_notes"][0]
    name, key, alg = crypto.parse_signer_key(vector["signer_key"])
    assert (name, alg) == ("PeterNeumann", crypto.ALG_ED25519)
    assert str(crypto.verifier_key(name, key.public_key)) == vector["verifier_key"]
    sig = sign_note(vector["text"], name, key)
    assert sig.line() == vector["signature_line"] + "\n"
    assert str(Note(vector["text"], (sig,))) == vector["signed_note"]


@needs_vectors
def test_sum_golang_org_checkpoint_opens_with_its_origin_size_and_root() -> None:
    assert VECTORS is not None
    vector = next(v for v in VECTORS["signed_notes"] if "parsed" in v)
    log_key = crypto.parse_verifier_key(vector["verifier_key"])
    cp, note = open_checkpoint(vector["signed_note"], log_key, origin="go.sum database tree")
    parsed = vector["parsed"]
    assert cp.origin == parsed["origin"]
    assert cp.size == parsed["tree_size"]
    assert cp.root_hash == base64.b64decode(parsed["root_hash_b64"])
    assert cp.extensions == ()
    assert cp.body() == vector["text"] == note.text
    with pytest.raises(NoteError, match="origin"):
        open_checkpoint(vector["signed_note"], log_key, origin="sum.golang.org")


@needs_vectors
def test_sum_golang_org_checkpoint_extra_signatures_all_verify_on_one_note() -> None:
    assert VECTORS is not None
    vector = next(v for v in VECTORS["signed_notes"] if "parsed" in v)
    extras = vector["extra_ed25519_signatures_on_same_text"]
    lines = [vector["signature_line"]] + [e["signature_line"] for e in extras]
    note = parse_note(vector["text"] + "\n" + "".join(line + "\n" for line in lines))
    assert len(note.signatures) == 4
    for entry in [vector, *extras]:
        sig = verify_note(note, crypto.parse_verifier_key(entry["verifier_key"]))
        assert sig.line() == entry["signature_line"] + "\n"


@needs_vectors
def test_derived_cosignature_line_is_reproduced_byte_exact() -> None:
    assert VECTORS is not None
    vector = VECTORS["derived_self_made"]
    _, key, _ = crypto.parse_signer_key(VECTORS["signed_notes"][0]["signer_key"])
    name, ts, body = vector["cosigner_name"], vector["timestamp"], vector["checkpoint_text"]
    wkey = witness_verifier_key(name, key.public_key)
    assert str(wkey) == vector["cosigner_vkey"]
    assert crypto.parse_verifier_key(vector["cosigner_vkey"]) == wkey
    assert cosignature_message(body, ts) == vector["signed_message"].encode()
    sig = cosign(body, name, key, ts)
    assert sig.line() == vector["cosignature_line"] + "\n"
    note = parse_note(body + "\n" + vector["cosignature_line"] + "\n")
    assert verify_cosignature(note, wkey) == ts


@needs_vectors
def test_misc_tree_note_is_formatted_and_parsed_exactly() -> None:
    assert VECTORS is not None
    vector = VECTORS["misc"][0]
    cp = Checkpoint(
        "go.sum database tree", 123456789012, merkle.leaf_hash(vector["record"].encode())
    )
    assert cp.body() == vector["tree_note"]
    assert parse_checkpoint(vector["tree_note"]) == cp


def inclusion_params() -> list[Any]:
    if VECTORS is None:
        return [pytest.param(None, marks=needs_vectors, id="absent")]
    return [
        pytest.param(v, id=f"leaf{v['leaf_index']}-of-{v['tree_size']}")
        for v in VECTORS["inclusion_proofs"]["vectors"]
    ]


@pytest.mark.parametrize("vector", inclusion_params())
def test_reference_tree_inclusion_vectors_verify_as_tlog_proofs(vector: dict[str, Any]) -> None:
    assert VECTORS is not None
    ref = VECTORS["rfc6962_reference_tree"]
    size, index = vector["tree_size"], vector["leaf_index"]
    cp = Checkpoint(LOG_NAME, size, bytes.fromhex(ref["roots_by_tree_size_hex"][str(size)]))
    proof = TlogProof(
        index, tuple(bytes.fromhex(h) for h in vector["proof_hex"]), str(signed(cp, "w1"))
    )
    leaf = bytes.fromhex(ref["leaf_inputs_hex"][index])
    result = verify_tlog_proof(str(proof), leaf, make_policy(quorum=1))
    assert (result.index, result.checkpoint) == (index, cp)
    with pytest.raises(InclusionProofError):
        verify_tlog_proof(proof, leaf + b"x", make_policy(quorum=1))


# --- builders -------------------------------------------------------------------------------


def seed(label: str) -> bytes:
    return hashlib.sha256(b"suyuan test key: " + label.encode()).digest()


LOG_NAME = "log.suyuan.example/dalian"
LOG_KEY = SigningKey(seed("log"))
LOG_VKEY = crypto.verifier_key(LOG_NAME, LOG_KEY.public_key)
WITNESS_NAMES = {
    "w1": "regulator.example/w1",
    "w2": "association.example/w2",
    "w3": "third.example/w3",
    "x": "stranger.example/x",
}
WITNESS_KEYS = {short: SigningKey(seed(short)) for short in WITNESS_NAMES}
TIMESTAMP = 1_700_000_000


def wvkey(short: str) -> VerifierKey:
    return witness_verifier_key(WITNESS_NAMES[short], WITNESS_KEYS[short].public_key)


def cosig(cp: Checkpoint, short: str, timestamp: int = TIMESTAMP) -> NoteSignature:
    return cosign(cp.body(), WITNESS_NAMES[short], WITNESS_KEYS[short], timestamp)


def signed(cp: Checkpoint, *cosigners: str) -> Note:
    note = sign_checkpoint(cp, LOG_NAME, LOG_KEY)
    return note.with_signatures(*(cosig(cp, short) for short in cosigners))


def make_policy(**overrides: Any) -> Policy:
    fields: dict[str, Any] = {
        "log": LOG_VKEY,
        "origin": LOG_NAME,
        "witnesses": (wvkey("w1"), wvkey("w2"), wvkey("w3")),
        "quorum": 2,
    }
    fields.update(overrides)
    return Policy(**fields)


def leaves_of(size: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(size)]


def fetch_for(leaves: Sequence[bytes]) -> merkle.FetchNodes:
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]

    def fetch(ids: Collection[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        # Brute force, independent of how the ledger stores nodes.
        return {(level, i): merkle.root(hashes[i << level : (i + 1) << level]) for level, i in ids}

    return fetch


def make_proof(size: int = 7, index: int = 3, cosigners: Sequence[str] = ("w1", "w2")) -> TlogProof:
    leaves = leaves_of(size)
    cp = Checkpoint(LOG_NAME, size, merkle.root([merkle.leaf_hash(leaf) for leaf in leaves]))
    path = merkle.inclusion_proof(index, size, fetch_for(leaves))
    return TlogProof(index, tuple(path), str(signed(cp, *cosigners)))


def flip_char(text: str, pos: int) -> str:
    return text[:pos] + chr(ord(text[pos]) ^ 1) + text[pos + 1 :]


def sig_with_blob(name: str, blob: str) -> str:
    return f"\u2014 {name} {blob}\n"


TEXT = "suyuan.example checkpoint\n42\n\nwith a blank line inside\n"
NOTE = Note(TEXT, (sign_note(TEXT, LOG_NAME, LOG_KEY),))
NOTE_STR = str(NOTE)


# --- signed notes: valid and broken ----------------------------------------------------------


def test_signed_note_verifies_and_has_the_spec_layout() -> None:
    line = NOTE.signatures[0].line()
    assert NOTE_STR == TEXT + "\n" + line
    assert line.startswith("\u2014 " + LOG_NAME + " ")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == LOG_VKEY.key_id and len(raw) == 4 + 64
    assert verify_note(parse_note(NOTE_STR), LOG_VKEY) == NOTE.signatures[0]


def test_note_text_split_is_at_the_last_blank_line() -> None:
    assert parse_note(NOTE_STR).text == TEXT


def test_note_with_wrong_key_is_rejected() -> None:
    other = crypto.verifier_key(LOG_NAME, SigningKey(seed("other")).public_key)
    with pytest.raises(NoteError, match="not signed by"):
        verify_note(NOTE, other)


def test_note_with_wrong_name_is_rejected() -> None:
    renamed = crypto.verifier_key("other.example/log", LOG_KEY.public_key)
    with pytest.raises(NoteError, match="not signed by"):
        verify_note(NOTE, renamed)


def test_key_with_colliding_name_and_id_but_other_key_fails_to_verify() -> None:
    impostor = VerifierKey(LOG_NAME, LOG_VKEY.key_id, 1, SigningKey(seed("x")).public_key)
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(NOTE, impostor)


@pytest.mark.parametrize("pos", [0, 10, len(TEXT) - 2])
def test_note_with_flipped_text_bit_is_rejected(pos: int) -> None:
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(parse_note(flip_char(NOTE_STR, pos)), LOG_VKEY)


@pytest.mark.parametrize("byte", [4, 20, 67])
def test_note_with_flipped_signature_bit_is_rejected(byte: int) -> None:
    sig = NOTE.signatures[0]
    raw = bytearray(sig.key_id + sig.signature)
    raw[byte] ^= 0x01
    bad = Note(TEXT, (NoteSignature(sig.name, bytes(raw[:4]), bytes(raw[4:])),))
    with pytest.raises(NoteError, match="does not verify|not signed by"):
        verify_note(parse_note(str(bad)), LOG_VKEY)


def test_every_truncation_of_a_note_is_rejected() -> None:
    for cut in range(len(NOTE_STR)):
        with pytest.raises(NoteError):
            verify_note(parse_note(NOTE_STR[:cut]), LOG_VKEY)


def test_note_without_blank_line_is_rejected() -> None:
    with pytest.raises(NoteError, match="blank line"):
        parse_note(TEXT.replace("\n\n", "\n") + NOTE.signatures[0].line())


@pytest.mark.parametrize(
    "blob",
    [
        "not base64!",
        "QUJD",  # decodes, but 3 bytes: no room for a key id and a signature
        "QUJDREU",  # missing padding
        "QUJDREV=",  # unused low bits set: a second spelling of "QUJDREU="
        "QUJDREU==",  # too much padding
        "QUJ DREU=",
        "",
    ],
)
def test_note_with_bad_or_non_canonical_base64_is_rejected(blob: str) -> None:
    with pytest.raises(NoteError):
        parse_note(TEXT + "\n" + sig_with_blob(LOG_NAME, blob))


@pytest.mark.parametrize(
    "data",
    [
        TEXT + "\n" + "- log sig\n",  # hyphen instead of em dash
        TEXT + "\n" + "\u2014log QUJDREU=\n",  # no space after the dash
        TEXT + "\n" + "\u2014  QUJDREU=\n",  # empty name
        TEXT + "\n" + "\u2014 a+b QUJDREU=\n",  # '+' in name
        TEXT + "\n" + "\u2014 a\u00a0b QUJDREU=\n",  # Unicode space in name
        TEXT + "\n" + "\u2014 name\n",  # no signature
        TEXT + "\n",  # no signature lines
        "\n\n" + NOTE.signatures[0].line(),  # empty text
        "no newline at all",
        TEXT.replace("inside", "in\tside") + "\n" + NOTE.signatures[0].line(),  # control char
        NOTE_STR.replace("\n", "\r\n"),
        NOTE_STR + "trailing garbage",
        NOTE_STR + "trailing garbage\n",
        NOTE_STR + "\n",
    ],
)
def test_malformed_note_is_rejected(data: str) -> None:
    with pytest.raises(NoteError):
        parse_note(data)


def test_signature_of_only_a_key_id_is_rejected() -> None:
    with pytest.raises(NoteError, match="too short"):
        parse_note(TEXT + "\n" + sig_with_blob(LOG_NAME, "QUJDRA=="))


def test_note_that_is_not_utf8_is_rejected() -> None:
    with pytest.raises(NoteError, match="UTF-8"):
        parse_note(NOTE_STR.encode() + b"\xff")
    with pytest.raises(NoteError, match="UTF-8"):
        parse_note("a\ud800\n\n" + NOTE.signatures[0].line())


def test_note_size_and_signature_count_are_bounded() -> None:
    lines = NOTE.signatures[0].line() * MAX_SIGNATURES
    assert len(parse_note(TEXT + "\n" + lines).signatures) == MAX_SIGNATURES
    with pytest.raises(NoteError, match="at most|more than"):
        parse_note(TEXT + "\n" + lines + NOTE.signatures[0].line())
    with pytest.raises(NoteError, match="larger than"):
        parse_note("a" * (1 << 20) + "\n\n" + NOTE.signatures[0].line())


def test_unknown_signatures_are_ignored_but_a_forged_known_one_rejects_the_note() -> None:
    stranger = sign_note(TEXT, "stranger.example", SigningKey(seed("stranger")))
    same_name_other_id = NoteSignature(LOG_NAME, b"\0\0\0\0", b"x" * 64)
    same_id_other_name = NoteSignature("other", LOG_VKEY.key_id, b"x" * 64)
    note = NOTE.with_signatures(stranger, same_name_other_id, same_id_other_name)
    assert verify_note(parse_note(str(note)), LOG_VKEY) == NOTE.signatures[0]
    forged = NoteSignature(LOG_NAME, LOG_VKEY.key_id, b"x" * 64)
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(note.with_signatures(forged), LOG_VKEY)


def test_sign_note_refuses_text_that_is_not_a_note_text() -> None:
    for text in ["no final newline", "", "\n", "tab\there\n"]:
        with pytest.raises(NoteError):
            sign_note(text, LOG_NAME, LOG_KEY)
    with pytest.raises(NoteError):
        sign_note(TEXT, "bad name", LOG_KEY)


def test_verify_note_refuses_a_cosignature_key() -> None:
    with pytest.raises(NoteError, match="type 0x01"):
        verify_note(NOTE, wvkey("w1"))


def test_signature_lines_parse_as_a_witness_response_body() -> None:
    cp = Checkpoint(LOG_NAME, 3, bytes(32))
    body = cosig(cp, "w1").line() + cosig(cp, "w2").line()
    assert parse_signature_lines(body) == (cosig(cp, "w1"), cosig(cp, "w2"))
    for bad in ["", body[:-1], body + "junk\n", "\n"]:
        with pytest.raises(NoteError):
            parse_signature_lines(bad)


# --- checkpoints ----------------------------------------------------------------------------

ROOT = hashlib.sha256(b"root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()


def test_checkpoint_body_has_the_spec_layout_and_parses_back() -> None:
    cp = Checkpoint("example.com/log", 20852163, ROOT, ("ext one", "ext-two"))
    assert cp.body() == f"example.com/log\n20852163\n{ROOT_B64}\next one\next-two\n"
    assert parse_checkpoint(cp.body()) == cp
    assert parse_checkpoint(f"o\n0\n{ROOT_B64}\n").size == 0


@pytest.mark.parametrize(
    "body",
    [
        f"o\n0123\n{ROOT_B64}\n",  # leading zero
        f"o\n00\n{ROOT_B64}\n",
        f"o\n-1\n{ROOT_B64}\n",
        f"o\n+1\n{ROOT_B64}\n",
        f"o\n 1\n{ROOT_B64}\n",
        f"o\n1_000\n{ROOT_B64}\n",
        f"o\n\uff11\n{ROOT_B64}\n",  # fullwidth digit one
        f"o\n{1 << 64}\n{ROOT_B64}\n",
        f"o\n\n{ROOT_B64}\n",
        f"\n1\n{ROOT_B64}\n",  # empty origin
        f"o\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"o\n1\n{ROOT_B64.rstrip('=')}\n",
        f"o\n1\n{ROOT_B64[:-2]}F=\n",  # non-canonical trailing bits
        f"o\n1\n{ROOT_B64}",  # no final newline
        f"o\n1\n{ROOT_B64}\n\n",  # empty extension line
        "o\n1\n",
        "",
    ],
)
def test_malformed_checkpoint_is_rejected(body: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(body)


def test_checkpoint_object_refuses_impossible_values() -> None:
    for kwargs in [
        {"origin": ""},
        {"origin": "a\nb"},
        {"size": -1},
        {"size": 1 << 64},
        {"size": True},
        {"root_hash": b"\0" * 31},
        {"extensions": ("",)},
        {"extensions": ("a\nb",)},
    ]:
        with pytest.raises(NoteError):
            replace(Checkpoint("o", 1, ROOT), **kwargs)


def test_open_checkpoint_verifies_key_and_origin() -> None:
    cp = Checkpoint(LOG_NAME, 5, ROOT)
    text = str(sign_checkpoint(cp, LOG_NAME, LOG_KEY))
    assert open_checkpoint(text, LOG_VKEY, LOG_NAME)[0] == cp
    assert open_checkpoint(text.encode(), LOG_VKEY)[0] == cp
    with pytest.raises(NoteError, match="origin"):
        open_checkpoint(text, LOG_VKEY, "other.example/log")
    other = crypto.verifier_key(LOG_NAME, SigningKey(seed("other")).public_key)
    with pytest.raises(NoteError, match="not signed by"):
        open_checkpoint(text, other, LOG_NAME)
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(text.replace("\n5\n", "\n6\n"), LOG_VKEY, LOG_NAME)
    with pytest.raises(NoteError):
        open_checkpoint(str(sign_note("not a checkpoint\n", LOG_NAME, LOG_KEY)), LOG_VKEY)


# --- cosignatures ---------------------------------------------------------------------------

CP = Checkpoint(LOG_NAME, 9, ROOT)


def test_cosignature_has_the_spec_message_layout_and_verifies() -> None:
    assert cosignature_message(CP.body(), 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + CP.body().encode()
    )
    sig = cosig(CP, "w1", 1679315147)
    assert sig.key_id == crypto.key_id(WITNESS_NAMES["w1"], WITNESS_KEYS["w1"].public_key, 4)
    assert sig.signature[:8] == (1679315147).to_bytes(8, "big") and len(sig.signature) == 72
    assert wvkey("w1").alg == ALG_COSIGNATURE
    assert verify_cosignature(parse_note(str(signed(CP).with_signatures(sig))), wvkey("w1")) == (
        1679315147
    )


def test_witness_that_cosigned_twice_gives_its_latest_timestamp() -> None:
    note = signed(CP).with_signatures(cosig(CP, "w1", 200), cosig(CP, "w1", 100))
    assert verify_cosignature(note, wvkey("w1")) == 200


def test_cosignature_by_an_unknown_witness_is_not_found() -> None:
    with pytest.raises(NoteError, match="no cosignature by witness"):
        verify_cosignature(signed(CP, "x"), wvkey("w1"))


def test_cosignature_over_another_checkpoint_is_rejected() -> None:
    other = Checkpoint(LOG_NAME, 10, ROOT)
    moved = signed(CP).with_signatures(cosig(other, "w1"))
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(moved, wvkey("w1"))


@pytest.mark.parametrize("byte", [0, 7, 8, 71])
def test_cosignature_with_a_flipped_bit_is_rejected(byte: int) -> None:
    sig = cosig(CP, "w1")
    raw = bytearray(sig.signature)
    raw[byte] ^= 0x01
    note = signed(CP).with_signatures(replace(sig, signature=bytes(raw)))
    with pytest.raises(NoteError, match="does not verify|2\\*\\*63"):
        verify_cosignature(note, wvkey("w1"))


def test_cosignature_with_a_timestamp_above_2_63_is_rejected() -> None:
    sig = cosig(CP, "w1")
    raw = bytes([sig.signature[0] | 0x80]) + sig.signature[1:]
    note = signed(CP).with_signatures(replace(sig, signature=raw))
    with pytest.raises(NoteError, match="timestamp above 2\\*\\*63-1"):
        verify_cosignature(note, wvkey("w1"))


def test_cosignature_of_wrong_length_is_rejected() -> None:
    sig = cosig(CP, "w1")
    note = signed(CP).with_signatures(replace(sig, signature=sig.signature[:-1]))
    with pytest.raises(NoteError, match="71 bytes"):
        verify_cosignature(note, wvkey("w1"))


def test_cosignature_checks_refuse_a_plain_ed25519_key_and_bad_timestamps() -> None:
    plain = crypto.verifier_key(WITNESS_NAMES["w1"], WITNESS_KEYS["w1"].public_key)
    with pytest.raises(NoteError, match="type 0x04"):
        verify_cosignature(signed(CP, "w1"), plain)
    for ts in [-1, 1 << 63, True]:
        with pytest.raises(NoteError):
            cosign(CP.body(), WITNESS_NAMES["w1"], WITNESS_KEYS["w1"], ts)  # type: ignore[arg-type]
    with pytest.raises(NoteError):
        cosignature_message("not a checkpoint\n", 1)


# --- tlog-proof -----------------------------------------------------------------------------


def test_tlog_proof_has_the_spec_layout() -> None:
    proof = make_proof(size=7, index=3)
    expected = (
        "c2sp.org/tlog-proof@v1\nindex 3\n"
        + "".join(base64.b64encode(h).decode() + "\n" for h in proof.path)
        + "\n"
        + proof.checkpoint
    )
    assert str(proof) == expected
    with_extra = replace(proof, extra=b"age-v1.2.1")
    assert str(with_extra).startswith("c2sp.org/tlog-proof@v1\nextra YWdlLXYxLjIuMQ==\nindex 3\n")


def test_tlog_proof_round_trips_with_and_without_extra() -> None:
    proof = make_proof()
    for p in [proof, replace(proof, extra=b"\x00\xff data")]:
        assert parse_tlog_proof(str(p)) == p
        assert parse_tlog_proof(str(p).encode()) == p
    single = make_proof(size=1, index=0)
    assert single.path == ()
    assert parse_tlog_proof(str(single)) == single


PROOF = make_proof()
PROOF_STR = str(PROOF)
HEAD, _, CHECKPOINT_NOTE = PROOF_STR.partition("\n\n")


@pytest.mark.parametrize(
    "text",
    [
        PROOF_STR.replace("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2"),
        PROOF_STR.replace("index 3", "index 03"),
        PROOF_STR.replace("index 3", "index  3"),
        PROOF_STR.replace("index 3", "index -3"),
        PROOF_STR.replace("index 3", "idx 3"),
        PROOF_STR.replace("index 3\n", ""),
        PROOF_STR.replace("index 3", "index 3\nextra AAAA"),  # extra after index
        PROOF_STR.replace("index 3", "extra \nindex 3"),  # empty extra
        PROOF_STR.replace("index 3", "extra !!\nindex 3"),
        HEAD + "\n" + base64.b64encode(b"\0" * 31).decode() + "\n\n" + CHECKPOINT_NOTE,
        HEAD + "\nnot-base64\n\n" + CHECKPOINT_NOTE,
        HEAD + "\n" + CHECKPOINT_NOTE,  # missing blank line
        HEAD + "\n\n",  # no checkpoint
        PROOF_STR + "trailing garbage",
        PROOF_STR + "trailing garbage\n",
        PROOF_STR + "\n",
        PROOF_STR[:-1],  # truncated
        HEAD + "\n\n" + CHECKPOINT_NOTE.replace(LOG_NAME + "\n", "", 1),  # not a checkpoint
    ],
)
def test_malformed_tlog_proof_is_rejected(text: str) -> None:
    with pytest.raises(NoteError):
        parse_tlog_proof(text)


def test_tlog_proof_object_refuses_impossible_values() -> None:
    for kwargs in [
        {"index": -1},
        {"index": 1 << 64},
        {"path": (b"\0" * 31,)},
        {"path": (b"\0" * 32,) * 65},
        {"extra": b""},
        {"checkpoint": "not a note\n"},
    ]:
        with pytest.raises(NoteError):
            replace(PROOF, **kwargs)


# --- verifying proofs offline ---------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
def test_proof_of_every_leaf_verifies(size: int) -> None:
    policy = make_policy()
    leaves = leaves_of(size)
    for index in range(size):
        result = verify_tlog_proof(str(make_proof(size, index)), leaves[index], policy)
        assert result.index == index
        assert result.checkpoint.size == size
        assert result.witnesses == (WITNESS_NAMES["w1"], WITNESS_NAMES["w2"])


def test_proof_with_a_flipped_path_hash_is_rejected() -> None:
    for n in range(len(PROOF.path)):
        path = list(PROOF.path)
        path[n] = bytes([path[n][0] ^ 1]) + path[n][1:]
        with pytest.raises(InclusionProofError, match="index 3"):
            verify_tlog_proof(replace(PROOF, path=tuple(path)), b"entry 3", make_policy())


def test_proof_with_a_wrong_index_is_rejected() -> None:
    for index in [2, 4, 6, 7, 100]:
        with pytest.raises(InclusionProofError):
            verify_tlog_proof(replace(PROOF, index=index), b"entry 3", make_policy())


def test_proof_of_a_wrong_leaf_is_rejected() -> None:
    for leaf in [b"entry 2", b"entry 3 ", b""]:
        with pytest.raises(InclusionProofError, match="not proven"):
            verify_tlog_proof(PROOF, leaf, make_policy())


def test_proof_with_a_missing_or_extra_hash_is_rejected() -> None:
    for path in [PROOF.path[:-1], PROOF.path + (bytes(32),)]:
        with pytest.raises(InclusionProofError):
            verify_tlog_proof(replace(PROOF, path=path), b"entry 3", make_policy())


def test_proof_text_with_trailing_garbage_is_rejected() -> None:
    with pytest.raises(NoteError):
        verify_tlog_proof(PROOF_STR + "— x QUJDREU=\n" + "garbage\n", b"entry 3", make_policy())


def test_proof_with_a_checkpoint_by_another_log_key_is_rejected() -> None:
    other_key = crypto.verifier_key(LOG_NAME, SigningKey(seed("other log")).public_key)
    with pytest.raises(NoteError, match="checkpoint rejected: note is not signed by"):
        verify_tlog_proof(PROOF, b"entry 3", make_policy(log=other_key))


def test_proof_with_an_altered_checkpoint_is_rejected() -> None:
    altered = PROOF.checkpoint.replace("\n7\n", "\n8\n", 1)
    with pytest.raises(NoteError, match="does not verify"):
        verify_tlog_proof(replace(PROOF, checkpoint=altered), b"entry 3", make_policy())


def test_proof_from_a_log_with_the_wrong_origin_is_rejected() -> None:
    other_name = "other.example/log"
    cp = Checkpoint(other_name, 7, parse_checkpoint(parse_note(PROOF.checkpoint).text).root_hash)
    note = sign_checkpoint(cp, LOG_NAME, LOG_KEY).with_signatures(cosig(cp, "w1"), cosig(cp, "w2"))
    with pytest.raises(NoteError, match="origin 'other.example/log' is not the policy's"):
        verify_tlog_proof(replace(PROOF, checkpoint=str(note)), b"entry 3", make_policy())


def test_cosignature_by_an_unknown_witness_does_not_count() -> None:
    proof = make_proof(cosigners=("w1", "x"))
    with pytest.raises(NoteError, match="quorum not met.*regulator.example/w1"):
        verify_tlog_proof(proof, b"entry 3", make_policy())


def test_proof_without_quorum_is_rejected_and_quorum_none_needs_no_witness() -> None:
    with pytest.raises(NoteError, match="quorum not met.*no policy witness.*2 of"):
        verify_tlog_proof(make_proof(cosigners=()), b"entry 3", make_policy())
    assert (
        verify_tlog_proof(make_proof(cosigners=()), b"entry 3", make_policy(quorum=0)).witnesses
        == ()
    )
    assert verify_tlog_proof(make_proof(cosigners=("w3",)), b"entry 3", make_policy(quorum=1))


def test_a_duplicated_witness_is_counted_once() -> None:
    proof = make_proof(cosigners=("w1",))
    note = parse_note(proof.checkpoint)
    cp = parse_checkpoint(note.text)
    twice = note.with_signatures(cosig(cp, "w1", TIMESTAMP + 60))
    assert len(twice.signatures) == 3
    with pytest.raises(NoteError, match="quorum not met"):
        verify_tlog_proof(replace(proof, checkpoint=str(twice)), b"entry 3", make_policy())
    same_line_twice = str(note) + note.signatures[-1].line()
    with pytest.raises(NoteError, match="quorum not met"):
        verify_tlog_proof(replace(proof, checkpoint=same_line_twice), b"entry 3", make_policy())


def test_a_bad_cosignature_by_a_policy_witness_names_the_witness() -> None:
    proof = make_proof(cosigners=("w1", "w2", "w3"))
    note = parse_note(proof.checkpoint)
    sigs = list(note.signatures)
    sigs[2] = replace(sigs[2], signature=sigs[2].signature[:8] + bytes(64))
    bad = Note(note.text, tuple(sigs))
    with pytest.raises(NoteError, match="witness association.example/w2.*does not verify"):
        verify_tlog_proof(replace(proof, checkpoint=str(bad)), b"entry 3", make_policy())


# --- policies -------------------------------------------------------------------------------


def test_simple_policy_has_the_spec_layout() -> None:
    policy = make_policy()
    w = [str(wvkey(s)) for s in ("w1", "w2", "w3")]
    assert str(policy) == (
        f"log {LOG_VKEY}\n"
        f"witness {WITNESS_NAMES['w1']} {w[0]}\n"
        f"witness {WITNESS_NAMES['w2']} {w[1]}\n"
        f"witness {WITNESS_NAMES['w3']} {w[2]}\n"
        f"group quorum 2 {WITNESS_NAMES['w1']} {WITNESS_NAMES['w2']} {WITNESS_NAMES['w3']}\n"
        "quorum quorum\n"
    )
    assert parse_policy(str(policy)) == policy


@pytest.mark.parametrize("quorum", [0, 1, 2, 3])
def test_policy_round_trips_for_every_quorum(quorum: int) -> None:
    policy = make_policy(quorum=quorum)
    assert parse_policy(str(policy)) == policy
    one = make_policy(witnesses=(wvkey("w1"),), quorum=min(quorum, 1))
    assert parse_policy(str(one)) == one


def x_and_y_policy_text() -> str:
    keys = {s: SigningKey(seed("policy " + s)) for s in ("X1", "X2", "X3", "Y1", "Y2", "Y3")}
    vk = {s: witness_verifier_key(f"{s.lower()}.example", k.public_key) for s, k in keys.items()}
    # The example of c2sp.org/tlog-policy, with real keys, comments, tabs and blank lines.
    return (
        "# Suyuan test policy\n"
        f"log {LOG_VKEY} https://log.suyuan.example/\n"
        "\n"
        f"witness X1 {vk['X1']}\n"
        f"witness\tX2   {vk['X2']} https://x2.example/\n"
        f"  witness X3 {vk['X3']}  \n"
        "group X-witnesses 2 X1 X2 X3\n"
        "   # indented comment\n"
        f"witness Y1 {vk['Y1']}\n"
        f"witness Y2 {vk['Y2']}\n"
        f"witness Y3 {vk['Y3']}\n"
        "group Y-witnesses any Y1 Y2 Y3\n"
        "\n"
        "group X-and-Y all X-witnesses Y-witnesses\n"
        "quorum X-and-Y\n"
    )


def test_policy_with_groups_parses_evaluates_and_round_trips() -> None:
    policy = parse_policy(x_and_y_policy_text())
    assert policy.origin == LOG_NAME and policy.log_url == "https://log.suyuan.example/"
    assert policy.witness_names == ("X1", "X2", "X3", "Y1", "Y2", "Y3")
    assert policy.witness_urls[1] == "https://x2.example/"
    assert policy.groups == (
        WitnessGroup("X-witnesses", 2, ("X1", "X2", "X3")),
        WitnessGroup("Y-witnesses", 1, ("Y1", "Y2", "Y3")),
    )
    assert (policy.quorum, policy.quorum_members) == (2, ("X-witnesses", "Y-witnesses"))
    assert policy.is_satisfied({"X1", "X3", "Y2"})
    assert not policy.is_satisfied({"X1", "Y1", "Y2", "Y3"})
    assert not policy.is_satisfied({"X1", "X2", "X3"})
    assert parse_policy(str(policy)) == policy
    assert parse_policy(x_and_y_policy_text().encode()) == policy


def test_proof_is_checked_against_a_group_quorum() -> None:
    text = "".join(
        line
        for line in x_and_y_policy_text().splitlines(keepends=True)
        if not line.lstrip().startswith("witness X1")
    ).replace("witness\tX2", f"witness X1 {wvkey('w1')}\nwitness\tX2")
    policy = parse_policy(text)
    leaves = leaves_of(4)
    cp = Checkpoint(LOG_NAME, 4, merkle.root([merkle.leaf_hash(leaf) for leaf in leaves]))
    path = tuple(merkle.inclusion_proof(1, 4, fetch_for(leaves)))
    y1 = SigningKey(seed("policy Y1"))
    x2 = SigningKey(seed("policy X2"))
    base = signed(cp, "w1")
    y1_sig = cosign(cp.body(), "y1.example", y1, TIMESTAMP)
    x2_sig = cosign(cp.body(), "x2.example", x2, TIMESTAMP)
    with pytest.raises(NoteError, match="quorum not met"):
        verify_tlog_proof(TlogProof(1, path, str(base.with_signatures(y1_sig))), leaves[1], policy)
    ok = verify_tlog_proof(
        TlogProof(1, path, str(base.with_signatures(y1_sig, x2_sig))), leaves[1], policy
    )
    assert ok.witnesses == (WITNESS_NAMES["w1"], "x2.example", "y1.example")


def test_policy_quorum_naming_a_single_witness_requires_that_witness() -> None:
    text = (
        f"log {LOG_VKEY}\nwitness a {wvkey('w1')}\nwitness b {wvkey('w2')}\n"
        "group ab any a b\nquorum b\n"
    )
    policy = parse_policy(text)
    assert (policy.quorum, policy.quorum_members) == (1, ("b",))
    assert policy.is_satisfied({"b"}) and not policy.is_satisfied({"a"})
    assert parse_policy(str(policy)) == policy


def test_policy_quorum_group_also_used_by_another_group_round_trips() -> None:
    text = (
        f"log {LOG_VKEY}\nwitness a {wvkey('w1')}\nwitness b {wvkey('w2')}\n"
        f"witness c {wvkey('w3')}\ngroup ab any a b\ngroup abc all ab c\nquorum ab\n"
    )
    policy = parse_policy(text)
    assert (policy.quorum, policy.quorum_members) == (1, ("ab",))
    assert policy.is_satisfied({"a"}) and not policy.is_satisfied({"c"})
    assert parse_policy(str(policy)) == policy


W1, W2 = wvkey("w1"), wvkey("w2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"log {LOG_VKEY}\n", "no quorum line"),
        ("quorum none\n", "0 logs"),
        (
            f"log {LOG_VKEY}\nlog {crypto.verifier_key('l2', W1.public_key)}\nquorum none\n",
            "2 logs",
        ),
        (f"log {LOG_VKEY}\nquorum none\nquorum none\n", "exactly one quorum"),
        (f"log {LOG_VKEY}\nquorum a\n", "not defined"),
        (f"log {LOG_VKEY}\nwitnes a {W1}\nquorum none\n", "unknown keyword"),
        (f"log {LOG_VKEY}\nwitness a {W1}\nwitness a {W2}\nquorum a\n", "already defined"),
        (f"log {LOG_VKEY}\nwitness none {W1}\nquorum none\n", "predefined"),
        (
            f"log {LOG_VKEY}\nwitness a {W1}\n"
            f"witness b {witness_verifier_key('renamed', WITNESS_KEYS['w1'].public_key)}\n"
            "quorum a\n",
            "same public key",
        ),
        (
            f"log {LOG_VKEY}\nwitness a {crypto.verifier_key('a', W1.public_key)}\nquorum a\n",
            "0x04",
        ),
        (f"log {W1}\nquorum none\n", "0x01"),
        (f"log {LOG_VKEY}\nwitness a\nquorum none\n", "expected"),
        (f"log {LOG_VKEY}\nwitness a {W1} url extra\nquorum none\n", "expected"),
        (f"log {LOG_VKEY}\nwitness a {str(W1)[:-2]}\nquorum none\n", "witness a key"),
        (f"log {LOG_VKEY}\nwitness a {W1}\ngroup g any a b\nquorum g\n", "not a witness or group"),
        (f"log {LOG_VKEY}\nwitness a {W1}\ngroup g 2 a\nquorum g\n", "threshold"),
        (f"log {LOG_VKEY}\nwitness a {W1}\ngroup g 0 a\nquorum g\n", "threshold"),
        (f"log {LOG_VKEY}\nwitness a {W1}\ngroup g 01 a\nquorum g\n", "threshold"),
        (f"log {LOG_VKEY}\nwitness a {W1}\ngroup g any\nquorum g\n", "expected"),
        (f"log {LOG_VKEY}\nwitness a {W1}\ngroup g any none\nquorum g\n", "not a witness"),
        (
            f"log {LOG_VKEY}\nwitness a {W1}\nwitness b {W2}\n"
            "group g any a b\ngroup h any a\nquorum g\n",
            "already a member",
        ),
        (f"log {LOG_VKEY}\nwitness a {W1}\ngroup g any a a\nquorum g\n", "already a member"),
        (f"log {LOG_VKEY}\r\nquorum none\r\n", "control character"),
        (f"log {LOG_VKEY}\nquorum none # trailing comment\n", "expected"),
    ],
)
def test_malformed_policy_is_rejected_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(MalformedInput, match=message):
        parse_policy(text)


def test_policy_tolerates_a_missing_final_newline_and_opaque_bytes() -> None:
    policy = make_policy(quorum=1)
    assert parse_policy(str(policy).rstrip("\n")) == policy
    assert parse_policy(b"# caf\xe9 \xff\n" + str(policy).encode()) == policy


def test_policy_object_refuses_inconsistent_fields() -> None:
    for kwargs in [
        {"origin": "other.example/log"},
        {"quorum": 4},
        {"quorum": -1},
        {"log": W1},
        {"witnesses": (W1, crypto.verifier_key("w", W2.public_key))},
        {"witnesses": (W1, witness_verifier_key("again", W1.public_key))},
        {"witness_names": ("a", "a", "b")},
        {"witness_names": ("a", "b")},
        {"witness_names": ("a", "has space", "c")},
        {"quorum_members": ("nobody",), "quorum": 1},
        {"groups": (WitnessGroup("g", 1, ("missing",)),)},
    ]:
        with pytest.raises(MalformedInput):
            make_policy(**kwargs)


# --- round trips (property based) -----------------------------------------------------------

note_chars = st.characters(min_codepoint=0x20, exclude_categories=("Cs",))
key_names = st.text(
    st.characters(min_codepoint=0x21, exclude_categories=("Cs", "Zs", "Zl", "Zp")), min_size=1
).filter(lambda s: "+" not in s and not any(ch.isspace() for ch in s))
note_texts = (
    st.lists(st.text(note_chars, max_size=20), min_size=1, max_size=6)
    .map(lambda lines: "\n".join(lines) + "\n")
    .filter(lambda text: text.strip("\n") != "")
)
signatures = st.builds(
    NoteSignature,
    name=key_names,
    key_id=st.binary(min_size=4, max_size=4),
    signature=st.binary(min_size=1, max_size=100),
)
single_lines = st.text(note_chars, min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(text=note_texts, sigs=st.lists(signatures, min_size=1, max_size=5))
def test_note_format_then_parse_gives_the_same_note(text: str, sigs: list[NoteSignature]) -> None:
    note = Note(text, tuple(sigs))
    assert parse_note(str(note)) == note
    assert parse_note(str(note).encode()) == note


@settings(max_examples=50, deadline=None)
@given(text=note_texts, name=key_names.filter(str.isprintable))
def test_any_note_text_signed_verifies(text: str, name: str) -> None:
    key = SigningKey(seed(name))
    note = Note(text, (sign_note(text, name, key),))
    assert verify_note(parse_note(str(note)), crypto.verifier_key(name, key.public_key))


@settings(max_examples=150, deadline=None)
@given(
    origin=single_lines,
    size=st.integers(0, (1 << 64) - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(single_lines, max_size=3),
)
def test_checkpoint_format_then_parse_gives_the_same_checkpoint(
    origin: str, size: int, root: bytes, extensions: list[str]
) -> None:
    cp = Checkpoint(origin, size, root, tuple(extensions))
    assert parse_checkpoint(cp.body()) == cp


@settings(max_examples=100, deadline=None)
@given(
    index=st.integers(0, (1 << 64) - 1),
    path=st.lists(st.binary(min_size=32, max_size=32), max_size=64),
    extra=st.none() | st.binary(min_size=1, max_size=50),
    timestamp=st.integers(0, (1 << 63) - 1),
)
def test_tlog_proof_format_then_parse_gives_the_same_proof(
    index: int, path: list[bytes], extra: bytes | None, timestamp: int
) -> None:
    cp = Checkpoint(LOG_NAME, 5, ROOT)
    note = sign_checkpoint(cp, LOG_NAME, LOG_KEY).with_signatures(cosig(cp, "w1", timestamp))
    proof = TlogProof(index, tuple(path), str(note), extra)
    assert parse_tlog_proof(str(proof)) == proof
    assert verify_cosignature(parse_note(proof.checkpoint), wvkey("w1")) == timestamp


policy_names = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_categories=("Cc", "Zs")),
    min_size=1,
    max_size=8,
).filter(lambda s: s != "none" and not s.startswith("quorum"))


@settings(max_examples=100, deadline=None)
@given(data=st.data(), count=st.integers(0, 4))
def test_policy_format_then_parse_gives_the_same_policy(data: st.DataObject, count: int) -> None:
    names = data.draw(st.lists(policy_names, min_size=count, max_size=count, unique=True))
    keys = tuple(
        witness_verifier_key(f"w{i}.example", SigningKey(seed(f"p{i}")).public_key)
        for i in range(count)
    )
    urls = data.draw(
        st.lists(st.none() | st.just("https://w.example/"), min_size=count, max_size=count)
    )
    policy = Policy(
        log=LOG_VKEY,
        origin=LOG_NAME,
        witnesses=keys,
        quorum=data.draw(st.integers(0, count)),
        witness_names=tuple(names),
        witness_urls=tuple(urls),
        log_url=data.draw(st.none() | st.just("https://log.example/")),
    )
    assert parse_policy(str(policy)) == policy
