"""Bulk import of pre-signed statements (NDJSON), batched per transaction.

Worker processes do everything that does not depend on the log: parse each line, check its
canonical form and its body, verify its signature and build the end of its entry; the
parent appends each batch in one transaction, so a crash (even ``kill -9``) leaves the log
exactly as it was after the last committed batch. Statements carry (actor, nonce):
re-running an import finds what is already in the log and appends nothing twice.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from binascii import a2b_base64
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from suyuan import canonical, crypto, ledger
from suyuan.errors import BadSignature, MalformedInput, SuyuanError
from suyuan.model import NONCE, SignedStatement, Statement, parse_signed_statement, parse_time
from suyuan.registry import validate_body
from suyuan.storage import repo
from suyuan.storage.db import Database

MAX_LINE_BYTES = 64 * 1024
DEFAULT_BATCH = 2000
TASK_LINES = 250
WORKER_NICENESS = 5
"""Workers run at a lower priority than the process that commits: on a machine with as many
cores as workers, the committing process, the one that cannot be parallel, keeps a core."""
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


Prepared = tuple[Any, ...]
"""What a worker makes of a line, as a plain tuple (it crosses a process boundary by
pickling): ``(line number, None, reason, message)`` for a refused line, else ``(line number,
statement fields, statement bytes, signature, key it was verified with or None, whether its
body is valid, entry tail)``."""


def _prepare(task: tuple[list[tuple[int, bytes]], bytes | dict[tuple[str, str], bytes]]
             ) -> list[Prepared]:
    """Parse, canonicalise, check and pre-verify lines (runs in worker processes)."""
    batch, keys = task[0], _keys_of(task[1])
    out: list[Prepared] = []
    is_valid = crypto.is_valid_prefixed_signature
    prefix = canonical.STATEMENT_PREFIX
    for number, raw in batch:
        try:
            if len(raw) > MAX_LINE_BYTES:
                raise MalformedInput(f"line is {len(raw)} bytes; the limit is {MAX_LINE_BYTES}")
            fast = parse_canonical_line(raw)
            if fast is None:
                signed = parse_signed_statement(raw)
                st, data, signature = signed.statement, signed.data, signed.signature
                signature_b64 = signed.signature_b64
            else:
                st, data, signature, signature_b64 = fast
            key = keys.get((st.actor, st.key_id))
            if key is not None and not is_valid(key, signature, prefix, data):
                raise BadSignature("signature does not verify")
        except BadSignature as exc:
            out.append((number, None, "bad_signature", str(exc)))
            continue
        except MalformedInput as exc:
            out.append((number, None, "malformed", str(exc)))
            continue
        except SuyuanError as exc:
            out.append((number, None, "rejected", str(exc)))
            continue
        try:
            validate_body(st)
            is_body_valid = True
        except Exception:  # the ledger checks it again, and refuses it in its own order
            is_body_valid = False
        fields = (st.kind, st.actor, st.key_id, st.time, st.nonce, st.body, st.log)
        out.append((number, fields, data, signature, key, is_body_valid,
                    canonical.entry_tail(signature_b64, data)))
    return out


_keys_cache: tuple[bytes, dict[tuple[str, str], bytes]] | None = None


def _keys_of(keys: bytes | dict[tuple[str, str], bytes]) -> dict[tuple[str, str], bytes]:
    """The key snapshot of a task: pickled once per batch, unpickled once per worker."""
    global _keys_cache
    if isinstance(keys, dict):
        return keys
    if _keys_cache is None or _keys_cache[0] != keys:
        _keys_cache = (keys, pickle.loads(keys))
    return _keys_cache[1]


def parse_canonical_line(raw: bytes) -> tuple[Statement, canonical.StatementBytes, bytes, str] | None:
    """(statement, statement bytes, signature, signature base64) of a line that is the
    canonical JCS of a signed statement (what `suyuan sign` writes), exactly as
    :func:`parse_signed_statement` would return them; ``None`` for any other line (which
    that function then parses, or refuses with its reason)."""
    parts = canonical.signed_line_parts(raw)
    if parts is None:
        return None
    signature_b64, data, (actor, body, key_id, kind, log, nonce, time) = parts
    if len(data) > canonical.MAX_STATEMENT_BYTES or not NONCE.match(nonce):
        return None
    if not is_valid_envelope(actor, key_id, kind, log):
        return None
    try:
        parse_time(time)
    except MalformedInput:
        return None
    statement = Statement(kind, actor, key_id, time, nonce, body, log=log)
    return statement, data, a2b_base64(signature_b64), signature_b64


_ENVELOPES: dict[tuple[str, str, str, str | None], bool] = {}


def is_valid_envelope(actor: str, key_id: str, kind: str, log: str | None) -> bool:
    """Whether :meth:`Statement.from_json` accepts a statement with these envelope values.

    A log has few actors, keys, kinds and origins: each combination is put to the model
    itself once (with a valid time, nonce and body); time and nonce differ per statement
    and are checked each time, by the model's own ``parse_time`` and ``NONCE``."""
    combination = (actor, key_id, kind, log)
    known = _ENVELOPES.get(combination)
    if known is None:
        sample: dict[str, Any] = {"v": 1, "kind": kind, "actor": actor, "key_id": key_id,
                                  "time": "2000-01-01T00:00:00Z", "nonce": "00000000",
                                  "body": {}}
        if log is not None:
            sample["log"] = log
        try:
            Statement.from_json(sample)
            known = True
        except SuyuanError:
            known = False
        if len(_ENVELOPES) < 100_000:
            _ENVELOPES[combination] = known
    return known


