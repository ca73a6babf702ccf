#!/usr/bin/env python3
"""Web benchmark: consumer page throughput and latency under gunicorn on a 1M-event ledger,
next to a bare Flask "hello" endpoint served the same way in the same run.

    python bench/web_bench.py [--events N] [--configs gthread:2x4,sync:2] [--connections C]
                              [--duration S] [--warmup S] [--lots K] [--hot K]
                              [--client auto|wrk|python] [--patience S] [--no-single]
                              [--target page|healthz] [--profile] [--out DIR]

* the ledger: the supply-chain world of ``bench/supply_bench.py`` (built there and cached in
  ``--out``), copied, with a checkpoint signed by the log and cosigned by a witness, so every
  consumer page carries its proof;
* the URLs: a fixed, seeded list of ``--lots`` Digital Link URIs ``/01/<gtin>/10/<lot>`` of
  the world's lots (retail boxes three hops from the farm and their serialised units, origin
  harvests, processed, merged, ends of 50-step chains, splits of 100-farm merges), fetched once
  each before measuring; more pages than a worker's page cache keeps, so the page is built for
  every measured request, and separately the first ``--hot`` of them (popular lots, cache hits);
* the servers: ``gunicorn`` as a real subprocess on 127.0.0.1 for ``suyuan_web:create_app()``
  and for ``bench/hello_app.py``, with identical worker settings, one setting at a time;
* the load: ``wrk`` (keep-alive, one thread, ``--connections`` connections, the URL list in
  round robin) or, without it, a Python client of the same shape; warm-up, then ``--duration``
  seconds; then the same at one connection (service time without queueing). Each run first
  waits (``--patience``) for other processes to leave the machine quiet.

Limits and ratios: page throughput / hello throughput (target ≥ 0.5); latencies as limit /
value (hello latency / page latency), page p99 target < 50 ms. The load generator runs on the
same cores as the servers; its CPU share and that of other processes are printed per run.
See bench/README.md ("Web benchmark").
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import multiprocessing
import os
import pstats
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import ledger_bench  # noqa: E402  (machine_info, versions)
import supply_bench  # noqa: E402  (the world)

from suyuan import crypto, ledger, witness  # noqa: E402
from suyuan.storage import repo  # noqa: E402
from suyuan.storage.db import Database, sqlite_url  # noqa: E402

BENCH_VERSION = "web-1"
WITNESS = "witness.bench.suyuan.example"
PUBLIC_URL = "https://id.suyuan.example"
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0

# The URL mix: lot-code prefix (from supply_bench's World) → (label, share of the list)
MIX: dict[str, tuple[str, float]] = {
    "B": ("retail box lots (farm → packer → market → shop)", 0.30),
    "unit": ("serialised boxes of those lots (/21/<serial>)", 0.10),
    "H": ("origin harvest lots", 0.25),
    "P": ("processed lots (split, then processed)", 0.15),
    "M": ("merged lots (2-4 farms)", 0.10),
    "deep": ("ends of 50-transformation chains", 0.10),
    "wide": ("splits of a 100-farm merge", 0.05),
}
HEADERS = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
           "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.6", "Accept-Encoding": "gzip, deflate, br",
           "User-Agent": "suyuan-web-bench"}
"""What a phone's browser sends (the hello server gets the same)."""

WRK_SCRIPT = r"""
-- round robin over a fixed list of paths (one wrk thread: one Lua state, one order)
local paths = {}
local counter = 0
local headers = {}

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    if #line > 0 then paths[#paths + 1] = line end
  end
  f:close()
  for i = 2, #args, 2 do headers[args[i]] = args[i + 1] end
end

function request()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeout_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""

PROFILE_HOOKS = """
# gunicorn hooks written by bench/web_bench.py --profile: cProfile in each sync worker
import cProfile
import os

_profiler = None


def post_worker_init(worker):
    global _profiler
    _profiler = cProfile.Profile()
    _profiler.enable()


def worker_exit(server, worker):
    if _profiler is not None:
        _profiler.disable()
        _profiler.dump_stats(os.path.join({out!r}, "profile-web-worker-%d.pstats" % os.getpid()))
