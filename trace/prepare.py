"""The import's worker side: what can be done to a line before it meets the log.

Each line is parsed, checked against the canonical form and the statement rules, its body
validated and its signature verified against the key table as the import started; the
result is a plain tuple the parent appends. Nothing here touches the database engine or the
ORM, so ``suyuan import`` can fork its workers and set them going before the parent has
loaded SQLAlchemy: the start-up of the command overlaps the verification of the first
batches.
"""

from __future__ import annotations

import functools
import gc
import os
import pickle
import signal
import sqlite3
from binascii import a2b_base64
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from suyuan import canonical, crypto
from suyuan.errors import BadSignature, MalformedInput, SuyuanError
from suyuan.model import Statement, parse_signed_statement
from suyuan.registry import validate_body
from suyuan.storage import plain

if TYPE_CHECKING:
    import multiprocessing.pool

MAX_LINE_BYTES = 64 * 1024
DEFAULT_BATCH = 5000
TASK_LINES = 250
WORKER_NICENESS = 5
"""Workers run at a lower priority than the process that commits: on a machine with as many
cores as workers, the committing process, the one that cannot be parallel, keeps a core."""

Keys = dict[tuple[str, str], bytes]
"""(actor, key id) -> Ed25519 public key: every key the log has registered."""

Prepared = tuple[Any, ...]
"""What a worker makes of a line, as a plain tuple (it crosses a process boundary by
pickling): ``(line number, None, reason, message)`` for a refused line, else ``(line number,
statement fields, statement bytes, signature, key it was verified with or None, whether its
body is valid, entry tail)``."""


def read_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Number the non-blank lines of an NDJSON stream (1-based line numbers)."""
    for number, line in enumerate(stream, 1):
        line = line.strip()
        if line:
            yield number, line


def prepare_part(task: tuple[list[tuple[int, bytes]], bytes | Keys]) -> list[Prepared]:
    """Parse, canonicalise, check and pre-verify lines (runs in worker processes)."""
    if _cancelled is not None and _cancelled.is_set():
        return []  # the import stopped: what is still queued is skipped
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
        except SuyuanError as exc:
            out.append((number, None, reason_of(exc), str(exc)))
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


def reason_of(error: Exception) -> str:
    """The short code a refused line is reported with, whoever refused it (a worker or the
    ledger): the rule's own for a rejection, else what kind of input failed."""
    if isinstance(error, BadSignature):
        return "bad_signature"
    if isinstance(error, MalformedInput):
        return "malformed"
    return str(getattr(error, "reason", "rejected"))


class Unpickled:
    """What is handed to a worker with each of many tasks (a key table),
    pickled once by the parent and unpickled once per worker."""

    def __init__(self) -> None:
        self._last: tuple[bytes, Any] | None = None

    def __call__(self, blob: bytes) -> Any:
        if self._last is None or self._last[0] != blob:
            self._last = (blob, pickle.loads(blob))
        return self._last[1]


_keys_snapshot = Unpickled()


def _keys_of(keys: bytes | Keys) -> Keys:
    """The key snapshot of a task: pickled once per batch, unpickled once per worker."""
    return keys if isinstance(keys, dict) else cast(Keys, _keys_snapshot(keys))


def parse_canonical_line(raw: bytes) -> tuple[Statement, canonical.StatementBytes, bytes, str] | None:
    """(statement, statement bytes, signature, signature base64) of a line that is the
    canonical JCS of a signed statement (what `suyuan sign` writes), exactly as
    :func:`parse_signed_statement` would return them; ``None`` for any other line (which
    that function then parses, or refuses with its reason)."""
    parts = canonical.signed_line_parts(raw)
    if parts is None:
        return None
    signature_b64, data, (actor, body, key_id, kind, log, nonce, time) = parts
    if len(data) > canonical.MAX_STATEMENT_BYTES:
        return None
    if not is_valid_envelope(actor, key_id, kind, log):
        return None
    # The nonce and the time have the model's shapes (the pattern's); the time must also be
    # a real date, which parse_time reads with fromisoformat.
    try:
        datetime.fromisoformat(time)
    except ValueError:
        return None
    statement = Statement(kind, actor, key_id, time, nonce, body, log=log)
    return statement, data, a2b_base64(signature_b64), signature_b64


