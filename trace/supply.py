"""The supply chain as projections of the log: checking a statement against the state the log
has reached, and advancing that state.

:func:`check` applies the rule families in :mod:`suyuan.rules` (reject what cannot be true,
alert on what is true but wrong); :func:`apply` writes the projections (lots, custody,
shipments, lineage, serials, alerts). The ledger calls both on every append, and
``suyuan rebuild`` replays the whole log through :func:`apply` to the same result.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, inspect, select
from sqlalchemy.orm import Session

from suyuan import fields
from suyuan.errors import (
    ChronologyViolation,
    CustodyViolation,
    QuantityExceeded,
    Rejected,
    UnknownReference,
)
from suyuan.events import KINDS
from suyuan.model import Entry, Statement
from suyuan.registry import REGISTRARS, ActorRecord, Registry
from suyuan.storage.schema import (
    PROJECTION_TABLES,
    AlertRow,
    ApplicationRow,
    ColdChainLimitRow,
    HoldingRow,
    LimitRow,
    LocationRow,
    LotEventRow,
    LotRow,
    ProductRow,
    SerialRow,
    ShipmentLotRow,
    ShipmentRow,
    YieldLimitRow,
    metadata,
)

MASS_IN_KG = {"KGM": Decimal(1), "GRM": Decimal("0.001"), "TNE": Decimal(1000)}
REGULATORS = REGISTRARS


@dataclass(frozen=True)
class Alert:
    """Something true but wrong that the regulator must see."""

    rule: str
    severity: str
    message: str
    lot: str | None = None


def substance(name: str | None) -> str | None:
    """A pesticide or analyte name as compared: NFKC, trimmed, case-folded (so "吡虫啉 ",
    full-width and upper-case spellings meet the published limit)."""
    if name is None:
        return None
    return unicodedata.normalize("NFKC", name).strip().casefold()


def to_unit(amount: Decimal, unit: str, target: str) -> Decimal:
    """Convert between mass units; refuse other unit changes."""
    if unit == target:
        return amount
    if unit in MASS_IN_KG and target in MASS_IN_KG:
        return amount * MASS_IN_KG[unit] / MASS_IN_KG[target]
    raise Rejected(f"quantity in {unit} cannot be compared with a lot kept in {target}",
                   reason="unit_mismatch")


def parse_event_time(text: str) -> datetime:
    return fields.event_time(text, "event_time")


class SupplyState:
    """Read access to the projections through the caller's session, with the rows this
    transaction has touched kept at hand."""

    def __init__(self, session: Session, registry: Registry) -> None:
        self.session = session
        self.registry = registry
        self.created_lots: set[str] = set()
        self.batch_leaves: dict[int, bytes] = {}
        self.recorded_events: set[tuple[str, int]] = set()
        self.touched: set[str] = set()
        """Lots the statement being applied records an event for."""
        # Rows read or written in this transaction, held strongly (the session's identity
        # map holds clean rows weakly) and including misses: every rule family and the
        # projector ask for the same lot, holding and shipment rows.
        self._rows: dict[tuple[type, Any], Any] = {}
        self._looked_up: set[str] = set()
        self._existing: set[str] = set()

    def _get(self, model: type, key: Any) -> Any:
        slot = (model, key)
        if slot not in self._rows:
            self._rows[slot] = self.session.get(model, key)
        return self._rows[slot]

    def remember(self, row: Any) -> None:
        """Add a row the projector made, so look-ups see it without a flush."""
        self.session.add(row)
        values = inspect(type(row)).primary_key_from_instance(row)
        self._rows[(type(row), values[0] if len(values) == 1 else tuple(values))] = row

    def leaf(self, index: int) -> bytes:
        """An entry's leaf, including entries of the batch not yet written."""
        from suyuan.storage import repo

        if index in self.batch_leaves:
            return self.batch_leaves[index]
        return repo.leaf(self.session, index)

    def prefetch_lots(self, codes: set[str]) -> None:
        """Learn in one query which of ``codes`` exist: notes name lots freely, and one
        look-up per note would dominate a bulk import of notes."""
        from suyuan.storage import repo

        # A code that is no lot code cannot name a lot (and may hold what a database
        # refuses to compare, such as NUL on PostgreSQL): it is looked up nowhere.
        wanted = sorted(code for code in codes - self._looked_up if fields.CODE.match(code))
        if wanted:
            self._existing.update(repo.existing_lots(self.session, wanted))
            self._looked_up.update(wanted)

    def lot_exists(self, code: str) -> bool:
        if not code or not fields.CODE.match(code):
            return False
        if code in self.created_lots or code in self._existing:
            return True
        if code in self._looked_up:
            return False
        return self.lot(code) is not None

    # --- look-ups --------------------------------------------------------------------------

    def actor(self, name: str) -> ActorRecord | None:
        """Actors come from the registry being advanced, so a batch sees its own
        registrations."""
        return self.registry.actors.get(name)

    def lot(self, code: str) -> LotRow | None:
        return self._get(LotRow, code)

    def require_lot(self, code: str) -> LotRow:
        lot = self.lot(code)
        if lot is None:
            raise UnknownReference(f"unknown lot {code!r}")
        return lot

    def product(self, gtin: str) -> ProductRow | None:
        return self._get(ProductRow, gtin)

    def require_product(self, gtin: str) -> ProductRow:
        product = self.product(gtin)
        if product is None:
            raise UnknownReference(f"unknown product GTIN {gtin}: register it first")
        return product

    def location(self, ident: str) -> LocationRow | None:
        return self._get(LocationRow, ident)

    def require_location(self, ident: str) -> LocationRow:
        location = self.location(ident)
        if location is None:
            raise UnknownReference(f"unknown location {ident!r}: register it first")
        return location

    def holding(self, lot: str, actor: str) -> Decimal:
        row = self._get(HoldingRow, (lot, actor))
        return Decimal(row.quantity) if row is not None else Decimal(0)

    def shipment(self, ident: str) -> ShipmentRow | None:
        return self._get(ShipmentRow, ident)

    def shipment_lots(self, ident: str) -> list[ShipmentLotRow]:
        return list(self.session.scalars(
            select(ShipmentLotRow).where(ShipmentLotRow.shipment == ident)
        ))

    def serial(self, gtin: str, serial: str) -> SerialRow | None:
        return self._get(SerialRow, (gtin, serial))

    def applications(self, lot: str, location: str | None) -> list[ApplicationRow]:
        query = select(ApplicationRow).where(ApplicationRow.input_type == "pesticide")
        if location is not None:
            query = query.where((ApplicationRow.lot == lot) | (ApplicationRow.location == location))
        else:
            query = query.where(ApplicationRow.lot == lot)
        return list(self.session.scalars(query))

    def limit(self, ingredient: str, category: str, on: date) -> LimitRow | None:
        """The limit in force on ``on`` (the latest edition that started by then)."""
        rows = self.session.scalars(
            select(LimitRow).where(
                LimitRow.active_ingredient == substance(ingredient),
                LimitRow.food_category == category
            )
        )
        best = None
        for row in rows:
            if row.effective_from <= on.isoformat() and (
                row.effective_to is None or on.isoformat() < row.effective_to
            ) and (best is None or (row.effective_from, row.entry)
                   > (best.effective_from, best.entry)):
                best = row
        return best

    def cold_chain(self, commodity: str) -> ColdChainLimitRow | None:
        return self.session.get(ColdChainLimitRow, commodity)

    def yield_limit(self, commodity: str, process: str) -> YieldLimitRow | None:
        return self.session.get(YieldLimitRow, (commodity, process))

    def downstream(self, lot: str) -> list[str]:
        """``lot`` and every lot made from it, breadth first (cycles are cut)."""
        from suyuan.lineage import descendants

        return descendants(self.session, lot)

    # --- common checks ---------------------------------------------------------------------

    def require_holding(self, lot: LotRow, actor: str, amount: Decimal, unit: str,
                        what: str) -> Decimal:
        """The amount in the lot's unit, or a custody / mass-balance rejection."""
        held = self.holding(lot.code, actor)
        wanted = to_unit(amount, unit, lot.unit)
        if held <= 0:
            raise CustodyViolation(f"{actor} does not hold lot {lot.code}: cannot {what} it")
        if wanted > held:
            raise QuantityExceeded(
                f"{actor} holds {held} {lot.unit} of lot {lot.code}; cannot {what} {wanted}"
            )
        return wanted

    def acquired(self, lot: LotRow, actor: str) -> datetime | None:
        """When ``actor`` first held ``lot``: its creation if the actor made it, else the
        earliest receipt of a shipment of it to the actor."""
        times = [parse_event_time(lot.created_time)] if lot.owner == actor else []
        times += [parse_event_time(text) for text in self.session.scalars(
            select(ShipmentRow.received_time).join(
                ShipmentLotRow, ShipmentLotRow.shipment == ShipmentRow.id
            ).where(ShipmentLotRow.lot == lot.code, ShipmentRow.receiver == actor,
                    ShipmentRow.received_time.is_not(None)))]
        return min(times) if times else None

    def require_after(self, lot: LotRow, when: datetime) -> None:
        created = parse_event_time(lot.created_time)
        if when < created:
            raise ChronologyViolation(
                f"event at {when.isoformat()} is before lot {lot.code} existed "
                f"({lot.created_time})"
            )


