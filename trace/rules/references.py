"""Everything a statement names must exist (or, for what it creates, must not exist yet)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from suyuan.errors import NotPermitted, Rejected, UnknownReference
from suyuan.model import Statement
from suyuan.supply import REGULATORS, Alert, SupplyState, to_unit


def _new_lot(state: SupplyState, code: str) -> None:
    if state.lot(code) is not None:
        raise Rejected(f"lot {code!r} already exists: a new lot needs a new code",
                       reason="already_exists")


def _own_place(state: SupplyState, actor: str, ident: str, role: str) -> None:
    """Origin-defining events happen on the actor's own registered place (or the record
    would put another farm's name on the consumer's page)."""
    place = state.require_location(ident)
    if place.owner != actor and role not in REGULATORS:
        raise NotPermitted(f"location {ident!r} belongs to {place.owner}, not {actor}")


def check(state: SupplyState, st: Statement, body: dict[str, Any], index: int, role: str
          ) -> list[Alert]:
    kind = st.kind
    if kind == "location_registered":
        if state.location(body["id"]) is not None:
            raise Rejected(f"location {body['id']!r} is already registered",
                           reason="already_exists")
        owner = body.get("owner", st.actor)
        if owner != st.actor and role not in REGULATORS:
            raise NotPermitted("only a registrar or regulator registers another actor's place")
        if state.actor(owner) is None:
            raise UnknownReference(f"unknown actor {owner!r}")
    elif kind == "product_registered":
        if state.product(body["gtin"]) is not None:
            raise Rejected(f"product {body['gtin']} is already registered",
                           reason="already_exists")
    elif kind == "planting":
        state.require_product(body["product"])
        _own_place(state, st.actor, body["location"], role)
        _new_lot(state, body["lot"])
    elif kind == "input_application":
        _own_place(state, st.actor, body["location"], role)
        if "lot" in body:
            state.require_lot(body["lot"])
        if body["input_type"] == "pesticide" and "active_ingredient" not in body:
            raise Rejected("a pesticide application needs body.active_ingredient",
                           reason="malformed")
    elif kind == "harvest":
        state.require_product(body["product"])
        _own_place(state, st.actor, body["location"], role)
        lot = state.lot(body["lot"])
        if lot is not None and not (lot.created_kind == "planting" and lot.owner == st.actor
                                    and lot.gtin == body["product"]):
            raise Rejected(f"lot {body['lot']!r} already exists and is not {st.actor}'s "
                           "planting of this product", reason="already_exists")
        if lot is not None and Decimal(lot.quantity) != 0:
            amount, unit = body["quantity"]
            to_unit(amount, unit, lot.unit)
    elif kind in ("cooling", "storing", "test", "certificate"):
        state.require_lot(body["lot"])
        if "location" in body:
            state.require_location(body["location"])
    elif kind == "packing":
        for item in body["inputs"]:
            state.require_lot(item["lot"])
        gtin = body["output"]["product"]
        state.require_product(gtin)
        state.require_location(body["location"])
        _new_lot(state, body["output"]["lot"])
        for serial in body.get("serials", []):
            if state.serial(gtin, serial) is not None:
                raise Rejected(f"serial {serial} of GTIN {gtin} is already in use",
                               reason="already_exists")
    elif kind == "transformation":
        for item in body["inputs"]:
            state.require_lot(item["lot"])
        codes = [out["lot"] for out in body["outputs"]]
        if len(set(codes)) != len(codes):
            raise Rejected("two outputs have the same lot code", reason="malformed")
        for out in body["outputs"]:
            state.require_product(out["product"])
            _new_lot(state, out["lot"])
        state.require_location(body["location"])
    elif kind == "shipping":
        if state.shipment(body["shipment"]) is not None:
            raise Rejected(f"shipment {body['shipment']!r} already exists", reason="already_exists")
        if state.actor(body["to"]) is None:
            raise UnknownReference(f"unknown receiver {body['to']!r}")
        state.require_location(body["location"])
        if "to_location" in body:
            state.require_location(body["to_location"])
        for item in body["lots"]:
            state.require_lot(item["lot"])
    elif kind in ("receiving", "transport"):
        if state.shipment(body["shipment"]) is None:
            raise UnknownReference(f"no shipment {body['shipment']!r} to match")
        if "location" in body:
            state.require_location(body["location"])
    elif kind == "sale":
        state.require_lot(body["lot"])
    elif kind == "recall":
        for code in body["lots"]:
            state.require_lot(code)
    elif kind == "correction":
        if body["corrects"] >= index:
            raise UnknownReference(f"entry {body['corrects']} does not exist yet")
    return []
