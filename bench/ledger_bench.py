#!/usr/bin/env python3
"""Suyuan ledger benchmark: import, audit and proof latency against limits measured in the same run.

Every figure is printed with the physical limit it is measured against and the ratio of the two,
all measured in this one run, on this machine, over the same data:

* limits: raw Ed25519 verification on one core with libsodium (PyNaCl) and with ``cryptography``
  (OpenSSL), over the exact signing messages the import verifies, and with one process per core.
  The libsodium one-core rate is measured again just before each throughput figure and that
  value is the figure's limit (the machine may be shared). For proofs, the limit is the same
  node reads issued straight to SQLite through ``sqlite3`` with the primary-key index;
* bulk import of N pre-signed ``note`` statements (default 20,000) into a fresh SQLite ledger:
  the real ``suyuan import`` command as a subprocess (wall time of the whole process) and the
  in-process :func:`suyuan.importer.import_lines`; into PostgreSQL too with ``--postgres URL``;
* full audit of that ledger: ``suyuan verify --jobs N`` (subprocess, wall time) and the
  in-process :func:`suyuan.audit.audit`;
* the CPU cost per statement of each stage (parse, verify, append, audit check), one process,
  and the ceiling those costs allow on this many cores: where the time goes, without a profiler;
* inclusion-proof latency (median, p99) at 10k / 100k / 1M entries, through
  :func:`suyuan.ledger.inclusion_proof` and the full :func:`suyuan.ledger.tlog_proof`, and the
  rate of ``ledger.append`` (rolled back) on a log of that size.

Throughput ratios are value / limit; latency ratios are limit / value (1.0 = as fast as raw
reads). "other load" is the share of the machine other processes used meanwhile. Each rate
also gets the CPU time this process and its children spent per item, and how many cores that
kept busy: a ratio below the target with the cores busy means CPU spent per item beyond the
signature check, not waiting. Each proof ledger is read through once before its figures, so
that they measure the log in the page cache, not the disk.
Run ``python bench/ledger_bench.py --help``. Results go to stdout and ``--out/results.json``.
"""

from __future__ import annotations

import argparse
import compileall
import cProfile
import hashlib
import io
import json
import multiprocessing
import os
import platform
import pstats
import random
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nacl
import nacl.bindings
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

import suyuan
from suyuan import audit, canonical, crypto, importer, ledger, merkle, note, prepare, witness
from suyuan.model import (
    Entry,
    SignedStatement,
    Statement,
    format_time,
    parse_signed_statement,
    sign_statement,
)
from suyuan.storage import repo
from suyuan.storage.db import Database, normalise_url, sqlite_url

BENCH_VERSION = 1
"""Bump when the cached proof ledgers must be rebuilt (data or build method changed)."""

ORIGIN = "bench.example/log"
REGISTRAR = "registrar"
WITNESS = "witness.dalian-amr.example"
SEED = b"suyuan-bench/v1/"

IMPORT_TARGET = 0.7  # x libsodium one-core verify rate, end to end into SQLite
AUDIT_TARGET = 0.8  # x libsodium one-core verify rate x cores
PROOF_TARGET_MS = 1.0  # median inclusion proof at 1M entries

ACTORS: tuple[tuple[str, str, str], ...] = (
    ("coop-jinzhou-cherry", "cooperative", "金州区大樱桃专业合作社"),
    ("farm-zhuanghe-blueberry", "farm", "庄河市蓝莓家庭农场"),
    ("farm-changhai-scallop", "farm", "长海县獐子岛扇贝养殖场"),
    ("packer-wafangdian", "packer", "瓦房店果品分拣包装中心"),
    ("carrier-coldchain-lb", "carrier", "辽B冷链物流有限公司"),
    ("coldstore-ganjingzi", "cold_store", "甘井子区冷库"),
    ("market-shuangxing", "market", "大连双兴商品城批发市场"),
    ("shop-tmall-dalian", "retailer", "天猫大连特产旗舰店"),
)

_PRODUCTS = (
    ("美早大樱桃", "Tieton cherries"), ("红灯樱桃", "Hongdeng cherries"),
    ("长海虾夷扇贝", "Changhai scallops"), ("瓦房店刺参", "Wafangdian sea cucumbers"),
    ("庄河蓝莓", "Zhuanghe blueberries"), ("旅顺苹果", "Lüshun apples"),
    ("金州草莓", "Jinzhou strawberries"),
)
_PLACES = (
    ("大连双兴批发市场", "Shuangxing wholesale market"), ("金州区", "Jinzhou district"),
    ("旅顺口区", "Lüshunkou"), ("瓦房店市", "Wafangdian"), ("庄河市", "Zhuanghe"),
    ("长海县", "Changhai county"), ("甘井子区冷库", "the Ganjingzi cold store"),
)
_TEMPLATES = (
    "{zh}第{n}批采收完成，共{kg}公斤，已入预冷库{t}°C。Harvest of {en} batch {n} done: {kg} kg "
    "into pre-cooling at {t} °C.",
    "冷链车辽B·{plate}到达{place_zh}，车厢温度{t}°C，全程未断链。Reefer truck LB-{plate} arrived "
    "at {place_en}, box at {t} °C, cold chain unbroken.",
    "{zh}农残快检合格（有机磷和氨基甲酸酯类抑制率{r}%）。Pesticide quick test of {en} passed "
    "(inhibition {r}%).",
    "因降雨推迟采收{d}天，{zh}糖度{brix}°Brix。Harvest of {en} delayed {d} days by rain; "
    "sugar {brix} °Brix.",
    "承诺达标合格证已开具，编号DL{cert}。Compliance certificate (承诺达标合格证) DL{cert} issued "
    "for {en}.",
    "分拣包装{boxes}箱，每箱{w}公斤，贴追溯码。Graded and packed {boxes} boxes of {w} kg of {en}, "
    "labels printed.",
    "抽样送大连市农产品质量安全检测中心，样品号S{cert}。Sample S{cert} of {en} sent to the Dalian "
    "agri-product testing centre.",
)


# --- the bench world: deterministic keys, statements ------------------------------------------


def _key(name: str) -> crypto.SigningKey:
    return crypto.SigningKey(hashlib.sha256(SEED + name.encode()).digest())


@dataclass(frozen=True)
class World:
    """The keys of the bench ledger, derived from fixed seeds so cached ledgers stay valid."""

    log_key: crypto.SigningKey
    registrar_key: crypto.SigningKey
    witness_key: crypto.SigningKey
    actors: tuple[tuple[str, str, str, crypto.SigningKey, str], ...]

    @property
    def public_keys(self) -> dict[tuple[str, str], bytes]:
        return {(name, kid): key.public_key for name, _, _, key, kid in self.actors}


_WORLD: World | None = None


def world() -> World:
    global _WORLD
    if _WORLD is None:
        actors = tuple(
            (name, role, display, key, crypto.key_id(name, key.public_key).hex())
            for name, role, display in ACTORS
            for key in [_key("actor/" + name)]
        )
        _WORLD = World(_key("log"), _key("registrar"), _key("witness"), actors)
    return _WORLD


def note_text(rng: random.Random) -> tuple[str, str]:
    """A realistic bilingual note and the lot it is about."""
    zh, en = rng.choice(_PRODUCTS)
    place_zh, place_en = rng.choice(_PLACES)
    lot = f"DL-{rng.randint(2024, 2026)}-{rng.randint(1, 9999):04d}"
    body = rng.choice(_TEMPLATES).format(
        zh=zh, en=en, place_zh=place_zh, place_en=place_en, n=rng.randint(1, 40),
        kg=rng.randint(80, 4800), t=rng.choice(("0", "1", "2", "-1", "4")),
        plate=f"{rng.randint(10000, 99999)}", r=rng.randint(3, 38), d=rng.randint(1, 6),
        brix=f"{rng.randint(15, 23)}.{rng.randint(0, 9)}", cert=f"{rng.randint(0, 10**10):010d}",
        boxes=rng.randint(20, 900), w=rng.choice(("2.5", "5", "10")),
    )
    return body, lot