"""


# --- the ledger --------------------------------------------------------------------------------


def witness_key() -> crypto.SigningKey:
    return supply_bench._key("witness")


def seal(db: Database, state: Path) -> int:
    """Sign a checkpoint of the whole log and have the bench witness cosign it."""
    with db.writer() as session, session.begin():
        result = ledger.checkpoint(session, supply_bench._key("log"))
        if repo.witness(session, WITNESS) is None:
            vkey = crypto.verifier_key(WITNESS, witness_key().public_key, crypto.ALG_COSIGNATURE)
            repo.add_witness(session, WITNESS, str(vkey), "2026-07-01T00:00:00Z")
    stamp = int(time.time())
    with db.reader() as session, session.begin():
        cp, signature = witness.cosign(
            checkpoint_note=result.note, log_key=ledger.log_vkey(session),
            origin=ledger.origin(session), name=WITNESS, key=witness_key(), state_path=state,
            proof_for=lambda a, b: ledger.consistency_proof(session, a, b), timestamp=stamp)
    with db.writer() as session, session.begin():
        if not any(c.witness == WITNESS for c in repo.cosignatures(session, cp.size)):
            repo.add_cosignature(session, cp.size, WITNESS, stamp, signature.line())
    return cp.size


def world_db(out: Path, events: int) -> tuple[Path, dict[str, Any]]:
    """The supply-chain world of ``events`` events: the one cached in ``out`` even if it was
    built on an older schema (the copy measured is migrated), else built by supply_bench."""
    path, meta_path = out / f"supply-{events}.db", out / f"supply-{events}.json"
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("events") == events:
            print(f"world: using {path} (built {meta['built']})", flush=True)
            return path, meta
    return supply_bench.world_db(out, events)


def sealed_ledger(out: Path, events: int, world: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """A copy of the world migrated to the current schema, with a checkpoint signed and
    cosigned (cached while the world and the schema are the same)."""
    path = out / f"web-{events}.db"
    meta_path = out / f"web-{events}.json"
    key = {"bench": BENCH_VERSION, "world_built": meta["built"],
           "world_schema": meta["fingerprint"], "schema": supply_bench.schema_fingerprint()}
    if path.exists() and meta_path.exists():
        info = json.loads(meta_path.read_text())
        if all(info.get(k) == v for k, v in key.items()):
            print(f"ledger: reusing {path} (checkpoint {info['checkpoint']:,})", flush=True)
            return info
    tmp = out / f"web-{events}.building.db"
    state = out / f"web-{events}.witness-state"
    for stale in (tmp, state, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        stale.unlink(missing_ok=True)
    print(f"ledger: copying {world} and sealing a checkpoint", flush=True)
    with sqlite3.connect(world) as src, sqlite3.connect(tmp) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    db = Database(sqlite_url(tmp))
    db.upgrade()
    started = time.perf_counter()
    size = seal(db, state)
    seconds = time.perf_counter() - started
    db.dispose()
    tmp.replace(path)
    info = {**key, "checkpoint": size, "seal_seconds": seconds,
            "sealed": datetime.now(UTC).isoformat(timespec="seconds")}
    meta_path.write_text(json.dumps(info, indent=1))
    return info


def run_copy(out: Path, events: int) -> Path:
    """A fresh copy of the sealed ledger for this run: the pages may record scans."""
    src, dst = out / f"web-{events}.db", out / f"web-{events}.run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    return dst


def sample_urls(path: Path, meta: dict[str, Any], count: int, seed: int
                ) -> tuple[list[str], list[str], dict[str, int]]:
    """``count`` Digital Link paths of the world's lots in the ``MIX`` proportions, seeded;
    the group of each path; the number of paths per group."""
    rng = random.Random(seed)
    samples = meta["samples"]
    groups: dict[str, list[str]] = {"deep": sorted(set(samples["deep_back"])),
                                    "wide": sorted(set(samples["wide_back"]))}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    paths: dict[str, str] = {}
    prefix = re.compile(r"([A-Z]+)\d+$")
    for code, gtin in db.execute("SELECT code, gtin FROM lots ORDER BY code"):
        paths[code] = f"/01/{gtin}/10/{code}"
        m = prefix.match(code)
        if m and m.group(1) in MIX:
            groups.setdefault(m.group(1), []).append(code)
    units = groups.setdefault("unit", [])
    for gtin, serial, lot in db.execute("SELECT gtin, serial, lot FROM serials "
                                        "ORDER BY gtin, serial"):
        paths[f"{lot}/{serial}"] = f"/01/{gtin}/10/{lot}/21/{serial}"
        units.append(f"{lot}/{serial}")
    db.close()
    chosen: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    for name, (_, share) in MIX.items():
        pool = groups.get(name, [])
        k = min(len(pool), round(count * share))
        counts[name] = k
        chosen += [(name, code) for code in rng.sample(pool, k)]
    rng.shuffle(chosen)
    return [paths[code] for _, code in chosen], [name for name, _ in chosen], counts


# --- servers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerConfig:
    """A gunicorn worker setting: ``sync:2`` or ``gthread:2x4`` (workers × threads)."""

    kind: str
    workers: int
    threads: int = 1

    @classmethod
    def parse(cls, text: str) -> WorkerConfig:
        kind, _, size = text.partition(":")
        workers, _, threads = size.partition("x")
        if kind not in ("sync", "gthread") or not workers.isdigit():
            raise argparse.ArgumentTypeError(f"bad worker setting {text!r} "
                                             "(sync:W or gthread:WxT)")
        return cls(kind, int(workers), int(threads or (4 if kind == "gthread" else 1)))

    @property
    def label(self) -> str:
        return f"{self.kind} {self.workers}×{self.threads}" if self.kind == "gthread" \
            else f"{self.kind} {self.workers}"

    def args(self) -> list[str]:
        args = ["-w", str(self.workers), "-k", self.kind]
        return args + (["--threads", str(self.threads)] if self.kind == "gthread" else [])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(db_path: Path | None, instance: Path, store: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUYUAN_")}
    env["SUYUAN_INSTANCE_PATH"] = str(instance)
    if not store:
        env["SUYUAN_PAGE_STORE"] = ""  # each worker's memory only
    env["SUYUAN_SECRET_KEY"] = "web-bench-" + "0" * 32
    env["SUYUAN_PUBLIC_URL"] = PUBLIC_URL
    if db_path is not None:
        env["SUYUAN_DATABASE_URL"] = sqlite_url(db_path)
    return env


class Gunicorn:
    """A gunicorn master (and its workers) as a subprocess on 127.0.0.1."""

    def __init__(self, app: str, chdir: Path, config: WorkerConfig, env: dict[str, str],
                 log: Path, ready_path: str, extra: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.command = [sys.executable, "-m", "gunicorn", *config.args(),
                        "-b", f"127.0.0.1:{self.port}", "--chdir", str(chdir),
                        "--backlog", "2048", "--keep-alive", "5", "--timeout", "60",
                        "--worker-tmp-dir", "/dev/shm" if Path("/dev/shm").is_dir() else "/tmp",
                        "--log-level", "warning", "--error-logfile", str(log), *extra, app]
        log.unlink(missing_ok=True)
        self.proc = subprocess.Popen(self.command, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self._wait_ready(ready_path, config.workers)

    def _wait_ready(self, path: str, workers: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                status, _ = fetch(self.port, path)
                if status == 200 and len(self.workers()) >= workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def cpu_seconds(self) -> float:
        return sum(proc_cpu(pid) for pid in [self.proc.pid, *self.workers()])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def fetch(port: int, path: str, conn: http.client.HTTPConnection | None = None
          ) -> tuple[int, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=HEADERS)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if own:
            conn.close()


def check_urls(port: int, paths: list[str], groups: list[str] | None = None) -> dict[str, Any]:
    """Each path once, one at a time: status counts, body sizes, unloaded latency (also per
    group of paths)."""
    statuses: dict[int, int] = {}
    sizes, times, bad = [], [], []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for path in paths:
        started = time.perf_counter_ns()
        status, body = fetch(port, path, conn)
        times.append((time.perf_counter_ns() - started) / 1e6)
        statuses[status] = statuses.get(status, 0) + 1
        sizes.append(len(body))
        if status != 200 and len(bad) < 5:
            bad.append(f"{status} {path}: {body[:200]!r}")
    conn.close()
    by_group: dict[str, list[float]] = {}
    for group, ms in zip(groups or [], times, strict=False):
        by_group.setdefault(group, []).append(ms)
    return {"statuses": {str(k): v for k, v in sorted(statuses.items())},
            "groups": {g: {"count": len(v), "median_ms": statistics.median(v),
                           "p99_ms": _pct(v, 99), "max_ms": max(v)}
                       for g, v in by_group.items()},
            "bytes_median": statistics.median(sizes), "bytes_max": max(sizes),
            "first_fetch_ms_median": statistics.median(times),
            "first_fetch_ms_p99": _pct(times, 99), "first_fetch_ms_max": max(times),
            "bad": bad}


# --- load generators ---------------------------------------------------------------------------


def _pct(samples: Sequence[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def wrk_version() -> str | None:
    exe = shutil.which("wrk")
    if exe is None:
        return None
    done = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10)
    first = (done.stdout + done.stderr).split("\n", 1)[0]
    return first.split(" [", 1)[0].strip() or "wrk"


def run_wrk(port: int, paths_file: Path, script: Path, connections: int, seconds: float
            ) -> dict[str, Any]:
    header_args = [x for pair in HEADERS.items() for x in pair]
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{port}", "--",
               str(paths_file), *header_args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    r = json.loads(line[len("WRKJSON "):])
    errors = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors",
                                "timeout_errors"))
    return {"requests": r["requests"], "seconds": r["duration_us"] / 1e6,
            "rps": r["requests"] / (r["duration_us"] / 1e6), "bytes": r["bytes"],
            "p50_ms": r["p50_us"] / 1e3, "p90_ms": r["p90_us"] / 1e3,
            "p99_ms": r["p99_us"] / 1e3, "p999_ms": r["p999_us"] / 1e3,
            "max_ms": r["max_us"] / 1e3, "mean_ms": r["mean_us"] / 1e3,
            "errors": errors, "non_2xx": r["status_errors"], "raw": r}


def _client_thread(port: int, paths: list[str], start: int, stop_at: float,
                   out: list[float], counts: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    i = start
    while True:
        started = time.perf_counter_ns()
        if started / 1e9 >= stop_at:
            break
        try:
            conn.request("GET", paths[i % len(paths)], headers=HEADERS)
            response = conn.getresponse()
            response.read()
            out.append((time.perf_counter_ns() - started) / 1e6)
            if not 200 <= response.status < 400:
                counts[1] += 1
            if response.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            counts[0] += 1
            conn.close()
        i += 1
    conn.close()


def _client_process(args: tuple[int, list[str], list[int], float]) -> tuple[list[float], int,
                                                                           int]:
    port, paths, starts, stop_at = args
    latencies: list[float] = []
    counts = [0, 0]
    threads = [threading.Thread(target=_client_thread,
                                args=(port, paths, s, stop_at, latencies, counts))
               for s in starts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, counts[0], counts[1]


def run_python_client(port: int, paths: list[str], connections: int, seconds: float
                      ) -> dict[str, Any]:
    """``connections`` keep-alive connections in up to 2 processes (threads inside)."""
    procs = min(2, connections)
    starts = [i * len(paths) // connections for i in range(connections)]
    ctx = multiprocessing.get_context("fork")
    started = time.perf_counter()
    stop_at = time.perf_counter_ns() / 1e9 + seconds
    with ctx.Pool(procs) as pool:
        parts = pool.map(_client_process, [(port, paths, starts[p::procs], stop_at)
                                           for p in range(procs)])
    elapsed = max(seconds, time.perf_counter() - started)
    latencies = [x for part in parts for x in part[0]]
    return {"requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "p50_ms": _pct(latencies, 50), "p90_ms": _pct(latencies, 90),
            "p99_ms": _pct(latencies, 99), "p999_ms": _pct(latencies, 99.9),
            "max_ms": max(latencies), "mean_ms": statistics.fmean(latencies),
            "errors": sum(p[1] for p in parts), "non_2xx": sum(p[2] for p in parts)}


def wait_quiet(limit: float, budget: float, own: Sequence[int] = ()) -> float:
    """Wait (up to ``budget`` seconds) until processes other than ``own`` and this one use
    less than ``limit`` of all cores over a second; returns that share when it stops waiting."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + budget
    while True:
        busy0, mine0 = machine_busy(), own_cpu() + sum(proc_cpu(p) for p in own)
        time.sleep(1.0)
        busy, mine = machine_busy() - busy0, own_cpu() + sum(proc_cpu(p) for p in own) - mine0
        share = max(0.0, busy - mine) / cores
        if share < limit or time.monotonic() >= deadline:
            if share >= limit:
                print(f"  (machine still {share:.0%} busy with other work: measuring anyway)",
                      flush=True)
            return share