def _item(row: Prepared) -> ledger.Prepared:
    _, fields, data, signature, key, is_body_valid, tail = row
    kind, actor, key_id, time, nonce, body, log = fields
    return ledger.Prepared(
        SignedStatement(Statement(kind, actor, key_id, time, nonce, body, log=log), data,
                        signature),
        key, is_body_valid, tail)


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
    """Append every valid line; report each refused line with its number and reason.

    Each batch of ``batch_size`` lines is one transaction. The workers hand back their lines
    a few hundred at a time, and the parent appends each part as it comes, in order, inside
    the batch's transaction: it need not wait for a whole batch to start, nor leave the
    workers idle while it appends the last one."""
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    with db.reader() as session, session.begin():
        keys = repo.load_registry(session).public_keys()
    importing = _Import(db, keys, progress)
    canonical.compile_recognisers()
    pool = (multiprocessing.get_context("fork").Pool(jobs, initializer=_start_worker)
            if jobs > 1 else None)
    pending: deque[tuple[bool, Any]] = deque()
    ahead = 3 * -(-batch_size // TASK_LINES)  # tasks in flight: about three batches
    try:
        batch: list[tuple[int, bytes]] = []
        for item in lines:
            batch.append(item)
            if len(batch) >= batch_size:
                _submit(batch, keys, pool, pending, importing)
                batch = []
                while len(pending) > ahead:
                    importing.take(*_collect(pending.popleft()))
        if batch:
            _submit(batch, keys, pool, pending, importing)
        while pending:
            importing.take(*_collect(pending.popleft()))
    finally:
        importing.close()
        if pool is not None:
            # What is still queued (a few batches at most) finishes: terminate() can hang
            # when its task thread is blocked feeding a full pipe.
            pool.close()
            pool.join()
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
                reason = getattr(result.error, "reason", "malformed")
                summary.errors.append(LineError(number, reason, str(result.error)))
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


def _start_worker() -> None:
    try:
        os.nice(WORKER_NICENESS)
    except OSError:  # not allowed here: run at the same priority
        pass


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
            pending: deque[tuple[bool, Any]], importing: _Import) -> None:
    """Queue a batch's lines in tasks of TASK_LINES (run them here without a pool)."""
    parts = [batch[i : i + TASK_LINES] for i in range(0, len(batch), TASK_LINES)]
    if pool is None:
        for number, part in enumerate(parts, 1):
            importing.take(number == len(parts), _prepare((part, keys)))
        return
    # The key snapshot is pickled once per batch; keys registered by earlier lines of the
    # file are learnt when their batch commits (until then the parent verifies their lines).
    snapshot = pickle.dumps(keys, pickle.HIGHEST_PROTOCOL)
    for number, part in enumerate(parts, 1):
        pending.append((number == len(parts), pool.apply_async(_prepare, ((part, snapshot),))))


def _collect(task: tuple[bool, Any]) -> tuple[bool, list[Prepared]]:
    is_batch_end, result = task
    return is_batch_end, result.get()


def _learn_key(keys: dict[tuple[str, str], bytes], statement: Any) -> None:
    vkey = crypto.parse_verifier_key(statement.body["vkey"])
    owner = statement.body.get("name") or statement.body.get("actor")
    keys.setdefault((owner, vkey.key_id_hex), vkey.public_key)
