"""Full audit of a stored log: signatures and key state, hash chain, Merkle nodes, checkpoints.

The audit trusts nothing it reads: it re-derives every leaf hash, every stored tree node and
every checkpoint root from the leaf bytes, replays the actor registry from entry 0, and
checks every signature (spread over worker processes). The first failure is raised as a
:class:`VerificationError` naming the entry index (or checkpoint) and why.

It runs in two passes that check the same things. The *fast pass* is built for throughput:
the registry entries (few, found through the kind index) are replayed first, so that each
process (this one and forked workers) can check aligned ranges of entries and tree nodes,
read straight from the database, against the key state as of each entry; this process also
joins the ranges. It
answers "everything holds" or "something is off", and at the first doubt the *reference
pass* runs, entry by entry in log order, to name the first bad entry (or node) and why. So
every failure in the entries, the tree or the registry tables is named by the reference
pass; the fast pass raises only what is checked before any entry (the policy) or after all
of them (the checkpoints), exactly as the reference pass would.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import gc
import hashlib
import math
import mmap
import os
import select
import signal
import struct
import threading
from array import array
from binascii import a2b_base64, a2b_hex
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from suyuan import canonical, crypto, lazy, merkle, note
from suyuan.errors import (
    BadSignature,
    ChainBroken,
    ConfigError,
    DamagedRecord,
    MalformedInput,
    NoteError,
    Rejected,
    RootMismatch,
    SuyuanError,
    VerificationError,
)
from suyuan.events import KINDS
from suyuan.model import GENESIS_HASH, MAX_CLOCK_SKEW, Statement, parse_time
from suyuan.prepare import fork_pool, interrupts_held, is_valid_envelope
from suyuan.registry import REGISTRY_KINDS, Registry, validate_body, validate_kind_body
from suyuan.storage import plain
from suyuan.storage.plain import META_LOG_VKEY, META_ORIGIN, Query, SqliteFile

if TYPE_CHECKING:
    from suyuan.storage.db import Database

repo = lazy.module("suyuan.storage.repo")  # the reference pass and databases other than a file

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


# --- the audit -------------------------------------------------------------------------------


def audit(db: Database, *, jobs: int | None = None, progress: Progress | None = None,
          policy: note.Policy | None = None, fast: bool = True) -> AuditReport:
    """Audit the whole log in ``db``; return a report or raise :class:`VerificationError`.

    Without ``policy`` the log and witness keys are those recorded in the database, so the
    audit proves the log is internally consistent. With the policy an auditor holds, those
    keys must be the policy's: a database whose keys were swapped with its history fails.
    ``fast=False`` goes straight to the reference pass (when the fast pass already doubted).
    """
    jobs = max(1, jobs or os.cpu_count() or 1)
    reported = _Monotonic(progress)
    if fast:
        path = plain.sqlite_path(db.url) if db.is_sqlite else None
        source = _Source(file=path if path is not None and path.is_file() else None, db=db)
        try:
            return _fast_audit(source, jobs, reported, policy)
        except (_Doubt, DamagedRecord):  # (the reference pass says it in log order)
            pass
        except SuyuanError:
            raise  # the policy, a checkpoint, no ledger: what the reference pass raises too
        except Exception:  # anything unforeseen (a database error…): the reference pass decides
            pass
        finally:
            source.close()
    return _reference_audit(db, jobs, reported, policy)


class Undecided(Exception):
    """:func:`audit_file` does not vouch for the log: :func:`audit` with ``fast=False``
    (the reference pass) names what is wrong."""


def audit_file(path: Path, *, jobs: int | None = None, progress: Progress | None = None,
               policy: note.Policy | None = None) -> AuditReport | None:
    """The fast pass over a ledger in a SQLite file, read with the standard library alone
    (no database layer is loaded). A report when everything holds; :class:`Undecided` when
    the fast pass does not vouch for the log; ``None`` when the file cannot be read that
    way (not a ledger of this version, say: :func:`audit` then takes it the usual way).
    Raises what :func:`audit` raises before or after the entries (the policy, the
    checkpoints)."""
    jobs = max(1, jobs or os.cpu_count() or 1)
    source = _Source(file=path)
    try:
        try:
            with source.reading() as query:
                if plain.schema_revisions(query) != {plain.SCHEMA_REVISION}:
                    return None
        except Exception:  # not a SQLite file, not readable, not a ledger
            return None
        return _fast_audit(source, jobs, _Monotonic(progress), policy)
    except DamagedRecord as exc:
        raise Undecided(str(exc)) from exc
    except SuyuanError:
        raise
    except Exception as exc:  # a doubt, or anything unforeseen: the reference pass decides
        raise Undecided(str(exc)) from exc
    finally:
        source.close()


class _Monotonic:
    """Progress that never goes back (the reference pass starts again from entry 0)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.done = 0

    def __bool__(self) -> bool:
        return self.progress is not None

    def __call__(self, done: int, total: int) -> None:
        if self.progress is not None and done > self.done:
            self.done = done
            self.progress(done, total)


# --- the fast pass ---------------------------------------------------------------------------


class _Doubt(Exception):  # not an error: "let the reference pass look"
    """The fast pass saw something it does not vouch for; the reference pass decides."""


RANGE_MIN, RANGE_MAX = 256, 8192
"""Entries per worker task (the last few shrink to a quarter of ``RANGE_MIN``): a power of
two, so a range's tree nodes are its own. Small enough that the workers finish together,
large enough that a task's queries and hand-offs stay small against the signature checks."""

KeyRecords = dict[tuple[str, str], tuple[bytes, int, int | None]]
"""(actor, key_id) → (public key, entry that added it, entry that revoked it)."""