class Load:
    """One load generator for the whole run (wrk if installed, unless told otherwise)."""

    def __init__(self, client: str, out: Path, quiet: float = 0.15, patience: float = 120.0
                 ) -> None:
        self.quiet, self.patience = quiet, patience
        version = wrk_version()
        if client == "wrk" and version is None:
            raise SystemExit("wrk is not installed (apt-get install wrk), use --client python")
        self.kind = "wrk" if client in ("auto", "wrk") and version else "python"
        self.version = version if self.kind == "wrk" else f"python {sys.version.split()[0]} "\
                                                          "http.client, 2 processes"
        self.script = out / "web_bench.lua"
        self.script.write_text(WRK_SCRIPT)
        self.out = out

    def run(self, server: Gunicorn, paths: list[str], paths_file: Path, connections: int,
            seconds: float) -> dict[str, Any]:
        """Load ``server`` and account CPU: servers, load generator, everything else."""
        if self.patience > 0:
            wait_quiet(self.quiet, self.patience, [server.proc.pid, *server.workers()])
        busy0, own0, srv0, t0 = machine_busy(), own_cpu(), server.cpu_seconds(), time.perf_counter()
        if self.kind == "wrk":
            result = run_wrk(server.port, paths_file, self.script, connections, seconds)
        else:
            result = run_python_client(server.port, paths, connections, seconds)
        wall = time.perf_counter() - t0
        busy, own, srv = machine_busy() - busy0, own_cpu() - own0, server.cpu_seconds() - srv0
        cores = os.cpu_count() or 1
        result.update({"connections": connections, "cpu_server": srv / (wall * cores),
                       "cpu_client": own / (wall * cores),
                       "cpu_other": max(0.0, busy - own - srv) / (wall * cores)})
        return result


