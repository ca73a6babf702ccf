"""The RFC 9162 §2.1 Merkle tree over SHA-256: hashes, proofs, their verification, compact ranges."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TypeAlias

from suyuan.errors import ConsistencyProofError, InclusionProofError, MalformedInput, ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "FetchNodes",
    "NodeId",
    "consistency_proof",
    "inclusion_proof",
    "inclusion_proofs",
    "leaf_hash",
    "node_hash",
    "range_nodes",
    "root",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Bytes in every hash of the tree (SHA-256)."""

EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()
"""The root of the tree with no leaves: SHA-256 of the empty string."""

NodeId: TypeAlias = tuple[int, int]
"""``(level, index)``: the complete subtree over leaves ``[index << level, (index + 1) << level)``."""

FetchNodes: TypeAlias = Callable[[Collection[NodeId]], Mapping[NodeId, bytes]]
"""Storage callback: given node ids, return their stored hashes (one query for all of them)."""

# Bound once: these run on the append hot path, where attribute lookups show up in profiles.
_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    """Return the RFC 9162 leaf hash ``SHA-256(0x00 || leaf)``."""
    return _sha256(_LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash ``SHA-256(0x01 || left || right)``.

    Raises :class:`MalformedInput` unless both children are exactly :data:`HASH_SIZE` bytes.
    """
    if len(left) != HASH_SIZE or len(right) != HASH_SIZE:
        raise MalformedInput(
            f"node children must be {HASH_SIZE}-byte hashes, got {len(left)} and {len(right)} bytes"
        )
    return _sha256(_NODE_PREFIX + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash of already-hashed leaves (:data:`EMPTY_ROOT` for none)."""
    # A stack of perfect-subtree hashes (the compact range) gives MTH in one pass
    # with O(log n) memory, instead of RFC 9162's literal recursion over slices.
    stack: list[bytes] = []
    for i, h in enumerate(leaf_hashes):
        if len(h) != HASH_SIZE:
            raise MalformedInput(f"leaf hash {i} is {len(h)} bytes, not {HASH_SIZE}")
        n = i
        while n & 1:
            h = _sha256(_NODE_PREFIX + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
    return _fold(stack) if stack else EMPTY_ROOT


def range_nodes(start: int, end: int) -> list[NodeId]:
    """Decompose the leaf range ``[start, end)`` into complete subtrees, left to right.

    Each node is the largest complete subtree that starts where the previous one ended and
    fits before ``end``. For a range as it arises in the RFC 9162 recursion (``start`` a
    multiple of the smallest power of two >= ``end - start``) that is the binary decomposition
    of ``end - start``, largest subtree first, and the range's hash is
    ``node_hash(h1, node_hash(h2, ... hk))`` over the node hashes in this order.
    """
    _require_int(start, "start", MalformedInput)
    _require_int(end, "end", MalformedInput)
    if not 0 <= start <= end:
        raise MalformedInput(f"leaf range [{start}, {end}) is not a range of leaves")
    nodes: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            # A subtree at level L must start at a multiple of 2**L.
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def inclusion_proof(index: int, size: int, fetch: FetchNodes) -> list[bytes]:
    """Build the RFC 9162 §2.1.3.1 inclusion proof ``PATH(index, D[size])``, leaf side first.

    ``fetch`` is called at most once, with every complete-subtree node the proof needs (all
    inside ``[0, size)``, O(log size) of them); hashes of incomplete subtrees on the right edge
    are folded from those. Raises :class:`MalformedInput` for negative or non-integer
    arguments and :class:`ProofError` when ``index >= size`` or ``fetch`` omits a node.
    """
    _require_int(index, "index", MalformedInput)
    _require_int(size, "size", MalformedInput)
    if index < 0 or size < 0:
        raise MalformedInput(f"index {index} and tree size {size} must not be negative")
    if index >= size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}", index=index)
    return _proof_from_ranges(_inclusion_ranges(index, size), fetch)


def inclusion_proofs(indexes: Iterable[int], size: int, fetch: FetchNodes
                     ) -> dict[int, list[bytes]]:
    """Inclusion proofs of several leaves in the tree of ``size``, by leaf index: each as
    :func:`inclusion_proof` builds it, with ``fetch`` called at most once for the nodes of
    all of them (proofs of nearby leaves share most nodes). Raises as
    :func:`inclusion_proof` does."""
    per_index: dict[int, list[list[NodeId]]] = {}
    for index in indexes:
        _require_int(index, "index", MalformedInput)
        _require_int(size, "size", MalformedInput)
        if index < 0 or size < 0:
            raise MalformedInput(f"index {index} and tree size {size} must not be negative")
        if index >= size:
            raise ProofError(f"leaf {index} is not in a tree of size {size}", index=index)
        if index not in per_index:
            per_index[index] = [range_nodes(lo, hi) for lo, hi in _inclusion_ranges(index, size)]
    wanted = list(dict.fromkeys(node for per_range in per_index.values()
                                for nodes in per_range for node in nodes))
    fetched = dict(zip(wanted, _fetch_all(wanted, fetch), strict=True)) if wanted else {}
    return {index: [_fold([fetched[node] for node in nodes]) for nodes in per_range]
            for index, per_range in per_index.items()}


def consistency_proof(size1: int, size2: int, fetch: FetchNodes) -> list[bytes]:
    """Build the RFC 9162 §2.1.4.1 consistency proof ``PROOF(size1, D[size2])``.

    Requires ``0 < size1 <= size2``; the proof is empty when the sizes are equal. ``fetch`` is
    called at most once, as for :func:`inclusion_proof`. Raises :class:`MalformedInput` for
    negative or non-integer sizes and :class:`ProofError` for ``size1 == 0`` (every tree
    extends the empty one, so there is nothing to prove), ``size1 > size2``, or a node that
    ``fetch`` omits.
    """
    _require_int(size1, "size1", MalformedInput)
    _require_int(size2, "size2", MalformedInput)
    if size1 < 0 or size2 < 0:
        raise MalformedInput(f"tree sizes {size1} and {size2} must not be negative")
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    if size1 > size2:
        raise ProofError(f"tree size {size1} is larger than {size2}: logs only grow")
    return _proof_from_ranges(_consistency_ranges(size1, size2), fetch)


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Return the root that ``proof`` yields for ``leaf_hash`` at ``index`` in a tree of ``size``.

    Follows RFC 9162 §2.1.3.2 with the strict checks: ``0 <= index < size``, every hash
    exactly :data:`HASH_SIZE` bytes, and exactly as many proof hashes as the path needs.
    Raises :class:`InclusionProofError` when any of these fails.
    """
    _require_int(index, "leaf index", InclusionProofError)
    _require_int(size, "tree size", InclusionProofError)
    if not 0 <= index < size:
        raise InclusionProofError(f"leaf {index} is not in a tree of size {size}", index=index)
    _require_hash(leaf_hash, "leaf hash", InclusionProofError)
    for i, p in enumerate(proof):
        _require_hash(p, f"inclusion proof hash {i}", InclusionProofError)

    # RFC 9162 §2.1.3.2, step by step.
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise InclusionProofError(_wrong_length(index, size, len(proof)), index=index)
        if fn & 1 or fn == sn:
            r = _sha256(_NODE_PREFIX + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(_NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InclusionProofError(_wrong_length(index, size, len(proof)), index=index)
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows ``leaf_hash`` is leaf ``index`` of the tree ``(size, root)``.

    Returns ``None`` or raises :class:`InclusionProofError` (RFC 9162 §2.1.3.2, strict).
    """
    _require_hash(root, "root", InclusionProofError)
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise InclusionProofError(
            f"inclusion proof for leaf {index} does not lead to the root of the tree of size {size}",
            index=index,
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that ``proof`` shows the tree ``(size1, root1)`` is a prefix of ``(size2, root2)``.

    Follows RFC 9162 §2.1.4.2 with the strict checks: ``0 < size1 <= size2``, every hash
    exactly :data:`HASH_SIZE` bytes, exactly as many proof hashes as needed; equal sizes need
    an empty proof and equal roots. Returns ``None`` or raises :class:`ConsistencyProofError`.
    """
    _require_int(size1, "size1", ConsistencyProofError)
    _require_int(size2, "size2", ConsistencyProofError)
    if size1 <= 0:
        raise ConsistencyProofError(
            f"size1 is {size1}: a consistency proof needs a non-empty older tree"
        )
    if size2 < size1:
        raise ConsistencyProofError(f"tree size {size2} is smaller than {size1}: logs only grow")
    _require_hash(root1, "root1", ConsistencyProofError)
    _require_hash(root2, "root2", ConsistencyProofError)
    for i, c in enumerate(proof):
        _require_hash(c, f"consistency proof hash {i}", ConsistencyProofError)

    if size1 == size2:
        # RFC 9162 defines PROOF(n, D[n]) as empty; the §2.1.4.2 loop itself needs size1 < size2.
        if len(proof) != 0:
            raise ConsistencyProofError(
                f"trees of equal size {size1} need an empty proof, got {len(proof)} hashes"
            )
        if root1 != root2:
            raise ConsistencyProofError(f"two different roots for the same tree size {size1}")
        return

    # RFC 9162 §2.1.4.2, step by step.
    if len(proof) == 0:
        raise ConsistencyProofError(f"empty consistency proof from size {size1} to {size2}")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ConsistencyProofError(
                f"consistency proof from size {size1} to {size2} has too many hashes ({len(proof)})"
            )
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE_PREFIX + c + fr).digest()
            sr = _sha256(_NODE_PREFIX + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(_NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ConsistencyProofError(
            f"consistency proof from size {size1} to {size2} has too few hashes ({len(proof)})"
        )
    if fr != root1:
        raise ConsistencyProofError(f"consistency proof does not lead to the root of size {size1}")
    if sr != root2:
        raise ConsistencyProofError(f"consistency proof does not lead to the root of size {size2}")


class CompactRange:
    """The right edge of a tree: the hashes of the complete subtrees that make up ``size`` leaves.

    One hash per set bit of ``size``, left to right (largest subtree first); enough to append
    leaves and compute the root without reading the rest of the tree.
    """

    __slots__ = ("size", "hashes")

    size: int
    hashes: list[bytes]

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        """Build the range of a tree of ``size`` leaves from its subtree hashes, left to right.

        Raises :class:`MalformedInput` unless there is one :data:`HASH_SIZE`-byte hash per
        set bit of ``size``.
        """
        _require_int(size, "tree size", MalformedInput)
        if size < 0:
            raise MalformedInput(f"tree size {size} must not be negative")
        if len(hashes) != size.bit_count():
            raise MalformedInput(
                f"a tree of size {size} has {size.bit_count()} compact-range hashes, "
                f"got {len(hashes)}"
            )
        for i, h in enumerate(hashes):
            _require_hash(h, f"compact-range hash {i}", MalformedInput)
        self.size = size
        self.hashes = [bytes(h) for h in hashes]

    @staticmethod
    def node_ids(size: int) -> list[NodeId]:
        """Return the ids of the complete subtrees that make up ``size`` leaves, largest first."""
        _require_int(size, "tree size", MalformedInput)
        if size < 0:
            raise MalformedInput(f"tree size {size} must not be negative")
        ids: list[NodeId] = []
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                # The subtree ending at the prefix of `size` down to this bit.
                ids.append((level, (size >> level) - 1))
        return ids

    @classmethod
    def load(cls, size: int, fetch: FetchNodes) -> CompactRange:
        """Load the compact range of a tree of ``size`` leaves with one call to ``fetch``.

        Raises :class:`ProofError` if ``fetch`` omits a node.
        """
        ids = cls.node_ids(size)
        if not ids:
            return cls()
        return cls(size, _fetch_all(ids, fetch))

    def append(self, leaf_hash: bytes) -> list[tuple[NodeId, bytes]]:
        """Add one leaf hash; return every complete node this creates, lowest level first.

        The first is ``((0, old_size), leaf_hash)``; then each parent the new leaf completes.
        """
        if len(leaf_hash) != HASH_SIZE:
            raise MalformedInput(f"leaf hash is {len(leaf_hash)} bytes, not {HASH_SIZE}")
        index = self.size
        h = bytes(leaf_hash)
        created: list[tuple[NodeId, bytes]] = [((0, index), h)]
        hashes = self.hashes
        level = 0
        n = index
        # Each trailing 1 bit of the old size is a perfect subtree the new leaf now completes.
        while n & 1:
            h = _sha256(_NODE_PREFIX + hashes.pop() + h).digest()
            level += 1
            n >>= 1
            created.append(((level, n), h))
        hashes.append(h)
        self.size = index + 1
        return created

    def root(self) -> bytes:
        """Return the Merkle Tree Hash of the tree of ``size`` leaves (:data:`EMPTY_ROOT` if 0)."""
        return _fold(self.hashes) if self.hashes else EMPTY_ROOT

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self.size == other.size and self.hashes == other.hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self.size}, hashes=[{len(self.hashes)} hashes])"


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Hash complete subtrees, largest first, into the hash of the range they cover.

    RFC 9162 splits a range at its largest power of two, so the range hash is
    ``node_hash(h1, node_hash(h2, ... hk))``: fold from the right.
    """
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = _sha256(_NODE_PREFIX + h + acc).digest()
    return acc


def _split(n: int) -> int:
    """Return RFC 9162's split point: the largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose hashes form ``PATH(index, D[size])``, in proof order."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    # The recursion meets the root-side hashes first; the proof lists the leaf side first.
    ranges.reverse()
    return ranges


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Return the leaf ranges whose hashes form ``PROOF(size1, D[size2])``, in proof order."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size2
    known = True  # SUBPROOF's b: the verifier already holds the hash of [0, size1) itself.
    while hi != size1:
        mid = lo + _split(hi - lo)
        if size1 <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
            known = False
    if not known:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def _proof_from_ranges(ranges: list[tuple[int, int]], fetch: FetchNodes) -> list[bytes]:
    """Fetch the complete nodes under ``ranges`` in one call and fold each range to its hash."""
    per_range = [range_nodes(lo, hi) for lo, hi in ranges]
    # Proof ranges are disjoint, so ids are unique; dict keeps their order for the caller.
    wanted = list(dict.fromkeys(node for nodes in per_range for node in nodes))
    if not wanted:
        return []
    fetched = dict(zip(wanted, _fetch_all(wanted, fetch), strict=True))
    return [_fold([fetched[node] for node in nodes]) for nodes in per_range]


def _fetch_all(ids: list[NodeId], fetch: FetchNodes) -> list[bytes]:
    """Call ``fetch`` once and return the hashes of ``ids`` in order, all checked."""
    found = fetch(ids)
    hashes: list[bytes] = []
    for node in ids:
        h = found.get(node)
        if h is None:
            raise ProofError(f"tree node {node} is missing from storage")
        if len(h) != HASH_SIZE:
            raise ProofError(f"stored tree node {node} is {len(h)} bytes, not {HASH_SIZE}")
        hashes.append(bytes(h))
    return hashes


def _require_int(value: object, what: str, error: type[Exception]) -> None:
    # bool is an int subclass; True as a tree size is a bug, not a size.
    if not isinstance(value, int) or isinstance(value, bool):
        raise error(f"{what} must be an integer, got {type(value).__name__}")


def _require_hash(value: object, what: str, error: type[Exception]) -> None:
    if not isinstance(value, bytes | bytearray):
        raise error(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise error(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _inclusion_proof_length(index: int, size: int) -> int:
    # Below the point where the paths to `index` and `size - 1` part, every level has a
    # sibling; above it, only the levels where `index` is a right child do.
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _wrong_length(index: int, size: int, got: int) -> str:
    want = _inclusion_proof_length(index, size)
    return f"inclusion proof for leaf {index} in a tree of size {size} has {got} hashes, not {want}"