def make_statements(prefix: str, start: int, stop: int, t0_ms: int) -> list[SignedStatement]:
    """Signed ``note`` statements ``start..stop`` (round robin over the actors); runs in workers."""
    w = world()
    rng = random.Random(f"{prefix}:{start}")
    out = []
    for i in range(start, stop):
        name, _, _, key, kid = w.actors[i % len(w.actors)]
        body, lot = note_text(rng)
        moment = datetime.fromtimestamp((t0_ms + i) / 1000, UTC)
        statement = Statement(kind="note", actor=name, key_id=kid, time=format_time(moment),
                              nonce=f"{prefix}-{i:010d}", body={"text": body, "lot": lot})
        out.append(sign_statement(statement, key))
    return out


def _make_lines(args: tuple[str, int, int, int]) -> list[str]:
    return [s.to_line() for s in make_statements(*args)]


def _make_signed(args: tuple[str, int, int, int]) -> list[SignedStatement]:
    return make_statements(*args)


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


def write_ndjson(path: Path, count: int, jobs: int) -> float:
    """Sign ``count`` statements in ``jobs`` processes into ``path``; returns seconds spent."""
    started = time.perf_counter()
    t0_ms = int((datetime.now(UTC) - timedelta(days=2)).timestamp() * 1000)
    tasks = [("n", a, b, t0_ms) for a, b in _chunks(count, 2000)]
    with multiprocessing.get_context("fork").Pool(jobs) as pool, path.open("w") as out:
        for lines in pool.imap(_make_lines, tasks):
            out.write("".join(line + "\n" for line in lines))
    return time.perf_counter() - started


def fresh_ledger(url: str) -> Database:
    """A new ledger: schema, genesis, the bench actors and a witness (none of it timed)."""
    w = world()
    db = Database(url)
    db.upgrade()
    now = datetime.now(UTC) - timedelta(days=3)
    with db.writer() as session, session.begin():
        ledger.initialise(session, origin=ORIGIN, log_key=w.log_key, registrar=REGISTRAR,
                          registrar_key=w.registrar_key, now=now)
    reg_kid = crypto.key_id(REGISTRAR, w.registrar_key.public_key).hex()
    registrations = [
        sign_statement(Statement(
            kind="actor_registered", actor=REGISTRAR, key_id=reg_kid, time=format_time(now),
            nonce=f"register-{name}",
            body={"name": name, "role": role, "display_name": display,
                  "vkey": str(crypto.verifier_key(name, key.public_key))},
        ), w.registrar_key)
        for name, role, display, key, _ in w.actors
    ]
    with db.writer() as session, session.begin():
        for result in ledger.append(session, registrations, now=now):
            if result.error is not None:
                raise result.error
        vkey = note.witness_verifier_key(WITNESS, w.witness_key.public_key)
        repo.add_witness(session, WITNESS, str(vkey), format_time(now))
    return db


def checkpoint_and_cosign(db: Database, state_path: Path) -> int:
    """Sign a checkpoint of the whole log and have the bench witness cosign it."""
    w = world()
    with db.writer() as session, session.begin():
        result = ledger.checkpoint(session, w.log_key)
    stamp = int(time.time())
    with db.reader() as session, session.begin():
        cp, signature = witness.cosign(
            checkpoint_note=result.note, log_key=ledger.log_vkey(session), origin=ORIGIN,
            name=WITNESS, key=w.witness_key, state_path=state_path,
            proof_for=lambda a, b: ledger.consistency_proof(session, a, b), timestamp=stamp,
        )
    with db.writer() as session, session.begin():
        if not repo.cosignatures(session, cp.size):
            repo.add_cosignature(session, cp.size, WITNESS, stamp, signature.line())
    return cp.size


# --- figures ----------------------------------------------------------------------------------

SODIUM_1 = "libsodium 1-core verify"
"""Name of the import limit: libsodium Ed25519 verifications per second on one core."""


def sodium_cores(cores: int) -> str:
    return f"libsodium 1-core verify × {cores} cores"


@dataclass
class Figure:
    """One measured figure. Throughputs: ratio = value / limit. Latencies: ratio = limit / value
    (1.0 = as fast as the raw reads). ``other_load`` is the share of the machine other
    processes used while the figure was measured."""

    key: str
    figure: str
    value: float
    unit: str
    limit: float | None = None
    limit_name: str = ""
    ratio: float | None = None
    target: str = ""
    target_ratio: float | None = None
    met: bool | None = None
    note: str = ""
    other_load: float | None = None
    count: int | None = None
    cpu_us: float | None = None
    """CPU time of this process and its children per item (rates measured with a meter)."""
    cores_busy: float | None = None
    """That CPU time over the wall time: how many cores the work kept busy."""


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def add(self, fig: Figure, meter: CpuMeter | None = None) -> Figure:
        if meter is not None:
            fig.other_load = meter.others()
            if fig.count:
                cpu, wall = meter.own()
                fig.cpu_us, fig.cores_busy = cpu / fig.count * 1e6, cpu / wall
        self.figures.append(fig)
        load = "" if fig.other_load is None else f", other load {fig.other_load:.0%}"
        ratio = "" if fig.ratio is None else f"ratio {_ratio(fig.ratio)} to {fig.limit_name}"
        cpu = ("" if fig.cpu_us is None else
               f"CPU {fig.cpu_us:.1f} µs per item on {fig.cores_busy:.2f} cores busy")
        extra = ", ".join(x for x in (ratio, cpu, load.lstrip(", ")) if x)
        print(f"  {fig.figure}: {_fmt(fig.value, fig.unit)}" + (f"  ({extra})" if extra else ""),
              flush=True)
        return fig


class CpuMeter:
    """CPU time used by *other* processes while a section runs: busy time of the whole machine
    (``/proc/stat``) minus this process and its waited-for children (``getrusage``). The
    PostgreSQL server's work counts as "other"."""

    def __init__(self, cores: int) -> None:
        self.cores = cores
        self.start = self._read()
        self.end: tuple[float, float | None, float] | None = None

    def stop(self) -> None:
        """End the section now (what is measured after it is not counted)."""
        self.end = self._read()

    @staticmethod
    def _read() -> tuple[float, float | None, float]:
        busy: float | None = None
        try:
            fields = [int(v) for v in
                      Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
            busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
        own = sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                     resource.getrusage(resource.RUSAGE_CHILDREN)))
        return time.perf_counter(), busy, own

    def own(self) -> tuple[float, float]:
        """CPU seconds of this process and its waited-for children since the meter started
        (the worker pools are joined, ``suyuan`` subprocesses waited for), and wall seconds."""
        t1, _, own1 = self.end or self._read()
        t0, _, own0 = self.start
        return own1 - own0, t1 - t0

    def others(self) -> float | None:
        """Share (0..1) of all cores used by other processes since the meter started."""
        t1, busy1, own1 = self.end or self._read()
        t0, busy0, own0 = self.start
        if busy0 is None or busy1 is None or t1 <= t0:
            return None
        return min(1.0, max(0.0, (busy1 - busy0 - (own1 - own0)) / ((t1 - t0) * self.cores)))


def _ratio(ratio: float) -> str:
    return f"{ratio:.3f}" if ratio >= 0.0995 else f"{ratio:.2g}"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit == "ms":
        return f"{value:.3f} ms" if value < 100 else f"{value:,.0f} ms"
    if unit == "s":
        return f"{value:.1f} s"
    if unit == "µs":
        return f"{value:,.0f} µs"
    if unit == "ratio":
        return f"{value:.3f}"
    return f"{value:g} {unit}"


