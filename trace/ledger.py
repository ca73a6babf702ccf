"""The log as a service: append statements, build proofs, sign checkpoints.

Every function takes a SQLAlchemy Session and leaves the transaction to the caller, except
that writers must run inside a session from :meth:`Database.writer` so that, on SQLite,
concurrent appenders queue on ``BEGIN IMMEDIATE``; on PostgreSQL the head row is locked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from suyuan import canonical, crypto, merkle, note, supply
from suyuan.errors import (
    BadSignature,
    ConfigError,
    Duplicate,
    InconsistentCheckpoint,
    MalformedInput,
    NotFound,
    Rejected,
)
from suyuan.model import (
    GENESIS_HASH,
    MAX_CLOCK_SKEW,
    Entry,
    SignedStatement,
    Statement,
    format_time,
    new_nonce,
    parse_time,
    sign_statement,
    utcnow,
)
from suyuan.registry import Registry
from suyuan.storage import repo
from suyuan.storage.plain import META_LOG_VKEY, META_ORIGIN

META_REGISTRAR = "registrar"


@dataclass(frozen=True)
class Prepared:
    """A signed statement whose signature may already have been checked (by a worker)
    under ``verified_key``; the ledger re-checks if the key it resolves differs.

    A bulk importer's workers may also have done the work that does not depend on the log:
    ``is_body_valid`` if ``registry.validate_body`` accepted the statement, ``tail`` the
    entry's end made by ``canonical.entry_tail(signed.signature_b64, signed.data)``."""

    signed: SignedStatement
    verified_key: bytes | None = None
    is_body_valid: bool = False
    tail: bytes | None = None


@dataclass(frozen=True)
class AppendResult:
    """The outcome of one statement of a batch: appended, duplicate, or refused."""

    index: int | None = None
    leaf_hash: bytes | None = None
    error: Exception | None = None
    alerts: tuple[supply.Alert, ...] = ()

    @property
    def is_duplicate(self) -> bool:
        return isinstance(self.error, Duplicate)


# --- set up ----------------------------------------------------------------------------------


def initialise(
    session: Session,
    *,
    origin: str,
    log_key: crypto.SigningKey,
    registrar: str,
    registrar_key: crypto.SigningKey,
    now: datetime | None = None,
) -> SignedStatement:
    """Write the log's identity and the registrar's self-signed genesis entry (index 0)."""
    crypto.check_key_name(origin)
    if repo.get_meta(session, META_ORIGIN) is not None:
        raise ConfigError("the ledger is already initialised")
    now = now or utcnow()
    repo.set_meta(session, META_ORIGIN, origin)
    repo.set_meta(session, META_LOG_VKEY, str(crypto.verifier_key(origin, log_key.public_key)))
    repo.set_meta(session, META_REGISTRAR, registrar)
    repo.create_head(session, GENESIS_HASH)
    session.flush()
    vkey = crypto.verifier_key(registrar, registrar_key.public_key)
    genesis = sign_statement(
        Statement(
            kind="actor_registered",
            actor=registrar,
            key_id=vkey.key_id_hex,
            time=format_time(now),
            nonce=new_nonce(),
            body={"name": registrar, "role": "registrar", "vkey": str(vkey),
                  "display_name": "Log registrar"},
            log=origin,
        ),
        registrar_key,
    )
    (result,) = append(session, [genesis], now=now)
    if result.error is not None:
        raise result.error
    return genesis


def origin(session: Session) -> str:
    return repo.require_meta(session, META_ORIGIN)


def log_vkey(session: Session) -> crypto.VerifierKey:
    return crypto.parse_verifier_key(repo.require_meta(session, META_LOG_VKEY))


# --- append ----------------------------------------------------------------------------------