# --- check and apply ---------------------------------------------------------------------------


def check(state: SupplyState, statement: Statement, index: int, role: str) -> list[Alert]:
    """Rules for one statement: raise :class:`Rejected` or return the alerts it raises."""
    spec = KINDS.get(statement.kind)
    if spec is None:
        return []  # a note may name a lot that does not exist yet: nothing to check
    body = spec.validate(statement.body)
    return rules.check(state, statement, body, index, role)


def apply(state: SupplyState, statement: Statement, index: int, alerts: list[Alert]) -> None:
    """Advance the projections past an accepted statement."""
    spec = KINDS.get(statement.kind)
    state.touched = set()
    if spec is not None:
        rules.apply(state, statement, spec.validate(statement.body), index)
    elif statement.kind == "note" and state.lot_exists(statement.body.get("lot", "")):
        record_event(state, statement.body["lot"], index, statement, None)
    for alert in alerts:
        state.session.add(AlertRow(entry=index, lot=alert.lot, rule=alert.rule,
                                   severity=alert.severity, message=alert.message, status="open"))
        if alert.lot is not None:
            state.touched.add(alert.lot)
    _mark_changed(state, index)


def _mark_changed(state: SupplyState, index: int) -> None:
    """Stamp ``changed_at`` on every lot whose history this statement changed: the lots it
    recorded an event or alert for and everything made from them, whose pages show their
    ancestors' events. A lot made by this very statement has nothing made from it yet."""
    for code in sorted(state.touched):
        lot = state.lot(code)
        if lot is None:
            continue
        if lot.created_at == index:
            lot.changed_at = index
            continue
        for affected in state.downstream(code):
            row = state.lot(affected)
            if row is not None and (row.changed_at or -1) < index:
                row.changed_at = index