@dataclass(frozen=True)
class _Plan:
    """What a worker needs besides its range: prepared once by the parent, inherited at fork."""

    keys: KeyRecords
    roles: dict[str, str]
    registry_entries: frozenset[int]
    origin: str


class _Handback:
    """Where the workers put what they hash for the parent (each range's tree levels and
    nonce hashes): a shared anonymous mapping made before they fork, laid out by level for
    the first ``capacity`` entries. Handed back through a pipe instead, a range's hashes (72
    bytes an entry) would fill it and hold the worker until the parent, busy with a range
    of its own, read them."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.bases: list[int] = []
        offset = 0
        for level in range(capacity.bit_length()):
            self.bases.append(offset)
            offset += 32 * (capacity >> level)
        self.nonces = offset
        self.area = mmap.mmap(-1, max(1, offset + 8 * capacity))

    def put(self, start: int, levels: list[bytearray], nonces: bytes) -> bool:
        """Store a range's levels (level 0 first) and nonce hashes, if they fit."""
        if start + len(levels[0]) // 32 > self.capacity:
            return False
        area = self.area
        for level, blob in enumerate(levels):
            at = self.bases[level] + 32 * (start >> level)
            area[at : at + len(blob)] = blob
        area[self.nonces + 8 * start : self.nonces + 8 * start + len(nonces)] = nonces
        return True

    def take(self, start: int, stop: int, bits: int) -> tuple[list[bytes], bytes]:
        """What :meth:`put` stored for the range ``start..stop-1`` with levels 0..bits."""
        area, levels = self.area, []
        for level in range(bits + 1):
            first, last = start >> level, stop >> level
            if last == first:
                break
            levels.append(area[self.bases[level] + 32 * first : self.bases[level] + 32 * last])
        return levels, area[self.nonces + 8 * start : self.nonces + 8 * stop]

    def close(self) -> None:
        self.area.close()


class _Source:
    """Where the fast pass reads, in the parent and in each worker: a SQLite file through the
    standard library's ``sqlite3`` (no database layer needed), or a :class:`Database`
    through its sessions (PostgreSQL, or SQLite the file reader does not take)."""

    def __init__(self, *, file: Path | str | None = None, db: Database | None = None) -> None:
        self.file = SqliteFile(file) if file is not None else None
        self.db = db  # read through when there is no file; its engine is closed before fork
        self.one_query = self.file is None and db is not None and not db.is_sqlite
        """Whether the tree nodes of a range are read in one query (on a server: a round
        trip each would cost more) or one per level (cheapest on SQLite)."""

    def reading(self) -> AbstractContextManager[Query]:
        """A query function inside one read transaction."""
        if self.file is not None:
            return self.file.reading()
        return self._session_reading()

    @contextmanager
    def _session_reading(self) -> Iterator[Query]:
        assert self.db is not None
        with self.db.reader() as session, session.begin():
            yield repo.query(session)

    def for_workers(self) -> tuple[str, str] | None:
        """How another process opens this source, or ``None`` if none can (in-memory)."""
        if self.file is not None:
            return ("file", str(self.file.path))
        assert self.db is not None
        return ("url", self.db.url) if _is_shared(self.db) else None

    def before_fork(self) -> None:
        """Neither SQLite nor the driver may see a connection carried across fork: close
        ours (it is opened again when next used). The database layer's first, while the
        read-only file connection still reads the file: the last connection to close a
        file in WAL mode copies the log back into it (a write and a sync, 50 ms here, after
        the caller's own writes), which an audit has no business doing; a read-only one
        cannot, so nothing is written."""
        if self.db is not None and self.db.is_sqlite:
            self.db.engine.dispose()
        if self.file is not None:
            self.file.close()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


_source: _Source | None = None  # what _check_range reads: a worker's own, or the caller's


def _fast_audit(source: _Source, jobs: int, progress: _Monotonic,
                policy: note.Policy | None) -> AuditReport:
    with source.reading() as query:
        origin, log_key = _log_identity(query, policy)
        found = plain.head(query)
        if found is None:
            raise _Doubt("no head")
        size, head_hash = found
        if plain.has_entries_outside(query, size):
            raise _Doubt("entries outside the head")
        registry, registry_entries = _replay_registry(query)
        try:
            _compare_registry(query, registry)
        except VerificationError as exc:
            raise _Doubt("registry tables") from exc
        widths = _widths(size)
        if plain.has_nodes_outside(query, widths):
            raise _Doubt("nodes outside the tree")
        if size < 2 * RANGE_MIN:
            jobs = 1
        ranges = _ranges(size, _range_bits(size, jobs), jobs)
        # Nodes the ranges do not cover (above them, or above the small ranges at the end):
        # hashed here once the ranges are in; the stored ones are read now.
        covered = _covered(ranges, len(widths))
        stored_above = plain.node_hashes(query, [
            (level, covered[level], width) for level, width in enumerate(widths)
            if covered[level] < width], one_query=source.one_query)
        stored_checkpoints = _read_checkpoints(query)
    plan = _Plan(
        keys={ref: (rec.public_key, rec.added_at, rec.revoked_at)
              for ref, rec in registry.keys.items()},
        roles={name: actor.role for name, actor in registry.actors.items()},
        registry_entries=frozenset(registry_entries), origin=origin,
    )
    levels: list[bytearray] = [bytearray() for _ in widths]
    nonces: set[int] = set()
    last = GENESIS_HASH
    with _Workers(source, jobs) as workers:
        for start, stop, range_levels, nonce_hashes in workers.check(plan, ranges):
            before = len(nonces)
            nonces.update(array("q", nonce_hashes))
            if len(nonces) - before != stop - start:
                raise _Doubt(f"a nonce repeats (or two hash alike) in entries {start}..{stop - 1}")
            for level, blob in enumerate(range_levels):
                levels[level] += blob
            last = range_levels[0][-32:]
            if progress:
                progress(stop, size)
    if last != head_hash:
        raise _Doubt("head")
    _upper_levels(levels, widths, stored_above)
    checkpoints, cosignatures = _audit_checkpoints(stored_checkpoints, levels, size, origin,
                                                   log_key)
    return AuditReport(size, _root(levels, size), checkpoints, cosignatures, sum(widths))


