"""Bulk import of pre-signed statements (NDJSON), batched per transaction.

Parsing, canonicalisation and signature checks run in worker processes; the parent appends
each batch in one transaction, so a crash (even ``kill -9``) leaves the log exactly as it was
after the last committed batch. Statements carry (actor, nonce): re-running an import finds
what is already in the log and appends nothing twice.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from suyuan import crypto, ledger
from suyuan.errors import BadSignature, MalformedInput, SuyuanError
from suyuan.model import SignedStatement, Statement, parse_signed_statement
from suyuan.storage import repo
from suyuan.storage.db import Database

MAX_LINE_BYTES = 64 * 1024
DEFAULT_BATCH = 2000
TASK_LINES = 250
Progress = Callable[[int], None]


@dataclass
class LineError:
    line: int
    reason: str
    message: str


@dataclass
class ImportSummary:
    """What an import did, line by line for the failures."""

    appended: int = 0
    duplicates: int = 0
    errors: list[LineError] = field(default_factory=list)
    first_index: int | None = None
    last_index: int | None = None

    @property
    def lines(self) -> int:
        return self.appended + self.duplicates + len(self.errors)


Prepared = tuple[int, Any, bytes | None, str, str]
"""(line number, statement fields or None, key the signature was checked with, reason,
message) — plain tuples, because they cross a process boundary by pickling."""


def _prepare(batch: list[tuple[int, bytes]], keys: dict[tuple[str, str], bytes]
             ) -> list[Prepared]:
    """Parse, canonicalise and pre-verify lines (runs in worker processes)."""
    out: list[Prepared] = []
    for number, raw in batch:
        try:
            if len(raw) > MAX_LINE_BYTES:
                raise MalformedInput(f"line is {len(raw)} bytes; the limit is {MAX_LINE_BYTES}")
            signed = parse_signed_statement(raw)
            st = signed.statement
            key = keys.get((st.actor, st.key_id))
            if key is not None:
                signed.verify(key)
        except BadSignature as exc:
            out.append((number, None, None, "bad_signature", str(exc)))
            continue
        except MalformedInput as exc:
            out.append((number, None, None, "malformed", str(exc)))
            continue
        except SuyuanError as exc:
            out.append((number, None, None, "rejected", str(exc)))
            continue
        fields = (st.kind, st.actor, st.key_id, st.time, st.nonce, st.body, signed.data,
                  signed.signature)
        out.append((number, fields, key, "", ""))
    return out


def _signed(fields: Any) -> SignedStatement:
    kind, actor, key_id, time, nonce, body, data, signature = fields
    return SignedStatement(Statement(kind, actor, key_id, time, nonce, body), data, signature)


def read_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Number the non-blank lines of an NDJSON stream (1-based line numbers)."""
    for number, line in enumerate(stream, 1):
        line = line.strip()
        if line:
            yield number, line


def import_lines(
    db: Database,
    lines: Iterable[tuple[int, bytes]],
    *,
    batch_size: int = DEFAULT_BATCH,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Append every valid line; report each refused line with its number and reason."""
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    summary = ImportSummary()
    with db.reader() as session, session.begin():
        keys = repo.load_registry(session).public_keys()
    pool = multiprocessing.get_context("fork").Pool(jobs) if jobs > 1 else None
    pending: deque[Any] = deque()

    def commit(prepared: list[Prepared]) -> None:
        good = [(n, ledger.Prepared(_signed(f), k)) for n, f, k, _, _ in prepared if f is not None]
        for n, f, _, reason, message in prepared:
            if f is None:
                summary.errors.append(LineError(n, reason, message))
        if good:
            try:
                with db.writer() as session, session.begin():
                    results = ledger.append(session, [p for _, p in good])
            except (SuyuanError, SQLAlchemyError):
                # Something no rule foresaw failed the whole batch (and rolled it back):
                # append line by line so only the line at fault is refused.
                results = [_append_alone(db, p) for _, p in good]
            for (number, prepared_item), result in zip(good, results, strict=True):
                if result.error is None:
                    summary.appended += 1
                    if summary.first_index is None:
                        summary.first_index = result.index
                    summary.last_index = result.index
                    stmt = prepared_item.signed.statement
                    if stmt.kind in ("actor_registered", "key_added"):
                        _learn_key(keys, stmt)
                elif result.is_duplicate:
                    summary.duplicates += 1
                else:
                    reason = getattr(result.error, "reason", "malformed")
                    summary.errors.append(LineError(number, reason, str(result.error)))
        if progress:
            progress(len(prepared))

    try:
        batch: list[tuple[int, bytes]] = []
        for item in lines:
            batch.append(item)
            if len(batch) >= batch_size:
                _submit(batch, keys, pool, pending, commit, jobs)
                batch = []
        if batch:
            _submit(batch, keys, pool, pending, commit, jobs)
        while pending:
            commit(_collect(pending.popleft()))
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    summary.errors.sort(key=lambda e: e.line)
    return summary


def _append_alone(db: Database, item: ledger.Prepared) -> ledger.AppendResult:
    try:
        with db.writer() as session, session.begin():
            (result,) = ledger.append(session, [item])
        return result
    except SQLAlchemyError as exc:
        return ledger.AppendResult(error=SuyuanError(
            f"refused by the database: {str(getattr(exc, 'orig', exc)).splitlines()[0]}"))
    except SuyuanError as exc:
        return ledger.AppendResult(error=exc)


def _submit(batch: list[tuple[int, bytes]], keys: dict[tuple[str, str], bytes], pool: Any,
            pending: deque[Any], commit: Callable[..., None], jobs: int) -> None:
    if pool is None:
        commit(_prepare(batch, keys))
        return
    # Small tasks keep every worker busy; a batch is committed once all its tasks are back,
    # while the workers already prepare the next batches.
    snapshot = dict(keys)
    tasks = [pool.apply_async(_prepare, (batch[i : i + TASK_LINES], snapshot))
             for i in range(0, len(batch), TASK_LINES)]
    pending.append(tasks)
    while len(pending) > 2:
        commit(_collect(pending.popleft()))


def _collect(tasks: list[Any]) -> list[Prepared]:
    return [row for task in tasks for row in task.get()]


def _learn_key(keys: dict[tuple[str, str], bytes], statement: Any) -> None:
    vkey = crypto.parse_verifier_key(statement.body["vkey"])
    owner = statement.body.get("name") or statement.body.get("actor")
    keys.setdefault((owner, vkey.key_id_hex), vkey.public_key)
