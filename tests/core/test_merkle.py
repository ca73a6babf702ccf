"""Tests for suyuan.merkle: RFC 9162 hashes, proofs and compact ranges, by vectors and by property."""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suyuan import merkle
from suyuan.errors import (
    ConsistencyProofError,
    InclusionProofError,
    MalformedInput,
    ProofError,
    VerificationError,
)
from suyuan.merkle import EMPTY_ROOT, HASH_SIZE, CompactRange, NodeId

# --------------------------------------------------------------------------------------------
# The shared corpus (read in place, never copied into the project)

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
VECTORS_FILE = CORPUS / "merkle" / "merkle_vectors.json"


def _load_vectors() -> dict[str, Any] | None:
    if not VECTORS_FILE.is_file():
        return None
    return json.loads(VECTORS_FILE.read_text(encoding="utf-8"))


VECTORS = _load_vectors()


def vector_cases(select: Callable[[dict[str, Any]], list[Any]], name: Callable[[Any], str]) -> list:
    """Parametrize over corpus entries, or one cleanly skipped case when the corpus is absent."""
    if VECTORS is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no corpus at {VECTORS_FILE}"))]
    return [pytest.param(case, id=name(case)) for case in select(VECTORS)]


@pytest.fixture
def vectors() -> dict[str, Any]:
    if VECTORS is None:
        pytest.skip(f"no corpus at {VECTORS_FILE}")
    return VECTORS


def unhex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def unb64(values: list[str] | None) -> list[bytes]:
    # The golden probe files write an empty proof as JSON null.
    return [base64.b64decode(v, validate=True) for v in values or []]


def reference_tree_nodes(vectors: dict[str, Any]) -> dict[NodeId, bytes]:
    """The corpus' node hashes of the 8-leaf reference tree, keyed by (level, index)."""
    levels = vectors["rfc6962_reference_tree"]["node_hashes_by_level_hex"]
    return {
        (level, index): bytes.fromhex(h)
        for level, hashes in enumerate(levels)
        for index, h in enumerate(hashes)
    }


def fetch_from(nodes: Mapping[NodeId, bytes]) -> Callable[[Collection[NodeId]], dict]:
    """A storage callback answering from ``nodes``."""
    return lambda ids: {node: nodes[node] for node in ids}


def reference_root(vectors: dict[str, Any], size: int) -> bytes:
    return bytes.fromhex(vectors["rfc6962_reference_tree"]["roots_by_tree_size_hex"][str(size)])


# --------------------------------------------------------------------------------------------
# An independent reference: RFC 9162 §2.1 written as literally as the text, over hashlib.

MAX_SIZE = 2048


def ref_split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


REF_LEAVES = [hashlib.sha256(b"\x00" + b"leaf %d" % i).digest() for i in range(MAX_SIZE)]


