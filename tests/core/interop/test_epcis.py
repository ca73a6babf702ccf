"""Tests for suyuan.interop.epcis: EPCIS 2.0 export of ledger entries, validation against the
official JSON schema, and import of the 47 official examples as ``epcis_event`` statements.

Ledger tests run on a real SQLite file and on a real PostgreSQL database (``database``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from suyuan import canonical, ledger
from suyuan.errors import ConfigError, MalformedInput, NotFound
from suyuan.interop import epcis
from suyuan.interop.event_hash import document_events, event_hash_id
from suyuan.interop.gs1 import gs1_check_digit
from suyuan.model import Statement
from suyuan.storage.db import Database
from tests.core.test_supply import Chain as SupplyChain
from tests.helpers import Actor, LedgerWorld, make_signed, make_world, register

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpora"
GS1_EPCIS = CORPUS / "gs1-epcis"
SCHEMA = GS1_EPCIS / "EPCIS-JSON-Schema.json"
EXAMPLES = sorted((GS1_EPCIS / "JSON").rglob("*.jsonld")) if GS1_EPCIS.is_dir() else []

needs_corpus = pytest.mark.skipif(
    not SCHEMA.is_file(), reason=f"gs1-epcis corpus not found at {GS1_EPCIS}"
)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def example(name: str) -> dict[str, Any]:
    (path,) = [p for p in EXAMPLES if p.name == name]
    return load(path)


def strict(value: Any) -> str:
    """JSON text, so that 26 and 26.0 (equal in Python) compare as different."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def business(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in epcis.LEDGER_FIELDS}


# --------------------------------------------------------------------------------------------
# A small chain, built as tests/core/test_supply.py builds one


def gtin(item: str) -> str:
    body = "0200000" + item.rjust(6, "0")  # restricted-circulation prefix: never a real GTIN
    return body + gs1_check_digit(body)


def gln(item: str) -> str:
    body = "020000" + item.rjust(6, "0")
    return body + gs1_check_digit(body)


CHERRY, CHERRY_BOX, DRIED = gtin("1"), gtin("2"), gtin("3")
ORCHARD_GLN = gln("77")


def q(value: str, unit: str = "KGM") -> dict[str, str]:
    return {"value": value, "unit": unit}


def t(day: int, hour: int = 8, minute: int = 0) -> str:
    return f"2026-06-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


class Chain(SupplyChain):
    """The supply tests' chain, answering with the entry index alone."""

    def ok(self, actor: Actor, kind: str, /, **body: Any) -> int:  # type: ignore[override]
        index, _alerts = super().ok(actor, kind, **body)
        return index


@pytest.fixture
def chain(database: Database) -> Chain:
    world = make_world(database, actors={})
    c = Chain(world, register(world, "jinzhou-coop", "cooperative"),
              register(world, "dl-packer", "packer"), register(world, "sf-cold", "carrier"),
              register(world, "fresh-shop", "retailer"), register(world, "dl-lab", "lab"),
              register(world, "dalian-amr", "regulator"))
    c.ok(c.farm, "location_registered", id="jz-orchard-1", name="金州樱桃园 1 号",
         kind="orchard", gln=ORCHARD_GLN, admin_code="210213")
    c.ok(c.packer, "location_registered", id="dl-packhouse", name="dl-packhouse",
         kind="packhouse")
    c.ok(c.shop, "location_registered", id="shop-dc", name="shop-dc",
         kind="ecommerce_warehouse")
    c.ok(c.farm, "product_registered", gtin=CHERRY, name_zh="美早大樱桃", commodity="cherry",
         unit="KGM", food_category="cherry")
    c.ok(c.packer, "product_registered", gtin=CHERRY_BOX, name_zh="大樱桃礼盒 2kg",
         commodity="cherry", unit="XBX", food_category="cherry")
    c.ok(c.packer, "product_registered", gtin=DRIED, name_zh="樱桃干", commodity="cherry",
         unit="KGM", food_category="cherry")
    return c


@dataclass
class Built:
    chain: Chain
    entries: dict[str, int]


