"""What the consumer page shows about a lot or a serialised unit, gathered from the projections
(lots, products, locations, actors, lot events, lineage, alerts, limits, serials) and from the
signed statements of the events themselves.

Everything is read with indexed look-ups: the lot and its ancestors come from the lineage
index (:func:`suyuan.lineage.trace_back`), their events from ``lot_events`` by lot, the
statement bodies of the events shown in one read of ``entries`` by index, the parties and
places named in them in one read each. Nothing scans a table, so the page stays fast on a
log of millions of entries. Sales of a lot are counted, not read one by one.

The proofs of the records shown (C2SP tlog-proofs against the latest cosigned checkpoint)
are built here too, their Merkle nodes fetched in one query for all of them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from suyuan import ledger, lineage, merkle, note
from suyuan.errors import NotFound
from suyuan.model import Entry
from suyuan.storage import repo
from suyuan.storage.schema import (
    ActorRow,
    AlertRow,
    ColdChainLimitRow,
    EntryRow,
    LimitRow,
    LocationRow,
    LotRow,
    ProductRow,
    SerialRow,
)
from suyuan.supply import substance

MAX_PROOFS = 50
"""Most records whose proofs the page carries (the most telling first: origin, tests,
certificates, transformations, recalls)."""

MAX_STEPS = 60
"""Most events shown in detail on the timeline (the lot's own first, then its nearest
ancestors'); the rest are counted."""

MAX_BRANCHES = 6
"""Most merged-in lots drawn as branches of the route; the rest are counted."""

MAX_ORIGINS = 6
"""Most origin lots (farms) listed; the rest are counted."""

ALWAYS_RELEVANT = frozenset({"test", "certificate", "recall"})
"""Events of an ancestor lot that concern this product whenever they happened."""

KEY_KINDS = ("harvest", "planting", "test", "certificate", "recall", "packing",
             "transformation")
"""Kinds whose records the page proves first when it cannot prove them all."""

_CHUNK = 400

# GB/T 2260 province-level codes (first two digits of a 6-digit administrative division
# code), and the county-level divisions of Dalian where the first users are.
PROVINCES: dict[str, tuple[str, str]] = {
    "11": ("北京市", "Beijing"), "12": ("天津市", "Tianjin"), "13": ("河北省", "Hebei"),
    "14": ("山西省", "Shanxi"), "15": ("内蒙古自治区", "Inner Mongolia"),
    "21": ("辽宁省", "Liaoning"), "22": ("吉林省", "Jilin"), "23": ("黑龙江省", "Heilongjiang"),
    "31": ("上海市", "Shanghai"), "32": ("江苏省", "Jiangsu"), "33": ("浙江省", "Zhejiang"),
    "34": ("安徽省", "Anhui"), "35": ("福建省", "Fujian"), "36": ("江西省", "Jiangxi"),
    "37": ("山东省", "Shandong"), "41": ("河南省", "Henan"), "42": ("湖北省", "Hubei"),
    "43": ("湖南省", "Hunan"), "44": ("广东省", "Guangdong"),
    "45": ("广西壮族自治区", "Guangxi"), "46": ("海南省", "Hainan"), "50": ("重庆市", "Chongqing"),
    "51": ("四川省", "Sichuan"), "52": ("贵州省", "Guizhou"), "53": ("云南省", "Yunnan"),
    "54": ("西藏自治区", "Tibet"), "61": ("陕西省", "Shaanxi"), "62": ("甘肃省", "Gansu"),
    "63": ("青海省", "Qinghai"), "64": ("宁夏回族自治区", "Ningxia"),
    "65": ("新疆维吾尔自治区", "Xinjiang"), "71": ("台湾省", "Taiwan"),
    "81": ("香港特别行政区", "Hong Kong"), "82": ("澳门特别行政区", "Macao"),
}
DIVISIONS: dict[str, tuple[str, str]] = {
    "2102": ("大连市", "Dalian"),
    "210202": ("中山区", "Zhongshan District"), "210203": ("西岗区", "Xigang District"),
    "210204": ("沙河口区", "Shahekou District"), "210211": ("甘井子区", "Ganjingzi District"),
    "210212": ("旅顺口区", "Lüshunkou District"), "210213": ("金州区", "Jinzhou District"),
    "210214": ("普兰店区", "Pulandian District"), "210224": ("长海县", "Changhai County"),
    "210281": ("瓦房店市", "Wafangdian"), "210283": ("庄河市", "Zhuanghe"),
}


def region_name(admin_code: str | None, lang: str = "zh") -> str | None:
    """A readable region for a 6-digit administrative division code, e.g. 辽宁省大连市金州区."""
    if not admin_code or len(admin_code) != 6:
        return None
    pick = 0 if lang == "zh" else 1
    parts = []
    for key in (admin_code[:2], admin_code[:4], admin_code):
        names = PROVINCES.get(key) if len(key) == 2 else DIVISIONS.get(key)
        if names:
            parts.append(names[pick])
    if not parts:
        return admin_code
    return "".join(parts) if lang == "zh" else ", ".join(reversed(parts))


# --- what the page shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """An actor as consumers see it: its registered display name."""

    name: str
    display_name: str
    role: str | None = None


@dataclass(frozen=True)
class Place:
    id: str
    name: str
    kind: str
    admin_code: str | None = None
    address: str | None = None
    gln: str | None = None
    fao_area: str | None = None
    lat: str | None = None
    lon: str | None = None

    def region(self, lang: str = "zh") -> str | None:
        return region_name(self.admin_code, lang) or self.address


@dataclass
class Step:
    """One event on the journey (or, for sales, all sales of the lot counted together)."""

    index: int
    kind: str
    lots: list[str]
    time: str | None
    actor: Party
    place: Place | None = None
    to_place: Place | None = None
    to_party: Party | None = None
    carrier: Party | None = None
    quantity: str | None = None
    unit: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    count: int = 1
    last_time: str | None = None

    @property
    def day(self) -> str | None:
        return self.time[:10] if self.time else None

    @property
    def when(self) -> str | None:
        """The event's local time as recorded (``2026-06-05 05:30``)."""
        return _short_time(self.time)

    @property
    def last_when(self) -> str | None:
        return _short_time(self.last_time)


@dataclass(frozen=True)
class TestResult:
    index: int
    lot: str
    time: str | None
    lab: Party
    sample_id: str | None
    analyte: str
    value: str
    unit: str
    limit: str | None
    limit_source: str | None
    is_passed: bool | None
    method: str | None


@dataclass(frozen=True)
class CertificateView:
    """A 承诺达标合格证 as recorded in the log."""

    index: int
    number: str
    lot: str
    basis: str
    quantity: str
    unit: str
    origin: str | None
    contact: str | None
    issuer: Party
    issued: str


@dataclass(frozen=True)
class Reading:
    time: str
    celsius: Decimal
    place: Place | None
    index: int

    @property
    def when(self) -> str | None:
        return _short_time(self.time)


@dataclass(frozen=True)
class ColdChain:
    """Temperatures of the journey. Pre-cooling starts warm by design, so (as the cold-chain
    rule does) only the temperature it reached is held against the limit; every reading in
    storage and transport is."""

    count: int
    minimum: Decimal | None
    maximum: Decimal | None
    first: str | None
    last: str | None
    limit: Decimal | None
    excursions: tuple[Reading, ...]
    precooled_from: Decimal | None = None
    precooled_to: Decimal | None = None

    @property
    def first_when(self) -> str | None:
        return _short_time(self.first)

    @property
    def last_when(self) -> str | None:
        return _short_time(self.last)


@dataclass(frozen=True)
class AlertView:
    index: int
    lot: str | None
    rule: str
    severity: str
    status: str


@dataclass(frozen=True)
class Origin:
    lot: str
    place: Place | None
    producer: Party
    harvested: str | None


@dataclass(frozen=True)
class Route:
    """Where the product went: parallel branches (lots merged into this one), then places;
    ``more_branches`` merged-in lots are not drawn."""

    branches: tuple[Route, ...]
    places: tuple[Place, ...]
    more_branches: int = 0


@dataclass(frozen=True)
class UnitView:
    serial: str
    sold_count: int
    sale: Step | None


@dataclass(frozen=True)
class ProofEntry:
    index: int
    kind: str
    leaf: bytes
    proof: str | None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind,
                "leaf": base64.b64encode(self.leaf).decode(), "proof": self.proof}