def _widths(size: int) -> list[int]:
    """Complete subtrees per level of a tree over ``size`` leaves, up to the highest level
    that has one: the nodes the table must hold, exactly."""
    widths = []
    while size >> len(widths):
        widths.append(size >> len(widths))
    return widths


def _range_bits(size: int, jobs: int) -> int:
    bits = RANGE_MIN.bit_length() - 1
    while (1 << (bits + 1)) <= RANGE_MAX and (size >> (bits + 1)) >= 8 * jobs:
        bits += 1
    return bits


def _ranges(size: int, bits: int, jobs: int) -> list[Range]:
    """Ranges of 2**bits entries; then, for the last ``jobs`` of them and the rest, ranges a
    quarter that size; and so on down to a quarter of ``RANGE_MIN`` entries: the last tasks
    are short, so the workers finish within a few milliseconds of each other."""
    finest = max(0, RANGE_MIN.bit_length() - 3)
    ranges: list[Range] = []
    start = 0
    while True:
        finer = max(finest, bits - 2)
        end = size if finer == bits else max(start, ((size >> bits) - jobs) << bits)
        ranges += [(first, min(first + (1 << bits), size), bits)
                   for first in range(start, end, 1 << bits)]
        if end >= size:
            return ranges
        start, bits = end, finer


def _covered(ranges: list[Range], height: int) -> list[int]:
    """Per level, how many nodes (a prefix of the level) the workers' ranges hash."""
    covered = [0] * height
    for start, stop, bits in ranges:
        for level in range(min(bits + 1, height)):
            covered[level] += (stop >> level) - (start >> level)
    return covered


def _replay_registry(query: Query) -> tuple[Registry, list[int]]:
    """The registry as of the end of the log, from its registry entries alone, each checked
    at its index as the reference pass does. The kind column that finds them is checked
    against every leaf by the workers."""
    registry = Registry()
    found = []
    for index, leaf in plain.entries_of_kinds(query, REGISTRY_KINDS):
        try:
            statement = Statement.from_json(canonical.loads(canonical.split_entry(leaf)[5]))
            if statement.kind not in REGISTRY_KINDS:
                raise _Doubt(f"entry {index}: kind column")
            validate_body(statement)
            registry.check_state(statement, index)
            registry.apply(statement, index)
        except (SuyuanError, ValueError, KeyError, TypeError) as exc:
            raise _Doubt(f"registry entry {index}") from exc
        found.append(index)
    return registry, found


def _upper_levels(levels: list[bytearray], widths: list[int],
                  stored: dict[int, list[Any]]) -> None:
    """Hash the nodes no worker range covered (the end of each level above the small ranges,
    and the levels above all ranges), level by level, and compare them with the stored ones."""
    sha = hashlib.sha256
    for level in range(1, len(widths)):
        have = len(levels[level]) // 32
        if have == widths[level]:
            continue
        below = levels[level - 1]
        above = bytearray()
        for i in range(have * 64, widths[level] * 64, 64):
            above += sha(b"\x01" + below[i : i + 64]).digest()
        found = stored.get(level, [])
        if len(found) != widths[level] - have or b"".join(found) != above:  # (or TypeError)
            raise _Doubt(f"nodes at level {level}")
        levels[level] += above