def append(
    session: Session,
    items: Sequence[SignedStatement | Prepared],
    *,
    now: datetime | None = None,
) -> list[AppendResult]:
    """Append a batch in the caller's transaction; one result per item, in order.

    Refused items (bad signature, unknown or revoked key, role, replay, malformed body, a
    future timestamp) are reported and skipped; the others are appended with consecutive
    indexes. Nothing is written if the caller rolls back.
    """
    size, last_hash = repo.lock_head(session)
    log_origin = repo.get_meta(session, META_ORIGIN)
    before = repo.load_registry(session)
    registry = before.copy()
    state = supply.SupplyState(session, registry)
    compact = merkle.CompactRange.load(size, lambda ids: repo.fetch_nodes(session, ids))
    now = now or utcnow()
    received_at = format_time(now)
    latest_allowed = now + MAX_CLOCK_SKEW
    prepared = [it if isinstance(it, Prepared) else Prepared(it) for it in items]
    state.prefetch_lots({
        p.signed.statement.body["lot"] for p in prepared
        if p.signed.statement.kind == "note" and isinstance(p.signed.statement.body.get("lot"), str)
    })
    seen = repo.find_nonces(
        session, ((p.signed.statement.actor, p.signed.statement.nonce) for p in prepared)
    )
    batch_nonces: dict[tuple[str, str], tuple[int, bytes]] = {}

    results: list[AppendResult] = []
    entry_rows: list[tuple[object, ...]] = []
    node_rows: list[tuple[merkle.NodeId, bytes]] = []
    index, prev = size, last_hash
    for item in prepared:
        signed, statement = item.signed, item.signed.statement
        try:
            nonce_key = (statement.actor, statement.nonce)
            earlier = seen.get(nonce_key) or batch_nonces.get(nonce_key)
            if earlier is not None:
                raise _replay(signed, *earlier)
            if statement.log is not None and statement.log != log_origin:
                raise Rejected(f"statement is for the log {statement.log!r}, not this log "
                               f"({log_origin!r})", reason="wrong_log")
            if parse_time(statement.time) > latest_allowed:
                raise Rejected(
                    f"statement time {statement.time} is in the future (log time {received_at})",
                    reason="future_time",
                )
            record = (registry.check_state(statement, index) if item.is_body_valid
                      else registry.check(statement, index))
            if item.verified_key != record.public_key:
                signed.verify(record.public_key)
            role = registry.actors[statement.actor].role if not registry.is_empty else ""
            alerts = supply.check(state, statement, index, role)
        except (Rejected, MalformedInput, BadSignature) as exc:
            results.append(AppendResult(error=exc))
            continue
        if item.tail is None:
            leaf = Entry.build(index, prev.hex(), signed, received_at).leaf
        else:
            leaf = canonical.entry_from_tail(index=index, key_id=statement.key_id,
                                             prev=prev.hex(), received_at=received_at,
                                             tail=item.tail)
        state.batch_leaves[index] = leaf
        digest = merkle.leaf_hash(leaf)
        node_rows.extend(compact.append(digest))
        registry.apply(statement, index)
        supply.apply(state, statement, index, alerts)
        entry_rows.append((index, leaf, digest, prev, statement.actor, statement.nonce,
                           statement.kind))
        batch_nonces[nonce_key] = (index, leaf)
        results.append(AppendResult(index=index, leaf_hash=digest, alerts=tuple(alerts)))
        index, prev = index + 1, digest

    if entry_rows:
        repo.insert_entries(session, entry_rows)
        repo.insert_nodes(session, node_rows)
        repo.set_head(session, index, prev)
        repo.save_registry_changes(session, before, registry)
        session.flush()
    return results


def _replay(signed: SignedStatement, earlier: int, leaf: bytes) -> Rejected:
    """A statement reusing an (actor, nonce): idempotent if identical, refused otherwise."""
    if Entry.from_leaf(leaf).statement == signed.data:
        return Duplicate(f"already in the log at entry {earlier}", index=earlier)
    return Rejected(
        f"nonce {signed.statement.nonce!r} of {signed.statement.actor!r} was already used "
        f"by entry {earlier}",
        reason="nonce_reused",
    )


# --- reading ---------------------------------------------------------------------------------


def size(session: Session) -> int:
    return repo.read_head(session)[0]


def entry(session: Session, index: int) -> Entry:
    return Entry.from_leaf(repo.leaf(session, index))


def _fetch(session: Session) -> merkle.FetchNodes:
    return lambda ids: repo.fetch_nodes(session, ids)


def root(session: Session, tree_size: int) -> bytes:
    """The Merkle root of the first ``tree_size`` entries, from stored nodes."""
    current = size(session)
    if not 0 <= tree_size <= current:
        raise NotFound(f"the log has {current} entries, not {tree_size}")
    nodes = merkle.range_nodes(0, tree_size) if tree_size else []
    found = repo.fetch_nodes(session, nodes)
    digest = merkle.EMPTY_ROOT if not nodes else found[nodes[-1]]
    for node in reversed(nodes[:-1]):
        digest = merkle.node_hash(found[node], digest)
    return digest


