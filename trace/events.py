"""Supply-chain statement kinds: what each hop's body holds and which roles may state it.

Bodies are plain JSON with decimal strings for quantities and readings; each kind maps onto a
GS1 EPCIS 2.0 / CBV 2.0 event for export (``suyuan.interop.epcis``). Farm steps CBV lacks
(planting, input application, harvesting, cooling) use project bizStep URIs, as GDST does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from suyuan import fields as f
from suyuan.errors import MalformedInput
from suyuan.interop.gs1_keys import normalize_gtin

ANY_ROLE: frozenset[str] = frozenset()
GROWERS = frozenset({"farm", "cooperative"})
HANDLERS = frozenset({"farm", "cooperative", "packer", "processor", "wholesaler", "market",
                      "retailer", "cold_store"})
OWNERS = frozenset({"farm", "cooperative", "packer", "processor", "wholesaler", "market"})


def gtin(value: Any, path: str) -> str:
    """A GTIN as stored: 14 digits with a valid check digit."""
    if not isinstance(value, str):
        raise MalformedInput(f"{path} must be a GTIN string")
    try:
        canonical = normalize_gtin(value)
    except MalformedInput as exc:
        raise MalformedInput(f"{path}: {exc}") from exc
    if canonical != value:
        raise MalformedInput(f"{path} must be written as 14 digits: {canonical}")
    return value


def _reading(value: Any, path: str) -> dict[str, Any]:
    return f.obj({"time": (f.event_time, True), "celsius": (f.decimal(), True)})(value, path)


def _lot_quantity(value: Any, path: str) -> dict[str, Any]:
    return f.obj({"lot": (f.code, True), "quantity": (f.quantity, True)})(value, path)


def _output(value: Any, path: str) -> dict[str, Any]:
    return f.obj({"lot": (f.code, True), "product": (gtin, True),
                  "quantity": (f.quantity, True)})(value, path)


def _result(value: Any, path: str) -> dict[str, Any]:
    return f.obj({
        "analyte": (f.text(100), True),
        "value": (f.decimal(minimum=Decimal(0)), True),
        "unit": (f.enum("mg/kg", "µg/kg", "CFU/g", "%"), True),
        "limit": (f.decimal(minimum=Decimal(0)), False),
        "method": (f.text(200), False),
        "passed": (f.boolean, False),
    })(value, path)


def _limit_row(value: Any, path: str) -> dict[str, Any]:
    return f.obj({
        "active_ingredient": (f.text(100), True), "food_category": (f.code, True),
        "phi_days": (f.integer(minimum=0, maximum=3650), False),
        "mrl": (f.decimal(minimum=Decimal(0)), False),
    })(value, path)


def _cold_chain_row(value: Any, path: str) -> dict[str, Any]:
    return f.obj({
        "commodity": (f.code, True), "max_celsius": (f.decimal(), True),
        "max_gap_minutes": (f.integer(minimum=1, maximum=10080), True),
    })(value, path)


def _yield_row(value: Any, path: str) -> dict[str, Any]:
    row = f.obj({
        "commodity": (f.code, True),
        "process": (f.enum("split", "merge", "process", "packing"), True),
        "min": (f.decimal(minimum=Decimal(0)), True), "max": (f.decimal(minimum=Decimal(0)), True),
    })(value, path)
    if row["min"] > row["max"]:
        raise MalformedInput(f"{path}: min {row['min']} is above max {row['max']}")
    return row


MASS_UNITS = ("KGM", "GRM", "TNE")


def _net_content(value: Any, path: str) -> tuple[Decimal, str]:
    amount, unit = f.quantity(value, path)
    if unit not in MASS_UNITS:
        raise MalformedInput(f"{path} is the net mass of one unit: its unit must be one of "
                             f"{', '.join(MASS_UNITS)}")
    return amount, unit


def _date(value: Any, path: str) -> str:
    if not isinstance(value, str) or len(value) != 10:
        raise MalformedInput(f"{path} must be a date like 2026-02-01")
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise MalformedInput(f"{path} is not a real date") from exc
    return value


def _coordinates(value: Any, path: str) -> dict[str, Any]:
    return f.obj({"lat": (f.decimal(), True), "lon": (f.decimal(), True)})(value, path)


def _documents(value: Any, path: str) -> dict[str, Any]:
    return f.obj({"bol": (f.code, False), "desadv": (f.code, False),
                  "po": (f.code, False), "inv": (f.code, False)})(value, path)


def _admin_code(value: Any, path: str) -> str:
    if not isinstance(value, str) or len(value) != 6 or not value.isdigit():
        raise MalformedInput(f"{path} must be a 6-digit administrative division code (e.g. 210213)")
    return value


LOCATION_KINDS = ("field", "orchard", "greenhouse", "pond", "raft", "sea_area", "hatchery",
                  "packhouse", "processing_plant", "warehouse", "cold_store", "port", "market",
                  "shop", "ecommerce_warehouse", "lab", "office")


@dataclass(frozen=True)
class Kind:
    """A statement kind: the body's fields, who may state it, and its EPCIS shape."""

    name: str
    spec: f.Spec
    roles: frozenset[str]
    title_zh: str
    title_en: str
    epcis_type: str | None = None
    biz_step: str | None = None

    def validate(self, body: Any) -> dict[str, Any]:
        return f.obj(self.spec)(body, "body")