# --- figures -----------------------------------------------------------------------------------


@dataclass
class Figure:
    key: str
    name: str
    value: float
    unit: str
    limit: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    client_cpu: float | None = None
    other_load: float | None = None
    notes: str = ""


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)
    runs: dict[str, Any] = field(default_factory=dict)

    def add(self, fig: Figure) -> None:
        self.figures.append(fig)
        extra = "" if fig.ratio is None else f"  (ratio {fig.ratio:.3f})"
        print(f"  {fig.name}: {_fmt(fig.value, fig.unit)}{extra}", flush=True)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"


def _pc(share: float | None) -> str:
    return "" if share is None else f"{share:.0%}"


def add_hello(results: Results, what: str, at: str, hello: dict[str, Any]) -> None:
    if what == "rps":
        results.add(Figure(f"hello_rps/{at}", f"hello throughput, {at}", hello["rps"], "/s",
                           client_cpu=hello["cpu_client"], other_load=hello["cpu_other"],
                           notes=f"{hello['requests']:,} requests; server CPU "
                                 f"{hello['cpu_server']:.0%}"))
    else:
        results.add(Figure(f"hello_{what}/{at}", f"hello {what}, {at}", hello[f"{what}_ms"],
                           "ms", client_cpu=hello["cpu_client"], other_load=hello["cpu_other"]))


