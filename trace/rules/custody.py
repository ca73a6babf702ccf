"""Only the holder ships, transforms, certifies or sells a lot, and never more than it holds;
a receipt must match a shipment to that receiver."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from suyuan.errors import CustodyViolation, NotPermitted, QuantityExceeded, Rejected
from suyuan.model import Entry, Statement
from suyuan.supply import REGULATORS, Alert, SupplyState, to_unit


def check(state: SupplyState, st: Statement, body: dict[str, Any], index: int, role: str
          ) -> list[Alert]:
    kind, actor = st.kind, st.actor
    if kind in ("packing", "transformation"):
        _require_inputs(state, actor, body["inputs"], "transform" if kind != "packing" else "pack")
    elif kind == "shipping":
        _require_inputs(state, actor, body["lots"], "ship")
        if body["to"] == actor:
            raise Rejected("a shipment to yourself: record storing instead", reason="malformed")
    elif kind == "sale":
        lot = state.require_lot(body["lot"])
        amount, unit = body["quantity"]
        state.require_holding(lot, actor, amount, unit, "sell")
    elif kind in ("cooling", "storing", "certificate"):
        lot = state.require_lot(body["lot"])
        if state.holding(lot.code, actor) <= 0:
            raise CustodyViolation(f"{actor} does not hold lot {lot.code}")
        if kind == "certificate":
            amount, unit = body["quantity"]
            state.require_holding(lot, actor, amount, unit, "certify")
    elif kind == "test":
        lot = state.require_lot(body["lot"])
        if role not in ("lab", "regulator") and lot.owner != actor and state.holding(
                lot.code, actor) <= 0:
            raise NotPermitted(f"only a lab, a regulator or the lot's owner or holder can "
                               f"record a test of lot {lot.code}")
    elif kind == "input_application" and "lot" in body:
        lot = state.require_lot(body["lot"])
        if lot.owner != actor:
            raise CustodyViolation(f"lot {lot.code} is not {actor}'s")
    elif kind == "receiving":
        _check_receipt(state, actor, body)
    elif kind == "transport":
        shipment = state.shipment(body["shipment"])
        if shipment is not None and shipment.carrier not in (None, actor) and role != "cold_store":
            raise CustodyViolation(f"shipment {shipment.id} is carried by {shipment.carrier}")
    elif kind == "correction":
        original = Entry.from_leaf(state.leaf(body["corrects"]))
        if original.statement_json()["actor"] != actor and role not in REGULATORS:
            raise NotPermitted("only the actor who made an entry (or a regulator) corrects it")
    return []


def _require_inputs(state: SupplyState, actor: str, items: list[dict[str, Any]], what: str
                    ) -> None:
    totals: dict[str, Decimal] = {}
    for item in items:
        lot = state.require_lot(item["lot"])
        amount, unit = item["quantity"]
        totals[lot.code] = totals.get(lot.code, Decimal(0)) + to_unit(amount, unit, lot.unit)
    for code, wanted in totals.items():
        lot = state.require_lot(code)
        state.require_holding(lot, actor, wanted, lot.unit, what)


def _check_receipt(state: SupplyState, actor: str, body: dict[str, Any]) -> None:
    shipment = state.shipment(body["shipment"])
    assert shipment is not None  # references ran first
    if shipment.receiver != actor:
        raise CustodyViolation(
            f"shipment {shipment.id} was sent to {shipment.receiver}, not to {actor}"
        )
    shipped = {row.lot: row for row in state.shipment_lots(shipment.id)}
    for item in body["lots"]:
        row = shipped.get(item["lot"])
        if row is None:
            raise CustodyViolation(f"lot {item['lot']} is not in shipment {shipment.id}")
        lot = state.require_lot(item["lot"])
        amount, unit = item["quantity"]
        # A shipment may arrive in parts (several receipts), never more than was sent.
        before = Decimal(row.received_quantity or 0)
        if before >= Decimal(row.quantity):
            raise Rejected(f"lot {lot.code} of shipment {shipment.id} was already received in "
                           f"full", reason="already_received")
        if before + to_unit(amount, unit, lot.unit) > Decimal(row.quantity):
            raise QuantityExceeded(f"receiving {amount} {unit} of lot {lot.code}, but shipment "
                                   f"{shipment.id} carried {row.quantity} {lot.unit}"
                                   + (f" and {before} were received before" if before else ""))
