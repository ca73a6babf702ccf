"""Supply-chain benchmark: domain-event append throughput (rules + projections) and trace
latency on a synthetic world of N signed supply-chain events.

    python bench/supply_bench.py [--events N] [--out DIR] [--slice S] [--samples K] [--profile]

See bench/README.md ("Supply-chain benchmark") for what is measured and how to read it.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import multiprocessing
import os
import platform
import pstats
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nacl.bindings
from sqlalchemy import select, text

from suyuan import crypto, ledger, lineage
from suyuan.interop.gs1 import gs1_check_digit
from suyuan.model import SignedStatement, Statement, format_time, sign_statement
from suyuan.storage.db import Database, sqlite_url
from suyuan.storage.schema import LotRow

BENCH_VERSION = "supply-1"
SEED = b"suyuan-supply-bench/v1/"
ORIGIN = "bench.suyuan.example/supply"
REGISTRAR = "registrar"
BATCH = 2_000
WIDTH = 48  # chains in flight at once: their events interleave in the log
TARGET_MS = 50.0
CST = timezone(timedelta(hours=8))
T0 = datetime(2025, 1, 1, 6, 0, tzinfo=CST)
STEP = timedelta(seconds=20)  # event k happens at T0 + k * STEP: chronology holds by order
DEEP_EVERY, DEEP_STEPS = 150, 50  # every 150th chain is a deep one of 50 transformations
WIDE_EVERY, WIDE_INPUTS, WIDE_OUTPUTS = 600, 100, 50  # commingling merge of 100 farms' lots


# --- actors, keys, products ------------------------------------------------------------------

ROLE_COUNTS = (("farm", 300), ("packer", 40), ("processor", 24), ("carrier", 20),
               ("market", 20), ("retailer", 300))
PLACE_KIND = {"farm": "orchard", "packer": "packhouse", "processor": "processing_plant",
              "market": "market", "retailer": "shop"}
COMMODITIES = (("cherry", "大樱桃", "Cherry"), ("blueberry", "蓝莓", "Blueberry"),
               ("apple", "苹果", "Apple"), ("scallop", "扇贝", "Scallop"))


def _key(name: str) -> crypto.SigningKey:
    return crypto.SigningKey(hashlib.sha256(SEED + name.encode()).digest())


_KEYS: dict[str, crypto.SigningKey] = {}


def key_of(name: str) -> crypto.SigningKey:
    key = _KEYS.get(name)
    if key is None:
        key = _KEYS[name] = _key("actor/" + name if name != REGISTRAR else "registrar")
    return key


def gtin(item: int) -> str:
    """A restricted-circulation (prefix 20) GTIN-14."""
    body = "0200000" + str(item).rjust(6, "0")
    return body + gs1_check_digit(body)


RAW = {c: gtin(10 + i) for i, (c, _, _) in enumerate(COMMODITIES)}
BOX = {c: gtin(20 + i) for i, (c, _, _) in enumerate(COMMODITIES)}
PROC = {c: gtin(30 + i) for i, (c, _, _) in enumerate(COMMODITIES)}


def actors() -> dict[str, list[str]]:
    return {role: [f"{role}-{i:03d}" for i in range(count)] for role, count in ROLE_COUNTS}


def place(actor: str) -> str:
    return "loc-" + actor


# --- the synthetic world -----------------------------------------------------------------------


def q(value: int | float, unit: str = "KGM") -> dict[str, str]:
    text_ = f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    return {"value": text_, "unit": unit}


Step = tuple[str, str, dict[str, Any]]  # (actor, kind, body); the event time is added later


@dataclass
class Samples:
    """Lots worth tracing, found while generating (deep and wide chains)."""

    deep_back: list[str] = field(default_factory=list)
    deep_forward: list[str] = field(default_factory=list)
    wide_back: list[str] = field(default_factory=list)
    wide_forward: list[str] = field(default_factory=list)


class World:
    """Deterministic generator of the setup statements and N domain events, in log order.

    Chains (harvest → ship → receive → pack/transform → ship → receive → sell) run ``WIDTH``
    at a time, interleaved at random; each chain only uses lots it created or received, and
    event times grow with the log position, so every event passes the rules.
    """

    def __init__(self, events: int, seed: int = 1) -> None:
        self.events = events
        self.rng = random.Random(seed)
        self.by_role = actors()
        self.emitted = 0
        self.chains = 0
        self.serial = 0
        self.samples = Samples()
        self.kinds: dict[str, int] = {}

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial:08d}"

    def pick(self, role: str) -> str:
        return self.rng.choice(self.by_role[role])

    # setup: actors, places, products (not counted as domain events)
    def setup(self) -> list[Statement]:
        t = format_time(T0.astimezone(UTC) - timedelta(days=30))
        out = []
        n = 0

        def st(actor: str, kind: str, body: dict[str, Any]) -> None:
            nonlocal n
            n += 1
            out.append(Statement(kind=kind, actor=actor, key_id=key_id(actor), time=t,
                                 nonce=f"setup-{n:08d}", body=body))

        for role, names in self.by_role.items():
            for name in names:
                st(REGISTRAR, "actor_registered", {
                    "name": name, "role": role, "display_name": name,
                    "vkey": str(crypto.verifier_key(name, key_of(name).public_key))})
        for role, names in self.by_role.items():
            if role in PLACE_KIND:
                for name in names:
                    st(name, "location_registered", {
                        "id": place(name), "name": f"{name} {PLACE_KIND[role]}",
                        "kind": PLACE_KIND[role], "admin_code": "210213"})
        owner = self.by_role["packer"][0]
        for commodity, zh, en in COMMODITIES:
            for table, unit, suffix_zh, suffix_en in ((RAW, "KGM", "", ""),
                                                      (BOX, "XBX", "礼盒", " box"),
                                                      (PROC, "KGM", "加工品", " processed")):
                st(owner, "product_registered", {
                    "gtin": table[commodity], "name_zh": zh + suffix_zh,
                    "name_en": en + suffix_en, "commodity": commodity, "unit": unit,
                    "food_category": commodity})
        return out

    # chains --------------------------------------------------------------------------------
    def _ship(self, sender: str, receiver: str, lots: list[tuple[str, Any]],
              unit: str, transport: bool = False) -> Iterator[Step]:
        shipment = self._id("SH")
        carrier = self.pick("carrier")
        items = [{"lot": lot, "quantity": q(amount, unit)} for lot, amount in lots]
        yield sender, "shipping", {"shipment": shipment, "lots": items, "to": receiver,
                                   "location": place(sender), "to_location": place(receiver),
                                   "carrier": carrier}
        if transport:
            yield carrier, "transport", {"shipment": shipment, "readings": [
                {"time": "@-2", "celsius": "2.5"}, {"time": "@-1", "celsius": "3.0"},
                {"time": "@0", "celsius": "2.8"}]}
        yield receiver, "receiving", {"shipment": shipment, "lots": items,
                                      "location": place(receiver)}

    def _harvest(self, farm: str, commodity: str, kg: int) -> Iterator[Step]:
        lot = self._id("H")
        yield farm, "harvest", {"lot": lot, "product": RAW[commodity], "quantity": q(kg),
                                "location": place(farm)}

    def chain_retail(self) -> Iterator[Step]:
        """Farm → packer (boxes, some serialised) → market → shop → consumers: 12-16 events."""
        c = self.rng.choice(COMMODITIES)[0]
        farm, packer = self.pick("farm"), self.pick("packer")
        market, shop = self.pick("market"), self.pick("retailer")
        kg = self.rng.randrange(500, 3000, 10)
        step = next(self._harvest(farm, c, kg))
        yield step
        lot = step[2]["lot"]
        yield from self._ship(farm, packer, [(lot, kg)], "KGM", transport=True)
        boxes = kg // 5
        box = self._id("B")
        body: dict[str, Any] = {"inputs": [{"lot": lot, "quantity": q(kg)}],
                                "output": {"lot": box, "product": BOX[c],
                                           "quantity": q(boxes, "XBX")},
                                "location": place(packer)}
        serials = [f"{box}-{i:03d}" for i in range(12)] if self.rng.random() < 0.3 else []
        if serials:
            body["serials"] = serials
        yield packer, "packing", body
        yield from self._ship(packer, market, [(box, boxes)], "XBX", transport=True)
        to_shop = boxes // 2
        yield from self._ship(market, shop, [(box, to_shop)], "XBX")
        yield market, "sale", {"lot": box, "quantity": q(10, "XBX"), "channel": "wholesale",
                               "location": place(market)}
        for i in range(self.rng.randint(2, 4)):
            sale: dict[str, Any] = {"lot": box, "quantity": q(1, "XBX"),
                                    "channel": self.rng.choice(("retail", "ecommerce")),
                                    "location": place(shop)}
            if serials and i < len(serials):
                sale["serial"] = serials[i]
            yield shop, "sale", sale

    def chain_processing(self) -> Iterator[Step]:
        """Farm → processor: split, process, then to a shop and a market: 12-14 events."""
        c = self.rng.choice(COMMODITIES)[0]
        farm, proc = self.pick("farm"), self.pick("processor")
        kg = self.rng.randrange(1000, 5000, 10)
        step = next(self._harvest(farm, c, kg))
        yield step
        lot = step[2]["lot"]
        yield from self._ship(farm, proc, [(lot, kg)], "KGM")
        a, b = self._id("S"), self._id("S")
        half = kg * 9 // 20
        yield proc, "transformation", {
            "inputs": [{"lot": lot, "quantity": q(kg)}], "process": "split",
            "outputs": [{"lot": a, "product": RAW[c], "quantity": q(half)},
                        {"lot": b, "product": RAW[c], "quantity": q(half)}],
            "location": place(proc)}
        p = self._id("P")
        made = half * 4 // 5
        yield proc, "transformation", {
            "inputs": [{"lot": a, "quantity": q(half)}], "process": "process",
            "outputs": [{"lot": p, "product": PROC[c], "quantity": q(made)}],
            "location": place(proc)}
        shop, market = self.pick("retailer"), self.pick("market")
        yield from self._ship(proc, shop, [(p, made)], "KGM")
        for _ in range(self.rng.randint(1, 3)):
            yield shop, "sale", {"lot": p, "quantity": q(self.rng.randint(1, 5)),
                                 "channel": "retail", "location": place(shop)}
        yield from self._ship(proc, market, [(b, half)], "KGM")
        yield market, "sale", {"lot": b, "quantity": q(half // 2), "channel": "wholesale"}

    def chain_merge(self) -> Iterator[Step]:
        """2-4 farms' harvests merged by a processor, then sold through a market."""
        c = self.rng.choice(COMMODITIES)[0]
        proc, market = self.pick("processor"), self.pick("market")
        inputs = []
        for farm in self.rng.sample(self.by_role["farm"], self.rng.randint(2, 4)):
            kg = self.rng.randrange(200, 1000, 10)
            step = next(self._harvest(farm, c, kg))
            yield step
            inputs.append((step[2]["lot"], kg))
            yield from self._ship(farm, proc, [inputs[-1]], "KGM")
        m = self._id("M")
        total = sum(kg for _, kg in inputs)
        yield proc, "transformation", {
            "inputs": [{"lot": lot, "quantity": q(kg)} for lot, kg in inputs],
            "process": "merge", "outputs": [{"lot": m, "product": RAW[c], "quantity": q(total)}],
            "location": place(proc)}
        yield from self._ship(proc, market, [(m, total)], "KGM")
        yield market, "sale", {"lot": m, "quantity": q(total // 3), "channel": "wholesale"}

    def chain_deep(self) -> Iterator[Step]:
        """A lot processed 50 times in a row (re-graded, re-packed, …): trace depth 50."""
        c = self.rng.choice(COMMODITIES)[0]
        farm, proc = self.pick("farm"), self.pick("processor")
        kg = self.rng.randrange(1000, 5000, 10)
        step = next(self._harvest(farm, c, kg))
        yield step
        lot = first = step[2]["lot"]
        yield from self._ship(farm, proc, [(lot, kg)], "KGM")
        for _ in range(DEEP_STEPS):
            nxt = self._id("D")
            yield proc, "transformation", {
                "inputs": [{"lot": lot, "quantity": q(kg)}], "process": "process",
                "outputs": [{"lot": nxt, "product": PROC[c], "quantity": q(kg)}],
                "location": place(proc)}
            lot = nxt
        shop = self.pick("retailer")
        yield from self._ship(proc, shop, [(lot, kg)], "KGM")
        yield shop, "sale", {"lot": lot, "quantity": q(2), "channel": "retail"}
        self.samples.deep_back.append(lot)
        self.samples.deep_forward.append(first)

    def chain_wide(self) -> Iterator[Step]:
        """Commingling: 100 farms' lots received by one processor, merged into one lot and
        split into 50 (wide back from each output, wide forward from each harvest)."""
        c = self.rng.choice(COMMODITIES)[0]
        proc = self.pick("processor")
        inputs = []
        for farm in self.rng.sample(self.by_role["farm"], WIDE_INPUTS):
            kg = self.rng.randrange(100, 500, 10)
            step = next(self._harvest(farm, c, kg))
            yield step
            inputs.append((step[2]["lot"], kg))
            yield from self._ship(farm, proc, [inputs[-1]], "KGM")
        m = self._id("W")
        total = sum(kg for _, kg in inputs)
        yield proc, "transformation", {
            "inputs": [{"lot": lot, "quantity": q(kg)} for lot, kg in inputs],
            "process": "merge", "outputs": [{"lot": m, "product": RAW[c], "quantity": q(total)}],
            "location": place(proc)}
        share = total // WIDE_OUTPUTS
        outs = [self._id("WS") for _ in range(WIDE_OUTPUTS)]
        yield proc, "transformation", {
            "inputs": [{"lot": m, "quantity": q(share * WIDE_OUTPUTS)}], "process": "split",
            "outputs": [{"lot": o, "product": PROC[c], "quantity": q(share)} for o in outs],
            "location": place(proc)}
        for o in outs[:10]:
            shop = self.pick("retailer")
            yield from self._ship(proc, shop, [(o, share)], "KGM")
            yield shop, "sale", {"lot": o, "quantity": q(1), "channel": "retail"}
        self.samples.wide_back.extend(outs)
        self.samples.wide_forward.extend(lot for lot, _ in inputs)

    def _new_chain(self) -> Iterator[Step]:
        self.chains += 1
        n = self.chains
        if n % WIDE_EVERY == 10:
            return self.chain_wide()
        if n % DEEP_EVERY == 5:
            return self.chain_deep()
        r = self.rng.random()
        if r < 0.6:
            return self.chain_retail()
        if r < 0.9:
            return self.chain_processing()
        return self.chain_merge()

    def statements(self) -> Iterator[Statement]:
        """Exactly ``events`` domain statements, in log order."""
        live = [self._new_chain() for _ in range(WIDTH)]
        while self.emitted < self.events:
            i = self.rng.randrange(len(live))
            try:
                actor, kind, body = next(live[i])
            except StopIteration:
                live[i] = self._new_chain()
                continue
            when = T0 + STEP * self.emitted
            if kind == "transport":
                body["readings"] = [
                    {"time": (when + timedelta(minutes=int(r["time"][1:]) * 30))
                     .isoformat(timespec="seconds"), "celsius": r["celsius"]}
                    for r in body["readings"]]
            body["event_time"] = when.isoformat(timespec="seconds")
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            self.emitted += 1
            yield Statement(kind=kind, actor=actor, key_id=key_id(actor),
                            time=format_time(when.astimezone(UTC) + timedelta(minutes=1)),
                            nonce=f"ev-{self.emitted:010d}", body=body)


_KID: dict[str, str] = {}


def key_id(actor: str) -> str:
    kid = _KID.get(actor)
    if kid is None:
        kid = _KID[actor] = crypto.key_id(actor, key_of(actor).public_key).hex()
    return kid


def _sign_chunk(statements: list[Statement]) -> list[SignedStatement]:
    return [sign_statement(s, key_of(s.actor)) for s in statements]


def _chunked(items: Iterator[Statement], size: int) -> Iterator[list[Statement]]:
    chunk: list[Statement] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def signed_batches(pool: Any, statements: Iterator[Statement]) -> Iterator[list[SignedStatement]]:
    """Sign in worker processes, a few batches ahead of the consumer (bounded memory)."""
    pending: list[Any] = []
    for chunk in _chunked(statements, BATCH):
        pending.append(pool.apply_async(_sign_chunk, (chunk,)))
        if len(pending) >= 4:
            yield pending.pop(0).get()
    for result in pending:
        yield result.get()


# --- ledgers ---------------------------------------------------------------------------------


def fresh_ledger(path: Path, setup: list[SignedStatement]) -> Database:
    """Schema, genesis and the world's actors, places and products (not timed)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = Database(sqlite_url(path))
    db.upgrade()
    now = T0.astimezone(UTC) - timedelta(days=31)
    with db.writer() as session, session.begin():
        ledger.initialise(session, origin=ORIGIN, log_key=_key("log"), registrar=REGISTRAR,
                          registrar_key=key_of(REGISTRAR), now=now)
    append_checked(db, setup)
    return db


def append_checked(db: Database, items: Sequence[SignedStatement | ledger.Prepared]) -> float:
    """``ledger.append`` + commit of one batch; raises on any refusal; returns seconds."""
    started = time.perf_counter()
    with db.writer() as session, session.begin():
        results = ledger.append(session, items)
    seconds = time.perf_counter() - started
    for item, result in zip(items, results, strict=True):
        if result.error is not None:
            signed = item.signed if isinstance(item, ledger.Prepared) else item
            raise RuntimeError(f"{signed.statement.kind} by {signed.statement.actor} refused: "
                               f"{result.error!r}\n{signed.statement.body}")
    return seconds


def prepared(batch: list[SignedStatement]) -> list[ledger.Prepared]:
    return [ledger.Prepared(s, key_of(s.statement.actor).public_key) for s in batch]


def schema_fingerprint() -> str:
    import suyuan.storage

    folder = Path(suyuan.storage.__file__).resolve().parent
    digest = hashlib.sha256(BENCH_VERSION.encode())
    for source in sorted([folder / "schema.py", *folder.glob("migrations/**/*.py")]):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def build_world(out: Path, events: int, pool: Any, profile: bool) -> dict[str, Any]:
    """The big world DB, cached in ``out`` while the schema and this bench are unchanged."""
    path = out / f"supply-{events}.db"
    meta_path = out / f"supply-{events}.json"
    fingerprint = schema_fingerprint()
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fingerprint and meta.get("events") == events:
            meta["cached"] = True
            print(f"world: reusing {path} (built {meta['built']})", flush=True)
            return meta
    tmp = out / f"supply-{events}.building.db"
    world = World(events)
    db = fresh_ledger(tmp, _sign_chunk(world.setup()))
    append_s = 0.0
    started = time.perf_counter()
    done = 0
    profiler = cProfile.Profile() if profile else None
    for batch in signed_batches(pool, world.statements()):
        items = prepared(batch)
        if profiler is not None and done == 2 * BATCH:  # a warm 10k-event window
            profiler.enable()
        append_s += append_checked(db, items)
        if profiler is not None and done == 6 * BATCH:
            profiler.disable()
            _write_profile(profiler, out / "profile-supply-append.txt")
            profiler = None
        done += len(batch)
        if done % 50_000 < BATCH or done == events:
            wall = time.perf_counter() - started
            print(f"  built {done:,} events: {wall:.0f} s wall, append {done / append_s:,.0f}/s "
                  f"cumulative", flush=True)
    db.dispose()
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(tmp) + suffix)
        if src.exists():
            src.replace(Path(str(path) + suffix))
    meta = {"events": events, "fingerprint": fingerprint, "built": format_time(datetime.now(UTC)),
            "append_seconds": append_s, "wall_seconds": time.perf_counter() - started,
            "chains": world.chains, "kinds": world.kinds, "samples": vars(world.samples),
            "cached": False}
    meta_path.write_text(json.dumps(meta, indent=1))
    return meta


def world_db(out: Path, events: int, jobs: int | None = None) -> tuple[Path, dict[str, Any]]:
    """The world DB of ``events`` events in ``out`` and its metadata, built first unless cached
    (for the other benches that need a big supply-chain ledger)."""
    out.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(jobs or os.cpu_count() or 1) as pool:
        meta = build_world(out, events, pool, profile=False)
    return out / f"supply-{events}.db", meta


def _write_profile(profiler: cProfile.Profile, path: Path, top: int = 40) -> None:
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    path.write_text(buf.getvalue())
    print(f"  profile written to {path}", flush=True)


# --- figures ---------------------------------------------------------------------------------


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
    notes: str = ""


def libsodium_rate(batches: list[list[SignedStatement]], passes: int = 2) -> float:
    open_ = nacl.bindings.crypto_sign_open
    items = [(bytes(s.signature) + s.message, key_of(s.statement.actor).public_key)
             for batch in batches for s in batch]
    best = 0.0
    for _ in range(passes):
        started = time.perf_counter()
        for sm, pk in items:
            open_(sm, pk)
        best = max(best, len(items) / (time.perf_counter() - started))
    return best


def bench_slice(out: Path, size: int, pool: Any, figures: list[Figure]) -> None:
    """The first ``size`` events of the same world, into fresh ledgers: with real signature
    verification in ``ledger.append`` and pre-verified; each next to the libsodium rate."""
    world = World(size)
    setup = _sign_chunk(world.setup())
    batches = list(signed_batches(pool, world.statements()))
    for verified in (True, False):
        path = out / "supply-slice.db"
        db = fresh_ledger(path, setup)
        limit = libsodium_rate(batches)
        seconds = sum(append_checked(db, batch if verified else prepared(batch))
                      for batch in batches)
        db.dispose()
        rate = size / seconds
        if verified:
            figures.append(Figure(
                "slice_append_verify", f"append {size:,} events, rules + projections + Ed25519 "
                "verify, 1 process", rate, "/s", limit, rate / limit, "≥ 0.7 × limit",
                rate >= 0.7 * limit, f"{BATCH} per transaction; limit = libsodium one-core "
                "verify over the same messages, best of 2, measured just before"))
        else:
            figures.append(Figure(
                "slice_append_preverified", f"append {size:,} events, rules + projections, "
                "pre-verified", rate, "/s", limit, rate / limit, "", None,
                "ledger.Prepared(signed, key): no verify; limit as above"))
    figures.insert(0, Figure("sodium_verify", "Ed25519 verify, libsodium, 1 core", limit, "/s",
                             notes="crypto_sign_open over the slice's signing messages"))


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return statistics.median(ordered), p99


def _time_each(db: Database, codes: list[str], call: Callable[[Any, str], Any]
               ) -> tuple[list[float], list[Any]]:
    times, outputs = [], []
    with db.reader() as session, session.begin():
        for code in codes:
            session.expunge_all()
            started = time.perf_counter_ns()
            result = call(session, code)
            times.append((time.perf_counter_ns() - started) / 1e6)
            outputs.append(result)
    return times, outputs


def bench_traces(path: Path, meta: dict[str, Any], samples: int, figures: list[Figure],
                 profile_to: Path | None) -> dict[str, Any]:
    rng = random.Random(7)
    db = Database(sqlite_url(path))
    with db.reader() as session, session.begin():
        all_codes = list(session.scalars(select(LotRow.code)))
        lots_total = len(all_codes)
        entries = session.execute(text("SELECT size FROM log_head")).scalar()
    random_lots = rng.sample(all_codes, min(samples, len(all_codes)))
    del all_codes

    def pick(codes: list[str], k: int) -> list[str]:
        return [rng.choice(codes) for _ in range(k)] if codes else []

    s = meta["samples"]
    groups = {
        "random": (random_lots, random_lots),
        "deep (50 transformations)": (pick(s["deep_back"], 100), pick(s["deep_forward"], 100)),
        "wide (100-lot merge, 50-way split)": (pick(s["wide_back"], 100),
                                              pick(s["wide_forward"], 100)),
    }
    # warm the page cache the same way for everything measured
    _time_each(db, random_lots[:50], lambda se, c: lineage.trace_back(se, c))

    times, _ = _time_each(db, random_lots, lambda se, c: se.get(LotRow, c))
    get_med, get_p99 = _percentiles(times)
    figures.append(Figure("lot_get", f"session.get(LotRow, code) @ {entries:,} entries "
                          f"({lots_total:,} lots)", get_med, "ms",
                          notes=f"median of {len(times)}; p99 {get_p99:.3f} ms"))
    raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    raw_times = []
    for code in random_lots:
        started = time.perf_counter_ns()
        raw.execute("SELECT * FROM lots WHERE code = ?", (code,)).fetchone()
        raw_times.append((time.perf_counter_ns() - started) / 1e6)
    raw.close()
    figures.append(Figure("lot_get_raw", "sqlite3 SELECT * FROM lots WHERE code = ?",
                          statistics.median(raw_times), "ms",
                          notes="the same lots, primary-key lookup without the ORM"))
    detail: dict[str, Any] = {"entries": entries, "lots": lots_total}
    for group, (back_codes, fwd_codes) in groups.items():
        for direction, codes, call in (
                ("back", back_codes, lineage.trace_back),
                ("forward", fwd_codes, lineage.trace_forward)):
            if not codes:
                continue
            times, traces = _time_each(db, codes, lambda se, c, f=call: f(se, c))
            med, p99 = _percentiles(times)
            sizes = [len(t.lots) for t in traces]
            depths = [max(i.depth for i in t.lots) for t in traces]
            events = [len(t.events) for t in traces]
            note = (f"{len(codes)} lots; per trace: lots median {statistics.median(sizes):.0f} "
                    f"max {max(sizes)}, depth max {max(depths)}, events median "
                    f"{statistics.median(events):.0f} max {max(events)}; limit = "
                    f"session.get median")
            for stat, value in (("median", med), ("p99", p99)):
                figures.append(Figure(
                    f"trace_{direction}_{group.split()[0]}_{stat}",
                    f"trace_{direction} {stat}, {group} lots", value, "ms", get_med,
                    get_med / value, f"< {TARGET_MS:.0f} ms", value < TARGET_MS, note))
            detail[f"{group}/{direction}"] = {"median_ms": med, "p99_ms": p99,
                                               "max_ms": max(times), "lots": sizes}
            if profile_to is not None and group != "random":
                profiler = cProfile.Profile()
                profiler.enable()
                _time_each(db, codes[:20], lambda se, c, f=call: f(se, c))
                profiler.disable()
                _write_profile(profiler, profile_to / f"profile-trace-{direction}-"
                               f"{group.split()[0]}.txt", top=25)
    db.dispose()
    return detail


# --- report ----------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:.3f} ms" if value < 100 else f"{value:,.0f} ms"


def print_table(figures: list[Figure]) -> str:
    lines = ["| figure | value | limit | ratio | target | met |", "|---|---:|---:|---:|---|---|"]
    for f in figures:
        met = "" if f.met is None else ("yes" if f.met else "**no**")
        ratio = "" if f.ratio is None else f"{f.ratio:.3f}"
        lines.append(f"| {f.name} | {_fmt(f.value, f.unit)} | {_fmt(f.limit, f.unit)} | "
                     f"{ratio} | {f.target} | {met} |")
    table = "\n".join(lines)
    print(table)
    return table


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Suyuan supply-chain benchmark: append throughput of domain events with "
                    "rules and projections, and trace latency, each next to a limit measured "
                    "in the same run.")
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="domain events in the big world (default 1,000,000)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                        help="output folder: world DB cache, supply_results.json, profiles")
    parser.add_argument("--slice", type=int, default=20_000,
                        help="events of the verified throughput slice (default 20,000)")
    parser.add_argument("--samples", type=int, default=500,
                        help="random lots per trace measurement (default 500)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="signing worker processes (signing is not timed)")
    parser.add_argument("--profile", action="store_true",
                        help="write cProfile reports of append and of deep/wide traces")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    started = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.jobs) as pool:
        print(f"slice: {args.slice:,} events, verified and pre-verified", flush=True)
        bench_slice(out, min(args.slice, args.events), pool, figures)
        print(f"world: {args.events:,} events", flush=True)
        meta = build_world(out, args.events, pool, args.profile)
    build_rate = args.events / meta["append_seconds"]
    figures.append(Figure(
        "build_append_preverified", f"append {args.events:,} events pre-verified (whole build)",
        build_rate, "/s", figures[0].value, build_rate / figures[0].value, "", None,
        f"ledger.append + commit time only; wall incl. generation {meta['wall_seconds']:.0f} s"
        + (f"; from the cached build of {meta['built']}" if meta["cached"] else "")))
    print("traces", flush=True)
    detail = bench_traces(out / f"supply-{args.events}.db", meta, args.samples, figures,
                          out if args.profile else None)
    print()
    table = print_table(figures)
    results = {
        "bench": BENCH_VERSION, "measured": format_time(datetime.now(UTC)),
        "events": args.events, "slice": args.slice, "seconds": time.perf_counter() - started,
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0],
                    "sqlite": sqlite3.sqlite_version, "platform": platform.platform()},
        "world": {k: v for k, v in meta.items() if k != "samples"},
        "figures": [vars(f) for f in figures], "traces": detail, "table": table,
    }
    (out / "supply_results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"\nresults: {out / 'supply_results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