_ENVELOPES: dict[tuple[str, str, str, str | None], bool] = {}


def is_valid_envelope(actor: str, key_id: str, kind: str, log: str | None) -> bool:
    """Whether :meth:`Statement.from_json` accepts a statement with these envelope values.

    A log has few actors, keys, kinds and origins: each combination is put to the model
    itself once (with a valid time, nonce and body); time and nonce differ per statement:
    the fast patterns require the model's shapes of both (``NONCE``, ``TIMESTAMP``), and the
    time's date is read as ``parse_time`` reads it (``datetime.fromisoformat``)."""
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


def sqlite_keys(url: str) -> Keys | None:
    """The key table of a ledger in a plain SQLite file, read with the standard library.

    For starting the workers before the database layer is loaded: the workers only
    pre-verify, the ledger re-checks any line whose key it resolves differently, so a stale
    or partial table costs time, never correctness. ``None`` for any URL that is not a plain
    SQLite file path, or a file that holds no ledger (the caller then goes the usual way).
    """
    path = plain.sqlite_path(url)
    if path is None:
        return None
    file = plain.SqliteFile(path)
    try:
        with file.reading() as query:
            rows = query("SELECT actor, key_id, public_key FROM actor_keys", ())
        return {(actor, key_id): bytes(public_key) for actor, key_id, public_key in rows}
    except (sqlite3.Error, TypeError, ValueError):  # no such file, not our table after all
        return None
    finally:
        file.close()