class _Workers:
    """The processes that check the ranges of entries: this one and ``jobs - 1`` forked
    workers, or this one alone (one job, one range, a database only this process can open,
    or no memory for the :class:`_Handback`). Each takes the next range number from a shared
    pipe, so that a worker's share follows its speed; a worker reads its ranges from the
    database itself, puts their hashes in the hand-back area and reports each range done
    (or its doubt) through a pipe of its own. Forked once the plan is ready, the workers
    inherit it: nothing is pickled, no thread is started (but for a log of more than 134
    million entries, see :func:`_feed`), and this process checks ranges too instead of
    waiting for them."""

    def __init__(self, source: _Source, jobs: int) -> None:
        self.source = source
        self.jobs = jobs
        self.children: dict[int, int] = {}  # a worker's report pipe (read end) → its pid
        self.pipes: list[int] = []  # the task pipe's ends this process holds
        self.feeder: threading.Thread | None = None  # see _feed
        self.handback: _Handback | None = None

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        # (Ctrl-C waits meanwhile: a second one would leave workers running, or unreaped)
        with interrupts_held():
            children, self.children = self.children, {}
            pipes, self.pipes = self.pipes, []
            if exc_type is not None:  # left early (a doubt, Ctrl-C…): the workers stop now
                for pid in children.values():
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            for fd in children:
                os.close(fd)
            _reap(list(children.values()))
            if self.feeder is not None:  # let it write the rest (nobody reads it) and end
                if pipes:
                    _read_to_end(pipes[0], b"")
                self.feeder.join()
                self.feeder = None
            for fd in pipes:
                os.close(fd)
            if self.handback is not None:
                self.handback.close()
                self.handback = None

    def check(self, plan: _Plan, ranges: list[Range]) -> Iterator[RangeResult]:
        """:func:`_check_range` over ``ranges``, results in order."""
        global _source
        where = self.source.for_workers() if self.jobs > 1 and len(ranges) > 1 else None
        if where is not None:
            try:
                self.handback = _Handback(ranges[-1][1])
            except (OSError, OverflowError, ValueError):  # no memory for it: alone
                where = None
        _source = self.source
        try:
            if where is None:
                for bounds in ranges:
                    yield _check_range(plan, *bounds)
            else:
                yield from self._together(plan, ranges, where)
        finally:
            _source = None

    def _together(self, plan: _Plan, ranges: list[Range], where: tuple[str, str]
                  ) -> Iterator[RangeResult]:
        assert self.handback is not None
        handback = self.handback
        tasks, feed = os.pipe()
        self.pipes += (tasks, feed)
        self.source.before_fork()
        canonical.compile_recognisers("entry")  # (what _check_entries reads leaves with)
        # Ctrl-C waits until every worker is known (so that it is stopped) and the task pipe
        # is fed.
        with interrupts_held():
            for _ in range(min(self.jobs - 1, len(ranges) - 1)):
                report, told = os.pipe()
                try:
                    pid = os.fork()
                except OSError:  # (no more processes, say: the fast pass steps aside)
                    os.close(report)
                    os.close(told)
                    raise
                if pid == 0:
                    try:
                        _work(where, plan, ranges, handback, tasks, told,
                              close=(feed, report, *self.children))
                    finally:
                        os._exit(1)
                os.close(told)
                self.children[report] = pid
            self.feeder = _feed(feed, len(ranges))
            self.pipes.remove(feed)
            os.close(feed)
        mine: dict[int, RangeResult] = {}
        theirs: set[int] = set()
        reports = _Reports(self.children, theirs)
        ahead, taking = 0, True  # the next range to hand on, in order
        while ahead < len(ranges):
            if taking:
                number = _next_task(tasks)
                if number is None:
                    taking = False
                else:
                    mine[number] = _check_range(plan, *ranges[number])
            reports.read(wait=not taking)  # once none is left to take: wait for them
            while ahead in mine or ahead in theirs:
                if ahead in mine:
                    yield mine.pop(ahead)
                else:
                    start, stop, bits = ranges[ahead]
                    yield (start, stop, *handback.take(start, stop, bits))
                ahead += 1
            if not taking and not reports.busy and ahead < len(ranges):
                raise _Doubt(f"range {ahead} was never checked")


_TASK = struct.Struct("<i")
"""A range number in the task pipe, and a worker's report: the number of a range it checked,
:data:`_FINISHED` when there are none left, or :data:`_DOUBTS` and then its doubt in UTF-8."""
_FINISHED, _DOUBTS = -1, -2


def _feed(fd: int, count: int) -> threading.Thread | None:
    """Write the range numbers ``0..count-1`` into the task pipe: at once if they fit in it
    (up to 16,384 ranges with Linux's 64 KiB pipes, a log of 134 million entries), else the
    rest from a thread, returned, on a descriptor of its own that it closes when it is done
    (the caller closes ``fd``). Every write is of whole numbers, and of at most PIPE_BUF
    bytes, so never interleaved: each 4-byte read takes one whole number."""
    numbers = array("i", range(count)).tobytes()
    room = _pipe_room(fd) // _TASK.size * _TASK.size
    for at in range(0, min(room, len(numbers)), _CHUNK):  # (the pipe is empty: no wait)
        os.write(fd, numbers[at : min(at + _CHUNK, room)])
    if len(numbers) <= room:
        return None
    own = os.dup(fd)

    def write_the_rest() -> None:
        try:
            view = memoryview(numbers)
            for at in range(room, len(numbers), _CHUNK):
                os.write(own, view[at : at + _CHUNK])
        except OSError:  # (nobody reads any more: only when the audit was left early)
            pass
        finally:
            os.close(own)

    feeder = threading.Thread(target=write_the_rest, name="suyuan-audit-tasks", daemon=True)
    try:
        feeder.start()
    except BaseException:
        os.close(own)
        raise
    return feeder


_CHUNK = select.PIPE_BUF // _TASK.size * _TASK.size
"""Bytes per write to the task pipe: whole numbers, atomic (POSIX: up to PIPE_BUF)."""


def _pipe_room(fd: int) -> int:
    try:
        return int(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))
    except (AttributeError, OSError):  # not Linux: POSIX promises PIPE_BUF at least
        return 512


def _next_task(fd: int) -> int | None:
    """The next range number from the task pipe, or ``None`` once it is empty and closed
    (see :func:`_feed`)."""
    data = os.read(fd, _TASK.size)
    if not data:
        return None
    if len(data) != _TASK.size:
        raise _Doubt("a torn range number in the task pipe")
    return int(_TASK.unpack(data)[0])


class _Reports:
    """The parent's side of the workers' report pipes."""

    def __init__(self, children: dict[int, int], done: set[int]) -> None:
        self.open = dict.fromkeys(children, b"")  # report pipe → bytes not yet understood
        self.done = done
        self.poll = select.poll()  # (not select(): a busy server's descriptors pass 1024)
        for fd in children:
            self.poll.register(fd, select.POLLIN)

    @property
    def busy(self) -> bool:
        """Whether some worker has not said it finished."""
        return bool(self.open)

    def read(self, *, wait: bool) -> None:
        """Take in what the workers reported (waiting for something if ``wait``)."""
        if not self.open:
            return
        for fd, _ in self.poll.poll(None if wait else 0):
            data = os.read(fd, 65536)
            if not data:
                raise _Doubt("a worker stopped before it finished")
            pending = self.open[fd] + data
            at = 0
            while at + _TASK.size <= len(pending):
                (number,) = _TASK.unpack_from(pending, at)
                at += _TASK.size
                if number >= 0:
                    self.done.add(number)
                elif number == _FINISHED:
                    del self.open[fd]
                    self.poll.unregister(fd)
                    break
                else:
                    said = _read_to_end(fd, pending[at:])
                    raise _Doubt(said.decode("utf-8", "replace") or "a worker doubted")
            else:
                self.open[fd] = pending[at:]