def rate_figure(key: str, name: str, count: int, seconds: float, limit: float, limit_name: str,
                target: float | None, note_text: str = "") -> Figure:
    value = count / seconds
    ratio = value / limit
    return Figure(key, name, value, "/s", limit, limit_name, ratio,
                  f"≥ {target:g} × limit" if target is not None else "", target,
                  None if target is None else ratio >= target, note_text, count=count)


# --- limits: raw Ed25519 verification ---------------------------------------------------------


def signature_items(path: Path) -> list[tuple[bytes, bytes, bytes]]:
    """(public key, signing message, signature) of every statement in the NDJSON file."""
    keys = world().public_keys
    items = []
    with path.open("rb") as source:
        for _, raw in importer.read_lines(source):
            parsed = parse_signed_statement(raw)
            items.append((keys[(parsed.statement.actor, parsed.statement.key_id)],
                          parsed.message, parsed.signature))
    return items


def _best_rate(run: Callable[[], int], passes: int) -> float:
    best = 0.0
    for _ in range(passes):
        started = time.perf_counter()
        count = run()
        best = max(best, count / (time.perf_counter() - started))
    return best


def libsodium_rate(items: Sequence[tuple[bytes, bytes, bytes]], passes: int = 3) -> float:
    open_ = nacl.bindings.crypto_sign_open
    signed = [(sig + msg, pk) for pk, msg, sig in items]

    def run() -> int:
        for sm, pk in signed:
            open_(sm, pk)
        return len(signed)

    return _best_rate(run, passes)


def openssl_rate(items: Sequence[tuple[bytes, bytes, bytes]], passes: int = 3) -> float:
    keys = {pk: Ed25519PublicKey.from_public_bytes(pk) for pk, _, _ in items}
    prepared = [(keys[pk], msg, sig) for pk, msg, sig in items]

    def run() -> int:
        for key, msg, sig in prepared:
            key.verify(sig, msg)
        return len(prepared)

    return _best_rate(run, passes)


_PARALLEL_ITEMS: list[tuple[bytes, bytes]] = []


def _parallel_worker(_: int) -> tuple[float, float, int]:
    open_ = nacl.bindings.crypto_sign_open
    started = time.perf_counter()
    for sm, pk in _PARALLEL_ITEMS:
        open_(sm, pk)
    return started, time.perf_counter(), len(_PARALLEL_ITEMS)


def libsodium_parallel_rate(items: Sequence[tuple[bytes, bytes, bytes]], procs: int) -> float:
    """Aggregate rate with one process per core, each verifying every item (CLOCK_MONOTONIC)."""
    global _PARALLEL_ITEMS
    _PARALLEL_ITEMS = [(sig + msg, pk) for pk, msg, sig in items]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        pool.map(_parallel_worker, range(procs))  # warm the workers
        spans = pool.map(_parallel_worker, range(procs), chunksize=1)
    _PARALLEL_ITEMS = []
    begin, end = min(s[0] for s in spans), max(s[1] for s in spans)
    return sum(s[2] for s in spans) / (end - begin)


# --- import and audit -------------------------------------------------------------------------


def suyuan_command() -> list[str]:
    exe = Path(sys.executable).with_name("suyuan")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("suyuan")
    return [found] if found else [sys.executable, "-m", "suyuan.cli"]


def compile_package() -> float:
    """Byte-compile the measured ``suyuan`` package, as installing it does: with
    PYTHONDONTWRITEBYTECODE set (as on this machine) an editable checkout would otherwise be
    compiled from source at every start of the command. Returns the seconds it took."""
    started = time.perf_counter()
    compileall.compile_dir(str(Path(suyuan.__file__).resolve().parent), quiet=1)
    return time.perf_counter() - started


def cli_fixed_cost(ndjson: Path, workdir: Path, jobs: int) -> tuple[float, float]:
    """Wall time of `suyuan --help` and of `suyuan import` of a single statement (best of 3):
    interpreter start, imports, opening the database, the worker pool, exit."""
    one = workdir / "one.ndjson"
    with ndjson.open("rb") as source:
        one.write_bytes(source.readline())
    help_best = import_best = float("inf")
    for attempt in range(3):
        started = time.perf_counter()
        subprocess.run([*suyuan_command(), "--help"], capture_output=True, check=True,
                       timeout=600)
        help_best = min(help_best, time.perf_counter() - started)
        url = sqlite_url(workdir / f"fixed-{attempt}.db")
        fresh_ledger(url).dispose()
        wall, _ = run_cli(["--db", url, "import", str(one), "--json", "--jobs", str(jobs)])
        import_best = min(import_best, wall)
    return help_best, import_best


def run_cli(args: Sequence[str]) -> tuple[float, dict[str, Any]]:
    """Run the real ``suyuan`` command; wall time of the whole process and its JSON output."""
    env = {k: v for k, v in os.environ.items() if k != "SUYUAN_DEBUG"}
    started = time.perf_counter()
    proc = subprocess.run([*suyuan_command(), *args], capture_output=True, env=env, timeout=3600)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"suyuan {' '.join(args[:3])}… exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace')[-2000:]}")
    return wall, json.loads(proc.stdout.decode().strip().splitlines()[-1])


RUNS = 3
"""Runs of each import and audit figure; the fastest counts, against the limit measured just
before it (the limit itself is the best of its passes: the same treatment for both)."""


@dataclass
class _Run:
    seconds: float
    result: Any
    limit: float
    meter: CpuMeter


def best_run(sodium_now: Callable[[], float], cores: int,
             timed: Callable[[int], tuple[float, Any]],
             prepare: Callable[[int], None] | None = None) -> tuple[_Run, list[float]]:
    """``timed(i)`` (returning its seconds and result) :data:`RUNS` times, each after
    ``prepare(i)`` (not measured) and a measurement of the limit; the fastest run and the
    seconds of every run."""
    runs = []
    for i in range(RUNS):
        if prepare is not None:
            prepare(i)
        limit = sodium_now()
        meter = CpuMeter(cores)
        seconds, result = timed(i)
        meter.stop()
        runs.append(_Run(seconds, result, limit, meter))
    return min(runs, key=lambda run: run.seconds), [run.seconds for run in runs]


def _runs_note(seconds: list[float]) -> str:
    return f"fastest of {len(seconds)} runs ({', '.join(f'{s:.2f}' for s in seconds)} s)"