@dataclass(frozen=True)
class Proofs:
    """The verification panel's data: the tlog-policy and one proof per record shown."""

    policy: str
    checkpoint_size: int | None
    witnesses: int
    entries: tuple[ProofEntry, ...]
    more: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy, "entries": [e.to_json() for e in self.entries]}

    @property
    def pending(self) -> int:
        return sum(1 for e in self.entries if e.proof is None)


@dataclass(frozen=True)
class LotPage:
    gtin: str
    code: str
    serial: str | None
    status: str
    quantity: str
    unit: str
    created: str
    product: ProductRow | None
    producer: Party
    origins: tuple[Origin, ...]
    more_origins: int
    steps: tuple[Step, ...]
    hidden_steps: int
    route: Route
    tests: tuple[TestResult, ...]
    certificates: tuple[CertificateView, ...]
    cold_chain: ColdChain | None
    alerts: tuple[AlertView, ...]
    recall: Step | None
    unit_info: UnitView | None
    proofs: Proofs
    lots: tuple[str, ...]

    @property
    def is_recalled(self) -> bool:
        return self.status == "recalled"

    @property
    def harvested(self) -> str | None:
        days = sorted(o.harvested for o in self.origins if o.harvested)
        return days[0] if days else None

    def product_name(self, lang: str) -> str:
        if self.product is None:
            return self.gtin
        if lang != "zh" and self.product.name_en:
            return self.product.name_en
        return self.product.name_zh