def _read_to_end(fd: int, data: bytes) -> bytes:
    while chunk := os.read(fd, 65536):
        data += chunk
    return data


def _work(where: tuple[str, str], plan: _Plan, ranges: list[Range], handback: _Handback,
          tasks: int, report: int, *, close: tuple[int, ...]) -> NoReturn:
    """A forked worker: check ranges from the task pipe until it is empty; never returns."""
    global _source, _handback
    code = 1
    try:
        # Ctrl-C reaches the whole process group: the parent stops the audit and the workers.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for fd in close:
            os.close(fd)
        # What the worker inherited (in a long-lived or busy parent, much) lives as long as
        # it does: out of its collections, which would otherwise scan it and copy its pages.
        gc.freeze()
        _handback = handback
        kind, target = where
        if kind == "file":
            _source = _Source(file=target)
        else:
            from suyuan.storage.db import Database

            _source = _Source(db=Database(target))
        while (number := _next_task(tasks)) is not None:
            _check_range(plan, *ranges[number])
            os.write(report, _TASK.pack(number))
        os.write(report, _TASK.pack(_FINISHED))
        code = 0
    except BaseException as exc:  # noqa: BLE001 (whatever it was, the parent hears of it)
        with suppress(BaseException):
            said = str(exc) if isinstance(exc, _Doubt) else f"a worker failed: {exc!r}"
            os.write(report, _TASK.pack(_DOUBTS) + said.encode("utf-8", "replace")[:4000])
    finally:
        os._exit(code)


def _ignore_interrupts() -> None:
    """In a pool worker of the reference pass: Ctrl-C reaches the whole process group; the
    parent stops the audit, while a worker killed mid-task would leave the pool waiting for
    its result for ever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _reap(pids: list[int]) -> None:
    """Collect the exit of workers (which have said they finished, or were killed)."""
    for pid in pids:
        with suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _is_shared(db: Database) -> bool:
    """Whether another process can open this database by its URL (not an in-memory one)."""
    if not db.is_sqlite:
        return True
    from sqlalchemy.engine import make_url  # loaded already: ``db`` is an engine

    name = make_url(db.url).database
    return bool(name) and name != ":memory:" and not name.startswith("file:")


_handback: _Handback | None = None  # a worker's view of _Workers.handback


Range = tuple[int, int, int]
"""(start, stop, bits): entries start..stop-1, start a multiple of 2**bits, and the tree
levels 0..bits over them that are complete within the range."""

RangeResult = tuple[int, int, "list[bytes]", bytes]
"""(start, stop, tree levels, nonce hashes) of a range (in a worker, the levels and nonce
hashes go into the :class:`_Handback`)."""


def _check_range(plan: _Plan, start: int, stop: int, bits: int) -> RangeResult:
    """:func:`_check_range_or_raise`, where anything unforeseen is only a doubt too.

    The cyclic garbage collector waits meanwhile: a range's rows (thousands of tuples that
    live until it is done) would set it off again and again, each time scanning what
    survived, and now and then everything the process holds (in a large caller, much);
    what a range makes is freed as it goes by reference counting."""
    collecting = gc.isenabled()
    try:
        gc.disable()
        return _check_range_or_raise(plan, start, stop, bits)
    except _Doubt:
        raise
    except Exception as exc:  # e.g. a database error: the reference pass will say
        raise _Doubt(f"entries {start}..{stop - 1}: {exc!r}") from None
    finally:
        if collecting:
            gc.enable()


def _check_range_or_raise(plan: _Plan, start: int, stop: int, bits: int) -> RangeResult:
    """Check entries ``start..stop-1`` and the tree nodes over them, as the reference pass
    would (signature, key state as of each entry, canonical form, hash chain, stored columns);
    return (start, stop, node hashes per level, nonce hashes), which in a worker go into the
    :class:`_Handback` instead. Raises :class:`_Doubt` at the first thing it does not vouch
    for."""
    assert _source is not None
    with _source.reading() as query:
        rows = plain.entry_rows(query, max(start - 1, 0), stop)
        if start > 0:
            link, rows = rows[0], rows[1:]
            if link[0] != start - 1 or type(link[1]) is not bytes:
                raise _Doubt(f"entry {start - 1} is missing or not bytes")
            prev = hashlib.sha256(b"\x00" + link[1]).digest()
        else:
            prev = GENESIS_HASH
        if len(rows) != stop - start:
            raise _Doubt(f"entries {start}..{stop - 1} are not all there")
        hashes, nonces = _check_entries(plan, start, rows, prev)
        levels = [hashes]
        while len(levels) <= bits and len(levels[-1]) >= 64:
            below, above = levels[-1], bytearray()
            for i in range(0, (len(below) // 64) * 64, 64):
                above += hashlib.sha256(b"\x01" + below[i : i + 64]).digest()
            levels.append(above)
        wanted = [(level, start >> level, (start >> level) + len(blob) // 32)
                  for level, blob in enumerate(levels)]
        stored = plain.node_hashes(query, wanted, one_query=_source.one_query)
    for level, blob in enumerate(levels):
        found = stored[level]
        if len(found) != len(blob) // 32 or b"".join(found) != blob:  # (TypeError: a doubt)
            raise _Doubt(f"nodes at level {level} over entries {start}..{stop - 1}")
    nonce_hashes = nonces.tobytes()
    if _handback is not None:
        if not _handback.put(start, levels, nonce_hashes):
            raise _Doubt(f"entries {start}..{stop - 1} do not fit the hand-back area")
        return start, stop, [], b""
    return start, stop, [bytes(blob) for blob in levels], nonce_hashes


_Context = tuple[bytes, int, "int | None", bool]
"""What an entry's (actor, key_id, kind, log) allow: (public key, entry that added the key,
entry that revoked it, whether the kind is a registry kind)."""
_UNSEEN: Any = object()


def _context_of(plan: _Plan, actor: str, key_id: str, kind: str, log: str | None
                ) -> _Context | None:
    """The :data:`_Context` of a combination, or ``None`` if an entry with it cannot be
    sound anywhere in the log: an envelope the model refuses, a statement bound to another
    log, a key never registered, or (for what is not a registry statement) a kind the
    actor's role may not state."""
    if not is_valid_envelope(actor, key_id, kind, log):
        return None
    if log is not None and log != plan.origin:
        return None
    record = plan.keys.get((actor, key_id))
    if record is None:
        return None
    is_registry_kind = kind in REGISTRY_KINDS
    if not is_registry_kind:
        spec = KINDS.get(kind)
        role = plan.roles.get(actor)
        if role is None or (spec is not None and spec.roles and role not in spec.roles):
            return None
    return (*record, is_registry_kind)