def add_pair(results: Results, label: str, page_name: str, conns: int, hello: dict[str, Any],
             page: dict[str, Any], targets: bool, with_hello: bool = True) -> None:
    """Figures of one page run next to the hello run at the same setting."""
    at = f"{label}, {conns} conn."
    for p in ("rps", "p50", "p99") if with_hello else ():
        add_hello(results, p, at, hello)
    bad = page["errors"] + page["non_2xx"]
    results.add(Figure(
        f"{page_name}_rps/{at}", f"{page_name} throughput, {at}", page["rps"], "/s",
        hello["rps"], page["rps"] / hello["rps"], f"≥ {TARGET_RATIO} × limit" if targets else "",
        page["rps"] >= TARGET_RATIO * hello["rps"] if targets else None, page["cpu_client"],
        page["cpu_other"], f"{page['requests']:,} requests, {bad} errors/non-2xx; server CPU "
                           f"{page['cpu_server']:.0%}; limit = hello at the same setting"))
    for p in ("p50", "p99"):
        target = p == "p99" and targets
        results.add(Figure(
            f"{page_name}_{p}/{at}", f"{page_name} {p}, {at}", page[f"{p}_ms"], "ms",
            hello[f"{p}_ms"], hello[f"{p}_ms"] / page[f"{p}_ms"],
            f"< {TARGET_P99_MS:.0f} ms" if target else "",
            page[f"{p}_ms"] < TARGET_P99_MS if target else None, page["cpu_client"],
            page["cpu_other"], "ratio = hello / page"))