def record_event(state: SupplyState, lot: str, index: int, statement: Statement,
                 event_time: str | None) -> None:
    state.touched.add(lot)
    if (lot, index) not in state.recorded_events:
        state.recorded_events.add((lot, index))
        state.session.add(LotEventRow(lot=lot, entry=index, kind=statement.kind,
                                      actor=statement.actor, event_time=event_time))


def clear_projections(session: Session) -> None:
    """Empty every derived table (before a rebuild)."""
    for name in PROJECTION_TABLES:
        session.execute(delete(metadata.tables[name]))


@dataclass(frozen=True)
class RebuildReport:
    entries: int
    alerts: int
    replay_rejections: int


def rebuild(session: Session, progress: Any = None) -> RebuildReport:
    """Empty the projections and replay every entry through the same check and apply as
    the append path. An entry the rules would now refuse is kept (it is in the log) and
    raises a ``replay_rejected`` alert."""
    from suyuan.storage import repo

    clear_projections(session)
    session.flush()
    registry = Registry()
    state = SupplyState(session, registry)
    count = alerts_total = rejected = 0
    for index, leaf, *_ in repo.iter_entries(session):
        statement = Statement.from_json(Entry.from_leaf(leaf).statement_json())
        role = registry.actors[statement.actor].role if statement.actor in registry.actors else ""
        try:
            alerts = check(state, statement, index, role)
        except Rejected as exc:
            rejected += 1
            alerts = [Alert("replay_rejected", "high", f"entry {index} would now be refused: "
                            f"{exc}", None)]
        registry.apply(statement, index)
        apply(state, statement, index, alerts)
        count += 1
        alerts_total += len(alerts)
        if progress is not None and count % 1000 == 0:
            progress(count)
    repo.save_registry_changes(session, Registry(), registry)
    session.flush()
    return RebuildReport(count, alerts_total, rejected)


from suyuan import rules  # noqa: E402  (the rules build on this module's state and alerts)