def bench_backend(results: Results, label: str, make_url_for: Callable[[str], str],
                  ndjson: Path, count: int, jobs: int, sodium_now: Callable[[], float],
                  cores: int, workdir: Path) -> None:
    """Import (CLI and in-process) and audit (CLI and in-process) on one backend.

    Each figure is the fastest of :data:`RUNS` runs, against the libsodium one-core rate
    measured just before that run."""
    suffix = label.lower()
    import_target = IMPORT_TARGET if label == "SQLite" else None
    audit_target = AUDIT_TARGET if label == "SQLite" else None

    # 1. the real command, whole process (interpreter start, imports, reading the file,
    # import), each run into a fresh ledger
    cli_urls = [make_url_for(f"import_cli_{i}") for i in range(RUNS)]

    def cli_import(i: int) -> tuple[float, Any]:
        wall, summary = run_cli(["--db", cli_urls[i], "import", str(ndjson), "--json",
                                 "--jobs", str(jobs)])
        if summary["appended"] != count or summary["rejected"]:
            raise RuntimeError(f"import appended {summary['appended']} of {count}: {summary}")
        return wall, summary

    best, seconds = best_run(sodium_now, cores, cli_import,
                             lambda i: fresh_ledger(cli_urls[i]).dispose())
    results.add(rate_figure(
        f"import_cli_{suffix}", f"import, `suyuan import --jobs {jobs}` → {label} (process wall)",
        count, best.seconds, best.limit, SODIUM_1, import_target,
        f"{best.seconds:.2f} s for {count:,} statements, {_runs_note(seconds)}; the "
        f"command's own timer: {best.result['seconds']:.2f} s = "
        f"{count / best.result['seconds']:,.0f}/s"), best.meter)

    # 2. in-process importer.import_lines (lines read beforehand, as the command does)
    with ndjson.open("rb") as source:
        lines = list(importer.read_lines(source))
    databases: list[Database] = []

    def inproc_import(i: int) -> tuple[float, Any]:
        started = time.perf_counter()
        summary = importer.import_lines(databases[i], lines, jobs=jobs)
        seconds = time.perf_counter() - started
        if summary.appended != count or summary.errors:
            raise RuntimeError(f"in-process import appended {summary.appended} of {count}")
        return seconds, summary

    best, seconds = best_run(sodium_now, cores, inproc_import, lambda i: databases.append(
        fresh_ledger(make_url_for(f"import_inproc_{i}"))))
    for database in databases:
        database.dispose()
    results.add(rate_figure(
        f"import_inproc_{suffix}", f"import, importer.import_lines(jobs={jobs}) → {label}",
        count, best.seconds, best.limit, SODIUM_1, import_target, _runs_note(seconds)),
        best.meter)

    # 3. audit of the first CLI-imported ledger, after a checkpoint and a witness cosignature
    cli_url = cli_urls[0]
    cli_db = Database(cli_url)
    checkpoint_and_cosign(cli_db, workdir / f"witness-{suffix}.state")
    with cli_db.reader() as session, session.begin():
        size = ledger.size(session)

    def cli_verify(_: int) -> tuple[float, Any]:
        wall, verdict = run_cli(["--db", cli_url, "verify", "--jobs", str(jobs), "--json"])
        if not verdict.get("ok") or verdict["size"] != size:
            raise RuntimeError(f"suyuan verify failed: {verdict}")
        return wall, verdict

    best, seconds = best_run(sodium_now, cores, cli_verify)
    results.add(rate_figure(
        f"audit_cli_{suffix}", f"audit, `suyuan verify --jobs {jobs}` on {label} (process wall)",
        size, best.seconds, best.limit * cores, sodium_cores(cores), audit_target,
        f"{best.seconds:.2f} s for {size:,} entries, {_runs_note(seconds)}; the command's "
        f"own timer: {best.result['seconds']:.2f} s = {size / best.result['seconds']:,.0f}/s"),
        best.meter)

    def inproc_audit(_: int) -> tuple[float, Any]:
        started = time.perf_counter()
        report = audit.audit(cli_db, jobs=jobs)
        seconds = time.perf_counter() - started
        if report.size != size:
            raise RuntimeError("in-process audit covered a different size")
        return seconds, report

    best, seconds = best_run(sodium_now, cores, inproc_audit)
    results.add(rate_figure(
        f"audit_inproc_{suffix}", f"audit, audit.audit(jobs={jobs}) on {label}",
        size, best.seconds, best.limit * cores, sodium_cores(cores), audit_target,
        f"{size:,} entries, {_runs_note(seconds)}"), best.meter)
    cli_db.dispose()


def _per_item_us(run: Callable[[], Any], count: int, passes: int = 3) -> float:
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


def stage_breakdown(results: Results, ndjson: Path, work: Path, cores: int, jobs: int) -> None:
    """Single-process CPU cost per statement of each stage of an import and an audit, and the
    rates they allow: a model of the pipeline, to say where the time goes (no profiler)."""
    keys = world().public_keys
    with ndjson.open("rb") as source:
        lines = list(importer.read_lines(source))
    raws = [raw for _, raw in lines]
    n = len(raws)
    signed = [parse_signed_statement(r) for r in raws]
    pks = [keys[(s.statement.actor, s.statement.key_id)] for s in signed]
    meter = CpuMeter(cores)
    stages: dict[str, float] = {}
    # the import's workers: prepare.prepare_part
    try:
        stages["worker"] = _per_item_us(lambda: prepare.prepare_part((lines, keys)), n)
        prepared = prepare.prepare_part((lines, keys))
        items = [importer._item(row) for row in prepared]
    except (TypeError, ValueError, AttributeError) as exc:
        print(f"    (prepare.prepare_part not measured: {exc})", flush=True)
        items = [ledger.Prepared(s, pk) for s, pk in zip(signed, pks, strict=True)]
    stages["parse"] = _per_item_us(lambda: [parse_signed_statement(r) for r in raws], n)
    stages["verify"] = _per_item_us(
        lambda: [crypto.is_valid_prefixed_signature(pk, s.signature, canonical.STATEMENT_PREFIX,
                                                    s.data)
                 for s, pk in zip(signed, pks, strict=True)], n)
    # the committing side: ledger.append of worker-prepared items, a batch per transaction
    db = fresh_ledger(sqlite_url(work / "stages.db"))
    started = time.perf_counter()
    for a, b in _chunks(n, importer.DEFAULT_BATCH):
        with db.writer() as session, session.begin():
            ledger.append(session, items[a:b])
    stages["append"] = (time.perf_counter() - started) / n * 1e6
    # the audit: the fast pass's per-entry work in a worker (reading its rows and checking
    # them: audit._check_entries, a private function, skipped if it changes), and the whole
    # single-process audit
    try:
        with db.reader() as session, session.begin():
            size = ledger.size(session)
            registry, registry_entries = audit._replay_registry(repo.query(session))
        plan = audit._Plan(
            keys={ref: (rec.public_key, rec.added_at, rec.revoked_at)
                  for ref, rec in registry.keys.items()},
            roles={name: actor.role for name, actor in registry.actors.items()},
            registry_entries=frozenset(registry_entries),
            origin=ORIGIN)

        def check_all() -> None:
            with db.reader() as session, session.begin():
                for a, b in _chunks(size, 1024):
                    rows = repo.entry_rows(session, a, b)
                    prev = ledger.GENESIS_HASH if a == 0 else hashlib.sha256(
                        b"\x00" + repo.entry_rows(session, a - 1, a)[0][1]).digest()
                    audit._check_entries(plan, a, rows, prev)

        stages["audit_check"] = _per_item_us(check_all, size, passes=2)
    except (TypeError, ValueError, AttributeError) as exc:
        print(f"    (audit._check_entries not measured: {exc})", flush=True)
        size = n
    stages["audit_total"] = _per_item_us(lambda: audit.audit(db, jobs=1), size, passes=2)
    paired = audit_against_limit_paired(db, size, signed, pks)
    db.dispose()
    load = meter.others()

    def add(key: str, name: str, value: float, note_text: str = "", unit: str = "µs") -> None:
        results.add(Figure(f"stage_{key}", name, value, unit, note=note_text, other_load=load))

    if "worker" in stages:
        add("worker", "stage: import worker per statement (parse, checks, verify, entry tail)",
            stages["worker"], "prepare.prepare_part over all lines, one process")
    add("parse", "stage: parse_signed_statement (general path, for comparison)",
        stages["parse"])
    add("verify", "stage: Ed25519 verify (crypto.is_valid_prefixed_signature)", stages["verify"])
    add("append", "stage: ledger.append + commit of worker-prepared items (parent)",
        stages["append"],
        f"{importer.DEFAULT_BATCH:,} per transaction into a fresh SQLite ledger")
    worker = stages.get("worker", stages["parse"] + stages["verify"])
    import_cpu = worker + stages["append"]
    ceiling = min(1e6 / stages["append"], cores * 1e6 / import_cpu)
    add("import_ceiling", f"model: import ceiling on {cores} cores", ceiling,
        f"min(parent alone 1/append, {cores} cores / (worker+append) = "
        f"{cores} / {import_cpu:.0f} µs); the target needs ≥ 0.7 × libsodium", "/s")
    if "audit_check" in stages:
        add("audit_check", "stage: audit fast pass per entry (worker: read rows, check, verify)",
            stages["audit_check"], "repo.entry_rows + audit._check_entries, 1,024 at a time")
        add("audit_parent", "stage: audit per entry, rest (jobs=1 total − worker check)",
            max(0.0, stages["audit_total"] - stages["audit_check"]))
    add("audit_total", "stage: audit.audit(jobs=1) per entry", stages["audit_total"])
    add("audit_ceiling", f"model: audit ceiling on {cores} cores",
        cores * 1e6 / stages["audit_total"],
        f"{cores} cores / {stages['audit_total']:.0f} µs per entry, perfectly parallel", "/s")
    add("audit_paired", "model: one process's audit against the verify limit, alternated",
        statistics.median(paired),
        f"libsodium crypto_sign_open per statement ÷ audit.audit(jobs=1) per entry, CPU time, "
        f"the two alternated {len(paired)} times (median; "
        f"{min(paired):.3f}–{max(paired):.3f}): the audit's ratio with its {cores} processes "
        "perfectly parallel and no start or end, whatever the host's speed does meanwhile", "ratio")