def print_table(results: Results) -> str:
    header = ("figure", "value", "limit", "ratio", "target", "met", "load gen", "other load")
    rows = [(f.name, _fmt(f.value, f.unit), _fmt(f.limit, f.unit),
             "" if f.ratio is None else f"{f.ratio:.3f}", f.target,
             "" if f.met is None else ("yes" if f.met else "NO"), _pc(f.client_cpu),
             _pc(f.other_load)) for f in results.figures]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


# --- profile -----------------------------------------------------------------------------------


def profile_page(out: Path, env: dict[str, str], load: Load, paths: list[str], paths_file: Path,
                 connections: int, seconds: float, top: int = 40) -> Path:
    """cProfile in each worker of ``sync:2`` under the same load; one merged report."""
    hooks = out / "web_bench_profile_hooks.py"
    hooks.write_text(PROFILE_HOOKS.replace("{out!r}", repr(str(out))))
    for old in out.glob("profile-web-worker-*.pstats"):
        old.unlink()
    server = Gunicorn("suyuan_web:create_app()", Path.cwd(), WorkerConfig("sync", 2), env,
                      out / "gunicorn-profile.log", "/healthz", ["-c", str(hooks)])
    try:
        check_urls(server.port, paths[:200])
        run = load.run(server, paths, paths_file, connections, seconds)
    finally:
        server.stop()
    dumps = sorted(out.glob("profile-web-worker-*.pstats"))
    if not dumps:
        raise RuntimeError("no worker profile written:\n" + server.log_tail())
    buf = io.StringIO()
    buf.write(f"cProfile of 2 sync gunicorn workers under {connections} connections for "
              f"{seconds:.0f} s (+ 200 warm-up fetches): {run['requests']:,} requests measured, "
              f"{run['rps']:,.0f}/s, p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms "
              f"(all slower under the profiler)\n\n")
    stats = pstats.Stats(*map(str, dumps), stream=buf)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    report = out / "profile-web-page.txt"
    report.write_text(buf.getvalue())
    print(f"  profile written to {report}", flush=True)
    return report


def web_git_state() -> str:
    """The commit of the ``suyuan_web`` package measured, and whether it had local changes."""
    import suyuan_web

    return ledger_bench._git_state(suyuan_web)


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Suyuan web benchmark: consumer page throughput and latency under gunicorn "
                    "on the supply-chain world, next to a bare Flask hello in the same run.")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="domain events of the world (built by supply_bench.py unless "
                             "cached in --out; 1M takes about 20 minutes)")
    parser.add_argument("--out", type=Path, default=BENCH / "out",
                        help="output folder: world and ledger copies, web_results.json")
    parser.add_argument("--configs", default="gthread:2x4,sync:2",
                        help="gunicorn worker settings, comma-separated: gthread:WxT, sync:W "
                             "(default gthread:2x4,sync:2)")
    parser.add_argument("--connections", type=int, default=16,
                        help="concurrent keep-alive connections (default 16)")
    parser.add_argument("--duration", type=float, default=15.0,
                        help="seconds measured per run (default 15)")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds of load before each measured run (default 5)")
    parser.add_argument("--lots", type=int, default=10_000,
                        help="lots in the fixed URL list, cycled (default 10,000: more pages "
                             "than a per-process page cache holds, so most requests build "
                             "the page)")
    parser.add_argument("--hot", type=int, default=50,
                        help="also load the first K lots of the list only: popular lots, "
                             "which a page cache may hold (default 50; 0 skips)")
    parser.add_argument("--seed", type=int, default=11, help="seed of the URL list")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk if installed (auto), or the Python client")
    parser.add_argument("--target", choices=("page", "healthz"), default="page",
                        help="what to measure against hello: the consumer page (default) or "
                             "/healthz (the app's cheapest route)")
    parser.add_argument("--patience", type=float, default=120.0,
                        help="before each run, wait up to this many seconds for other "
                             "processes to use < 15%% of the machine (0: do not wait)")
    parser.add_argument("--no-single", action="store_true",
                        help="skip the one-connection runs")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile the page in 2 sync workers under the same load")
    return parser.parse_args(argv)


