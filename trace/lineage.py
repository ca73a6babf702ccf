"""Trace a lot back to its origins and forward to every lot, shipment, holder and sale made
from it — from indexed lineage, shipment and event tables, never by scanning the log."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from suyuan.errors import NotFound
from suyuan.storage.schema import (
    ApplicationRow,
    HoldingRow,
    LineageRow,
    LotEventRow,
    LotRow,
    ShipmentLotRow,
    ShipmentRow,
)

_CHUNK = 400


@dataclass(frozen=True)
class LotInfo:
    code: str
    gtin: str
    owner: str
    created_kind: str
    location: str | None
    status: str
    depth: int


@dataclass
class Trace:
    """What a trace found; ``lots`` is in breadth-first order with each lot's depth."""

    lot: str
    direction: str
    lots: list[LotInfo] = field(default_factory=list)
    edges: list[tuple[str, str, int]] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    inputs: list[dict[str, object]] = field(default_factory=list)
    shipments: list[dict[str, object]] = field(default_factory=list)
    holders: list[dict[str, object]] = field(default_factory=list)
    sales: list[dict[str, object]] = field(default_factory=list)
    events: list[dict[str, object]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "lot": self.lot, "direction": self.direction,
            "lots": [vars(info) for info in self.lots],
            "edges": [{"parent": p, "child": c, "entry": e} for p, c, e in self.edges],
            "origins": self.origins, "inputs": self.inputs, "shipments": self.shipments,
            "holders": self.holders, "sales": self.sales, "events": self.events,
        }


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _walk(session: Session, lot: str, *, back: bool, max_depth: int
          ) -> tuple[dict[str, int], list[tuple[str, str, int]]]:
    """Breadth-first over lineage edges, one indexed query per level; cycles are cut."""
    depth = {lot: 0}
    edges: list[tuple[str, str, int]] = []
    frontier = [lot]
    level = 0
    near = LineageRow.child if back else LineageRow.parent
    while frontier and level < max_depth:
        level += 1
        nxt: list[str] = []
        for chunk in _chunks(frontier):
            rows = session.execute(
                select(LineageRow.parent, LineageRow.child, LineageRow.entry).where(
                    near.in_(chunk)
                ).order_by(LineageRow.entry)
            ).all()
            for parent, child, entry in rows:
                edges.append((parent, child, int(entry)))
                other = parent if back else child
                if other not in depth:
                    depth[other] = level
                    nxt.append(other)
        frontier = nxt
    return depth, edges


def descendants(session: Session, lot: str) -> list[str]:
    """``lot`` and every lot made from it, breadth first."""
    depth, _ = _walk(session, lot, back=False, max_depth=10_000)
    return sorted(depth, key=lambda code: (depth[code], code))


def _lots(session: Session, depth: dict[str, int]) -> list[LotInfo]:
    # Plain rows, not ORM objects: a wide trace reads hundreds of lots, and instances cost
    # time and, through the garbage collector, the slowest traces.
    rows: dict[str, tuple] = {}
    for chunk in _chunks(list(depth)):
        for row in session.execute(
            select(LotRow.code, LotRow.gtin, LotRow.owner, LotRow.created_kind,
                   LotRow.location, LotRow.status).where(LotRow.code.in_(chunk))
        ):
            rows[row[0]] = tuple(row)
    return [
        LotInfo(*rows[code], d)
        for code, d in sorted(depth.items(), key=lambda kv: (kv[1], kv[0])) if code in rows
    ]


def _require(session: Session, lot: str) -> None:
    if session.get(LotRow, lot) is None:
        raise NotFound(f"unknown lot {lot!r}")


def trace_back(session: Session, lot: str, *, max_depth: int = 10_000) -> Trace:
    """Every lot ``lot`` was made from, down to the origin lots, with their inputs."""
    _require(session, lot)
    depth, edges = _walk(session, lot, back=True, max_depth=max_depth)
    trace = Trace(lot, "back", _lots(session, depth), edges)
    parents_of = {child for _, child, _ in edges}
    trace.origins = [info.code for info in trace.lots if info.code not in parents_of]
    origin_rows = [info for info in trace.lots if info.code in set(trace.origins)]
    codes = [info.code for info in origin_rows]
    places = sorted({info.location for info in origin_rows if info.location})
    columns = (ApplicationRow.id, ApplicationRow.entry, ApplicationRow.lot,
               ApplicationRow.location, ApplicationRow.input_type, ApplicationRow.product_name,
               ApplicationRow.active_ingredient, ApplicationRow.event_time)
    found = []
    for chunk in _chunks(codes):
        found += session.execute(select(*columns).where(ApplicationRow.lot.in_(chunk))).all()
    for chunk in _chunks(places):
        found += session.execute(select(*columns).where(
            ApplicationRow.location.in_(chunk), ApplicationRow.lot.is_(None))).all()
    trace.inputs = [
        {"entry": row.entry, "lot": row.lot, "location": row.location,
         "input_type": row.input_type, "product_name": row.product_name,
         "active_ingredient": row.active_ingredient, "event_time": row.event_time}
        for row in sorted({r.id: r for r in found}.values(), key=lambda r: r.entry)
    ]
    trace.events = _events(session, list(depth))
    return trace


def trace_forward(session: Session, lot: str, *, max_depth: int = 10_000) -> Trace:
    """The recall scope: every lot made from ``lot``, every shipment and receiver of them,
    who holds them now, and every sale (with serials)."""
    _require(session, lot)
    depth, edges = _walk(session, lot, back=False, max_depth=max_depth)
    trace = Trace(lot, "forward", _lots(session, depth), edges)
    codes = list(depth)
    for chunk in _chunks(codes):
        for row in session.execute(
            select(ShipmentRow.id, ShipmentLotRow.lot, ShipmentLotRow.quantity,
                   ShipmentRow.sender, ShipmentRow.receiver, ShipmentRow.to_location,
                   ShipmentRow.shipped_time, ShipmentRow.received_at).join(
                ShipmentRow, ShipmentRow.id == ShipmentLotRow.shipment
            ).where(ShipmentLotRow.lot.in_(chunk)).order_by(ShipmentRow.shipped_at)
        ):
            trace.shipments.append({
                "shipment": row.id, "lot": row.lot, "quantity": row.quantity,
                "sender": row.sender, "receiver": row.receiver,
                "to_location": row.to_location, "shipped_time": row.shipped_time,
                "received": row.received_at is not None,
            })
        for holding in session.execute(
            select(HoldingRow.lot, HoldingRow.actor, HoldingRow.quantity).where(
                HoldingRow.lot.in_(chunk))
        ):
            if Decimal(holding.quantity) > 0:
                trace.holders.append({"lot": holding.lot, "actor": holding.actor,
                                      "quantity": holding.quantity})
    trace.events = _events(session, codes)
    trace.sales = [e for e in trace.events if e["kind"] == "sale"]
    trace.holders.sort(key=lambda h: (str(h["lot"]), str(h["actor"])))
    return trace


def _events(session: Session, codes: list[str]) -> list[dict[str, object]]:
    events = []
    for chunk in _chunks(codes):
        for row in session.execute(
            select(LotEventRow.lot, LotEventRow.entry, LotEventRow.kind, LotEventRow.actor,
                   LotEventRow.event_time).where(LotEventRow.lot.in_(chunk))
        ):
            events.append({"lot": row.lot, "entry": row.entry, "kind": row.kind,
                           "actor": row.actor, "event_time": row.event_time})
    events.sort(key=lambda e: (e["entry"], e["lot"]))  # type: ignore[arg-type,return-value]
    return events