PAIRS = 5
"""Alternations of the limit and the audit in :func:`audit_against_limit_paired`."""


def audit_against_limit_paired(db: Database, size: int, signed: Sequence[Any],
                               pks: Sequence[bytes]) -> list[float]:
    """The one-core libsodium rate over these statements against a one-process audit of the
    ledger holding them, each pair measured back to back in CPU time: on a host whose speed
    drifts by a fifth within minutes, the two figures of a pair see the same machine."""
    messages = [(s.signature + canonical.STATEMENT_PREFIX + s.data, pk)
                for s, pk in zip(signed, pks, strict=True)]
    open_ = nacl.bindings.crypto_sign_open
    ratios = []
    for _ in range(PAIRS):
        started = time.process_time()
        for message, pk in messages:
            open_(message, pk)
        limit = (time.process_time() - started) / len(messages)
        started = time.process_time()
        audit.audit(db, jobs=1)
        ratios.append(limit / ((time.process_time() - started) / size))
    return ratios


# --- PostgreSQL: a fresh database per run -----------------------------------------------------


class PostgresServer:
    def __init__(self, url: str) -> None:
        self.base = make_url(normalise_url(url))
        self.admin = create_engine(self.base, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def new_database(self, purpose: str) -> str:
        name = f"suyuan_bench_{os.getpid()}_{purpose}"
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.base.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()
        self.admin.dispose()

    def version(self) -> str:
        with self.admin.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())


# --- proof ledgers at 10k / 100k / 1M ---------------------------------------------------------