@pytest.fixture
def built(chain: Chain) -> Built:
    """Every hop with an EPCIS form, in time order; ``entries`` names their indexes."""
    c = chain
    e: dict[str, int] = {}
    e["planting"] = c.ok(c.farm, "planting", lot="JZ-P2", product=CHERRY,
                         location="jz-orchard-1", event_time=t(1, 5), area_mu="2.5")
    e["application"] = c.ok(c.farm, "input_application", location="jz-orchard-1",
                            event_time=t(1, 6), input_type="fertiliser",
                            product_name="有机肥", dose=q("20"))
    e["harvest"] = c.ok(c.farm, "harvest", lot="JZ-0601", product=CHERRY,
                        quantity=q("500.25"), location="jz-orchard-1", event_time=t(1))
    e["cooling"] = c.ok(c.farm, "cooling", lot="JZ-0601", location="jz-orchard-1",
                        event_time=t(1, 10), readings=[{"time": t(1, 9), "celsius": "3.5"},
                                                       {"time": t(1, 9, 30), "celsius": "-0.5"}])
    e["test"] = c.ok(c.lab, "test", lot="JZ-0601", event_time=t(1, 11), sample_id="SMP-7",
                     results=[{"analyte": "吡虫啉", "value": "0.02", "unit": "mg/kg",
                               "limit": "0.3", "passed": True},
                              {"analyte": "大肠菌群", "value": "10", "unit": "CFU/g"}])
    e["certificate"] = c.ok(c.farm, "certificate", lot="JZ-0601", event_time=t(1, 11, 30),
                            certificate_no="HG-0001", basis="self_test", quantity=q("500.25"))
    e["ship1"] = c.ok(c.farm, "shipping", shipment="SH-1", to="dl-packer",
                      lots=[{"lot": "JZ-0601", "quantity": q("120.125")}],
                      location="jz-orchard-1", to_location="dl-packhouse", event_time=t(1, 12),
                      documents={"bol": "BOL-1", "desadv": "DA-1"})
    e["transport"] = c.ok(c.carrier, "transport", shipment="SH-1", event_time=t(1, 14),
                          readings=[{"time": t(1, 13), "celsius": "1.5"}])
    e["receive1"] = c.ok(c.packer, "receiving", shipment="SH-1",
                         lots=[{"lot": "JZ-0601", "quantity": q("120.125")}],
                         location="dl-packhouse", event_time=t(1, 16))
    e["storing"] = c.ok(c.packer, "storing", lot="JZ-0601", location="dl-packhouse",
                        event_time=t(1, 17))
    e["packing"] = c.ok(c.packer, "packing", inputs=[{"lot": "JZ-0601", "quantity": q("100")}],
                        output={"lot": "BOX-0601", "product": CHERRY_BOX,
                                "quantity": q("50", "XBX")},
                        location="dl-packhouse", event_time=t(2),
                        serials=[f"S{i:03d}" for i in range(3)])
    e["transformation"] = c.ok(c.packer, "transformation", process="process",
                               inputs=[{"lot": "JZ-0601", "quantity": q("20.125")}],
                               outputs=[{"lot": "DRY-1", "product": DRIED,
                                         "quantity": q("2.5")}],
                               location="dl-packhouse", event_time=t(2, 9))
    e["ship2"] = c.ok(c.packer, "shipping", shipment="SH-2", to="fresh-shop",
                      lots=[{"lot": "BOX-0601", "quantity": q("10", "XBX")}],
                      location="dl-packhouse", event_time=t(2, 12))
    e["receive2"] = c.ok(c.shop, "receiving", shipment="SH-2",
                         lots=[{"lot": "BOX-0601", "quantity": q("10", "XBX")}],
                         location="shop-dc", event_time=t(3))
    e["sale"] = c.ok(c.shop, "sale", lot="BOX-0601", quantity=q("1", "XBX"), serial="S001",
                     channel="ecommerce", order="ORD-42", event_time=t(3, 10))
    e["recall"] = c.ok(c.regulator, "recall", lots=["JZ-0601"], reason="residue re-test",
                       level="II", event_time=t(4))
    e["correction"] = c.ok(c.farm, "correction", corrects=e["cooling"],
                           reason="probe was miscalibrated", event_time=t(4, 9))
    e["harvest2"] = c.ok(c.farm, "harvest", lot="JZ-P2", product=CHERRY, quantity=q("80"),
                         location="jz-orchard-1", event_time=t(4, 10))
    return Built(c, e)