E = "event_time"
KINDS: dict[str, Kind] = {k.name: k for k in [
    Kind("location_registered", {
        "id": (f.code, True), "name": (f.text(200), True), "kind": (f.enum(*LOCATION_KINDS), True),
        "owner": (f.code, False), "gln": (f.code, False), "address": (f.text(300), False),
        "admin_code": (_admin_code, False), "coordinates": (_coordinates, False),
        "fao_area": (f.code, False),
    }, ANY_ROLE, "登记地点", "location registered"),
    Kind("product_registered", {
        "gtin": (gtin, True), "name_zh": (f.text(100), True), "name_en": (f.text(100), False),
        "commodity": (f.code, True), "variety": (f.text(100), False), "unit": (f.unit, True),
        "food_category": (f.code, False), "ftl": (f.boolean, False),
        "net_content": (_net_content, False),
    }, frozenset(OWNERS), "登记产品", "product registered"),
    Kind("planting", {
        "lot": (f.code, True), "product": (gtin, True), "location": (f.code, True),
        E: (f.event_time, True), "area_mu": (f.decimal(positive=True), False),
        "variety": (f.text(100), False),
    }, GROWERS, "种植/投苗", "planting", "ObjectEvent", "urn:suyuan:bizStep:planting"),
    Kind("input_application", {
        "lot": (f.code, False), "location": (f.code, True), E: (f.event_time, True),
        "input_type": (f.enum("pesticide", "fertiliser", "veterinary_drug", "feed"), True),
        "product_name": (f.text(100), True), "registration_no": (f.code, False),
        "active_ingredient": (f.text(100), False), "dose": (f.quantity, False),
        "operator": (f.text(100), False),
    }, GROWERS, "投入品使用", "input application", "ObjectEvent",
        "urn:suyuan:bizStep:inputApplication"),
    Kind("harvest", {
        "lot": (f.code, True), "product": (gtin, True), "quantity": (f.quantity, True),
        "location": (f.code, True), E: (f.event_time, True),
    }, GROWERS, "采收/捕捞", "harvest", "ObjectEvent", "urn:suyuan:bizStep:farmHarvest"),
    Kind("cooling", {
        "lot": (f.code, True), "location": (f.code, True), E: (f.event_time, True),
        "readings": (f.list_of(_reading, max_items=500), True),
    }, HANDLERS | {"carrier"}, "预冷", "cooling", "ObjectEvent", "urn:suyuan:bizStep:cooling"),
    Kind("test", {
        "lot": (f.code, True), E: (f.event_time, True),
        "results": (f.list_of(_result, max_items=200), True),
        "sample_id": (f.code, False), "report_sha256": (f.sha256_hex, False),
        "location": (f.code, False),
    }, frozenset({"lab", "regulator"}) | OWNERS, "检测", "test", "ObjectEvent",
        "https://ref.gs1.org/cbv/BizStep-inspecting"),
    Kind("certificate", {
        "lot": (f.code, True), E: (f.event_time, True), "certificate_no": (f.code, True),
        "basis": (f.enum("quality_control", "self_test", "commissioned_test"), True),
        "quantity": (f.quantity, True), "origin": (f.text(200), False),
        "contact": (f.text(100), False),
    }, OWNERS, "承诺达标合格证", "compliance certificate", "ObjectEvent",
        "urn:suyuan:bizStep:certifying"),
    Kind("packing", {
        "inputs": (f.list_of(_lot_quantity, max_items=100, unique="lot"), True),
        "output": (_output, True), "location": (f.code, True), E: (f.event_time, True),
        "serials": (f.list_of(f.code, max_items=1000, unique="."), False),
    }, OWNERS, "包装", "initial packing", "TransformationEvent",
        "https://ref.gs1.org/cbv/BizStep-packing"),
    Kind("storing", {
        "lot": (f.code, True), "location": (f.code, True), E: (f.event_time, True),
        "readings": (f.list_of(_reading, max_items=500), False),
    }, HANDLERS, "入库储存", "storing", "ObjectEvent", "https://ref.gs1.org/cbv/BizStep-storing"),
    Kind("shipping", {
        "shipment": (f.code, True), "lots": (f.list_of(_lot_quantity, max_items=100, unique="lot"), True),
        "to": (f.code, True), "to_location": (f.code, False), "location": (f.code, True),
        E: (f.event_time, True), "carrier": (f.code, False), "documents": (_documents, False),
    }, HANDLERS, "发货", "shipping", "ObjectEvent", "https://ref.gs1.org/cbv/BizStep-shipping"),
    Kind("transport", {
        "shipment": (f.code, True), E: (f.event_time, True),
        "readings": (f.list_of(_reading, max_items=1000), True),
    }, frozenset({"carrier", "cold_store"}), "运输温度", "transport readings", "ObjectEvent",
        "https://ref.gs1.org/cbv/BizStep-transporting"),
    Kind("receiving", {
        "shipment": (f.code, True), "lots": (f.list_of(_lot_quantity, max_items=100, unique="lot"), True),
        "location": (f.code, True), E: (f.event_time, True), "inbound_batch": (f.code, False),
        "first_land_based": (f.boolean, False),
    }, HANDLERS, "收货", "receiving", "ObjectEvent", "https://ref.gs1.org/cbv/BizStep-receiving"),
    Kind("transformation", {
        "inputs": (f.list_of(_lot_quantity, max_items=100, unique="lot"), True),
        "outputs": (f.list_of(_output, max_items=100, unique="lot"), True),
        "process": (f.enum("split", "merge", "process"), True),
        "location": (f.code, True), E: (f.event_time, True),
        "yield_min": (f.decimal(minimum=Decimal(0)), False),
        "yield_max": (f.decimal(minimum=Decimal(0)), False),
    }, OWNERS, "加工/分拆/合并", "transformation", "TransformationEvent",
        "https://ref.gs1.org/cbv/BizStep-commissioning"),
    Kind("sale", {
        "lot": (f.code, True), "quantity": (f.quantity, True), E: (f.event_time, True),
        "serial": (f.code, False), "channel": (f.enum("retail", "ecommerce", "wholesale"), True),
        "location": (f.code, False), "order": (f.code, False),
    }, frozenset({"retailer", "market", "wholesaler", "farm", "cooperative"}), "销售", "sale",
        "ObjectEvent", "https://ref.gs1.org/cbv/BizStep-retail_selling"),
    Kind("recall", {
        "lots": (f.list_of(f.code, max_items=1000, unique="."), True), "reason": (f.text(500), True),
        E: (f.event_time, True), "level": (f.enum("I", "II", "III"), False),
    }, frozenset({"regulator"}), "召回", "recall", "ObjectEvent",
        "https://ref.gs1.org/cbv/BizStep-holding"),
    Kind("correction", {
        "corrects": (f.integer(minimum=0), True), "reason": (f.text(500), True),
        E: (f.event_time, True),
    }, ANY_ROLE, "更正声明", "correction (error declaration)"),
    Kind("limits_published", {
        "standard": (f.text(64), True), "effective_from": (_date, True),
        "effective_to": (_date, False), "source": (f.text(500), True),
        "demo_values": (f.boolean, True),
        "limits": (f.list_of(_limit_row, min_items=0, max_items=300), True),
        "cold_chain": (f.list_of(_cold_chain_row, min_items=0, max_items=100), False),
        "yields": (f.list_of(_yield_row, min_items=0, max_items=200), False),
    }, frozenset({"regulator", "registrar"}), "发布限量标准", "limits published"),
    Kind("epcis_event", {
        "event": (f.any_object, True), "source": (f.text(200), False),
    }, ANY_ROLE, "EPCIS 事件", "EPCIS event"),
]}