@functools.cache
def ref_mth(lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) by the RFC recursion."""
    if hi == lo:
        return hashlib.sha256(b"").digest()
    if hi - lo == 1:
        return REF_LEAVES[lo]
    k = ref_split(hi - lo)
    return hashlib.sha256(b"\x01" + ref_mth(lo, lo + k) + ref_mth(lo + k, hi)).digest()


def ref_path(m: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """PATH(m, D[lo:hi]) as the leaf ranges of its elements (m absolute)."""
    if hi - lo == 1:
        return []
    k = ref_split(hi - lo)
    if m < lo + k:
        return ref_path(m, lo, lo + k) + [(lo + k, hi)]
    return ref_path(m, lo + k, hi) + [(lo, lo + k)]


def ref_subproof(m: int, lo: int, hi: int, b: bool) -> list[tuple[int, int]]:
    """SUBPROOF(m, D[lo:hi], b) as the leaf ranges of its elements (m relative to lo)."""
    n = hi - lo
    if m == n:
        return [] if b else [(lo, hi)]
    k = ref_split(n)
    if m <= k:
        return ref_subproof(m, lo, lo + k, b) + [(lo + k, hi)]
    return ref_subproof(m - k, lo + k, hi, False) + [(lo, lo + k)]


ALL_NODES: dict[NodeId, bytes] = {
    (level, index): ref_mth(index << level, (index + 1) << level)
    for level in range(MAX_SIZE.bit_length())
    for index in range(MAX_SIZE >> level)
}


def formula(lo: int, hi: int, known: Mapping[tuple[int, int], object]) -> object:
    """The shape of MTH(D[lo:hi]) as nested pairs over the opaque values in ``known``.

    A verifier sees proof hashes as opaque values: two claims with the same formula over the
    same proof are indistinguishable to it, and different formulas give different roots.
    """
    if (lo, hi) in known:
        return known[(lo, hi)]
    if hi - lo == 1:
        return ("unproven leaf", lo)
    k = ref_split(hi - lo)
    return (formula(lo, lo + k, known), formula(lo + k, hi, known))


def inclusion_formula(index: int, size: int) -> object:
    known: dict[tuple[int, int], object] = {r: i for i, r in enumerate(ref_path(index, 0, size))}
    known[(index, index + 1)] = "leaf"
    return formula(0, size, known)


def consistency_formulas(size1: int, size2: int) -> tuple[object, object]:
    known: dict[tuple[int, int], object] = {
        r: i for i, r in enumerate(ref_subproof(size1, 0, size2, True))
    }
    if size1 & (size1 - 1) == 0:
        known[(0, size1)] = "root1"
    return formula(0, size1, known), formula(0, size2, known)


class RecordingStore:
    """A node store over ALL_NODES that records fetches and checks what the generator asks."""

    def __init__(self, size: int, drop: Collection[NodeId] = ()) -> None:
        self.size = size
        self.drop = set(drop)
        self.calls: list[list[NodeId]] = []

    def fetch(self, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        ids = list(ids)
        self.calls.append(ids)
        assert len(ids) == len(set(ids)), f"duplicate ids in {ids}"
        for level, index in ids:
            assert 0 <= index and (index + 1) << level <= self.size, (
                f"node {(level, index)} is not a complete subtree of a tree of size {self.size}"
            )
        return {node: ALL_NODES[node] for node in ids if node not in self.drop}


def flip_bit(h: bytes, bit: int) -> bytes:
    changed = bytearray(h)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


# Sizes near powers of two are where the right edge changes shape; weight them in.
EDGE_SIZES = sorted(
    {
        s
        for p in range(MAX_SIZE.bit_length())
        for s in (2**p - 1, 2**p, 2**p + 1)
        if 0 < s <= MAX_SIZE
    }
)
tree_sizes = st.one_of(st.integers(1, MAX_SIZE), st.sampled_from(EDGE_SIZES))
hash_bits = st.integers(0, HASH_SIZE * 8 - 1)
other_hashes = st.binary(min_size=HASH_SIZE, max_size=HASH_SIZE)
PROPERTY = settings(max_examples=60, deadline=None)


@dataclasses.dataclass(frozen=True)
class InclusionCase:
    leaf_hash: bytes
    index: int
    size: int
    proof: list[bytes]
    root: bytes

    def verify(self, **overrides: Any) -> None:
        case = dataclasses.replace(self, **overrides)
        assert (
            merkle.verify_inclusion(case.leaf_hash, case.index, case.size, case.proof, case.root)
            is None
        )


@dataclasses.dataclass(frozen=True)
class ConsistencyCase:
    size1: int
    size2: int
    proof: list[bytes]
    root1: bytes
    root2: bytes

    def verify(self, **overrides: Any) -> None:
        case = dataclasses.replace(self, **overrides)
        assert (
            merkle.verify_consistency(case.size1, case.size2, case.proof, case.root1, case.root2)
            is None
        )


@st.composite
def inclusion_cases(draw: st.DrawFn) -> InclusionCase:
    size = draw(tree_sizes)
    index = draw(st.one_of(st.integers(0, size - 1), st.sampled_from([0, size - 1])))
    store = RecordingStore(size)
    proof = merkle.inclusion_proof(index, size, store.fetch)
    return InclusionCase(REF_LEAVES[index], index, size, proof, ref_mth(0, size))


@st.composite
def consistency_cases(draw: st.DrawFn) -> ConsistencyCase:
    size2 = draw(st.one_of(st.integers(2, MAX_SIZE), st.sampled_from(EDGE_SIZES[1:])))
    size1 = draw(st.one_of(st.integers(1, size2 - 1), st.sampled_from([1, size2 - 1])))
    store = RecordingStore(size2)
    proof = merkle.consistency_proof(size1, size2, store.fetch)
    return ConsistencyCase(size1, size2, proof, ref_mth(0, size1), ref_mth(0, size2))


# --------------------------------------------------------------------------------------------
# Corpus: the RFC 6962 reference tree


def test_hashes_of_the_reference_leaves_match_the_corpus(vectors: dict[str, Any]) -> None:
    tree = vectors["rfc6962_reference_tree"]
    leaves = unhex(tree["leaf_inputs_hex"])
    assert [merkle.leaf_hash(leaf) for leaf in leaves] == unhex(tree["leaf_hashes_hex"])


def test_node_hashes_of_the_reference_tree_match_the_corpus_at_every_level(
    vectors: dict[str, Any],
) -> None:
    levels = [
        unhex(level) for level in vectors["rfc6962_reference_tree"]["node_hashes_by_level_hex"]
    ]
    for level in range(1, len(levels)):
        below = levels[level - 1]
        computed = [
            merkle.node_hash(below[2 * i], below[2 * i + 1]) for i in range(len(below) // 2)
        ]
        assert computed == levels[level], f"level {level}"


@pytest.mark.parametrize("size", range(9))
def test_root_of_each_reference_tree_size_matches_the_corpus(
    vectors: dict[str, Any], size: int
) -> None:
    leaf_hashes = unhex(vectors["rfc6962_reference_tree"]["leaf_hashes_hex"])[:size]
    assert merkle.root(leaf_hashes) == reference_root(vectors, size)
    assert CompactRange.load(
        size, fetch_from(reference_tree_nodes(vectors))
    ).root() == reference_root(vectors, size)


def test_empty_root_is_sha256_of_the_empty_string(vectors: dict[str, Any]) -> None:
    empty = bytes.fromhex(vectors["rfc6962_reference_tree"]["empty_root_hex"])
    assert EMPTY_ROOT == empty == merkle.root([]) == CompactRange().root()


def test_appending_the_reference_leaves_reports_exactly_the_corpus_nodes(
    vectors: dict[str, Any],
) -> None:
    compact = CompactRange()
    reported: dict[NodeId, bytes] = {}
    for h in unhex(vectors["rfc6962_reference_tree"]["leaf_hashes_hex"]):
        for node, value in compact.append(h):
            assert node not in reported, f"node {node} reported twice"
            reported[node] = value
    assert reported == reference_tree_nodes(vectors)


# --------------------------------------------------------------------------------------------
# Corpus: proof tables and golden probes


def _proof_vector_name(case: dict[str, Any]) -> str:
    if "leaf_index" in case:
        return f"leaf{case['leaf_index']}-size{case['tree_size']}"
    return f"{case['size1']}-to-{case['size2']}"


@pytest.mark.parametrize(
    "case", vector_cases(lambda v: v["inclusion_proofs"]["vectors"], _proof_vector_name)
)
def test_inclusion_proof_table_entry_is_generated_and_verifies(
    vectors: dict[str, Any], case: dict[str, Any]
) -> None:
    index, size = case["leaf_index"], case["tree_size"]
    expected = unhex(case["proof_hex"])
    nodes = reference_tree_nodes(vectors)
    assert merkle.inclusion_proof(index, size, fetch_from(nodes)) == expected
    leaf = bytes.fromhex(vectors["rfc6962_reference_tree"]["leaf_hashes_hex"][index])
    root = reference_root(vectors, size)
    assert merkle.verify_inclusion(leaf, index, size, expected, root) is None
    assert merkle.root_from_inclusion_proof(leaf, index, size, expected) == root


@pytest.mark.parametrize(
    "case", vector_cases(lambda v: v["consistency_proofs"]["vectors"], _proof_vector_name)
)
def test_consistency_proof_table_entry_is_generated_and_verifies(
    vectors: dict[str, Any], case: dict[str, Any]
) -> None:
    size1, size2 = case["size1"], case["size2"]
    expected = unhex(case["proof_hex"])
    nodes = reference_tree_nodes(vectors)
    assert merkle.consistency_proof(size1, size2, fetch_from(nodes)) == expected
    root1, root2 = reference_root(vectors, size1), reference_root(vectors, size2)
    assert merkle.verify_consistency(size1, size2, expected, root1, root2) is None


@pytest.mark.parametrize(
    "probe",
    vector_cases(lambda v: v["golden_probe_files"]["happy_path_inclusion"], lambda p: p["file"]),
)
def test_golden_inclusion_probe_happy_path_verifies(
    vectors: dict[str, Any], probe: dict[str, Any]
) -> None:
    leaf, root = unb64([probe["leafHash"]])[0], unb64([probe["root"]])[0]
    index, size, proof = probe["leafIdx"], probe["treeSize"], unb64(probe["proof"])
    assert merkle.verify_inclusion(leaf, index, size, proof, root) is None
    reference_leaves = unhex(vectors["rfc6962_reference_tree"]["leaf_hashes_hex"])
    if root == reference_root(vectors, size) and leaf == reference_leaves[index]:
        # Probes over the reference tree are also what the generator must produce.
        nodes = reference_tree_nodes(vectors)
        assert merkle.inclusion_proof(index, size, fetch_from(nodes)) == proof


@pytest.mark.parametrize(
    "probe",
    vector_cases(lambda v: v["golden_probe_files"]["happy_path_consistency"], lambda p: p["file"]),
)
def test_golden_consistency_probe_happy_path_verifies(
    vectors: dict[str, Any], probe: dict[str, Any]
) -> None:
    size1, size2, proof = probe["size1"], probe["size2"], unb64(probe["proof"])
    root1, root2 = unb64([probe["root1"], probe["root2"]])
    assert merkle.verify_consistency(size1, size2, proof, root1, root2) is None
    assert (root1, root2) == (reference_root(vectors, size1), reference_root(vectors, size2))
    nodes = reference_tree_nodes(vectors)
    assert merkle.consistency_proof(size1, size2, fetch_from(nodes)) == proof


@pytest.mark.parametrize("entry", vector_cases(lambda v: v["misc"], lambda m: m["what"][:40]))
def test_tree_note_root_is_the_leaf_hash_of_its_single_record(entry: dict[str, Any]) -> None:
    # The note's size line is arbitrary; its root line is RecordHash(record) = leaf hash.
    root_line = entry["tree_note"].split("\n")[2]
    record_hash = merkle.leaf_hash(entry["record"].encode())
    assert base64.b64decode(root_line, validate=True) == record_hash
    assert merkle.root([record_hash]) == record_hash


# --------------------------------------------------------------------------------------------
# Primitives and range decomposition


def test_node_hash_refuses_children_that_are_not_32_bytes() -> None:
    h = merkle.leaf_hash(b"x")
    with pytest.raises(MalformedInput):
        merkle.node_hash(h[:-1], h)
    with pytest.raises(MalformedInput):
        merkle.node_hash(h, h + b"\x00")


def test_root_refuses_a_leaf_hash_that_is_not_32_bytes() -> None:
    with pytest.raises(MalformedInput, match="leaf hash 1"):
        merkle.root([REF_LEAVES[0], b"short"])


def test_root_matches_the_rfc_recursion_for_every_size_up_to_300() -> None:
    for size in range(301):
        assert merkle.root(REF_LEAVES[:size]) == ref_mth(0, size), size


def test_range_nodes_tile_any_range_with_aligned_complete_subtrees() -> None:
    for start in range(65):
        for end in range(start, 65):
            nodes = merkle.range_nodes(start, end)
            at = start
            for level, index in nodes:
                assert index << level == at, (start, end, nodes)
                at += 1 << level
            assert at == end, (start, end, nodes)


def test_range_nodes_of_rfc_subtrees_are_largest_first_and_fold_to_the_subtree_hash() -> None:
    for size in range(1, 130):
        width = 1 << (size - 1).bit_length()  # smallest power of two >= size
        for start in range(0, 520 - size, width):
            nodes = merkle.range_nodes(start, start + size)
            levels = [level for level, _ in nodes]
            assert levels == sorted(set(levels), reverse=True), (start, size, nodes)
            acc = ALL_NODES[nodes[-1]]
            for node in reversed(nodes[:-1]):
                acc = merkle.node_hash(ALL_NODES[node], acc)
            assert acc == ref_mth(start, start + size), (start, size)


def test_range_nodes_of_an_empty_range_is_empty_and_a_reversed_range_is_refused() -> None:
    assert merkle.range_nodes(5, 5) == []
    with pytest.raises(MalformedInput):
        merkle.range_nodes(6, 5)
    with pytest.raises(MalformedInput):
        merkle.range_nodes(-1, 5)


# --------------------------------------------------------------------------------------------
# Generation: the fetch contract and argument checks


@PROPERTY
@given(size=tree_sizes, data=st.data())
def test_inclusion_proof_is_rfc_path_built_from_one_fetch_of_log_n_nodes(
    size: int, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    store = RecordingStore(size)
    proof = merkle.inclusion_proof(index, size, store.fetch)
    assert proof == [ref_mth(lo, hi) for lo, hi in ref_path(index, 0, size)]
    assert len(store.calls) == (1 if size > 1 else 0)
    assert sum(len(call) for call in store.calls) <= 2 * size.bit_length()
    assert merkle.verify_inclusion(REF_LEAVES[index], index, size, proof, ref_mth(0, size)) is None


@PROPERTY
@given(case=consistency_cases())
def test_consistency_proof_is_rfc_subproof_built_from_one_fetch_of_log_n_nodes(
    case: ConsistencyCase,
) -> None:
    store = RecordingStore(case.size2)
    proof = merkle.consistency_proof(case.size1, case.size2, store.fetch)
    expected = ref_subproof(case.size1, 0, case.size2, True)
    assert proof == [ref_mth(lo, hi) for lo, hi in expected]
    assert len(store.calls) == 1
    assert len(store.calls[0]) <= 2 * case.size2.bit_length()
    case.verify()


def test_inclusion_proof_in_a_single_leaf_tree_is_empty_and_fetches_nothing() -> None:
    store = RecordingStore(1)
    assert merkle.inclusion_proof(0, 1, store.fetch) == []
    assert store.calls == []


def test_consistency_proof_between_equal_sizes_is_empty_and_fetches_nothing() -> None:
    for size in (1, 2, 7, 8, 1000):
        store = RecordingStore(size)
        assert merkle.consistency_proof(size, size, store.fetch) == []
        assert store.calls == []
        merkle.verify_consistency(size, size, [], ref_mth(0, size), ref_mth(0, size))


def test_inclusion_proof_for_a_leaf_outside_the_tree_is_refused() -> None:
    store = RecordingStore(8)
    for index, size in [(8, 8), (9, 8), (0, 0)]:
        with pytest.raises(ProofError, match="not in a tree"):
            merkle.inclusion_proof(index, size, store.fetch)
    with pytest.raises(MalformedInput):
        merkle.inclusion_proof(-1, 8, store.fetch)
    with pytest.raises(MalformedInput):
        merkle.inclusion_proof(True, 8, store.fetch)
    assert store.calls == []


def test_consistency_proof_from_the_empty_tree_or_to_a_smaller_tree_is_refused() -> None:
    store = RecordingStore(8)
    with pytest.raises(ProofError, match="empty tree"):
        merkle.consistency_proof(0, 8, store.fetch)
    with pytest.raises(ProofError, match="only grow"):
        merkle.consistency_proof(5, 4, store.fetch)
    with pytest.raises(MalformedInput):
        merkle.consistency_proof(-1, 4, store.fetch)
    with pytest.raises(MalformedInput):
        merkle.consistency_proof(1, 4.0, store.fetch)  # type: ignore[arg-type]
    assert store.calls == []


def test_proof_generation_fails_when_storage_omits_a_node() -> None:
    needed = RecordingStore(13)
    merkle.inclusion_proof(5, 13, needed.fetch)
    for node in needed.calls[0]:
        with pytest.raises(ProofError, match="missing"):
            merkle.inclusion_proof(5, 13, RecordingStore(13, drop=[node]).fetch)
    needed = RecordingStore(13)
    merkle.consistency_proof(6, 13, needed.fetch)
    for node in needed.calls[0]:
        with pytest.raises(ProofError, match="missing"):
            merkle.consistency_proof(6, 13, RecordingStore(13, drop=[node]).fetch)


def test_proof_generation_fails_when_storage_returns_a_node_of_the_wrong_length() -> None:
    def truncating_fetch(ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        return {node: ALL_NODES[node][:31] for node in ids}

    with pytest.raises(ProofError, match="31 bytes"):
        merkle.inclusion_proof(5, 13, truncating_fetch)


# --------------------------------------------------------------------------------------------
# Inclusion verification: every way to break a proof


@PROPERTY
@given(case=inclusion_cases(), bit=hash_bits)
def test_inclusion_proof_with_a_flipped_bit_in_any_hash_fails(
    case: InclusionCase, bit: int
) -> None:
    case.verify()
    for i in range(len(case.proof)):
        proof = list(case.proof)
        proof[i] = flip_bit(proof[i], bit)
        with pytest.raises(InclusionProofError):
            case.verify(proof=proof)
    with pytest.raises(InclusionProofError):
        case.verify(leaf_hash=flip_bit(case.leaf_hash, bit))


@PROPERTY
@given(case=inclusion_cases(), extra=other_hashes)
def test_inclusion_proof_with_a_dropped_or_extra_hash_fails(
    case: InclusionCase, extra: bytes
) -> None:
    for i in range(len(case.proof)):
        with pytest.raises(InclusionProofError):
            case.verify(proof=case.proof[:i] + case.proof[i + 1 :])
    for i in range(len(case.proof) + 1):
        for added in (extra, case.root, case.leaf_hash):
            with pytest.raises(InclusionProofError):
                case.verify(proof=[*case.proof[:i], added, *case.proof[i:]])


@PROPERTY
@given(case=inclusion_cases(), data=st.data())
def test_inclusion_proof_for_a_wrong_index_fails(case: InclusionCase, data: st.DataObject) -> None:
    drawn = data.draw(st.integers(0, case.size - 1), label="other index")
    candidates = {case.index - 1, case.index + 1, case.index ^ 1, case.index ^ 2, drawn, case.size}
    for index in sorted(candidates - {case.index}):
        with pytest.raises(InclusionProofError) as raised:
            case.verify(index=index)
        assert raised.value.index == index


@PROPERTY
@given(case=inclusion_cases(), data=st.data())
def test_inclusion_proof_for_a_wrong_size_fails_unless_the_path_shape_is_identical(
    case: InclusionCase, data: st.DataObject
) -> None:
    # The verifier only sees opaque hashes, so a size whose path has exactly the same shape
    # (e.g. leaf 0 in sizes 5 and 6) cannot be told apart: only the root binds the size.
    drawn = data.draw(st.integers(1, 2 * MAX_SIZE), label="other size")
    original = inclusion_formula(case.index, case.size)
    candidates = {case.size - 1, case.size + 1, case.size * 2, case.size // 2, case.size ^ 1, drawn}
    for size in sorted(candidates - {case.size}):
        if case.index < size and inclusion_formula(case.index, size) == original:
            case.verify(size=size)
        else:
            with pytest.raises(InclusionProofError):
                case.verify(size=size)


@PROPERTY
@given(case=inclusion_cases(), wrong=other_hashes)
def test_inclusion_proof_against_a_wrong_root_fails(case: InclusionCase, wrong: bytes) -> None:
    for root in {wrong, EMPTY_ROOT, ref_mth(0, case.size - 1), case.leaf_hash} - {case.root}:
        with pytest.raises(InclusionProofError, match="does not lead to the root"):
            case.verify(root=root)


@PROPERTY
@given(case=inclusion_cases())
def test_inclusion_proof_with_a_hash_of_the_wrong_length_fails(case: InclusionCase) -> None:
    for i in range(len(case.proof)):
        for bad in (case.proof[i][:-1], case.proof[i] + b"\x00", b""):
            proof = list(case.proof)
            proof[i] = bad
            with pytest.raises(InclusionProofError, match=f"hash {i} is"):
                case.verify(proof=proof)
    for bad in (case.leaf_hash[:-1], case.leaf_hash + b"\x00", b""):
        with pytest.raises(InclusionProofError, match="leaf hash is"):
            case.verify(leaf_hash=bad)
        with pytest.raises(InclusionProofError, match="root is"):
            case.verify(root=bad)


def test_root_from_inclusion_proof_refuses_what_verify_inclusion_refuses() -> None:
    leaf = REF_LEAVES[0]
    for index, size in [(0, 0), (1, 1), (-1, 4), (4, 4)]:
        with pytest.raises(InclusionProofError):
            merkle.root_from_inclusion_proof(leaf, index, size, [])
    with pytest.raises(InclusionProofError, match="has 0 hashes, not 2"):
        merkle.root_from_inclusion_proof(leaf, 0, 4, [])
    with pytest.raises(InclusionProofError, match="has 3 hashes, not 2"):
        merkle.root_from_inclusion_proof(leaf, 0, 4, [leaf, leaf, leaf])
    with pytest.raises(InclusionProofError, match="integer"):
        merkle.root_from_inclusion_proof(leaf, False, 4, [leaf, leaf])
    with pytest.raises(InclusionProofError, match="must be bytes"):
        merkle.root_from_inclusion_proof(leaf, 0, 2, ["x" * 32])  # type: ignore[list-item]


def test_single_leaf_tree_verifies_only_when_root_and_leaf_are_the_same_hash() -> None:
    h = merkle.leaf_hash(b"data")
    merkle.verify_inclusion(h, 0, 1, [], h)
    for leaf, root in [(h, b""), (b"", h), (b"", b""), (h, REF_LEAVES[0])]:
        with pytest.raises(InclusionProofError):
            merkle.verify_inclusion(leaf, 0, 1, [], root)


def test_inclusion_errors_are_proof_and_verification_errors() -> None:
    assert issubclass(InclusionProofError, ProofError)
    assert issubclass(ConsistencyProofError, ProofError)
    assert issubclass(ProofError, VerificationError)


# --------------------------------------------------------------------------------------------
# Consistency verification: every way to break a proof


@PROPERTY
@given(case=consistency_cases(), bit=hash_bits)
def test_consistency_proof_with_a_flipped_bit_in_any_hash_fails(
    case: ConsistencyCase, bit: int
) -> None:
    case.verify()
    for i in range(len(case.proof)):
        proof = list(case.proof)
        proof[i] = flip_bit(proof[i], bit)
        with pytest.raises(ConsistencyProofError):
            case.verify(proof=proof)


@PROPERTY
@given(case=consistency_cases(), extra=other_hashes)
def test_consistency_proof_with_a_dropped_or_extra_hash_fails(
    case: ConsistencyCase, extra: bytes
) -> None:
    for i in range(len(case.proof)):
        with pytest.raises(ConsistencyProofError):
            case.verify(proof=case.proof[:i] + case.proof[i + 1 :])
    for i in range(len(case.proof) + 1):
        for added in (extra, case.root1, case.root2, case.proof[0]):
            with pytest.raises(ConsistencyProofError):
                case.verify(proof=[*case.proof[:i], added, *case.proof[i:]])
    with pytest.raises(ConsistencyProofError, match="empty consistency proof"):
        case.verify(proof=[])


@PROPERTY
@given(case=consistency_cases(), data=st.data())
def test_consistency_proof_for_wrong_sizes_fails_unless_the_proof_shape_is_identical(
    case: ConsistencyCase, data: st.DataObject
) -> None:
    # As for inclusion: sizes whose proofs combine the same opaque hashes the same way (e.g.
    # 4 -> 5 and 4 -> 6) are indistinguishable to any verifier; everything else must fail.
    s1, s2 = case.size1, case.size2
    drawn1 = data.draw(st.integers(0, 2 * MAX_SIZE), label="other size1")
    drawn2 = data.draw(st.integers(0, 2 * MAX_SIZE), label="other size2")
    original = consistency_formulas(s1, s2)
    candidates = {(s, s2) for s in (s1 - 1, s1 + 1, s1 * 2, s1 // 2, s1 ^ 1, drawn1, s2)}
    candidates |= {(s1, s) for s in (s2 - 1, s2 + 1, s2 * 2, s2 // 2, s2 ^ 1, drawn2, s1)}
    candidates |= {(s2, s1), (drawn1, drawn2)}
    for size1, size2 in sorted(candidates - {(s1, s2)}):
        if 0 < size1 < size2 and consistency_formulas(size1, size2) == original:
            case.verify(size1=size1, size2=size2)
        else:
            with pytest.raises(ConsistencyProofError):
                case.verify(size1=size1, size2=size2)


@PROPERTY
@given(case=consistency_cases(), wrong=other_hashes)
def test_consistency_proof_against_a_wrong_root_fails(case: ConsistencyCase, wrong: bytes) -> None:
    for root1 in {wrong, EMPTY_ROOT, case.root2, ref_mth(0, case.size1 - 1)} - {case.root1}:
        with pytest.raises(ConsistencyProofError, match="does not lead to the root"):
            case.verify(root1=root1)
    for root2 in {wrong, EMPTY_ROOT, case.root1, ref_mth(0, case.size2 - 1)} - {case.root2}:
        with pytest.raises(ConsistencyProofError, match="does not lead to the root"):
            case.verify(root2=root2)
    with pytest.raises(ConsistencyProofError):
        case.verify(root1=case.root2, root2=case.root1)


@PROPERTY
@given(case=consistency_cases())
def test_consistency_proof_with_a_hash_of_the_wrong_length_fails(case: ConsistencyCase) -> None:
    for i in range(len(case.proof)):
        for bad in (case.proof[i][:-1], case.proof[i] + b"\x00", b""):
            proof = list(case.proof)
            proof[i] = bad
            with pytest.raises(ConsistencyProofError, match=f"hash {i} is"):
                case.verify(proof=proof)
    for bad in (case.root1[:-1], case.root1 + b"\x00", b""):
        with pytest.raises(ConsistencyProofError, match="root1 is"):
            case.verify(root1=bad)
        with pytest.raises(ConsistencyProofError, match="root2 is"):
            case.verify(root2=bad)


def test_consistency_between_equal_sizes_needs_an_empty_proof_and_equal_roots() -> None:
    root8 = ref_mth(0, 8)
    merkle.verify_consistency(8, 8, [], root8, root8)
    with pytest.raises(ConsistencyProofError, match="empty proof"):
        merkle.verify_consistency(8, 8, [root8], root8, root8)
    with pytest.raises(ConsistencyProofError, match="different roots"):
        merkle.verify_consistency(8, 8, [], root8, ref_mth(0, 7))


def test_consistency_from_the_empty_tree_or_to_a_smaller_tree_fails() -> None:
    for size1, size2 in [(0, 0), (0, 1), (0, 8), (2, 1), (-1, 3)]:
        with pytest.raises(ConsistencyProofError):
            merkle.verify_consistency(size1, size2, [], EMPTY_ROOT, ref_mth(0, max(size2, 0)))
    with pytest.raises(ConsistencyProofError, match="integer"):
        merkle.verify_consistency(1, True, [], REF_LEAVES[0], REF_LEAVES[0])


# --------------------------------------------------------------------------------------------
# CompactRange


def brute_force_nodes_ending_at(size: int) -> list[tuple[NodeId, bytes]]:
    """Every complete subtree whose last leaf is leaf ``size - 1``, lowest first."""
    nodes = []
    for level in range(size.bit_length()):
        if size % (1 << level) == 0:
            node = (level, (size >> level) - 1)
            nodes.append((node, ref_mth(node[1] << level, size)))
    return nodes


def test_appending_leaf_by_leaf_reports_new_nodes_and_keeps_the_root_at_every_size() -> None:
    compact = CompactRange()
    stored: dict[NodeId, bytes] = {}
    for size in range(1, MAX_SIZE + 1):
        created = compact.append(REF_LEAVES[size - 1])
        assert created == brute_force_nodes_ending_at(size), size
        stored.update(created)
        assert compact.size == size
        assert compact.root() == ref_mth(0, size), size
    assert stored == ALL_NODES


def test_loading_from_stored_nodes_reproduces_the_state_of_appending() -> None:
    compact = CompactRange()
    for size in range(MAX_SIZE + 1):
        store = RecordingStore(size)
        loaded = CompactRange.load(size, store.fetch)
        assert loaded == compact, size
        assert loaded.root() == ref_mth(0, size)
        assert store.calls == ([CompactRange.node_ids(size)] if size else [])
        if size < MAX_SIZE:
            compact.append(REF_LEAVES[size])


@PROPERTY
@given(size=tree_sizes, data=st.data())
def test_a_range_loaded_mid_log_appends_to_the_same_nodes_and_root(
    size: int, data: st.DataObject
) -> None:
    resume_at = data.draw(st.integers(0, size), label="resume at")
    loaded = CompactRange.load(resume_at, RecordingStore(resume_at).fetch)
    for index in range(resume_at, size):
        assert loaded.append(REF_LEAVES[index]) == brute_force_nodes_ending_at(index + 1)
    assert loaded.root() == ref_mth(0, size) == merkle.root(REF_LEAVES[:size])
    assert loaded == CompactRange(size, [ALL_NODES[node] for node in CompactRange.node_ids(size)])


def test_compact_range_node_ids_are_the_binary_decomposition_of_the_size() -> None:
    assert CompactRange.node_ids(0) == []
    assert CompactRange.node_ids(1) == [(0, 0)]
    assert CompactRange.node_ids(6) == [(2, 0), (1, 2)]
    assert CompactRange.node_ids(13) == [(3, 0), (2, 2), (0, 12)]
    for size in range(1, 300):
        assert CompactRange.node_ids(size) == merkle.range_nodes(0, size)


def test_compact_range_refuses_hashes_that_do_not_fit_its_size() -> None:
    h = REF_LEAVES[0]
    with pytest.raises(MalformedInput, match="2 compact-range hashes, got 1"):
        CompactRange(3, [h])
    with pytest.raises(MalformedInput, match="0 compact-range hashes"):
        CompactRange(0, [h])
    with pytest.raises(MalformedInput, match="31 bytes"):
        CompactRange(1, [h[:31]])
    with pytest.raises(MalformedInput, match="negative"):
        CompactRange(-1)
    with pytest.raises(MalformedInput, match="leaf hash is 33 bytes"):
        CompactRange().append(h + b"\x00")


def test_compact_range_load_fails_when_storage_omits_a_node() -> None:
    with pytest.raises(ProofError, match=r"\(2, 2\) is missing"):
        CompactRange.load(13, RecordingStore(13, drop=[(2, 2)]).fetch)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_inclusion_proofs_of_many_leaves_match_one_by_one_with_one_fetch(data: st.DataObject
                                                                          ) -> None:
    size = data.draw(tree_sizes)
    indexes = data.draw(st.lists(st.integers(0, size - 1), max_size=20))
    store = RecordingStore(size)
    proofs = merkle.inclusion_proofs(indexes, size, store.fetch)
    assert len(store.calls) <= 1
    assert list(proofs) == list(dict.fromkeys(indexes))
    for index in indexes:
        assert proofs[index] == merkle.inclusion_proof(index, size, RecordingStore(size).fetch)


def test_inclusion_proofs_refuse_what_inclusion_proof_refuses() -> None:
    store = RecordingStore(8, drop=[(0, 1)])
    with pytest.raises(ProofError):
        merkle.inclusion_proofs([0, 8], 8, store.fetch)
    with pytest.raises(MalformedInput):
        merkle.inclusion_proofs([-1], 8, store.fetch)
    with pytest.raises(ProofError):
        merkle.inclusion_proofs([0], 8, store.fetch)           # node (0, 1) is missing
    assert merkle.inclusion_proofs([], 8, store.fetch) == {}