def _short_time(text: str | None) -> str | None:
    if not text:
        return None
    return text[:16].replace("T", " ")


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _decimal(text: Any) -> Decimal | None:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _rows_by_key(session: Session, column: Any, keys: Iterable[Any]) -> list[Any]:
    wanted = sorted({k for k in keys if k is not None})
    rows: list[Any] = []
    for chunk in _chunks(wanted):
        rows.extend(session.scalars(select(column.class_).where(column.in_(chunk))))
    return rows


def leaves(session: Session, indexes: Iterable[int]) -> dict[int, bytes]:
    """The stored leaves of these entries, in one query per few hundred."""
    found: dict[int, bytes] = {}
    for chunk in _chunks(sorted(set(indexes))):
        for idx, leaf in session.execute(
                select(EntryRow.idx, EntryRow.leaf).where(EntryRow.idx.in_(chunk))):
            found[int(idx)] = bytes(leaf)
    return found


# --- assembling the page ---------------------------------------------------------------------


def lot_page(session: Session, gtin: str, code: str, serial: str | None = None, *,
             max_proofs: int | None = None, max_steps: int | None = None,
             with_proofs: bool = True) -> LotPage:
    """Everything the consumer page shows about lot ``code`` of product ``gtin`` (and unit
    ``serial`` of it); :class:`NotFound` when there is no such lot or unit. Without
    ``with_proofs`` (a linkset needs none) the proofs are left empty."""
    max_proofs = MAX_PROOFS if max_proofs is None else max_proofs
    max_steps = MAX_STEPS if max_steps is None else max_steps
    lot = session.get(LotRow, code)
    if lot is None or lot.gtin != gtin:
        raise NotFound(f"no lot {code!r} of product GTIN {gtin}")
    serial_row = None
    if serial is not None:
        serial_row = session.get(SerialRow, (gtin, serial))
        if serial_row is None or serial_row.lot != code:
            raise NotFound(f"no unit {serial!r} in lot {code!r} of product GTIN {gtin}")

    trace = lineage.trace_back(session, code)
    lot_codes = [info.code for info in trace.lots]
    lot_gtin = {info.code: info.gtin for info in trace.lots}
    # An ancestor's events matter up to when it went into this product (its latest edge
    # toward it), except tests, certificates and recalls, which always do.
    cutoff: dict[str, int] = {}
    for parent, _child, entry in trace.edges:
        cutoff[parent] = max(cutoff.get(parent, -1), entry)

    detailed: dict[int, dict[str, Any]] = {}
    sales: list[dict[str, Any]] = []
    for event in trace.events:
        lot_code, index, kind = str(event["lot"]), int(str(event["entry"])), str(event["kind"])
        if lot_code != code:
            if kind == "sale" or (kind not in ALWAYS_RELEVANT and index > cutoff.get(lot_code, -1)):
                continue
        elif kind == "sale" and not (serial_row is not None and index == serial_row.sold_at):
            sales.append(event)
            continue
        slot = detailed.setdefault(index, {"kind": kind, "lots": [], "actor": event["actor"],
                                           "time": event["event_time"]})
        slot["lots"].append(lot_code)

    depth = {info.code: info.depth for info in trace.lots}
    order = sorted(detailed, key=lambda i: (min(depth.get(lot, 0) for lot in detailed[i]["lots"]),
                                            kind_rank(detailed[i]["kind"]), i))
    shown = set(order[:max_steps])
    hidden = len(detailed) - len(shown)
    bodies = {i: Entry.from_leaf(leaf) for i, leaf in leaves(session, shown).items()}

    statements = {i: e.statement_json() for i, e in bodies.items()}
    actor_names: set[str] = {str(detailed[i]["actor"]) for i in shown} | {lot.owner}
    place_ids: set[str] = set()
    for info in trace.lots:
        actor_names.add(info.owner)
        if info.location:
            place_ids.add(info.location)
    for st in statements.values():
        body = st.get("body", {})
        for key in ("to", "carrier"):
            if isinstance(body.get(key), str):
                actor_names.add(body[key])
        for key in ("location", "to_location"):
            if isinstance(body.get(key), str):
                place_ids.add(body[key])
    actor_names.update(str(s["actor"]) for s in sales)
    parties = {row.name: Party(row.name, row.display_name or row.name, row.role)
               for row in _rows_by_key(session, ActorRow.name, actor_names)}
    places = {row.id: _place(row) for row in _rows_by_key(session, LocationRow.id, place_ids)}

    def party(name: str | None) -> Party | None:
        if name is None:
            return None
        return parties.get(name) or Party(name, name)

    steps: list[Step] = []
    for index in shown:
        st = statements.get(index, {})
        body = st.get("body", {}) if isinstance(st.get("body"), dict) else {}
        slot = detailed[index]
        step = Step(index=index, kind=slot["kind"], lots=sorted(set(slot["lots"])),
                    time=body.get("event_time") or slot["time"],
                    actor=party(str(slot["actor"])) or Party(str(slot["actor"]), ""),
                    place=places.get(body.get("location", "")),
                    to_place=places.get(body.get("to_location", "")),
                    to_party=party(body.get("to")), carrier=party(body.get("carrier")),
                    body=body)
        step.quantity, step.unit = _quantity_for(body, step.lots, code)
        steps.append(step)
    if sales:
        steps.append(_sales_summary(sales, party))
    steps.sort(key=_time_key)

    products = {row.gtin: row for row in _rows_by_key(session, ProductRow.gtin,
                                                        set(lot_gtin.values()) | {gtin})}
    product = products.get(gtin)

    recalls = [s for s in steps if s.kind == "recall"]
    unit_view = None
    if serial_row is not None:
        sale = next((s for s in steps if s.index == serial_row.sold_at and s.kind == "sale"), None)
        unit_view = UnitView(serial_row.serial, int(serial_row.sold_count), sale)

    infos = {info.code: info for info in trace.lots}
    origins = []
    for origin_code in trace.origins[:MAX_ORIGINS]:
        info = infos[origin_code]
        harvest = next((s for s in steps if s.kind == "harvest" and origin_code in s.lots), None)
        made = next((s for s in steps if origin_code in s.lots), None)
        origins.append(Origin(
            lot=origin_code, place=places.get(info.location or ""),
            producer=party(info.owner) or Party(info.owner, info.owner),
            harvested=(harvest.day if harvest else (made.day if made else None))))

    return LotPage(
        gtin=gtin, code=code, serial=serial, status=lot.status, quantity=lot.quantity,
        unit=lot.unit, created=lot.created_time, product=product,
        producer=party(lot.owner) or Party(lot.owner, lot.owner),
        origins=tuple(origins), more_origins=len(trace.origins) - len(origins),
        steps=tuple(steps), hidden_steps=hidden,
        route=_route(code, steps, trace.edges),
        tests=tuple(_tests(session, steps, lot_gtin, products)),
        certificates=tuple(_certificates(steps)),
        cold_chain=_cold_chain(session, steps, product, products.values()),
        alerts=tuple(_alerts(session, lot_codes)),
        recall=recalls[-1] if recalls else None,
        unit_info=unit_view,
        proofs=(proofs(session, _proof_candidates(steps), bodies, max_proofs=max_proofs)
                if with_proofs else Proofs("", None, 0, ())),
        lots=tuple(lot_codes),
    )