def _sqlite_copy(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()


def _meta_path(db_path: Path) -> Path:
    return db_path.with_suffix(".json")


def schema_fingerprint() -> str:
    """SHA-256 of the schema and migration sources: a cached ledger made under another schema
    (even an edited migration with the same revision) is rebuilt."""
    import suyuan.storage

    folder = Path(suyuan.storage.__file__).resolve().parent
    digest = hashlib.sha256()
    for source in sorted([folder / "schema.py", *folder.glob("migrations/**/*.py")]):
        digest.update(source.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(source.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _cached_size(db_path: Path) -> int | None:
    """Size of a cached proof ledger if it is complete and built by this bench version."""
    meta = _meta_path(db_path)
    if not db_path.exists() or not meta.exists():
        return None
    try:
        info = json.loads(meta.read_text())
    except ValueError:
        return None
    if info.get("bench_version") != BENCH_VERSION or info.get("schema") != schema_fingerprint():
        return None
    db = Database(sqlite_url(db_path))
    try:
        if not db.is_current():  # the schema gained a migration since: rebuild
            return None
    finally:
        db.dispose()
    return int(info["size"])


def build_proof_ledger(path: Path, size: int, out: Path, jobs: int) -> dict[str, Any]:
    """Build (or extend the largest smaller cached) ledger to ``size`` entries.

    The statements are really signed (in worker processes), then written through the same
    code the ledger's append uses for them: :meth:`Entry.build`, :func:`merkle.leaf_hash`,
    :meth:`merkle.CompactRange.append`, ``repo.insert_entries`` / ``insert_nodes`` /
    ``set_head``, 5,000 per transaction under the head lock. What it skips is the per-batch
    ``repo.find_nonces`` and ``CompactRange.load`` queries, which scan whole tables on SQLite
    (see the append figures), and the checks of statements made here. The result passes
    ``suyuan verify`` (``--audit-big``).
    """
    started = time.perf_counter()
    base = None
    for other in sorted(out.glob("proof-*.db")):
        other_size = _cached_size(other)
        if other_size is not None and other_size < size and (
            base is None or other_size > base[1]
        ):
            base = (other, other_size)
    for stale in (path, _meta_path(path), Path(f"{path}-wal"), Path(f"{path}-shm"),
                  path.with_suffix(".witness-state"), path.with_suffix(".witness-state.lock")):
        stale.unlink(missing_ok=True)
    if base is not None:
        _sqlite_copy(base[0], path)
        print(f"    extending the cached {base[1]:,}-entry ledger to {size:,}", flush=True)
        db = Database(sqlite_url(path))
    else:
        db = fresh_ledger(sqlite_url(path))
    with db.writer() as session, session.begin():
        current, prev = repo.lock_head(session)
        compact = merkle.CompactRange.load(current, lambda ids: repo.fetch_nodes(session, ids))
    t0_ms = int((datetime.now(UTC) - timedelta(days=30)).timestamp() * 1000)
    tasks = [("b", a, b, t0_ms) for a, b in _chunks(size, 5000) if b > current]
    tasks = [("b", max(a, current), b, t0) for _, a, b, t0 in tasks]
    index = current
    columns: Sequence[str] | None = getattr(repo, "ENTRY_COLUMNS", None)
    last_report = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(max(1, jobs - 1)) as pool:
        for batch in pool.imap(_make_signed, tasks):
            received_at = format_time(datetime.now(UTC))
            entry_rows: list[Any] = []
            node_rows: list[tuple[merkle.NodeId, bytes]] = []
            first, first_prev = index, prev
            for signed in batch:
                entry = Entry.build(index, prev.hex(), signed, received_at)
                digest = merkle.leaf_hash(entry.leaf)
                node_rows.extend(compact.append(digest))
                statement = signed.statement
                row = {"idx": index, "leaf": entry.leaf, "leaf_hash": digest, "prev": prev,
                       "actor": statement.actor, "nonce": statement.nonce,
                       "kind": statement.kind}
                # rows as the ledger's append passes them: dicts, or tuples in ENTRY_COLUMNS
                entry_rows.append(tuple(row[c] for c in columns) if columns else row)
                index, prev = index + 1, digest
            with db.writer() as session, session.begin():
                if repo.lock_head(session) != (first, first_prev):
                    raise RuntimeError("the proof ledger changed under the builder")
                repo.insert_entries(session, entry_rows)
                repo.insert_nodes(session, node_rows)
                repo.set_head(session, index, prev)
            if time.perf_counter() - last_report > 15:
                print(f"    {index:,} / {size:,} entries", flush=True)
                last_report = time.perf_counter()
    checkpoint_and_cosign(db, path.with_suffix(".witness-state"))
    with db.reader() as session, session.begin():
        final = ledger.size(session)
        root = ledger.root(session, final)
    db.dispose()
    if final != size or root != compact.root():
        raise RuntimeError(f"built {final} entries, wanted {size} (or the root differs)")
    info = {
        "bench_version": BENCH_VERSION, "schema": schema_fingerprint(), "size": size,
        "root": root.hex(),
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - started, 1),
        "extended_from": base[1] if base else None,
        "method": "really signed note statements written with Entry.build + "
                  "CompactRange.append + repo.insert_entries/insert_nodes/set_head, 5,000 per "
                  "transaction (no per-batch find_nonces/CompactRange.load); checkpoint + "
                  "witness cosignature through ledger.checkpoint and witness.cosign",
    }
    _meta_path(path).write_text(json.dumps(info, indent=2) + "\n")
    return info


class SqlTimer:
    """Time spent in the database per kind of statement (first words + table), from the
    engine's cursor events: which query an operation waits on."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.totals: dict[str, float] = {}
        self._started: list[float] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_: Any) -> None:
        self._started.append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        elapsed = time.perf_counter() - self._started.pop()
        words = statement.split()
        upper = [w.upper() for w in words]
        table = ""
        for marker in ("FROM", "INTO", "UPDATE"):
            if marker in upper[:-1]:
                table = words[upper.index(marker) + 1].split("(")[0]
                break
        key = f"{upper[0] if upper else '?'} {table}".strip()
        self.totals[key] = self.totals.get(key, 0.0) + elapsed

    def reset(self) -> None:
        self.totals = {}

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def summary(self, total: float) -> str:
        top = sorted(self.totals.items(), key=lambda kv: -kv[1])[:4]
        return ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in top) + (
            f" of {total * 1000:.0f} ms")


def append_probe(path: Path, size: int, limit1: float, count: int = 1000) -> Figure:
    """``ledger.append`` of ``count`` pre-verified statements onto the cached ledger, rolled
    back: how append cost grows with the log (best of two), and where it waits."""
    db = Database(sqlite_url(path))
    keys = world().public_keys
    t0_ms = int((datetime.now(UTC) - timedelta(days=1)).timestamp() * 1000)
    items = [ledger.Prepared(s, keys[(s.statement.actor, s.statement.key_id)])
             for s in make_statements("probe", 0, count, t0_ms)]
    timer = SqlTimer(db.engine)
    best = float("inf")
    where = ""
    for _ in range(2):
        session = db.writer()
        try:
            session.begin()
            timer.reset()
            started = time.perf_counter()
            results = ledger.append(session, items)
            elapsed = time.perf_counter() - started
            if elapsed < best:
                best, where = elapsed, timer.summary(elapsed)
            if any(r.error is not None for r in results):
                raise RuntimeError("probe append refused a statement")
        finally:
            session.rollback()
            session.close()
    timer.close()
    db.dispose()
    figure = rate_figure(f"append_probe_{size}",
                         f"ledger.append of {count:,} pre-verified @ {_size_label(size)} "
                         "(rolled back)", count, best, limit1, SODIUM_1, None,
                         f"no signature checks; database time: {where}")
    figure.count = None  # best of several passes: no CPU per item for it
    return figure


def _record_ids(index: int, size: int) -> list[merkle.NodeId]:
    wanted: list[merkle.NodeId] = []

    def fetch(ids: Iterable[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
        wanted.extend(ids)
        return {node: bytes(32) for node in wanted}

    merkle.inclusion_proof(index, size, fetch)
    return wanted


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    median = statistics.median(ordered) / 1e6
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))] / 1e6
    return median, p99


def raw_node_latency(path: Path, id_lists: list[list[merkle.NodeId]]) -> tuple[float, float, str]:
    """The floor: the same node reads straight through sqlite3 (no ORM), using the primary
    key index; the fastest of three query shapes."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.execute("PRAGMA query_only=ON")
    point = "SELECT hash FROM nodes WHERE level = ? AND idx = ?"
    shapes: dict[str, Callable[[list[merkle.NodeId]], Any]] = {
        "one point query per node": lambda ids: [
            conn.execute(point, node).fetchone() for node in ids
        ],
        "one query, OR of (level, idx) pairs": lambda ids: conn.execute(
            "SELECT level, idx, hash FROM nodes WHERE "
            + " OR ".join("(level = ? AND idx = ?)" for _ in ids),
            [v for node in ids for v in node],
        ).fetchall(),
        "one query, IN (SELECT … FROM (VALUES …))": lambda ids: conn.execute(
            "SELECT level, idx, hash FROM nodes WHERE (level, idx) IN "
            "(SELECT column1, column2 FROM (VALUES "
            + ",".join("(?,?)" for _ in ids) + "))",
            [v for node in ids for v in node],
        ).fetchall(),
    }
    best: tuple[float, float, str] | None = None
    for name, run in shapes.items():
        for ids in id_lists[:50]:
            run(ids)  # warm
        samples = []
        for ids in id_lists:
            t = time.perf_counter_ns()
            rows = run(ids)
            samples.append(time.perf_counter_ns() - t)
            if len(rows) != len(ids):
                raise RuntimeError("raw node read returned the wrong number of rows")
        median, p99 = _percentiles(samples)
        if best is None or median < best[0]:
            best = (median, p99, name)
    conn.close()
    assert best is not None
    return best


def _timed(indexes: Sequence[int], call: Callable[[int], Any], budget: float
           ) -> tuple[list[int], list[Any]]:
    """Time ``call`` per index until done or ``budget`` seconds are spent (at least 20)."""
    samples: list[int] = []
    values: list[Any] = []
    deadline = time.perf_counter() + budget
    for i in indexes:
        t = time.perf_counter_ns()
        values.append(call(i))
        samples.append(time.perf_counter_ns() - t)
        if len(samples) >= 20 and time.perf_counter() > deadline:
            break
    return samples, values


def read_through(path: Path) -> float:
    """Read a database file once, so that the figures measured on it (and their limits) find
    it in the page cache, as a server's hot file is; seconds taken. (Some machines drop cached
    pages within minutes: a proof that must go to the disk measures the disk, not the log.)"""
    started = time.perf_counter()
    with path.open("rb", buffering=0) as source:
        while source.read(1 << 20):
            pass
    return time.perf_counter() - started


def bench_proofs(results: Results, path: Path, size: int, samples: int, budget: float,
                 cores: int) -> None:
    db = Database(sqlite_url(path))
    rng = random.Random(size)
    label = _size_label(size)
    with db.reader() as session, session.begin():
        tree_size = ledger.size(session)
        root = ledger.root(session, tree_size)
        indexes = [rng.randrange(tree_size) for _ in range(samples)]
        for i in indexes[:5]:
            ledger.inclusion_proof(session, i, tree_size)  # warm caches and statement cache
        meter = CpuMeter(cores)
        incl, proofs = _timed(indexes, lambda i: ledger.inclusion_proof(session, i, tree_size),
                              budget)
        load_incl = meter.others()
        meter = CpuMeter(cores)
        full, texts = _timed(indexes, lambda i: ledger.tlog_proof(session, i), budget)
        load_full = meter.others()
        # correctness, untimed: every proof leads to the root of the stored tree
        for i, proof in zip(indexes, proofs, strict=False):
            (leaf,) = repo.fetch_nodes(session, [(0, i)]).values()
            merkle.verify_inclusion(leaf, i, tree_size, proof, root)
        for proof, tp in zip(proofs, texts, strict=False):
            if list(tp.path) != proof and len(texts) == len(proofs):
                raise RuntimeError("tlog_proof path differs from inclusion_proof")
    db.dispose()
    raw_median, raw_p99, shape = raw_node_latency(
        path, [_record_ids(i, tree_size) for i in indexes])
    median, p99 = _percentiles(incl)
    fmedian, fp99 = _percentiles(full)
    limit_name = f"raw sqlite3 node reads ({shape})"
    big = size >= 1_000_000
    results.add(Figure(
        f"proof_median_{size}", f"inclusion proof median @ {label}", median, "ms",
        raw_median, limit_name, raw_median / median,
        target=f"< {PROOF_TARGET_MS:g} ms" if big else "",
        met=(median < PROOF_TARGET_MS) if big else None,
        note=f"ledger.inclusion_proof on a reader session, {len(incl)} random indexes"
             + ("" if len(incl) == samples else f" (time budget {budget:g} s reached)"),
        other_load=load_incl))
    results.add(Figure(f"proof_p99_{size}", f"inclusion proof p99 @ {label}", p99, "ms",
                       raw_p99, limit_name, raw_p99 / p99, other_load=load_incl))
    results.add(Figure(f"tlog_proof_median_{size}", f"tlog_proof median @ {label}", fmedian,
                       "ms", raw_median, limit_name, raw_median / fmedian,
                       note=f"ledger.tlog_proof (checkpoint, cosignatures, inclusion proof), "
                            f"{len(full)} indexes", other_load=load_full))
    results.add(Figure(f"tlog_proof_p99_{size}", f"tlog_proof p99 @ {label}", fp99, "ms",
                       raw_p99, limit_name, raw_p99 / fp99, other_load=load_full))


def query_plans(path: Path) -> dict[str, dict[str, Any]]:
    """SQLite's plan for the exact SQL the ledger issues to read nodes and look up nonces
    (as SQLite itself traces it: some of it goes to the driver without SQLAlchemy)."""
    db = Database(sqlite_url(path))
    captured: list[str] = []
    plans: dict[str, dict[str, Any]] = {}
    calls: dict[str, Callable[[Any], Any]] = {
        "repo.fetch_nodes (proofs, roots, CompactRange.load in every append)":
            lambda s: repo.fetch_nodes(s, [(0, 5), (1, 3), (3, 0)]),
        "repo.find_nonces (every append batch)":
            lambda s: repo.find_nonces(s, [("coop-jinzhou-cherry", "b-0000000008"),
                                           ("farm-zhuanghe-blueberry", "b-0000000009")]),
    }
    raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with db.reader() as session, session.begin():
        driver = session.connection().connection.driver_connection
        driver.set_trace_callback(captured.append)  # statements with their values filled in
        try:
            for name, call in calls.items():
                captured.clear()
                call(session)
                statement = next(sql for sql in reversed(captured)
                                 if sql.lstrip().upper().startswith("SELECT"))
                rows = raw.execute("EXPLAIN QUERY PLAN " + statement).fetchall()
                plans[name] = {"sql": " ".join(statement.split()), "plan": [r[-1] for r in rows]}
        finally:
            driver.set_trace_callback(None)
    raw.close()
    db.dispose()
    return plans


def _size_label(size: int) -> str:
    if size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size % 1000 == 0:
        return f"{size // 1000}k"
    return str(size)


def _parse_size(token: str) -> int:
    token = token.strip().lower().replace("_", "")
    scale = 1
    if token.endswith("k"):
        scale, token = 1000, token[:-1]
    elif token.endswith("m"):
        scale, token = 1_000_000, token[:-1]
    value = int(token) * scale
    if value < 16:
        raise argparse.ArgumentTypeError("a proof ledger needs at least 16 entries")
    return value


# --- profiles ---------------------------------------------------------------------------------


def profile_runs(out: Path, ndjson: Path, jobs: int, top: int = 25) -> dict[str, str]:
    """cProfile of import and audit with jobs=1 (all work in one process) and of the import
    parent with ``jobs`` workers (what the committing process spends its time on)."""
    written = {}
    with ndjson.open("rb") as source:
        lines = list(importer.read_lines(source))
    tmp = Path(tempfile.mkdtemp(prefix="profile-", dir=out))
    try:
        runs: list[tuple[str, Callable[[], Any]]] = []
        db1 = fresh_ledger(sqlite_url(tmp / "p1.db"))
        runs.append(("import-jobs1", lambda: importer.import_lines(db1, lines, jobs=1)))
        runs.append(("audit-jobs1", lambda: audit.audit(db1, jobs=1)))
        dbn = fresh_ledger(sqlite_url(tmp / "pn.db"))
        runs.append((f"import-parent-jobs{jobs}",
                     lambda: importer.import_lines(dbn, lines, jobs=jobs)))
        runs.append((f"audit-parent-jobs{jobs}", lambda: audit.audit(dbn, jobs=jobs)))
        for name, run in runs:
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.runcall(run)
            elapsed = time.perf_counter() - started
            buffer = io.StringIO()
            buffer.write(f"# {name}: {elapsed:.2f} s under cProfile "
                         f"({len(lines):,} statements)\n")
            stats = pstats.Stats(profiler, stream=buffer)
            stats.sort_stats("tottime").print_stats(top)
            stats.sort_stats("cumulative").print_stats(top)
            target = out / f"profile-{name}.txt"
            target.write_text(buffer.getvalue())
            written[name] = str(target)
        db1.dispose()
        dbn.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return written


# --- report -----------------------------------------------------------------------------------


def print_table(results: Results) -> str:
    header = ("figure", "value", "limit", "ratio", "target", "met", "CPU/item, cores",
              "other load")
    rows = []
    for f in results.figures:
        limit = "" if f.limit is None else _fmt(f.limit, f.unit)
        rows.append((
            f.figure, _fmt(f.value, f.unit), limit,
            "" if f.ratio is None else _ratio(f.ratio),
            f.target, "" if f.met is None else ("yes" if f.met else "NO"),
            "" if f.cpu_us is None else f"{f.cpu_us:.1f} µs, {f.cores_busy:.2f}",
            "" if f.other_load is None else f"{f.other_load:.0%}",
        ))
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def machine_info(cores: int) -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": model, "cores": cores, "platform": platform.platform(),
        "python": platform.python_version(), "suyuan": suyuan.__version__,
        "pynacl": nacl.__version__, "libsodium": "bundled with PyNaCl",
        "cryptography": _version("cryptography"), "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version, "suyuan_git": _git_state(),
    }


def _git_state(package: Any = None) -> str:
    """The commit of ``package`` (default ``suyuan``) as measured, and whether it had
    uncommitted changes (``SUYUAN_BENCH_REVISION`` names it for an exported snapshot)."""
    if os.environ.get("SUYUAN_BENCH_REVISION"):
        return os.environ["SUYUAN_BENCH_REVISION"]
    root = Path((package or suyuan).__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                              capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=root,
                               text=True, capture_output=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"{head} ({root})" + (" + uncommitted changes" if dirty else "") if head else "?"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(
        prog="ledger_bench.py",
        description="Benchmark Suyuan's import, audit and inclusion proofs against limits "
                    "measured in the same run (Ed25519 verify rate, raw SQLite reads).",
        epilog="Cached proof ledgers live in --out (proof-<size>.db with a .json sidecar); "
               "delete them to rebuild.",
    )
    parser.add_argument("--statements", type=int, default=20_000, metavar="N",
                        help="pre-signed note statements to import and audit (default 20000)")
    parser.add_argument("--proof-sizes", default="10000,100000,1000000", metavar="LIST",
                        help="comma-separated log sizes for proof latency (10k, 1M also work; "
                             "empty to skip; default 10000,100000,1000000)")
    parser.add_argument("--proof-samples", type=int, default=2000, metavar="K",
                        help="random indexes per proof size (default 2000)")
    parser.add_argument("--proof-seconds", type=float, default=60.0, metavar="S",
                        help="time budget per proof measurement; fewer samples are taken if "
                             "proofs are slow (default 60)")
    parser.add_argument("--postgres", metavar="URL",
                        help="also import/audit into PostgreSQL: a server URL such as "
                             "postgresql://postgres@localhost/postgres; a fresh database is "
                             "created and dropped")
    parser.add_argument("--jobs", type=int, default=cores, metavar="N",
                        help=f"worker processes for import and verify (default: cores = {cores})")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                        metavar="DIR", help="results.json, cached proof ledgers, profiles "
                                            "(default bench/out/)")
    parser.add_argument("--audit-big", action="store_true",
                        help="also audit the largest proof ledger, in process and with `suyuan "
                             "verify` (design target: 1M entries well under a minute)")
    parser.add_argument("--profile", action="store_true",
                        help="also write cProfile reports of import and audit to --out")
    args = parser.parse_args(argv)
    if args.statements < 1:
        parser.error("--statements must be at least 1")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    try:
        args.sizes = sorted({_parse_size(t) for t in args.proof_sizes.split(",") if t.strip()})
    except (ValueError, argparse.ArgumentTypeError) as exc:
        parser.error(f"--proof-sizes: {exc}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # `kill` runs the finally blocks too (the PostgreSQL databases are dropped)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.register_at_fork(after_in_child=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    jobs: int = args.jobs
    count: int = args.statements
    results = Results()
    results.info = machine_info(cores)
    results.info.update({"statements": count, "jobs": jobs})
    run_meter = CpuMeter(cores)
    print(f"Suyuan ledger bench — {results.info['cpu']}, {cores} cores, Python "
          f"{results.info['python']}, SQLite {results.info['sqlite']}, suyuan "
          f"{results.info['suyuan_git']}", flush=True)

    work = out / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    ndjson = work / "statements.ndjson"
    sign_seconds = write_ndjson(ndjson, count, jobs)
    results.info["ndjson_bytes"] = ndjson.stat().st_size
    results.info["sign_seconds_untimed"] = round(sign_seconds, 2)
    print(f"Signed {count:,} note statements by {len(ACTORS)} actors into {ndjson} "
          f"({ndjson.stat().st_size / count:.0f} bytes/line, {sign_seconds:.1f} s, not measured)",
          flush=True)

    print("Limits (best of 3 passes over the statements' signing messages):", flush=True)
    items = signature_items(ndjson)
    def sodium_now() -> float:
        """The one-core limit right now: best of 2 passes over the same messages."""
        return libsodium_rate(items, passes=2)

    meter = CpuMeter(cores)
    sodium_start = libsodium_rate(items)
    openssl = openssl_rate(items)
    parallel = libsodium_parallel_rate(items, cores)
    load = meter.others()
    results.add(Figure("verify_libsodium_1core", "Ed25519 verify, libsodium (PyNaCl), 1 core",
                       sodium_start, "/s", note="nacl.bindings.crypto_sign_open, best of 3 "
                       f"passes over {len(items):,} messages", other_load=load))
    results.add(Figure("verify_openssl_1core", "Ed25519 verify, cryptography (OpenSSL), 1 core",
                       openssl, "/s", sodium_start, SODIUM_1, openssl / sodium_start,
                       note="Ed25519PublicKey.verify", other_load=load))
    results.add(Figure("verify_libsodium_ncores",
                       f"Ed25519 verify, libsodium, {cores} processes (measured)", parallel,
                       "/s", sodium_start * cores, sodium_cores(cores),
                       parallel / (sodium_start * cores),
                       note="how this machine scales; the audit limit is 1-core × cores",
                       other_load=load))

    results.info["compile_seconds_untimed"] = round(compile_package(), 2)
    print("SQLite:", flush=True)
    meter = CpuMeter(cores)
    help_wall, one_wall = cli_fixed_cost(ndjson, work, jobs)
    results.add(Figure("cli_help", "CLI start-up: `suyuan --help` (process wall)",
                       help_wall * 1e3, "ms", note="best of 3; package byte-compiled"), meter)
    results.add(Figure("cli_import_one", f"CLI fixed cost: `suyuan import --jobs {jobs}` of "
                       "1 statement (process wall)", one_wall * 1e3, "ms",
                       note="best of 3: start-up, database, worker pool, exit"), meter)
    bench_backend(results, "SQLite", lambda name: sqlite_url(work / f"{name}.db"), ndjson,
                  count, jobs, sodium_now, cores, work)
    print("Where an import's and an audit's CPU goes (one process, µs per statement):",
          flush=True)
    stage_breakdown(results, ndjson, work, cores, jobs)

    if args.postgres:
        server = PostgresServer(args.postgres)
        try:
            results.info["postgres"] = server.version()
            print(f"PostgreSQL {results.info['postgres']}:", flush=True)
            bench_backend(results, "PostgreSQL", server.new_database, ndjson, count, jobs,
                          sodium_now, cores, work)
        finally:
            server.drop_all()

    built: dict[str, Any] = {}
    for size in args.sizes:
        path = out / f"proof-{size}.db"
        label = _size_label(size)
        if _cached_size(path) == size:
            info = json.loads(_meta_path(path).read_text())
            print(f"Proof ledger {label}: cached {path.name} (built {info['built']} in "
                  f"{info['build_seconds']} s)", flush=True)
        else:
            print(f"Proof ledger {label}: building {path.name}…", flush=True)
            info = build_proof_ledger(path, size, out, jobs)
            print(f"    built in {info['build_seconds']} s", flush=True)
        built[str(size)] = info
        print(f"    read through in {read_through(path):.1f} s (into the page cache)", flush=True)
        bench_proofs(results, path, size, args.proof_samples, args.proof_seconds, cores)
        sodium = sodium_now()
        meter = CpuMeter(cores)
        results.add(append_probe(path, size, sodium), meter)
    if built:
        results.info["proof_ledgers"] = built
        plans = query_plans(out / f"proof-{args.sizes[-1]}.db")
        results.info["sqlite_query_plans"] = plans
        for name, plan in plans.items():
            print(f"  SQLite plan of {name}: {' / '.join(plan['plan'])}", flush=True)

    if args.audit_big and args.sizes:
        size = args.sizes[-1]
        db = Database(sqlite_url(out / f"proof-{size}.db"))
        print(f"Audit of the {_size_label(size)} proof ledger (read through in "
              f"{read_through(out / f'proof-{size}.db'):.1f} s):", flush=True)
        # Each of these runs half a minute, long enough for this machine's speed to drift:
        # the limit is measured before and after, and their mean is the figure's limit.
        before = sodium_now()
        meter = CpuMeter(cores)
        started = time.perf_counter()
        report = audit.audit(db, jobs=jobs)
        seconds = time.perf_counter() - started
        meter.stop()
        db.dispose()
        after = sodium_now()
        results.add(rate_figure(
            f"audit_inproc_sqlite_{size}",
            f"audit, audit.audit(jobs={jobs}) @ {_size_label(size)} entries",
            report.size, seconds, (before + after) / 2 * cores, sodium_cores(cores),
            AUDIT_TARGET,
            f"{seconds:.1f} s for {report.size:,} entries (design: 1M well under a minute); "
            f"one-core limit {before:,.0f}/s before, {after:,.0f}/s after"), meter)
        # the command on the same ledger: its start-up, a few tenths of a second, is small
        # against a large log, where at 20,000 entries it is a sixth of the run
        read_through(out / f"proof-{size}.db")
        before = sodium_now()
        meter = CpuMeter(cores)
        wall, verdict = run_cli(["--db", sqlite_url(out / f"proof-{size}.db"), "verify",
                                 "--jobs", str(jobs), "--json"])
        meter.stop()
        if not verdict.get("ok") or verdict["size"] != report.size:
            raise RuntimeError(f"suyuan verify failed: {verdict}")
        after = sodium_now()
        results.add(rate_figure(
            f"audit_cli_sqlite_{size}",
            f"audit, `suyuan verify --jobs {jobs}` @ {_size_label(size)} entries (process wall)",
            report.size, wall, (before + after) / 2 * cores, sodium_cores(cores), AUDIT_TARGET,
            f"{wall:.1f} s for {report.size:,} entries; the command's own timer: "
            f"{verdict['seconds']:.1f} s; one-core limit {before:,.0f}/s before, "
            f"{after:,.0f}/s after"), meter)

    meter = CpuMeter(cores)
    sodium_end = libsodium_rate(items)
    results.info["libsodium_1core_start_end"] = [round(sodium_start), round(sodium_end)]
    results.info["other_load_whole_run"] = run_meter.others()
    print(f"libsodium one-core rate at the start {sodium_start:,.0f}/s, at the end "
          f"{sodium_end:,.0f}/s (other load {meter.others() or 0:.0%})", flush=True)

    if args.profile:
        print("Profiling import and audit (cProfile, not part of the figures)…", flush=True)
        results.info["profiles"] = profile_runs(out, ndjson, jobs)

    table = print_table(results)
    print()
    print(table)
    document = {
        "info": results.info,
        "figures": [f.__dict__ for f in results.figures],
        "table": table.splitlines(),
    }
    (out / "results.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