def by_entry(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {event["suyuan:entry"]: event for event in doc["epcisBody"]["eventList"]}


def dl(gtin14: str, lot: str) -> str:
    return f"https://id.gs1.org/01/{gtin14}/10/{lot}"


NOW = datetime(2026, 6, 5, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Export


@needs_corpus
def test_a_lot_history_exports_as_a_valid_document_of_the_right_events(built: Built) -> None:
    e = built.entries
    with built.chain.world.db.reader() as session, session.begin():
        doc = epcis.export_lot_history(session, "JZ-0601", now=NOW)
    epcis.validate_document(doc)
    assert doc["type"] == "EPCISDocument" and doc["schemaVersion"] == "2.0"
    assert doc["creationDate"] == "2026-06-05T00:00:00.000Z"
    assert doc["suyuan:ignoreFields"] == ["suyuan:entry", "suyuan:actor", "suyuan:kind"]
    events = doc["epcisBody"]["eventList"]
    expected = ["harvest", "cooling", "test", "certificate", "ship1", "transport", "receive1",
                "storing", "packing", "transformation", "recall", "correction"]
    assert [ev["suyuan:entry"] for ev in events] == [e[name] for name in expected]
    assert [(ev["type"], ev["suyuan:kind"]) for ev in events] == [
        ("ObjectEvent", "harvest"), ("ObjectEvent", "cooling"), ("ObjectEvent", "test"),
        ("ObjectEvent", "certificate"), ("ObjectEvent", "shipping"),
        ("ObjectEvent", "transport"), ("ObjectEvent", "receiving"), ("ObjectEvent", "storing"),
        ("TransformationEvent", "packing"), ("TransformationEvent", "transformation"),
        ("ObjectEvent", "recall"), ("ObjectEvent", "correction")]
    # The JSON text carries the decimals exactly as the ledger holds them.
    text = json.dumps(doc, ensure_ascii=False)
    assert '"quantity": 500.25' in text and '"quantity": 120.125' in text
    assert epcis.validate_document(json.loads(text)) is None


@needs_corpus
def test_every_event_id_is_the_cbv_hash_of_the_event(built: Built) -> None:
    with built.chain.world.db.reader() as session, session.begin():
        doc = epcis.export_all(session, now=NOW)
    epcis.validate_document(doc)
    events = doc["epcisBody"]["eventList"]
    assert len(events) == len(built.entries)
    hashed = document_events(doc)  # drops what suyuan:ignoreFields lists, as the reference does
    for event, (as_hashed, context) in zip(events, hashed, strict=True):
        assert event["eventID"].startswith("ni:///sha-256;")
        assert event["eventID"] == event_hash_id(as_hashed, context)
        assert event["eventID"] == event_hash_id(business(event), doc["@context"])
        assert event["eventID"] == epcis.event_id(event, doc["@context"])
    # The decorations are where the ledger filed the event, not part of it: moving an event
    # to another entry would change nothing of its ID, changing a quantity would.
    harvest = by_entry(doc)[built.entries["harvest"]]
    moved = harvest | {"suyuan:entry": 999, "suyuan:actor": "someone-else"}
    assert epcis.event_id(moved, doc["@context"]) == harvest["eventID"]
    edited = copy.deepcopy(harvest)
    edited["quantityList"][0]["quantity"] = 500.26
    assert epcis.event_id(edited, doc["@context"]) != harvest["eventID"]


def test_what_when_where_why_of_each_hop(built: Built) -> None:
    e = built.entries
    with built.chain.world.db.reader() as session, session.begin():
        ev = by_entry(epcis.export_all(session, now=NOW))
    orchard = f"https://id.gs1.org/414/{ORCHARD_GLN}"

    planting = ev[e["planting"]]
    assert (planting["action"], planting["bizStep"]) == ("ADD", "urn:suyuan:bizStep:planting")
    assert planting["quantityList"] == [{"epcClass": dl(CHERRY, "JZ-P2")}]
    assert planting["ilmd"]["cbvmda:lotNumber"] == "JZ-P2" and planting["suyuan:areaMu"] == 2.5
    # Harvesting a planted lot observes a lot that exists: no ADD, so no lot master data.
    harvest2 = ev[e["harvest2"]]
    assert harvest2["action"] == "OBSERVE" and "ilmd" not in harvest2
    assert harvest2["quantityList"] == [
        {"epcClass": dl(CHERRY, "JZ-P2"), "quantity": 80, "uom": "KGM"}]

    application = ev[e["application"]]
    assert application["bizStep"] == "urn:suyuan:bizStep:inputApplication"
    assert application["epcList"] == [] and "quantityList" not in application
    assert (application["suyuan:dose"], application["suyuan:doseUom"]) == (20, "KGM")

    harvest = ev[e["harvest"]]
    assert harvest["action"] == "ADD"
    assert harvest["bizStep"] == "urn:suyuan:bizStep:farmHarvest"
    assert harvest["disposition"] == "active"
    assert harvest["eventTime"] == "2026-06-01T08:00:00+08:00"
    assert harvest["eventTimeZoneOffset"] == "+08:00"
    assert harvest["quantityList"] == [
        {"epcClass": dl(CHERRY, "JZ-0601"), "quantity": 500.25, "uom": "KGM"}]
    assert Decimal(repr(harvest["quantityList"][0]["quantity"])) == Decimal("500.25")
    assert harvest["readPoint"] == harvest["bizLocation"] == {"id": orchard}
    assert harvest["ilmd"] == {"cbvmda:lotNumber": "JZ-0601", "cbvmda:countryOfOrigin": "CN"}
    assert harvest["suyuan:actor"] == "jinzhou-coop"

    cooling = ev[e["cooling"]]
    assert cooling["bizStep"] == "urn:suyuan:bizStep:cooling"
    assert cooling["quantityList"] == [{"epcClass": dl(CHERRY, "JZ-0601")}]
    assert cooling["sensorElementList"] == [
        {"sensorMetadata": {"time": "2026-06-01T09:00:00+08:00"},
         "sensorReport": [{"type": "Temperature", "value": 3.5, "uom": "CEL"}]},
        {"sensorMetadata": {"time": "2026-06-01T09:30:00+08:00"},
         "sensorReport": [{"type": "Temperature", "value": -0.5, "uom": "CEL"}]}]

    test = ev[e["test"]]
    assert test["bizStep"] == "inspecting" and test["disposition"] == "conformant"
    residue, bacteria = test["sensorElementList"][0]["sensorReport"]
    assert residue == {"type": "Dimensionless", "value": 0.02, "uom": "NA",
                       "suyuan:analyte": "吡虫啉", "suyuan:unit": "mg/kg", "suyuan:limit": 0.3,
                       "suyuan:passed": True}
    assert bacteria == {"type": "urn:suyuan:epcis:MeasurementType-ColonyCount", "value": 10,
                        "suyuan:analyte": "大肠菌群", "suyuan:unit": "CFU/g"}

    certificate = ev[e["certificate"]]
    assert certificate["quantityList"] == harvest["quantityList"]
    assert certificate["bizTransactionList"] == [
        {"type": "cert", "bizTransaction": "urn:suyuan:bt:cert:HG-0001"}]
    assert certificate["suyuan:certificateBasis"] == "self_test"
    assert test["bizTransactionList"] == [
        {"type": "testres", "bizTransaction": "urn:suyuan:bt:testres:SMP-7"}]

    ship = ev[e["ship1"]]
    assert (ship["bizStep"], ship["disposition"]) == ("shipping", "in_transit")
    assert ship["readPoint"] == {"id": orchard} and "bizLocation" not in ship
    assert ship["quantityList"] == [
        {"epcClass": dl(CHERRY, "JZ-0601"), "quantity": 120.125, "uom": "KGM"}]
    assert ship["bizTransactionList"] == [
        {"type": "bol", "bizTransaction": "urn:suyuan:bt:bol:BOL-1"},
        {"type": "desadv", "bizTransaction": "urn:suyuan:bt:desadv:DA-1"}]
    assert ship["sourceList"] == [
        {"type": "owning_party", "source": "urn:suyuan:party:jinzhou-coop"},
        {"type": "location", "source": orchard}]
    assert ship["destinationList"] == [
        {"type": "owning_party", "destination": "urn:suyuan:party:dl-packer"},
        {"type": "location", "destination": "urn:suyuan:loc:dl-packhouse"}]
    assert ship["suyuan:shipment"] == "SH-1"

    transport = ev[e["transport"]]
    assert (transport["bizStep"], transport["disposition"]) == ("transporting", "in_transit")
    assert transport["quantityList"] == [{"epcClass": dl(CHERRY, "JZ-0601")}]
    assert transport["sensorElementList"][0]["sensorReport"] == [
        {"type": "Temperature", "value": 1.5, "uom": "CEL"}]

    receive = ev[e["receive1"]]
    assert (receive["bizStep"], receive["disposition"]) == ("receiving", "in_progress")
    assert receive["bizLocation"] == {"id": "urn:suyuan:loc:dl-packhouse"}
    assert receive["sourceList"] == ship["sourceList"]
    assert receive["destinationList"] == ship["destinationList"]

    storing = ev[e["storing"]]
    assert storing["bizStep"] == "storing" and "sensorElementList" not in storing
    assert storing["bizLocation"] == {"id": "urn:suyuan:loc:dl-packhouse"}

    packing = ev[e["packing"]]
    assert packing["type"] == "TransformationEvent" and packing["bizStep"] == "packing"
    assert packing["inputQuantityList"] == [
        {"epcClass": dl(CHERRY, "JZ-0601"), "quantity": 100, "uom": "KGM"}]
    assert packing["outputQuantityList"] == [
        {"epcClass": dl(CHERRY_BOX, "BOX-0601"), "quantity": 50, "uom": "XBX"}]
    assert packing["outputEPCList"] == [
        f"https://id.gs1.org/01/{CHERRY_BOX}/21/S{i:03d}" for i in range(3)]
    assert packing["ilmd"] == {"cbvmda:lotNumber": "BOX-0601"}

    transformation = ev[e["transformation"]]
    assert transformation["inputQuantityList"] == [
        {"epcClass": dl(CHERRY, "JZ-0601"), "quantity": 20.125, "uom": "KGM"}]
    assert transformation["outputQuantityList"] == [
        {"epcClass": dl(DRIED, "DRY-1"), "quantity": 2.5, "uom": "KGM"}]
    assert transformation["suyuan:process"] == "process"

    sale = ev[e["sale"]]
    assert (sale["bizStep"], sale["disposition"]) == ("retail_selling", "retail_sold")
    assert sale["epcList"] == [f"https://id.gs1.org/01/{CHERRY_BOX}/21/S001"]
    assert sale["quantityList"] == [
        {"epcClass": dl(CHERRY_BOX, "BOX-0601"), "quantity": 1, "uom": "XBX"}]
    assert sale["bizTransactionList"] == [
        {"type": "po", "bizTransaction": "urn:suyuan:bt:po:ORD-42"}]

    recall = ev[e["recall"]]
    assert recall["disposition"] == "recalled"
    assert recall["persistentDisposition"] == {"set": ["recalled"]}
    # The recall scope the log fixed: the lot named and the lots made from it.
    assert [q["epcClass"] for q in recall["quantityList"]] == [
        dl(CHERRY, "JZ-0601"), dl(CHERRY_BOX, "BOX-0601"), dl(DRIED, "DRY-1")]

    correction = ev[e["correction"]]
    assert correction["eventID"] == cooling["eventID"]  # the erroneous event, declared so
    assert business(correction) | {"errorDeclaration": None} == business(cooling) | {
        "errorDeclaration": None}
    assert correction["errorDeclaration"] == {
        "declarationTime": "2026-06-04T09:00:00+08:00", "reason": "incorrect_data",
        "suyuan:reason": "probe was miscalibrated", "suyuan:corrects": e["cooling"]}
    assert correction["suyuan:actor"] == "jinzhou-coop"


def test_a_range_export_holds_the_events_of_that_time(built: Built) -> None:
    e = built.entries
    cst = timezone(timedelta(hours=8))
    with built.chain.world.db.reader() as session, session.begin():
        day2 = epcis.export_range(session, datetime(2026, 6, 2, tzinfo=cst),
                                  datetime(2026, 6, 3, tzinfo=cst), now=NOW)
        # 2026-06-01 16:00+08:00 is 08:00 UTC: the bound is a moment, whatever the offset.
        edge = epcis.export_range(session, datetime(2026, 6, 1, 8, tzinfo=UTC),
                                  datetime(2026, 6, 1, 8, 0, 1, tzinfo=UTC), now=NOW)
        everything = epcis.export_range(session, datetime(2026, 1, 1, tzinfo=cst),
                                        datetime(2027, 1, 1, tzinfo=cst), now=NOW)
        with pytest.raises(MalformedInput, match="timezone-aware"):
            epcis.export_range(session, datetime(2026, 6, 2), datetime(2026, 6, 3))
    assert [ev["suyuan:entry"] for ev in day2["epcisBody"]["eventList"]] == [
        e["packing"], e["transformation"], e["ship2"]]
    assert [ev["suyuan:entry"] for ev in edge["epcisBody"]["eventList"]] == [e["receive1"]]
    # The correction repeats the cooling event, so it falls on the cooling's eventTime.
    assert [ev["suyuan:entry"] for ev in everything["epcisBody"]["eventList"]] == sorted(
        e.values())


def test_entries_without_an_epcis_form_are_refused(built: Built) -> None:
    with built.chain.world.db.reader() as session, session.begin():
        registration = Statement.from_json(ledger.entry(session, 1).statement_json())
        assert registration.kind == "actor_registered"
        with pytest.raises(MalformedInput, match="no EPCIS form"):
            epcis.to_epcis_event(1, registration, session)
        with pytest.raises(NotFound):
            epcis.export_lot_history(session, "NO-SUCH-LOT")


def test_to_epcis_event_gives_the_event_the_document_holds(built: Built) -> None:
    index = built.entries["ship1"]
    with built.chain.world.db.reader() as session, session.begin():
        statement = Statement.from_json(ledger.entry(session, index).statement_json())
        event = epcis.to_epcis_event(index, statement, session)
        doc = epcis.export_document(session, [(index, statement)], now=NOW)
    assert doc["epcisBody"]["eventList"] == [event]
    assert event["suyuan:entry"] == index and event["suyuan:kind"] == "shipping"


# --------------------------------------------------------------------------------------------
# Numbers: decimal strings in signed bodies, JSON numbers in EPCIS


@pytest.mark.parametrize("text, number", [
    ("500", 500), ("500.0", 500), ("120.125", 120.125), ("0.000001", 0.000001),
    ("-0.5", -0.5), ("999999999999999", 999999999999999),
])
def test_decimal_strings_become_the_same_json_numbers(text: str, number: int | float) -> None:
    converted = epcis.json_number(text)
    assert converted == number and type(converted) is type(number)
    assert Decimal(json.dumps(converted)) == Decimal(text)


def test_a_decimal_a_json_number_cannot_carry_exactly_is_refused() -> None:
    with pytest.raises(MalformedInput, match="exactly"):
        epcis.json_number("123456789012345.123456")


def test_numbers_are_stored_as_decimal_strings_and_come_back_exactly() -> None:
    event = {
        "type": "ObjectEvent", "eventTime": "2026-06-01T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00", "action": "OBSERVE",
        "quantityList": [{"epcClass": "urn:x:a", "quantity": 26.0, "uom": "KGM"},
                         {"epcClass": "urn:x:b", "quantity": 10},
                         {"epcClass": "urn:x:c", "quantity": 1e-07}],
        "sensorElementList": [{"sensorReport": [
            {"type": "Temperature", "value": -2.5, "minValue": 1e20, "uom": "CEL",
             "booleanValue": True, "example:cv": "123"}]}],
        "example:count": 3, "example:list": [1, 2.5, "3", {"example:n": 0.1}],
        "example:flag": False, "example:text": "12",
    }
    stored = epcis.encode_numbers(event)
    canonical.jcs(stored)  # signable: no floats left
    assert stored["quantityList"][0]["quantity"] == "26.0"
    assert stored["quantityList"][1]["quantity"] == "10"
    assert stored["quantityList"][2]["quantity"] == "0.0000001"
    assert stored["sensorElementList"][0]["sensorReport"][0]["minValue"] == (
        "100000000000000000000.0")
    assert stored["example:count"] == {"@value": "3", "@type": epcis.NUMBER_TYPE}
    assert stored["example:text"] == "12"  # a string stays a string
    assert strict(epcis.decode_numbers(stored)) == strict(event)
    assert event["quantityList"][0]["quantity"] == 26.0  # the input is not changed


def test_a_non_finite_number_cannot_be_stored() -> None:
    with pytest.raises(MalformedInput, match="finite"):
        epcis.encode_numbers({"type": "ObjectEvent",
                              "quantityList": [{"epcClass": "urn:x", "quantity": float("nan")}]})


# --------------------------------------------------------------------------------------------
# Validation


@needs_corpus
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_official_example_validates(path: Path) -> None:
    assert epcis.validate_document(load(path)) is None


def _break(doc: dict[str, Any], how: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    event = doc["epcisBody"]["eventList"][-1]
    if how == "event without type":
        del event["type"]
    elif how == "document without type":
        del doc["type"]
    elif how == "bad URI":
        event["readPoint"]["id"] = "urn:epc:id:sgln:0614141.07346 1234"
    elif how == "eventTime without a zone":
        event["eventTime"] = "2005-04-04T02:33:31.116"
    elif how == "eventTime that is no date":
        event["eventTime"] = "2005-02-30T02:33:31Z"
    elif how == "quantity as a string":
        event["quantityList"] = [{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877",
                                  "quantity": "200", "uom": "KGM"}]
    return doc


@needs_corpus
@pytest.mark.parametrize("how, path, reason", [
    ("event without type", "$.epcisBody.eventList[1]", "'type' is a required property"),
    ("document without type", "$", "'type' is a required property"),
    ("bad URI", "$.epcisBody.eventList[1].readPoint.id", "is not a 'uri'"),
    ("eventTime without a zone", "$.epcisBody.eventList[1].eventTime", "is not a 'date-time'"),
    ("eventTime that is no date", "$.epcisBody.eventList[1].eventTime", "is not a 'date-time'"),
    ("quantity as a string", "$.epcisBody.eventList[1].quantityList[0].quantity",
     "is not of type 'number'"),
])
def test_invalid_documents_are_refused_with_the_schema_reason(how: str, path: str,
                                                              reason: str) -> None:
    doc = _break(example("Example_9.6.1-ObjectEvent.jsonld"), how)
    with pytest.raises(epcis.SchemaViolation) as caught:
        epcis.validate_document(doc)
    assert caught.value.path == path
    assert reason in caught.value.reason
    assert isinstance(caught.value, MalformedInput) and path in str(caught.value)


@needs_corpus
def test_uri_formats_are_really_checked() -> None:
    doc = example("Example_9.6.1-ObjectEvent.jsonld")
    for bad in ("not a uri", "http://example.com/a b", "urn:epc:id:sgtin:0614141.107346.20<17>"):
        broken = copy.deepcopy(doc)
        broken["epcisBody"]["eventList"][0]["epcList"][0] = bad
        with pytest.raises(epcis.SchemaViolation, match="is not a 'uri'"):
            epcis.validate_document(broken)


@needs_corpus
def test_the_schema_is_found_by_parameter_environment_or_default(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    doc = example("Example_9.6.1-ObjectEvent.jsonld")
    monkeypatch.delenv(epcis.SCHEMA_ENV, raising=False)
    assert epcis.schema_location().resolve() == SCHEMA.resolve()
    epcis.validate_document(doc, schema_path=SCHEMA)
    monkeypatch.setenv(epcis.SCHEMA_ENV, str(SCHEMA))
    epcis.validate_document(doc)
    monkeypatch.setenv(epcis.SCHEMA_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match=epcis.SCHEMA_ENV):
        epcis.validate_document(doc)
    with pytest.raises(ConfigError, match="not found"):
        epcis.validate_document(doc, schema_path=tmp_path / "elsewhere.json")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot use"):
        epcis.validate_document(doc, schema_path=tmp_path / "broken.json")


# --------------------------------------------------------------------------------------------
# Import: the 47 official examples into a ledger and back out


@pytest.fixture
def importer(database: Database) -> tuple[LedgerWorld, Actor]:
    world = make_world(database, actors={})
    return world, register(world, "gs1-examples", "wholesaler")


def import_document(world: LedgerWorld, actor: Actor, doc: dict[str, Any]) -> list[int]:
    bodies = epcis.statements_for_import(doc)
    return world.append_ok(*(make_signed(actor, kind="epcis_event", body=b) for b in bodies))


@needs_corpus
def test_the_official_examples_import_and_export_back_with_the_same_hashes(
        importer: tuple[LedgerWorld, Actor]) -> None:
    world, actor = importer
    assert len(EXAMPLES) == 47
    imported: list[tuple[list[int], dict[str, Any]]] = []
    for path in EXAMPLES:
        doc = load(path)
        indexes = import_document(world, actor, doc)
        assert len(indexes) == len(document_events(doc)), path.name
        imported.append((indexes, doc))
    events_total = sum(len(indexes) for indexes, _ in imported)
    assert events_total == 56

    with world.db.reader() as session, session.begin():
        for indexes, original in imported:
            pairs = [(i, Statement.from_json(ledger.entry(session, i).statement_json()))
                     for i in indexes]
            exported = epcis.export_document(session, pairs, now=NOW)
            epcis.validate_document(exported)
            for (event, context), (again, again_context), index in zip(
                    document_events(original), document_events(exported), indexes, strict=True):
                assert event_hash_id(again, again_context) == event_hash_id(event, context)
                out = exported["epcisBody"]["eventList"][indexes.index(index)]
                assert out["suyuan:entry"] == index and out["suyuan:actor"] == "gs1-examples"
                # Equal to what came in, numbers and all, but for the context it now carries
                # and an eventID where the original had none.
                restored = {k: v for k, v in business(out).items() if k != "@context"}
                if "eventID" not in event:
                    assert restored.pop("eventID") == event_hash_id(event, context)
                assert strict(restored) == strict(event)


@needs_corpus
def test_imported_events_keep_their_document_context() -> None:
    doc = example("SensorDataExample1.jsonld")
    (event,) = epcis.events_from_document(doc)
    assert event["@context"] == [{"example": "http://ns.example.com/epcis/"}]
    (original, context) = document_events(doc)[0]
    assert event_hash_id(event) == event_hash_id(original, context)
    (body,) = epcis.statements_for_import(doc)
    assert body["source"] == "https://id.example.org/document1"
    report = body["event"]["sensorElementList"][0]["sensorReport"][0]
    assert report["value"] == "26.0" and report["type"] == "Temperature"


@needs_corpus
@pytest.mark.parametrize("how", ["event without type", "bad URI", "eventTime without a zone"])
def test_an_invalid_document_appends_nothing(importer: tuple[LedgerWorld, Actor],
                                             how: str) -> None:
    world, actor = importer
    with world.db.reader() as session, session.begin():
        before = ledger.size(session)
    # The first of the two events is valid; the document is refused as a whole.
    doc = _break(example("Example_9.6.1-ObjectEvent.jsonld"), how)
    with pytest.raises(epcis.SchemaViolation):
        import_document(world, actor, doc)
    with world.db.reader() as session, session.begin():
        assert ledger.size(session) == before


@needs_corpus
def test_a_document_that_is_no_event_list_is_not_imported() -> None:
    event = example("Example_9.6.2-ObjectEvent.jsonld")["epcisBody"]["eventList"][0]
    bare = {"@context": [epcis.STANDARD_CONTEXT], **event}
    epcis.validate_document(bare)  # the schema accepts a bare event
    with pytest.raises(MalformedInput, match="EPCISDocument"):
        epcis.events_from_document(bare)