def _check_entries(plan: _Plan, start: int, rows: list[Any], prev: bytes
                   ) -> tuple[bytearray, array[int]]:
    """The per-entry checks of a range (see :func:`_check_range_or_raise`), in one loop:
    this is where an audit spends its time besides verifying signatures."""
    registry_entries = plan.registry_entries
    contexts: dict[tuple[str, str, str, str | None], _Context | None] = {}
    received: dict[bytes, Any] = {}
    hashes = bytearray()
    nonces: array[int] = array("q")
    sha = hashlib.sha256
    prefix = canonical.STATEMENT_PREFIX
    is_valid = crypto.is_valid_prefixed_signature
    entry_parts = canonical.entry_parts
    from_iso = datetime.fromisoformat
    skew = MAX_CLOCK_SKEW
    at = start
    for idx, leaf, stored_hash, stored_prev, stored_actor, stored_nonce, stored_kind in rows:
        if idx != at:
            raise _Doubt(f"entry {at} is missing")
        if type(leaf) is not bytes:  # (as the link above: the reference pass says what)
            raise _Doubt(f"entry {at}: leaf stored as {plain.stored_as(leaf)}")
        try:
            entry = entry_parts(leaf)
            if entry is not None:
                (index, key_id, prev_hex, received_at, sig_b64, data, actor, body, _, kind,
                 log, nonce, time) = entry
                # (the nonce and time have the model's shapes, which the pattern requires;
                # the envelope's other values, below with the key: once per combination)
                signature = a2b_base64(sig_b64)  # 86 base64 characters and "==": 64 bytes
            else:  # the general path: what the reference pass does
                index, key_id, prev_text, received_text, sig_text, data = (
                    canonical.split_entry(leaf))
                parsed = canonical.loads_fast(data)
                general = Statement.from_json(parsed)
                if not canonical.is_canonical(parsed, data) or general.key_id != key_id:
                    raise _Doubt(f"entry {at}: canonical form")
                actor, body, kind, nonce, time, log = (
                    general.actor, general.body, general.kind, general.nonce, general.time,
                    general.log)
                prev_hex, received_at = prev_text.encode(), received_text.encode()
                signature = base64.b64decode(sig_text, validate=True)
            if index != at:
                raise _Doubt(f"entry {at}: index")
            validate_kind_body(kind, body)
            limit = received.get(received_at)
            if limit is None:
                limit = received[received_at] = (
                    parse_time(received_at.decode(), "received_at") + skew)
            if from_iso(time) > limit:  # (its shape is TIMESTAMP's, as parse_time checks)
                raise _Doubt(f"entry {at}: time")
        except (SuyuanError, ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise _Doubt(f"entry {at}: {exc}") from exc
        combination = (actor, key_id, kind, log)
        context = contexts.get(combination, _UNSEEN)
        if context is _UNSEEN:
            context = contexts[combination] = _context_of(plan, *combination)
        if context is None:
            raise _Doubt(f"entry {at}: envelope, log, key or role")
        # The key state as of this entry (Registry.check_state for what is not a registry
        # statement; registry statements were checked in order by the parent).
        public, added, revoked, is_registry_kind = context
        if not (added < at or added == at == 0) or (revoked is not None and revoked < at):
            raise _Doubt(f"entry {at}: key not valid here")
        if (is_registry_kind or at == 0) and at not in registry_entries:
            raise _Doubt(f"entry {at}: registry statement not replayed")
        if not is_valid(public, signature, prefix, data):
            raise _Doubt(f"entry {at}: signature")
        digest = sha(b"\x00" + leaf).digest()
        if (stored_hash != digest or stored_prev != prev or a2b_hex(prev_hex) != prev
                or stored_actor != actor or stored_nonce != nonce or stored_kind != kind):
            raise _Doubt(f"entry {at}: chain or stored columns")
        nonces.append(hash((actor, nonce)))
        hashes += digest
        prev = digest
        at += 1
    return hashes, nonces


# --- the reference pass: the first failure, in log order ------------------------------------


def _check_chunk(
    start: int, leaves: list[bytes], keys: dict[tuple[str, str], bytes], origin: str
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
            if statement.log is not None and statement.log != origin:
                return rows, (at, "VerificationError",
                              f"entry {at}: the statement is bound to the log "
                              f"{statement.log!r}, not this log ({origin!r})")
            validate_body(statement)
            if parse_time(statement.time) > parse_time(received_at, "received_at") + MAX_CLOCK_SKEW:
                return rows, (at, "VerificationError",
                              f"entry {at}: statement time is after the log received it")
            try:
                raw_sig = base64.b64decode(sig_b64, validate=True)
            except binascii.Error:
                raise MalformedInput("its signature is not base64") from None
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


def _reference_audit(db: Database, jobs: int, progress: Progress | None,
                     policy: note.Policy | None) -> AuditReport:
    """Every check in log order, naming the first failure exactly."""
    with db.reader() as session, session.begin(), repo.lenient_text(session):
        query = repo.query(session)
        origin, log_key = _log_identity(query, policy)
        head_size, head_hash = repo.read_head(session)
        total = repo.count_entries(session)
        hashes = bytearray()
        size, last = _audit_entries(session, jobs, max(total, head_size), hashes, progress,
                                    origin)
        if total != size and (stray := plain.stray_entry(query, size)) is not None:
            at = size if not isinstance(stray, int | float) else (
                0 if stray < 0 else min(math.ceil(stray), size))
            raise ChainBroken(f"the entries table holds a row with index {stray!r}, which is "
                              "no entry of the log", index=at)
        if size != head_size or last != head_hash:
            raise ChainBroken(
                f"the log head says {head_size} entries ending in {head_hash.hex()[:16]}…, "
                f"but the entries give {size} ending in {last.hex()[:16]}…",
                index=min(size, head_size),
            )
        levels, nodes = _audit_nodes(session, hashes, size)
        checkpoints, cosignatures = _audit_checkpoints(_read_checkpoints(query), levels,
                                                       size, origin, log_key)
    return AuditReport(size, _root(levels, size), checkpoints, cosignatures, nodes)


def _audit_entries(
    session: Any, jobs: int, total: int, hashes: bytearray, progress: Progress | None,
    origin: str
) -> tuple[int, bytes]:
    registry = Registry()
    keys: dict[tuple[str, str], bytes] = {}
    pending: deque[tuple[dict[tuple[str, str], bytes], Any]] = deque()
    expected, prev = 0, GENESIS_HASH
    pool = fork_pool(jobs, _ignore_interrupts) if jobs > 1 else None

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
        stopped: VerificationError | None = None  # said once what comes before is settled
        entries = repo.iter_entries(session, chunk=CHUNK)
        while True:
            try:
                idx, leaf, digest, stored_prev, actor, nonce, kind = next(entries)
            except StopIteration:
                break
            except DamagedRecord as exc:  # (an entry before it may be missing: said first)
                missing = chunk_start + len(chunk)
                stopped = exc if exc.index == missing else ChainBroken(
                    f"entry {missing} is missing", index=missing)
                break
            if idx != chunk_start + len(chunk):
                missing = chunk_start + len(chunk)
                stopped = ChainBroken(f"entry {missing} is missing", index=missing)
                break
            row_hashes[idx] = (digest, stored_prev, actor, nonce, kind)
            chunk.append(leaf)
            if len(chunk) == CHUNK:
                _flush(chunk, chunk_start, keys, pool, pending, jobs, settle, origin)
                chunk_start += len(chunk)
                chunk = []
                _trim(row_hashes, expected)
        _flush(chunk, chunk_start, keys, pool, pending, jobs, settle, origin)
        while pending:
            settle(*pending.popleft())
        if stopped is not None:
            raise stopped
    finally:
        if pool is not None:
            # At most 2 × jobs chunks are queued: let them finish rather than terminate(),
            # which can hang when its task thread is blocked feeding a full pipe.
            pool.close()
            pool.join()
    _compare_registry(repo.query(session), registry)
    return expected, prev


def _nonce_key(actor: str, nonce: str) -> bytes:
    # 16 bytes of BLAKE2b instead of the strings: a million entries stay small in memory.
    return hashlib.blake2b(f"{actor}\n{nonce}".encode(), digest_size=16).digest()


def _trim(row_hashes: dict[int, Any], below: int) -> None:
    for key in [k for k in row_hashes if k < below]:
        del row_hashes[key]


def _flush(chunk: list[bytes], start: int, keys: dict[tuple[str, str], bytes], pool: Any,
           pending: deque[Any], jobs: int, settle: Callable[..., None], origin: str) -> None:
    if not chunk:
        return
    snapshot = dict(keys)
    _prescan_keys(chunk, keys)
    if pool is None:
        settle(snapshot, _check_chunk(start, list(chunk), snapshot, origin))
        return
    pending.append((snapshot, pool.apply_async(_check_chunk, (start, list(chunk), snapshot, origin))))
    while len(pending) > jobs * 2:
        settle(*pending.popleft())


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


# --- shared by both passes ------------------------------------------------------------------


def _compare_registry(query: Query, registry: Registry) -> None:
    """Appends trust the actor and key tables; they must equal the registry replayed here."""
    stored = plain.load_registry(query)
    for name in sorted(set(stored.actors) | set(registry.actors), key=str):  # (str: see lenient_text)
        mine, theirs = registry.actors.get(name), stored.actors.get(name)
        if theirs is None or mine is None or (mine.role, mine.registered_at) != (
                theirs.role, theirs.registered_at):
            raise VerificationError(f"the actors table disagrees with the log about {name!r}",
                                    index=mine.registered_at if mine else None)
    for key in sorted(set(stored.keys) | set(registry.keys), key=str):
        mine_key, their_key = registry.keys.get(key), stored.keys.get(key)
        if mine_key != their_key:
            at = (mine_key.revoked_at or mine_key.added_at) if mine_key else None
            raise VerificationError(f"the actor_keys table disagrees with the log about key "
                                    f"{key[1]} of {key[0]!r}", index=at)


def _log_identity(query: Query, policy: note.Policy | None) -> tuple[str, crypto.VerifierKey]:
    """The log's origin and key as stored, checked against ``policy`` when one is given."""
    origin, vkey = plain.meta(query, META_ORIGIN), plain.meta(query, META_LOG_VKEY)
    if origin is None or vkey is None:
        raise ConfigError("the ledger is not initialised: run `suyuan init --origin ORIGIN`")
    if type(origin) is not str or type(vkey) is not str:
        raise DamagedRecord("the log's origin or key in the meta table is not stored as text")
    try:
        log_key = crypto.parse_verifier_key(vkey)
    except (MalformedInput, TypeError, ValueError) as exc:
        raise DamagedRecord(f"the log key in the meta table is not a verifier key: {exc}"
                            ) from exc
    if policy is not None:
        _check_against_policy(query, policy, origin, log_key)
    return origin, log_key


def _check_against_policy(query: Query, policy: note.Policy, origin: str,
                          log_key: crypto.VerifierKey) -> None:
    if policy.origin != origin:
        raise VerificationError(f"this log's origin is {origin!r}, the policy's is "
                                f"{policy.origin!r}")
    if policy.log != log_key:
        raise VerificationError("the log key recorded in the database is not the policy's log "
                                "key: the database's checkpoints cannot be trusted")
    anchored = {key.name: key for key in policy.witnesses}
    for row in plain.witnesses(query):
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


@dataclass(frozen=True)
class _StoredCheckpoints:
    witness_keys: dict[str, crypto.VerifierKey]
    cosignatures: dict[int, list[Any]]
    rows: list[Any]


def _read_checkpoints(query: Query) -> _StoredCheckpoints:
    witness_keys = {}
    for w in plain.witnesses(query):
        try:
            witness_keys[w.name] = crypto.parse_verifier_key(w.vkey)
        except (SuyuanError, TypeError, ValueError, AttributeError) as exc:
            raise NoteError(f"witness {w.name}: its stored key is not a verifier key") from exc
    cosigs: dict[Any, list[Any]] = {}
    for row in plain.cosignatures(query):
        cosigs.setdefault(row.size, []).append(row)  # as stored: see _audit_checkpoints
    return _StoredCheckpoints(witness_keys, cosigs, plain.checkpoints(query))


def _whole(value: Any) -> int | None:
    """``value`` if it is a whole number as stored, else ``None``."""
    return value if type(value) is int else None


def _audit_checkpoints(stored: _StoredCheckpoints, levels: list[bytearray], size: int,
                       origin: str, log_key: crypto.VerifierKey) -> tuple[int, int]:
    witness_keys = stored.witness_keys
    cosigs = {cp_size: list(rows) for cp_size, rows in stored.cosignatures.items()}
    count = 0
    rows = stored.rows
    for row in rows:
        # Sizes and times as stored: SQLite keeps whatever a column is given, and a size of
        # 700.25 or a time of "…x" must fail the comparisons below, not be rounded to pass.
        at = _whole(row.size)
        what = f"checkpoint {row.size}"
        if type(row.note) is not str:
            raise NoteError(f"{what}: its stored note is not text", checkpoint=at)
        try:
            cp, _ = note.open_checkpoint(row.note, log_key, origin)
        except (NoteError, MalformedInput) as exc:
            raise NoteError(f"{what}: {exc}", checkpoint=at) from exc
        at = cp.size  # the size the log signed: what names this checkpoint from here on
        if cp.size != row.size or plain.stored_bytes(row.root) != cp.root_hash:
            raise NoteError(f"{what}: stored size/root differ from its signed note",
                            checkpoint=at)
        if cp.size > size:
            raise RootMismatch(f"{what} is beyond the log's {size} entries",
                               checkpoint=at)
        if _root(levels, cp.size) != cp.root_hash:
            raise RootMismatch(f"{what}: its root is not the root of the first {cp.size} "
                               "entries", checkpoint=cp.size)
        for cosig in cosigs.pop(row.size, []):
            key = witness_keys.get(cosig.witness)
            if key is None:
                raise NoteError(f"{what}: cosignature by unknown witness {cosig.witness!r}",
                                checkpoint=at)
            if type(cosig.line) is not str:
                raise NoteError(f"{what}: cosignature by {cosig.witness}: its stored line is "
                                "not text", checkpoint=at)
            try:
                stamp = note.verify_cosignature(note.parse_note(row.note + cosig.line), key)
            except (NoteError, MalformedInput) as exc:
                raise NoteError(f"{what}: cosignature by {cosig.witness}: {exc}",
                                checkpoint=at) from exc
            if stamp != cosig.timestamp:
                raise NoteError(f"{what}: cosignature time differs from the stored time",
                                checkpoint=at)
            count += 1
    if cosigs:
        orphan = min(cosigs, key=lambda size: (_whole(size) is None, str(size)))
        raise NoteError(f"cosignature for checkpoint {orphan}, which does not exist",
                        checkpoint=_whole(orphan))
    # Every checkpoint root was recomputed from the same leaves, so each later checkpoint
    # extends each earlier one: consistency holds by construction of this check.
    return len(rows), count
