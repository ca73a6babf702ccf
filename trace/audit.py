"""Full audit of a stored log: signatures and key state, hash chain, Merkle nodes, checkpoints.

The audit trusts nothing it reads: it re-derives every leaf hash, every stored tree node and
every checkpoint root from the leaf bytes, replays the actor registry from entry 0, and
checks every signature (spread over worker processes). The first failure is raised as a
:class:`VerificationError` naming the entry index (or checkpoint) and why.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from suyuan import canonical, crypto, merkle, note
from suyuan.errors import (
    BadSignature,
    ChainBroken,
    MalformedInput,
    NoteError,
    Rejected,
    RootMismatch,
    SuyuanError,
    VerificationError,
)
from suyuan.ledger import GENESIS_HASH, META_LOG_VKEY, META_ORIGIN
from suyuan.model import MAX_CLOCK_SKEW, Statement, parse_time
from suyuan.registry import REGISTRY_KINDS, Registry, validate_body
from suyuan.storage import repo
from suyuan.storage.db import Database

CHUNK = 2000
Progress = Callable[[int, int], None]
_ERRORS: dict[str, type[VerificationError]] = {
    "BadSignature": BadSignature,
    "ChainBroken": ChainBroken,
    "VerificationError": VerificationError,
}


@dataclass(frozen=True)
class AuditReport:
    """What a successful audit covered."""

    size: int
    root: bytes
    checkpoints: int
    cosignatures: int
    nodes: int


# --- per-entry checks, run in worker processes ------------------------------------------------


def _check_chunk(
    start: int, leaves: list[bytes], keys: dict[tuple[str, str], bytes]
) -> tuple[list[tuple[Any, ...]], tuple[int, str, str] | None]:
    """Check entries ``start..`` of one chunk apart from the log state.

    Returns one row per good entry — (leaf hash, index, prev hex, kind, actor, key_id,
    body-if-registry, key used if not from ``keys``) — and the first failure as
    (index, error class name, message), after which the chunk is not examined further.
    """
    rows: list[tuple[Any, ...]] = []
    local: dict[tuple[str, str], bytes] = {}
    for offset, leaf in enumerate(leaves):
        at = start + offset
        try:
            index, key_id, prev, received_at, sig_b64, data = canonical.split_entry(leaf)
            if index != at:
                return rows, (at, "ChainBroken", f"entry {at} says it is entry {index}")
            parsed = canonical.loads_fast(data)
            statement = Statement.from_json(parsed)
            if not canonical.is_canonical(parsed, data):
                raise MalformedInput("statement bytes are not in canonical (JCS) form")
            if statement.key_id != key_id:
                raise MalformedInput("entry key_id differs from the statement's key_id")
            validate_body(statement)
            if parse_time(statement.time) > parse_time(received_at, "received_at") + MAX_CLOCK_SKEW:
                return rows, (at, "VerificationError",
                              f"entry {at}: statement time is after the log received it")
            raw_sig = base64.b64decode(sig_b64, validate=True)
            key_ref = (statement.actor, key_id)
            public = local.get(key_ref) or keys.get(key_ref)
            if public is None and at == 0 and statement.kind == "actor_registered":
                # The registrar's genesis statement is signed by the key it registers.
                public = crypto.parse_verifier_key(statement.body["vkey"]).public_key
            if public is None:
                return rows, (at, "VerificationError",
                              f"entry {at} is signed by {statement.actor}/{key_id}, a key never registered before it")
            if not crypto.is_valid_signature(public, canonical.signing_message(data), raw_sig):
                return rows, (at, "BadSignature",
                              f"entry {at}: signature by {statement.actor}/{key_id} does not verify")
            extra = None
            if key_ref in local or key_ref not in keys:
                extra = public
            body = statement.body if statement.kind in REGISTRY_KINDS else None
            if statement.kind in ("actor_registered", "key_added"):
                vkey = crypto.parse_verifier_key(statement.body["vkey"])
                owner = statement.body.get("name") or statement.body.get("actor")
                local.setdefault((owner, vkey.key_id_hex), vkey.public_key)
        except (SuyuanError, ValueError, KeyError, binascii.Error) as exc:
            return rows, (at, "VerificationError", f"entry {at} is malformed: {exc}")
        digest = hashlib.sha256(b"\x00" + leaf).digest()
        rows.append((digest, index, prev, statement.kind, statement.actor, key_id,
                     statement.time, statement.nonce, body, extra))
    return rows, None


def _prescan_keys(leaves: list[bytes], keys: dict[tuple[str, str], bytes]) -> None:
    """Add keys registered in this chunk so later chunks can be checked in parallel."""
    for leaf in leaves:
        if b'"kind":"actor_registered"' not in leaf and b'"kind":"key_added"' not in leaf:
            continue
        try:
            statement = Statement.from_json(canonical.loads(canonical.split_entry(leaf)[5]))
            vkey = crypto.parse_verifier_key(statement.body["vkey"])
            owner = statement.body.get("name") or statement.body.get("actor")
        except (SuyuanError, KeyError, TypeError):
            continue  # the entry itself fails its own check later, in order
        keys.setdefault((owner, vkey.key_id_hex), vkey.public_key)


# --- the audit -------------------------------------------------------------------------------


def audit(db: Database, *, jobs: int | None = None, progress: Progress | None = None,
          policy: note.Policy | None = None) -> AuditReport:
    """Audit the whole log in ``db``; return a report or raise :class:`VerificationError`.

    Without ``policy`` the log and witness keys are those recorded in the database, so the
    audit proves the log is internally consistent. With the policy an auditor holds, those
    keys must be the policy's: a database whose keys were swapped with its history fails.
    """
    jobs = max(1, jobs or os.cpu_count() or 1)
    with db.reader() as session, session.begin():
        origin = repo.require_meta(session, META_ORIGIN)
        log_key = crypto.parse_verifier_key(repo.require_meta(session, META_LOG_VKEY))
        if policy is not None:
            _check_against_policy(session, policy, origin, log_key)
        head_size, head_hash = repo.read_head(session)
        total = repo.count_entries(session)
        hashes = bytearray()
        size, last = _audit_entries(session, jobs, max(total, head_size), hashes, progress)
        if size != head_size or last != head_hash:
            raise ChainBroken(
                f"the log head says {head_size} entries ending in {head_hash.hex()[:16]}…, "
                f"but the entries give {size} ending in {last.hex()[:16]}…",
                index=min(size, head_size),
            )
        levels, nodes = _audit_nodes(session, hashes, size)
        checkpoints, cosignatures = _audit_checkpoints(session, levels, size, origin, log_key)
    return AuditReport(size, _root(levels, size), checkpoints, cosignatures, nodes)


def _audit_entries(
    session: Any, jobs: int, total: int, hashes: bytearray, progress: Progress | None
) -> tuple[int, bytes]:
    registry = Registry()
    keys: dict[tuple[str, str], bytes] = {}
    pending: deque[tuple[dict[tuple[str, str], bytes], Any]] = deque()
    expected, prev = 0, GENESIS_HASH
    pool = multiprocessing.get_context("fork").Pool(jobs) if jobs > 1 else None

    def settle(snapshot: dict[tuple[str, str], bytes], result: Any) -> None:
        nonlocal expected, prev
        rows, failure = result.get() if pool else result
        for digest, index, prev_hex, kind, actor, key_id, time, nonce, body, extra in rows:
            if prev_hex != prev.hex():
                raise ChainBroken(f"entry {index}: prev does not match the hash of entry "
                                  f"{index - 1}", index=index)
            stored_hash, stored_prev, stored_actor, stored_nonce, stored_kind = row_hashes[index]
            if stored_hash != digest or stored_prev != prev:
                raise ChainBroken(f"entry {index}: stored hash columns differ from its leaf",
                                  index=index)
            if (stored_actor, stored_nonce, stored_kind) != (actor, nonce, kind):
                raise VerificationError(
                    f"entry {index}: stored actor/nonce/kind columns differ from its statement",
                    index=index)
            replay = nonces.setdefault(_nonce_key(actor, nonce), index)
            if replay != index:
                raise VerificationError(
                    f"entry {index} repeats the nonce of entry {replay} by {actor} (a replay)",
                    index=index)
            statement = Statement(kind, actor, key_id, time, nonce, body or {})
            try:
                record = registry.check_state(statement, index)
            except Rejected as exc:
                raise VerificationError(f"entry {index}: {exc}", index=index) from exc
            used = extra if extra is not None else snapshot.get((actor, key_id))
            if used != record.public_key:
                raise BadSignature(f"entry {index}: signed with a key that is not {actor}'s "
                                   f"registered key {key_id}", index=index)
            registry.apply(statement, index)
            hashes.extend(digest)
            prev = digest
            expected = index + 1
        if failure is not None:
            at, cls, message = failure
            raise _ERRORS[cls](message, index=at)
        if progress:
            progress(expected, total)

    row_hashes: dict[int, tuple[bytes, bytes, str, str, str]] = {}
    nonces: dict[bytes, int] = {}
    try:
        chunk: list[bytes] = []
        chunk_start = 0
        for idx, leaf, digest, stored_prev, actor, nonce, kind in repo.iter_entries(
            session, chunk=CHUNK
        ):
            if idx != chunk_start + len(chunk):
                missing = chunk_start + len(chunk)
                _flush(chunk, chunk_start, keys, pool, pending, jobs, settle)
                while pending:
                    settle(*pending.popleft())
                raise ChainBroken(f"entry {missing} is missing", index=missing)
            row_hashes[idx] = (digest, stored_prev, actor, nonce, kind)
            chunk.append(leaf)
            if len(chunk) == CHUNK:
                _flush(chunk, chunk_start, keys, pool, pending, jobs, settle)
                chunk_start += len(chunk)
                chunk = []
                _trim(row_hashes, expected)
        _flush(chunk, chunk_start, keys, pool, pending, jobs, settle)
        while pending:
            settle(*pending.popleft())
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    _compare_registry(session, registry)
    return expected, prev


def _compare_registry(session: Any, registry: Registry) -> None:
    """Appends trust the actor and key tables; they must equal the registry replayed here."""
    stored = repo.load_registry(session)
    for name in sorted(set(stored.actors) | set(registry.actors)):
        mine, theirs = registry.actors.get(name), stored.actors.get(name)
        if theirs is None or mine is None or (mine.role, mine.registered_at) != (
                theirs.role, theirs.registered_at):
            raise VerificationError(f"the actors table disagrees with the log about {name!r}",
                                    index=mine.registered_at if mine else None)
    for key in sorted(set(stored.keys) | set(registry.keys)):
        mine_key, their_key = registry.keys.get(key), stored.keys.get(key)
        if mine_key != their_key:
            at = (mine_key.revoked_at or mine_key.added_at) if mine_key else None
            raise VerificationError(f"the actor_keys table disagrees with the log about key "
                                    f"{key[1]} of {key[0]!r}", index=at)


def _nonce_key(actor: str, nonce: str) -> bytes:
    # 16 bytes of BLAKE2b instead of the strings: a million entries stay small in memory.
    return hashlib.blake2b(f"{actor}\n{nonce}".encode(), digest_size=16).digest()


def _trim(row_hashes: dict[int, Any], below: int) -> None:
    for key in [k for k in row_hashes if k < below]:
        del row_hashes[key]


def _flush(chunk: list[bytes], start: int, keys: dict[tuple[str, str], bytes], pool: Any,
           pending: deque[Any], jobs: int, settle: Callable[..., None]) -> None:
    if not chunk:
        return
    snapshot = dict(keys)
    _prescan_keys(chunk, keys)
    if pool is None:
        settle(snapshot, _check_chunk(start, list(chunk), snapshot))
        return
    pending.append((snapshot, pool.apply_async(_check_chunk, (start, list(chunk), snapshot))))
    while len(pending) > jobs * 2:
        settle(*pending.popleft())


def _check_against_policy(session: Any, policy: note.Policy, origin: str,
                          log_key: crypto.VerifierKey) -> None:
    if policy.origin != origin:
        raise VerificationError(f"this log's origin is {origin!r}, the policy's is "
                                f"{policy.origin!r}")
    if policy.log != log_key:
        raise VerificationError("the log key recorded in the database is not the policy's log "
                                "key: the database's checkpoints cannot be trusted")
    anchored = {key.name: key for key in policy.witnesses}
    for row in repo.witnesses(session):
        expected = anchored.get(row.name)
        if expected is not None and crypto.parse_verifier_key(row.vkey) != expected:
            raise VerificationError(f"witness {row.name}'s key in the database is not the "
                                    "policy's key for it")


def _hash_at(levels: list[bytearray], level: int, idx: int) -> bytes:
    return bytes(levels[level][idx * 32 : idx * 32 + 32])


def _root(levels: list[bytearray], size: int) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    ids = merkle.range_nodes(0, size)
    digest = _hash_at(levels, *ids[-1])
    for level, idx in reversed(ids[:-1]):
        digest = merkle.node_hash(_hash_at(levels, level, idx), digest)
    return digest


def _audit_nodes(session: Any, leaf_hashes: bytearray, size: int) -> tuple[list[bytearray], int]:
    """Recompute every complete subtree and compare it with the stored node table."""
    levels = [leaf_hashes]
    count = 0
    level = 0
    while True:
        current = levels[level]
        width = len(current) // 32
        seen = 0
        for idx, digest in repo.iter_nodes(session, level):
            if idx >= width:
                raise RootMismatch(
                    f"stored node (level {level}, index {idx}) covers entries beyond the log",
                    index=min(idx << level, size),
                )
            if idx != seen:
                raise RootMismatch(f"node (level {level}, index {seen}) is missing",
                                   index=seen << level)
            if digest != current[idx * 32 : idx * 32 + 32]:
                first = idx << level
                raise RootMismatch(
                    f"stored node (level {level}, index {idx}) over entries {first}.."
                    f"{first + (1 << level) - 1} differs from the hash of those entries",
                    index=first,
                )
            seen += 1
        if seen != width:
            raise RootMismatch(f"node (level {level}, index {seen}) is missing",
                               index=seen << level)
        count += seen
        if width < 2:
            extra = [lv for lv in repo.node_levels(session) if lv > level]
            if extra:
                raise RootMismatch(f"stored nodes at level {extra[0]} cover no complete subtree",
                                   index=size)
            return levels, count
        parent = bytearray()
        sha = hashlib.sha256
        for i in range(0, (width // 2) * 64, 64):
            parent += sha(b"\x01" + current[i : i + 64]).digest()
        levels.append(parent)
        level += 1


def _audit_checkpoints(session: Any, levels: list[bytearray], size: int, origin: str,
                       log_key: crypto.VerifierKey) -> tuple[int, int]:
    witness_keys = {w.name: crypto.parse_verifier_key(w.vkey) for w in repo.witnesses(session)}
    cosigs: dict[int, list[Any]] = {}
    for row in repo.all_cosignatures(session):
        cosigs.setdefault(int(row.size), []).append(row)
    count = 0
    rows = repo.all_checkpoints(session)
    for row in rows:
        what = f"checkpoint {row.size}"
        try:
            cp, _ = note.open_checkpoint(row.note, log_key, origin)
        except (NoteError, MalformedInput) as exc:
            raise NoteError(f"{what}: {exc}", checkpoint=int(row.size)) from exc
        if cp.size != row.size or cp.root_hash != bytes(row.root):
            raise NoteError(f"{what}: stored size/root differ from its signed note",
                            checkpoint=int(row.size))
        if cp.size > size:
            raise RootMismatch(f"{what} is beyond the log's {size} entries",
                               checkpoint=int(row.size))
        if _root(levels, cp.size) != cp.root_hash:
            raise RootMismatch(f"{what}: its root is not the root of the first {cp.size} "
                               "entries", checkpoint=cp.size)
        for cosig in cosigs.pop(int(row.size), []):
            key = witness_keys.get(cosig.witness)
            if key is None:
                raise NoteError(f"{what}: cosignature by unknown witness {cosig.witness!r}",
                                checkpoint=int(row.size))
            try:
                stamp = note.verify_cosignature(note.parse_note(row.note + cosig.line), key)
            except (NoteError, MalformedInput) as exc:
                raise NoteError(f"{what}: cosignature by {cosig.witness}: {exc}",
                                checkpoint=int(row.size)) from exc
            if stamp != cosig.timestamp:
                raise NoteError(f"{what}: cosignature time differs from the stored time",
                                checkpoint=int(row.size))
            count += 1
    if cosigs:
        orphan = min(cosigs)
        raise NoteError(f"cosignature for checkpoint {orphan}, which does not exist",
                        checkpoint=orphan)
    # Every checkpoint root was recomputed from the same leaves, so each later checkpoint
    # extends each earlier one: consistency holds by construction of this check.
    return len(rows), count