def _on_sigterm(main_pid: int) -> Any:
    """SIGTERM: SystemExit in this process; forked pool workers (which inherit the handler and
    are stopped with SIGTERM by their pool) just end."""

    def handler(_signum: int, _frame: Any) -> None:
        if os.getpid() != main_pid:
            os._exit(143)
        sys.exit(143)

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # a kill stops the servers too (the ``finally`` blocks run on SystemExit)
    signal.signal(signal.SIGTERM, _on_sigterm(os.getpid()))
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    configs = [WorkerConfig.parse(x) for x in args.configs.split(",") if x]
    started = time.perf_counter()
    cores = os.cpu_count() or 1
    info = ledger_bench.machine_info(cores)
    load = Load(args.client, out, patience=args.patience)
    info.update({"suyuan_web_git": web_git_state(),
                 "gunicorn": ledger_bench._version("gunicorn"),
                 "flask": ledger_bench._version("flask"),
                 "werkzeug": ledger_bench._version("werkzeug"), "load_generator": load.version})
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)

    print(f"world: {args.events:,} events", flush=True)
    world, meta = world_db(out, args.events)
    sealed = sealed_ledger(out, args.events, world, meta)
    db_path = run_copy(out, args.events)
    instance = out / "web-instance"
    instance.mkdir(exist_ok=True)
    env = server_env(db_path, instance)
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as raw:
        entries = raw.execute("SELECT size FROM log_head").fetchone()[0]
        lots_total = raw.execute("SELECT count(*) FROM lots").fetchone()[0]
    raw.close()

    if args.target == "page":
        paths, groups, mix = sample_urls(db_path, meta, args.lots, args.seed)
        page_name = "consumer page"
    else:
        paths, groups, mix = ["/healthz"], ["healthz"], {}
        page_name = "/healthz"
    paths_file = out / "web-urls.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    hello_file = out / "web-hello-urls.txt"
    hello_file.write_text("/\n")
    print(f"ledger: {entries:,} entries, {lots_total:,} lots, checkpoint "
          f"{sealed['checkpoint']:,} cosigned by {WITNESS}; {len(paths):,} URLs "
          f"({', '.join(f'{k} {v}' for k, v in mix.items())}); load generator {load.version}",
          flush=True)

    results = Results()
    single = [] if args.no_single or args.connections == 1 else [1]
    # (server, workload, URL list, its file, connection counts)
    plans: list[tuple[str, str, list[str], Path, list[int]]] = [
        ("hello", "hello", ["/"], hello_file, [args.connections, *single]),
        ("page", "page", paths, paths_file, [args.connections, *single])]
    servers = [("hello", "hello_app:create_app()", BENCH, "/", env),
               ("page", "suyuan_web:create_app()", Path.cwd(), "/healthz",
                server_env(db_path, instance, store=False) if args.target == "page" else env)]
    if args.target == "page":
        # The same pages from the page store the workers share, once each has been asked for
        # (the check pass below asks for every URL once, one at a time, on this server).
        plans.append(("stored", "stored", paths, paths_file, [args.connections, *single]))
        servers.append(("stored", "suyuan_web:create_app()", Path.cwd(), "/healthz", env))
    if args.target == "page" and args.hot > 0:
        hot_file = out / "web-hot-urls.txt"
        hot_file.write_text("\n".join(paths[:args.hot]) + "\n")
        plans.append(("stored", "hot", paths[:args.hot], hot_file, [args.connections]))
    checked: dict[str, Any] = {}
    for config in configs:
        label = config.label
        runs: dict[str, dict[str, Any]] = {}
        for name, app, chdir, ready, server_settings in servers:
            print(f"{label}: gunicorn {name}", flush=True)
            if name == "stored":
                shutil.rmtree(instance / "pages", ignore_errors=True)  # an empty store
            server = Gunicorn(app, chdir, config, server_settings, out / f"gunicorn-{name}.log",
                              ready)
            try:
                if name == "stored":
                    check = check_urls(server.port, paths, groups)
                    checked = checked or check
                    runs["check"] = check
                    print(f"  fetched each URL once: statuses {check['statuses']}, body "
                          f"median {check['bytes_median']:,.0f} B, one at a time: median "
                          f"{check['first_fetch_ms_median']:.1f} ms, max "
                          f"{check['first_fetch_ms_max']:.1f} ms", flush=True)
                    print("  by group (median/p99/max): " + "; ".join(
                        f"{g} {v['median_ms']:.1f}/{v['p99_ms']:.1f}/{v['max_ms']:.1f} ms"
                        for g, v in check["groups"].items()), flush=True)
                    for line in check["bad"]:
                        print("    " + line, flush=True)
                for server_name, workload, plist, pfile, levels in plans:
                    if server_name != name:
                        continue
                    for conns in levels:
                        load.run(server, plist, pfile, conns, args.warmup)
                        run = load.run(server, plist, pfile, conns, args.duration)
                        runs[f"{workload}/{conns}"] = run
                        print(f"  {workload}, {conns} conn.: {run['rps']:,.0f}/s, p50 "
                              f"{run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, errors "
                              f"{run['errors']}, non-2xx {run['non_2xx']}; CPU: servers "
                              f"{run['cpu_server']:.0%}, load generator {run['cpu_client']:.0%}, "
                              f"other {run['cpu_other']:.0%}", flush=True)
            finally:
                server.stop()
        for conns in [args.connections, *single]:
            add_pair(results, label, page_name + (", built per request" if args.target == "page"
                                                  else ""), conns, runs[f"hello/{conns}"],
                     runs[f"page/{conns}"], conns == args.connections)
            if f"stored/{conns}" in runs:
                add_pair(results, label, f"{page_name}, from the page store", conns,
                         runs[f"hello/{conns}"], runs[f"stored/{conns}"],
                         conns == args.connections, with_hello=False)
        if f"hot/{args.connections}" in runs:
            add_pair(results, label, f"{page_name}, {args.hot} hot lots", args.connections,
                     runs[f"hello/{args.connections}"], runs[f"hot/{args.connections}"], True,
                     with_hello=False)
        results.runs[label] = runs

    profile = None
    if args.profile:
        print("profile: 2 sync workers under cProfile", flush=True)
        profile = str(profile_page(out, server_env(db_path, instance, store=False), load,
                                   paths, paths_file, args.connections,
                                   args.duration))

    table = print_table(results)
    print()
    print(table)
    print(f"\nThe load generator ({load.version}) runs on the same {cores} cores as the "
          "servers: 'load gen' and 'other load' are their shares of all cores during each "
          "measured run.")
    summary = {
        "bench": BENCH_VERSION, "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": time.perf_counter() - started, "machine": info,
        "world": {"events": args.events, "entries": entries, "lots": lots_total,
                  "built": meta["built"], "checkpoint": sealed["checkpoint"],
                  "migrated": sealed["world_schema"] != sealed["schema"]},
        "settings": {"configs": [c.label for c in configs], "connections": args.connections,
                     "duration": args.duration, "warmup": args.warmup, "lots": len(paths),
                     "mix": {MIX[k][0]: v for k, v in mix.items()}, "seed": args.seed,
                     "target": args.target, "load_generator": load.version,
                     "headers": HEADERS},
        "url_check": checked, "figures": [vars(f) for f in results.figures],
        "runs": results.runs, "profile": profile, "table": table,
    }
    (out / "web_results.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False,
                                                     default=str))
    print(f"\nresults: {out / 'web_results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