def inclusion_proof(session: Session, index: int, tree_size: int) -> list[bytes]:
    return merkle.inclusion_proof(index, tree_size, _fetch(session))


def consistency_proof(session: Session, size1: int, size2: int) -> list[bytes]:
    return merkle.consistency_proof(size1, size2, _fetch(session))


# --- checkpoints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointResult:
    note: str
    checkpoint: note.Checkpoint
    is_new: bool


def checkpoint(
    session: Session, log_key: crypto.SigningKey, *, now: datetime | None = None
) -> CheckpointResult:
    """Sign a checkpoint of the current tree if the log grew since the latest one.

    Before signing, prove consistency from the previous checkpoint to the new tree from the
    stored nodes; the log never signs two checkpoints that are not consistent.
    """
    tree_size, _ = repo.lock_head(session)
    log_origin = origin(session)
    vkey = log_vkey(session)
    if crypto.verifier_key(log_origin, log_key.public_key) != vkey:
        raise ConfigError("the log key in the keystore is not this log's key")
    latest = repo.latest_checkpoint(session)
    if latest is not None and latest.size == tree_size:
        cp = note.parse_checkpoint(note.parse_note(latest.note).text)
        return CheckpointResult(latest.note, cp, False)
    new_root = root(session, tree_size)
    if latest is not None:
        if latest.size > tree_size:
            raise InconsistentCheckpoint(
                f"the log has {tree_size} entries but checkpoint {latest.size} exists"
            )
        proof = consistency_proof(session, latest.size, tree_size) if latest.size else []
        try:
            if latest.size:
                merkle.verify_consistency(latest.size, tree_size, proof, bytes(latest.root),
                                          new_root)
        except Exception as exc:
            raise InconsistentCheckpoint(
                f"refusing to sign: tree {tree_size} is not consistent with checkpoint "
                f"{latest.size} ({exc})"
            ) from exc
    cp = note.Checkpoint(log_origin, tree_size, new_root)
    signed = note.sign_checkpoint(cp, log_origin, log_key)
    text = str(signed)
    repo.add_checkpoint(session, tree_size, new_root, text, format_time(now or utcnow()))
    return CheckpointResult(text, cp, True)


def cosigned_note(session: Session, tree_size: int | None = None) -> str:
    """The stored checkpoint (latest by default) with every witness cosignature appended."""
    row = repo.latest_checkpoint(session) if tree_size is None else repo.checkpoint_at(
        session, tree_size
    )
    if row is None:
        raise NotFound("no checkpoint yet: run `suyuan checkpoint`")
    lines = "".join(c.line for c in repo.cosignatures(session, row.size))
    return row.note + lines


def tlog_proof(session: Session, index: int) -> note.TlogProof:
    """The C2SP tlog-proof of entry ``index`` against the latest (cosigned) checkpoint."""
    row = repo.latest_checkpoint(session)
    if row is None:
        raise NotFound("no checkpoint yet: run `suyuan checkpoint`")
    if not 0 <= index < row.size:
        raise NotFound(
            f"entry {index} is not covered by the latest checkpoint (size {row.size}); "
            "run `suyuan checkpoint` first"
            if index >= 0 else f"no entry {index}"
        )
    path = inclusion_proof(session, index, row.size)
    return note.TlogProof(index=index, path=tuple(path), checkpoint=cosigned_note(session))


def policy(session: Session, quorum: int | None = None) -> note.Policy:
    """The tlog-policy of this log: its key and origin, the witnesses and the quorum."""
    keys = tuple(crypto.parse_verifier_key(w.vkey) for w in repo.witnesses(session))
    if quorum is None:
        quorum = 1 if keys else 0
    if not 0 <= quorum <= len(keys):
        raise MalformedInput(f"quorum must be between 0 and {len(keys)} (the witnesses known)")
    return note.Policy(log=log_vkey(session), origin=origin(session), witnesses=keys,
                       quorum=quorum)



def registry(session: Session) -> Registry:
    return repo.load_registry(session)