def fork_pool(jobs: int, initializer: Callable[..., None], initargs: tuple[Any, ...] = ()
              ) -> multiprocessing.pool.Pool:
    """A pool of ``jobs`` forked workers, for the import and the audit's reference pass: the
    standard library's, less one wake-up, and with workers that end quietly when the process
    that started them is killed (see :func:`_pool_class`)."""
    import multiprocessing  # (loaded when a command starts workers, not at every start)

    # Ctrl-C waits until every worker is forked and known to the pool: one pressed between a
    # fork and its bookkeeping left that worker unknown, waiting for tasks for ever.
    with interrupts_held():
        return _pool_class()(jobs, initializer, initargs,
                             context=multiprocessing.get_context("fork"))


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the end of the block, then let it in. Its Python handler,
    which runs in the main thread whichever thread the signal reached, only notes it
    meanwhile (a worker forked meanwhile inherits that, and ignores Ctrl-C first thing).
    Outside the main thread, where Ctrl-C is not raised anyway, nothing changes."""
    caught: list[Any] = []
    try:
        if signal.getsignal(signal.SIGINT) is None:  # (a handler not set from Python)
            raise ValueError("left as it is")
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            if callable(previous):
                previous(signal.SIGINT, caught[0])
            elif previous == signal.SIG_DFL:
                signal.raise_signal(signal.SIGINT)


@functools.cache
def _pool_class() -> type[multiprocessing.pool.Pool]:
    import multiprocessing.pool

    class Pool(multiprocessing.pool.Pool):
        """The standard library's process pool, less one wake-up. Its thread that looks after
        the workers also waits on the pipe the results come through, so it spins for as long
        as a result is there unread: for a large one, the whole time a worker writes it, as
        the result thread reads it piece by piece. Measured on an import of 20,000 lines: 7
        to 9 µs of the parent's CPU per line, a sixth of all it does. The thread still wakes
        when a worker exits and when the pool is closed or its last task is done (the pool
        tells it then), which is all it acts on."""

        def _get_sentinels(self) -> list[Any]:
            return [self._change_notifier._reader]  # type: ignore[attr-defined]

        @staticmethod
        def Process(ctx: Any, *args: Any, **kwds: Any) -> Any:
            kwds["target"] = functools.partial(_quiet_when_orphaned, kwds["target"])
            return ctx.Process(*args, **kwds)

    return Pool


def _quiet_when_orphaned(work: Callable[..., None], *args: Any) -> None:
    """Run a pool worker's loop; end it quietly if the process that reads its results is gone
    (killed, say), instead of printing the traceback of the broken pipe to the terminal it
    shares with that process. (Not by dying of SIGPIPE: a worker that dies while writing
    holds the result pipe's lock for ever, and the other workers wait on it for ever.)"""
    try:
        work(*args)
    except BrokenPipeError:
        pass


Part = tuple[bool, list[Prepared]]
"""A batch's next part of prepared lines, and whether it ends the batch."""


class Pipeline:
    """Lines in, prepared parts out, in order: batches of ``batch_size`` lines cut into tasks
    of :data:`TASK_LINES`, about two batches in flight on ``jobs`` forked workers.

    With one job there is no pool: each part is prepared when it is taken, against the keys
    as they are then (the parent adds keys registered by committed batches to ``keys``)."""

    def __init__(self, lines: Iterable[tuple[int, bytes]], keys: Keys, *, jobs: int,
                 batch_size: int = DEFAULT_BATCH) -> None:
        self.lines = iter(lines)
        self.keys = keys
        self.batch_size = batch_size
        canonical.compile_recognisers()  # before the fork: the workers inherit them
        self.pool: Any = None
        if jobs > 1:
            import multiprocessing

            self.cancelled = multiprocessing.get_context("fork").Event()
            self.pool = fork_pool(jobs, _start_worker, (self.cancelled,))
        self.ahead = 2 * -(-batch_size // TASK_LINES) if self.pool is not None else 0
        self.pending: deque[tuple[bool, Callable[[], list[Prepared]]]] = deque()
        self.is_exhausted = False

    def fill(self) -> None:
        """Queue whole batches until about two are in flight (or the lines run out)."""
        while not self.is_exhausted and len(self.pending) <= self.ahead:
            batch = [item for _, item in zip(range(self.batch_size), self.lines, strict=False)]
            if len(batch) < self.batch_size:
                self.is_exhausted = True
            if batch:
                self._submit(batch)

    def parts(self) -> Iterator[Part]:
        """The prepared parts, in line order, keeping the workers fed."""
        while True:
            self.fill()
            if not self.pending:
                return
            is_batch_end, result = self.pending.popleft()
            yield is_batch_end, result()

    def _submit(self, batch: list[tuple[int, bytes]]) -> None:
        parts = [batch[i : i + TASK_LINES] for i in range(0, len(batch), TASK_LINES)]
        if self.pool is None:
            keys = self.keys
            for number, part in enumerate(parts, 1):
                self.pending.append((number == len(parts),
                                     lambda part=part: prepare_part((part, keys))))
            return
        # The key snapshot is pickled once per batch; keys registered by earlier lines of the
        # file are learnt when their batch commits (until then the parent verifies their lines).
        snapshot = pickle.dumps(self.keys, pickle.HIGHEST_PROTOCOL)
        for number, part in enumerate(parts, 1):
            task = self.pool.apply_async(prepare_part, ((part, snapshot),))
            self.pending.append((number == len(parts), task.get))

    def close(self, *, cancel: bool = False) -> None:
        """Let the workers exit. After a failure or an interruption (``cancel``) they skip
        what is still queued; otherwise it (a few batches at most) is finished. Never
        ``terminate()``: it can hang when its task thread is blocked feeding a full pipe."""
        if self.pool is not None:
            if cancel:
                self.cancelled.set()
            self.pool.close()
            self.pool.join()
            self.pool = None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        self.close(cancel=exc_type is not None)


_cancelled: Any = None  # a worker's view of Pipeline.cancelled


def _start_worker(cancelled: Any) -> None:
    global _cancelled
    _cancelled = cancelled
    # Ctrl-C reaches the whole process group: the parent stops the import (and tells the
    # workers to skip what is queued); a worker killed mid-task would leave the pool
    # waiting for its result for ever.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # What the worker inherited lives as long as it does: out of its collections.
    gc.freeze()
    gc.enable()
    try:
        os.nice(WORKER_NICENESS)
    except OSError:  # not allowed here: run at the same priority
        pass