def kind_rank(kind: str) -> int:
    return 0 if kind in KEY_KINDS else 1


def _seconds(text: str | None) -> float:
    """A sort key for a recorded time: events without a readable time go last."""
    moment = _moment(text)
    return moment.timestamp() if moment else float("inf")


def _time_key(step: Step) -> tuple[float, int]:
    return (_seconds(step.time), step.index)


def _place(row: LocationRow) -> Place:
    return Place(row.id, row.name, row.kind, row.admin_code, row.address, row.gln,
                 row.fao_area, row.lat, row.lon)


def _quantity_for(body: dict[str, Any], lots: list[str], code: str
                  ) -> tuple[str | None, str | None]:
    """The quantity of this event that concerns the page's lot (or the first lot named)."""
    def pick(q: Any) -> tuple[str | None, str | None]:
        if isinstance(q, dict):
            return q.get("value"), q.get("unit")
        return None, None

    if "quantity" in body:
        return pick(body["quantity"])
    for key in ("lots", "inputs", "outputs"):
        items = body.get(key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and item.get("lot") == code:
                    return pick(item.get("quantity"))
    output = body.get("output")
    if isinstance(output, dict):
        return pick(output.get("quantity"))
    for key in ("lots", "inputs"):
        items = body.get(key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and item.get("lot") in lots:
                    return pick(item.get("quantity"))
    return None, None


def _sales_summary(sales: list[dict[str, Any]], party: Any) -> Step:
    ordered = sorted(sales, key=lambda e: (_seconds(e["event_time"]), e["entry"]))
    first, last = ordered[0], ordered[-1]
    sellers = sorted({str(e["actor"]) for e in sales})
    return Step(index=int(first["entry"]), kind="sales", lots=[str(first["lot"])],
                time=first["event_time"], actor=party(sellers[0]),
                count=len(sales), last_time=last["event_time"],
                body={"sellers": [party(name) for name in sellers]})


def _route(code: str, steps: list[Step], edges: list[tuple[str, str, int]]) -> Route:
    parents: dict[str, list[str]] = {}
    for parent, child, _entry in edges:
        if parent not in parents.setdefault(child, []):
            parents[child].append(parent)

    def own_places(lot: str) -> list[Place]:
        visits: list[Place] = []
        for step in steps:
            if lot not in step.lots:
                continue
            for place in (step.place, step.to_place):
                if place is not None and (not visits or visits[-1].id != place.id):
                    visits.append(place)
        return visits

    def build(lot: str, seen: frozenset[str]) -> Route:
        mine = own_places(lot)
        sources = [p for p in parents.get(lot, []) if p not in seen]
        branches = [build(p, seen | {p}) for p in sources[:MAX_BRANCHES]]
        more = len(sources) - len(branches)
        if len(branches) == 1 and not more:
            (only,) = branches
            joined = list(only.places)
            for place in mine:
                if not joined or joined[-1].id != place.id:
                    joined.append(place)
            return Route(only.branches, tuple(joined), only.more_branches)
        if branches and mine and all(b.places and b.places[-1].id == mine[0].id
                                     for b in branches):
            branches = [Route(b.branches, b.places[:-1], b.more_branches) for b in branches]
        return Route(tuple(branches), tuple(mine), more)

    return build(code, frozenset({code}))


def _tests(session: Session, steps: list[Step], lot_gtin: dict[str, str],
           products: dict[str, ProductRow]) -> list[TestResult]:
    tests = [s for s in steps if s.kind == "test"]
    analytes = {substance(str(r.get("analyte")))
                for s in tests for r in s.body.get("results", []) if isinstance(r, dict)}
    limits: dict[str, list[LimitRow]] = {}
    for row in _rows_by_key(session, LimitRow.active_ingredient, analytes):
        limits.setdefault(row.active_ingredient, []).append(row)
    found = []
    for step in tests:
        lot_code = str(step.body.get("lot") or step.lots[0])
        product = products.get(lot_gtin.get(lot_code, ""))
        category = product.food_category if product else None
        on = (step.time or "")[:10]
        for result in step.body.get("results", []):
            if not isinstance(result, dict):
                continue
            limit = result.get("limit")
            source = "stated" if limit is not None else None
            if limit is None and category:
                row = _limit_in_force(limits.get(substance(str(result.get("analyte"))) or "", []),
                                      category, on)
                if row is not None and row.mrl is not None:
                    limit, source = row.mrl, row.standard
            passed = result.get("passed")
            value, bound = _decimal(result.get("value")), _decimal(limit)
            if passed is None and value is not None and bound is not None:
                passed = value <= bound
            found.append(TestResult(
                index=step.index, lot=lot_code, time=step.time, lab=step.actor,
                sample_id=step.body.get("sample_id"), analyte=str(result.get("analyte")),
                value=str(result.get("value")), unit=str(result.get("unit")),
                limit=None if limit is None else str(limit), limit_source=source,
                is_passed=passed, method=result.get("method")))
    return found


def _limit_in_force(rows: list[LimitRow], category: str, on: str) -> LimitRow | None:
    """The edition in force on ``on`` (as the residue rule chooses it)."""
    try:
        day = date.fromisoformat(on).isoformat()
    except ValueError:
        return None
    best = None
    for row in rows:
        if row.food_category != category or row.effective_from > day:
            continue
        if row.effective_to is not None and day >= row.effective_to:
            continue
        if best is None or (row.effective_from, row.entry) > (best.effective_from, best.entry):
            best = row
    return best


def _certificates(steps: list[Step]) -> list[CertificateView]:
    found = []
    for step in steps:
        if step.kind != "certificate":
            continue
        body = step.body
        quantity = body.get("quantity") if isinstance(body.get("quantity"), dict) else {}
        found.append(CertificateView(
            index=step.index, number=str(body.get("certificate_no", "")),
            lot=str(body.get("lot", step.lots[0])), basis=str(body.get("basis", "")),
            quantity=str(quantity.get("value", "")), unit=str(quantity.get("unit", "")),
            origin=body.get("origin"), contact=body.get("contact"), issuer=step.actor,
            issued=(step.time or "")[:10]))
    return found


def certificate_at(session: Session, index: int) -> tuple[CertificateView, LotRow | None,
                                                         ProductRow | None]:
    """The certificate recorded at entry ``index`` (one read by index, no search)."""
    try:
        entry = ledger.entry(session, index)
    except NotFound:
        raise NotFound(f"no certificate at entry {index}") from None
    st = entry.statement_json()
    if st.get("kind") != "certificate":
        raise NotFound(f"entry {index} is not a certificate")
    actor = session.get(ActorRow, st["actor"])
    issuer = Party(st["actor"], (actor.display_name or actor.name) if actor else st["actor"])
    step = Step(index=index, kind="certificate", lots=[st["body"]["lot"]],
                time=st["body"].get("event_time"), actor=issuer, body=st["body"])
    (cert,) = _certificates([step])
    lot = session.get(LotRow, cert.lot)
    product = session.get(ProductRow, lot.gtin) if lot else None
    return cert, lot, product


def _cold_chain(session: Session, steps: list[Step], product: ProductRow | None,
                products: Iterable[ProductRow]) -> ColdChain | None:
    chain: list[Reading] = []
    cooling: list[list[Reading]] = []
    for step in steps:
        if step.kind not in ("cooling", "storing", "transport"):
            continue
        found = []
        for item in step.body.get("readings", []) or []:
            if not isinstance(item, dict):
                continue
            celsius = _decimal(item.get("celsius"))
            if celsius is not None and isinstance(item.get("time"), str):
                found.append(Reading(item["time"], celsius, step.place, step.index))
        found.sort(key=lambda r: (_seconds(r.time), r.index))
        if step.kind == "cooling":
            if found:
                cooling.append(found)
        else:
            chain.extend(found)
    if not chain and not cooling:
        return None
    limit = None
    commodities = [product.commodity] if product else []
    commodities += [p.commodity for p in products if p.commodity not in commodities]
    for commodity in commodities:
        row = session.get(ColdChainLimitRow, commodity)
        if row is not None:
            limit = _decimal(row.max_celsius)
            break
    chain.sort(key=lambda r: (_seconds(r.time), r.index))
    held = chain + [run[-1] for run in cooling]
    held.sort(key=lambda r: (_seconds(r.time), r.index))
    return ColdChain(
        count=len(chain),
        minimum=min((r.celsius for r in chain), default=None),
        maximum=max((r.celsius for r in chain), default=None),
        first=chain[0].time if chain else None, last=chain[-1].time if chain else None,
        limit=limit,
        excursions=tuple(r for r in held if limit is not None and r.celsius > limit),
        precooled_from=cooling[0][0].celsius if cooling else None,
        precooled_to=cooling[-1][-1].celsius if cooling else None)


def _alerts(session: Session, lot_codes: list[str]) -> list[AlertView]:
    rows = _rows_by_key(session, AlertRow.lot, lot_codes)
    seen: set[tuple[int, str]] = set()
    found = []
    for row in sorted(rows, key=lambda r: (r.entry, r.id)):
        if (row.entry, row.rule) in seen:
            continue
        seen.add((row.entry, row.rule))
        found.append(AlertView(int(row.entry), row.lot, row.rule, row.severity, row.status))
    return found


# --- proofs ----------------------------------------------------------------------------------


def _proof_candidates(steps: list[Step]) -> list[tuple[int, str]]:
    return [(s.index, s.kind) for s in steps if s.kind != "sales"]


def proofs(session: Session, candidates: Sequence[tuple[int, str]],
           known: dict[int, Entry] | None = None, *, max_proofs: int = MAX_PROOFS) -> Proofs:
    """The policy and a tlog-proof per record (``None`` for records newer than the latest
    checkpoint), the most telling records first when there are more than ``max_proofs``."""
    unique = dict(candidates)
    ranked = sorted(unique, key=lambda i: (kind_rank(unique[i]), i))
    chosen = sorted(ranked[:max_proofs])
    more = len(ranked) - len(chosen)
    known = known or {}
    raw = {i: bytes(known[i].leaf) for i in chosen if i in known}
    missing = [i for i in chosen if i not in raw]
    if missing:
        raw.update(leaves(session, missing))

    seal = _seal(session)
    size = seal.size
    paths: dict[int, list[bytes]] = {}
    checkpoint_text = None
    covered = [i for i in chosen if size is not None and i < size]
    if size is not None and seal.root is not None and covered:
        checkpoint_text = seal.cosigned
        paths = inclusion_proofs(session, covered, size, root=seal.root)
    entries = []
    checked = False
    for index in chosen:
        text = None
        if checkpoint_text is not None and index in paths:
            if not checked:
                # Build one through the parser-checked type; the rest the same way, as text:
                # TlogProof re-parses the whole cosigned note on each construction, which
                # was most of the cost of a page carrying fifty proofs.
                note.TlogProof(index=index, path=tuple(paths[index]), checkpoint=checkpoint_text)
                checked = True
            text = _tlog_proof_text(index, paths[index], checkpoint_text)
        entries.append(ProofEntry(index, unique[index], raw.get(index, b""), text))
    return Proofs(seal.policy, size, seal.witnesses, tuple(entries), more)


@dataclass(frozen=True)
class _Seal:
    """What every page's proofs share: the trust policy, the latest checkpoint (size, root)
    and its text with every cosignature."""

    policy: str
    witnesses: int
    size: int | None
    root: bytes | None
    cosigned: str | None


_SEALS: WeakKeyDictionary[Engine, dict[tuple[object, ...], _Seal]] = WeakKeyDictionary()
_SEAL_STATE = ("SELECT (SELECT max(size) FROM checkpoints), (SELECT max(id) FROM cosignatures),"
               " (SELECT count(*) FROM witnesses)")


def _seal(session: Session) -> _Seal:
    """The :class:`_Seal` of the ledger as ``session`` sees it, kept per database engine,
    checkpoint, latest cosignature and number of witnesses (witnesses are only ever added):
    what the page cache also keys on. One small statement reads that."""
    connection = session.connection()
    key = tuple(connection.exec_driver_sql(_SEAL_STATE).one())
    known = _SEALS.setdefault(connection.engine, {})
    seal = known.get(key)
    if seal is None:
        policy = ledger.policy(session)
        row = repo.latest_checkpoint(session)
        seal = _Seal(str(policy), len(policy.witnesses),
                     int(row.size) if row is not None else None,
                     bytes(row.root) if row is not None else None,
                     ledger.cosigned_note(session, int(row.size)) if row is not None else None)
        known.clear()  # an older state is not seen again
        known[key] = seal
    return seal


def _tlog_proof_text(index: int, path: Sequence[bytes], checkpoint: str) -> str:
    """``str(note.TlogProof(index, path, checkpoint))`` (c2sp.org/tlog-proof@v1, no extra)."""
    lines = [note.TLOG_PROOF_HEADER, f"index {index}",
             *(base64.b64encode(node).decode() for node in path)]
    return "".join(line + "\n" for line in lines) + "\n" + checkpoint


_PATHS: dict[tuple[str, int, bytes, int], list[bytes]] = {}
_PATHS_MAX = 50_000
"""Inclusion proofs already built, by (database, tree size, root, index): a proof in a given
tree never changes, and the same lots' pages are asked for again and again."""


def inclusion_proofs(session: Session, indexes: Sequence[int], size: int, *,
                     root: bytes | None = None) -> dict[int, list[bytes]]:
    """RFC 9162 inclusion proofs of several leaves in the tree of ``size`` (whose root is
    ``root``, if given, to remember them by), reading every Merkle node they need in one
    query (proofs of nearby leaves share most nodes)."""
    where = str(session.get_bind().url)
    found: dict[int, list[bytes]] = {}
    if root is not None:
        for index in indexes:
            cached = _PATHS.get((where, size, root, index))
            if cached is not None:
                found[index] = cached
    todo = [i for i in indexes if i not in found]
    if not todo:
        return found
    built = merkle.inclusion_proofs(todo, size, lambda ids: repo.fetch_nodes(session, ids))
    if root is not None and len(_PATHS) + len(todo) > _PATHS_MAX:
        _PATHS.clear()
    for index in todo:
        found[index] = built[index]
        if root is not None:
            _PATHS[(where, size, root, index)] = found[index]
    return found
