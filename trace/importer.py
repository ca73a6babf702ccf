"""Bulk import of pre-signed statements (NDJSON), batched per transaction.

Worker processes (:mod:`suyuan.prepare`) do everything that does not depend on the log:
parse each line, check its canonical form and its body, verify its signature and build the
end of its entry; the parent appends each batch in one transaction, so a crash (even
``kill -9``) leaves the log exactly as it was after the last committed batch. Statements
carry (actor, nonce): re-running an import finds what is already in the log and appends
nothing twice.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from suyuan import crypto, ledger
from suyuan.errors import SuyuanError
from suyuan.model import SignedStatement, Statement
from suyuan.prepare import (  # noqa: F401  (the worker side, re-exported)
    DEFAULT_BATCH,
    MAX_LINE_BYTES,
    TASK_LINES,
    Pipeline,
    Prepared,
    is_valid_envelope,
    parse_canonical_line,
    prepare_part,
    read_lines,
    reason_of,
)
from suyuan.storage import repo
from suyuan.storage.db import Database

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


def _item(row: Prepared) -> ledger.Prepared:
    _, fields, data, signature, key, is_body_valid, tail = row
    kind, actor, key_id, time, nonce, body, log = fields
    return ledger.Prepared(
        SignedStatement(Statement(kind, actor, key_id, time, nonce, body, log=log), data,
                        signature),
        key, is_body_valid, tail)


def import_lines(
    db: Database,
    lines: Iterable[tuple[int, bytes]],
    *,
    batch_size: int = DEFAULT_BATCH,
    jobs: int | None = None,
    progress: Progress | None = None,
    pipeline: Pipeline | None = None,
) -> ImportSummary:
    """Append every valid line; report each refused line with its number and reason.

    Each batch of ``batch_size`` lines is one transaction. The workers hand back their lines
    a few hundred at a time, and the parent appends each part as it comes, in order, inside
    the batch's transaction: it need not wait for a whole batch to start, nor leave the
    workers idle while it appends the last one.

    ``pipeline``: one already started on ``lines`` (see :func:`suyuan.prepare.sqlite_keys`);
    it is closed here."""
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    if pipeline is None:
        with db.reader() as session, session.begin():
            keys = repo.load_registry(session).public_keys()
        pipeline = Pipeline(lines, keys, jobs=jobs, batch_size=batch_size)
    importing = _Import(db, pipeline.keys, progress)
    # The cyclic garbage collector waits while a batch is appended: the batch's prepared
    # lines (thousands of objects that live until its commit) would set it off again and
    # again, scanning them each time (measured: 8% of an import's time). It runs between
    # batches, where what a batch left in cycles is collected.
    collecting = gc.isenabled()
    with pipeline:
        try:
            for is_batch_end, part in pipeline.parts():
                gc.disable()
                importing.take(is_batch_end, part)
                if is_batch_end and collecting:
                    gc.enable()
        finally:
            if collecting:
                gc.enable()
            importing.close()
    importing.summary.errors.sort(key=lambda e: e.line)
    return importing.summary


class _Import:
    """The parent's side: append the workers' lines in order, a transaction per batch."""

    def __init__(self, db: Database, keys: dict[tuple[str, str], bytes],
                 progress: Progress | None) -> None:
        self.db = db
        self.keys = keys
        self.progress = progress
        self.summary = ImportSummary()
        self.session: Any = None
        self.transaction: Any = None
        self.items: list[tuple[int, ledger.Prepared]] = []
        self.results: list[ledger.AppendResult] = []
        self.lines = 0
        self.has_failed = False

    def take(self, is_batch_end: bool, prepared: list[Prepared]) -> None:
        """Append the next part of the current batch; commit it at the batch's end."""
        self.lines += len(prepared)
        good = []
        for row in prepared:
            if row[1] is None:
                self.summary.errors.append(LineError(row[0], row[2], row[3]))
            else:
                good.append((row[0], _item(row)))
        self.items += good
        if good and not self.has_failed:
            try:
                if self.session is None:
                    self.session = self.db.writer()
                    self.transaction = self.session.begin()
                self.results += ledger.append(self.session, [item for _, item in good])
            except (SuyuanError, SQLAlchemyError):
                # Something no rule foresaw failed the batch (its transaction is rolled
                # back): at its end, its lines are appended one by one, so only the line at
                # fault is refused.
                self.has_failed = True
                self.close()
        if is_batch_end:
            self._end_batch()

    def _end_batch(self) -> None:
        if self.session is not None:
            try:
                self.transaction.commit()
            except SQLAlchemyError:
                self.has_failed = True
            self.close()
        results = (self.results if not self.has_failed
                   else [_append_alone(self.db, item) for _, item in self.items])
        summary = self.summary
        for (number, item), result in zip(self.items, results, strict=True):
            if result.error is None:
                summary.appended += 1
                if summary.first_index is None:
                    summary.first_index = result.index
                summary.last_index = result.index
                statement = item.signed.statement
                if statement.kind in ("actor_registered", "key_added"):
                    _learn_key(self.keys, statement)
            elif result.is_duplicate:
                summary.duplicates += 1
            else:
                summary.errors.append(LineError(number, reason_of(result.error),
                                                str(result.error)))
        if self.progress:
            self.progress(self.lines)
        self.items, self.results, self.lines, self.has_failed = [], [], 0, False

    def close(self) -> None:
        """Roll back and close an open transaction (committed ones are closed already)."""
        if self.session is not None:
            try:
                if self.transaction.is_active:
                    self.transaction.rollback()
            finally:
                self.session.close()
                self.session = self.transaction = None


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


def _learn_key(keys: dict[tuple[str, str], bytes], statement: Any) -> None:
    vkey = crypto.parse_verifier_key(statement.body["vkey"])
    owner = statement.body.get("name") or statement.body.get("actor")
    keys.setdefault((owner, vkey.key_id_hex), vkey.public_key)
