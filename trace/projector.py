"""Writes the supply-chain projections for an accepted statement (one function per kind)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from suyuan.model import Statement
from suyuan.storage.schema import (
    ApplicationRow,
    ColdChainLimitRow,
    HoldingRow,
    LimitRow,
    LineageRow,
    LocationRow,
    LotRow,
    ProductRow,
    SerialRow,
    ShipmentLotRow,
    ShipmentRow,
    YieldLimitRow,
)
from suyuan.supply import (
    MASS_IN_KG,
    SupplyState,
    parse_event_time,
    record_event,
    substance,
    to_unit,
)


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)


def _net_kg(net_content: tuple[Decimal, str] | None) -> str | None:
    if net_content is None:
        return None
    amount, unit = net_content
    return _text(amount * MASS_IN_KG[unit])


def _add_holding(state: SupplyState, lot: str, actor: str, amount: Decimal) -> None:
    row = state._get(HoldingRow, (lot, actor))
    if row is None:
        state.remember(HoldingRow(lot=lot, actor=actor, quantity=_text(amount)))
    else:
        row.quantity = _text(Decimal(row.quantity) + amount)


def _new_lot(state: SupplyState, code: str, gtin: str, owner: str, amount: Decimal, unit: str,
             location: str | None, index: int, kind: str, when: str) -> None:
    state.created_lots.add(code)
    state.remember(LotRow(code=code, gtin=gtin, owner=owner, unit=unit,
                             quantity=_text(amount), location=location, created_at=index,
                             created_kind=kind, created_time=when, status="active",
                             changed_at=index))
    _add_holding(state, code, owner, amount)


def _take(state: SupplyState, actor: str, items: list[dict[str, Any]]) -> list[tuple[str, Decimal]]:
    taken = []
    for item in items:
        lot = state.require_lot(item["lot"])
        amount, unit = item["quantity"]
        amount = to_unit(amount, unit, lot.unit)
        _add_holding(state, lot.code, actor, -amount)
        taken.append((lot.code, amount))
    return taken


def _inherit_recall(state: SupplyState, parents: list[str], children: list[str], index: int
                    ) -> None:
    """A lot made from a recalled lot is recalled too."""
    if any(state.require_lot(code).status == "recalled" for code in parents):
        for code in children:
            lot = state.require_lot(code)
            lot.status, lot.recalled_at = "recalled", index


def apply(state: SupplyState, st: Statement, body: dict[str, Any], index: int) -> None:
    kind, actor, raw = st.kind, st.actor, st.body
    when = raw.get("event_time")
    session = state.session
    if kind == "location_registered":
        coords = body.get("coordinates", {})
        state.remember(LocationRow(
            id=body["id"], name=body["name"], kind=body["kind"],
            owner=body.get("owner", actor), gln=body.get("gln"),
            admin_code=body.get("admin_code"), address=body.get("address"),
            lat=raw.get("coordinates", {}).get("lat") if coords else None,
            lon=raw.get("coordinates", {}).get("lon") if coords else None,
            fao_area=body.get("fao_area"), registered_at=index))
    elif kind == "product_registered":
        state.remember(ProductRow(
            gtin=body["gtin"], name_zh=body["name_zh"], name_en=body.get("name_en"),
            commodity=body["commodity"], variety=body.get("variety"), unit=body["unit"],
            food_category=body.get("food_category"), ftl=body.get("ftl", False), owner=actor,
            registered_at=index, net_kg=_net_kg(body.get("net_content"))))
    elif kind == "limits_published":
        for row in body["limits"]:
            session.add(LimitRow(
                entry=index, standard=body["standard"], effective_from=body["effective_from"],
                effective_to=body.get("effective_to"),
                active_ingredient=substance(row["active_ingredient"]),
                food_category=row["food_category"],
                phi_days=row.get("phi_days"),
                mrl=None if row.get("mrl") is None else _text(row["mrl"])))
        for row in body.get("cold_chain", []):
            existing = session.get(ColdChainLimitRow, row["commodity"])
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(ColdChainLimitRow(
                commodity=row["commodity"], max_celsius=_text(row["max_celsius"]),
                max_gap_minutes=row["max_gap_minutes"], entry=index))
        for row in body.get("yields", []):
            existing = session.get(YieldLimitRow, (row["commodity"], row["process"]))
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(YieldLimitRow(
                commodity=row["commodity"], process=row["process"], min_ratio=_text(row["min"]),
                max_ratio=_text(row["max"]), entry=index))
    elif kind == "planting":
        unit = state.require_product(body["product"]).unit
        _new_lot(state, body["lot"], body["product"], actor, Decimal(0), unit,
                 body["location"], index, kind, when)
        record_event(state, body["lot"], index, st, when)
    elif kind == "input_application":
        session.add(ApplicationRow(
            entry=index, lot=body.get("lot"), location=body["location"],
            input_type=body["input_type"],
            active_ingredient=substance(body.get("active_ingredient")),
            product_name=body["product_name"], event_time=when))
        if "lot" in body:
            record_event(state, body["lot"], index, st, when)
    elif kind == "harvest":
        amount, unit = body["quantity"]
        lot = state.lot(body["lot"])
        if lot is None:
            _new_lot(state, body["lot"], body["product"], actor, amount, unit, body["location"],
                     index, kind, when)
        else:
            if Decimal(lot.quantity) == 0:
                lot.unit = unit
            amount = to_unit(amount, unit, lot.unit)
            lot.quantity = _text(Decimal(lot.quantity) + amount)
            _add_holding(state, lot.code, actor, amount)
        record_event(state, body["lot"], index, st, when)
    elif kind in ("cooling", "storing", "test", "certificate"):
        record_event(state, body["lot"], index, st, when)
    elif kind == "packing":
        taken = _take(state, actor, body["inputs"])
        out = body["output"]
        amount, unit = out["quantity"]
        _new_lot(state, out["lot"], out["product"], actor, amount, unit, body["location"],
                 index, kind, when)
        _inherit_recall(state, [code for code, _ in taken], [out["lot"]], index)
        for code, used in taken:
            session.add(LineageRow(parent=code, child=out["lot"], entry=index, quantity=_text(used)))
            record_event(state, code, index, st, when)
        record_event(state, out["lot"], index, st, when)
        for serial in body.get("serials", []):
            state.remember(SerialRow(gtin=out["product"], serial=serial, lot=out["lot"],
                                     packed_at=index, sold_at=None, sold_count=0))
    elif kind == "transformation":
        taken = _take(state, actor, body["inputs"])
        for out in body["outputs"]:
            amount, unit = out["quantity"]
            _new_lot(state, out["lot"], out["product"], actor, amount, unit, body["location"],
                     index, kind, when)
            for code, used in taken:
                session.add(LineageRow(parent=code, child=out["lot"], entry=index,
                                       quantity=_text(used)))
            record_event(state, out["lot"], index, st, when)
        for code, _ in taken:
            record_event(state, code, index, st, when)
        _inherit_recall(state, [code for code, _ in taken], [o["lot"] for o in body["outputs"]],
                        index)
    elif kind == "shipping":
        state.remember(ShipmentRow(
            id=body["shipment"], sender=actor, receiver=body["to"], from_location=body["location"],
            to_location=body.get("to_location"), carrier=body.get("carrier"), shipped_at=index,
            shipped_time=when, received_at=None, received_time=None))
        for code, amount in _take(state, actor, body["lots"]):
            session.add(ShipmentLotRow(shipment=body["shipment"], lot=code, quantity=_text(amount),
                                       received_quantity=None))
            record_event(state, code, index, st, when)
    elif kind == "transport":
        shipment = state.shipment(body["shipment"])
        assert shipment is not None
        latest = max(raw["readings"], key=lambda r: parse_event_time(r["time"]))["time"]
        if (shipment.last_reading_time is None
                or parse_event_time(latest) > parse_event_time(shipment.last_reading_time)):
            shipment.last_reading_time = latest
        for row in state.shipment_lots(body["shipment"]):
            record_event(state, row.lot, index, st, when)
    elif kind == "receiving":
        shipment = state.shipment(body["shipment"])
        assert shipment is not None
        if shipment.received_at is None:  # the first receipt; later ones complete it
            shipment.received_at = index
            shipment.received_time = when
        rows = {row.lot: row for row in state.shipment_lots(shipment.id)}
        for item in body["lots"]:
            lot = state.require_lot(item["lot"])
            amount, unit = item["quantity"]
            amount = to_unit(amount, unit, lot.unit)
            row = rows[lot.code]
            row.received_quantity = _text(Decimal(row.received_quantity or 0) + amount)
            _add_holding(state, lot.code, actor, amount)
            record_event(state, lot.code, index, st, when)
    elif kind == "sale":
        lot = state.require_lot(body["lot"])
        amount, unit = body["quantity"]
        _add_holding(state, lot.code, actor, -to_unit(amount, unit, lot.unit))
        if "serial" in body:
            serial = state.serial(lot.gtin, body["serial"])
            if serial is not None:
                serial.sold_count += 1
                if serial.sold_at is None:
                    serial.sold_at = index
        record_event(state, lot.code, index, st, when)
    elif kind == "recall":
        for code in body["lots"]:
            for affected in state.downstream(code):
                lot = state.require_lot(affected)
                if lot.status != "recalled":
                    lot.status = "recalled"
                    lot.recalled_at = index
                record_event(state, affected, index, st, when)
