"""The supply chain on the ledger: hops, rules (reject and alert), lineage, rebuild.

Every test runs on a real SQLite file and on a real PostgreSQL database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from suyuan import lineage, supply
from suyuan.errors import (
    ChronologyViolation,
    CustodyViolation,
    MalformedInput,
    NotPermitted,
    QuantityExceeded,
    Rejected,
    UnknownReference,
)
from suyuan.interop.gs1 import gs1_check_digit
from suyuan.storage.db import Database
from suyuan.storage.schema import PROJECTION_TABLES, metadata
from tests.helpers import Actor, LedgerWorld, make_signed, make_world, register


def gtin(item: str) -> str:
    """A restricted-circulation (prefix 20, never a real company) GTIN-14."""
    body = "0200000" + item.rjust(6, "0")
    return body + gs1_check_digit(body)


CHERRY = gtin("1")
CHERRY_BOX = gtin("2")
DRIED = gtin("3")


@dataclass
class Chain:
    world: LedgerWorld
    farm: Actor
    packer: Actor
    carrier: Actor
    shop: Actor
    lab: Actor
    regulator: Actor

    def ok(self, actor: Actor, kind: str, /, **body: Any) -> tuple[int, tuple[supply.Alert, ...]]:
        (result,) = self.world.append(make_signed(actor, kind=kind, body=body))
        if result.error is not None:
            raise result.error
        return result.index, result.alerts  # type: ignore[return-value]

    def refused(self, actor: Actor, kind: str, error: type[Exception], /, **body: Any) -> Exception:
        (result,) = self.world.append(make_signed(actor, kind=kind, body=body))
        assert isinstance(result.error, error), result.error
        return result.error


def q(value: str, unit: str = "KGM") -> dict[str, str]:
    return {"value": value, "unit": unit}


def t(day: int, hour: int = 8, minute: int = 0) -> str:
    return f"2026-06-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


@pytest.fixture
def chain(database: Database) -> Chain:
    world = make_world(database, actors={})
    c = Chain(world, register(world, "jinzhou-coop", "cooperative"),
              register(world, "dl-packer", "packer"), register(world, "sf-cold", "carrier"),
              register(world, "fresh-shop", "retailer"), register(world, "dl-lab", "lab"),
              register(world, "dalian-amr", "regulator"))
    c.ok(c.regulator, "limits_published", standard="GB 2763-2021", effective_from="2021-09-03",
         effective_to="2026-03-01", source="demo values: verify against GB 2763",
         demo_values=True, limits=[
             {"active_ingredient": "吡虫啉", "food_category": "cherry", "phi_days": 14,
              "mrl": "0.5"}],
         cold_chain=[{"commodity": "cherry", "max_celsius": "4", "max_gap_minutes": 60}])
    c.ok(c.regulator, "limits_published", standard="GB 2763-2026", effective_from="2026-03-01",
         source="demo values: verify against GB 2763", demo_values=True, limits=[
             {"active_ingredient": "吡虫啉", "food_category": "cherry", "phi_days": 21,
              "mrl": "0.3"}])
    for actor, ident, kind in ((c.farm, "jz-orchard-1", "orchard"),
                               (c.packer, "dl-packhouse", "packhouse"),
                               (c.shop, "shop-dc", "ecommerce_warehouse")):
        c.ok(actor, "location_registered", id=ident, name=ident, kind=kind,
             admin_code="210213")
    c.ok(c.farm, "product_registered", gtin=CHERRY, name_zh="美早大樱桃", name_en="Mei Zao cherry",
         commodity="cherry", unit="KGM", food_category="cherry")
    c.ok(c.packer, "product_registered", gtin=CHERRY_BOX, name_zh="大樱桃礼盒 2kg",
         commodity="cherry", unit="XBX", food_category="cherry")
    c.ok(c.packer, "product_registered", gtin=DRIED, name_zh="樱桃干", commodity="cherry",
         unit="KGM", food_category="cherry")
    return c


def _harvest(c: Chain, lot: str = "JZ-0601", day: int = 1, kg: str = "500") -> tuple:
    return c.ok(c.farm, "harvest", lot=lot, product=CHERRY, quantity=q(kg),
                location="jz-orchard-1", event_time=t(day))


def _to_packer(c: Chain, lot: str = "JZ-0601", kg: str = "500", shipment: str = "SH-1") -> None:
    c.ok(c.farm, "shipping", shipment=shipment, lots=[{"lot": lot, "quantity": q(kg)}],
         to="dl-packer", location="jz-orchard-1", to_location="dl-packhouse",
         event_time=t(1, 12), carrier="sf-cold")
    c.ok(c.packer, "receiving", shipment=shipment, lots=[{"lot": lot, "quantity": q(kg)}],
         location="dl-packhouse", event_time=t(1, 16))


def test_a_whole_chain_is_accepted_and_traced_both_ways(chain: Chain) -> None:
    c = chain
    c.ok(c.farm, "input_application", location="jz-orchard-1", event_time=t(1, 7) .replace(
        "06-01", "05-01"), input_type="pesticide", product_name="吡虫啉 10% WP",
        active_ingredient="吡虫啉", registration_no="PD20080001")
    _, alerts = _harvest(c)
    assert alerts == ()
    c.ok(c.farm, "cooling", lot="JZ-0601", location="jz-orchard-1", event_time=t(1, 10),
         readings=[{"time": t(1, 9), "celsius": "3.5"}, {"time": t(1, 9, 30), "celsius": "2.0"}])
    _, alerts = c.ok(c.lab, "test", lot="JZ-0601", event_time=t(1, 11), results=[
        {"analyte": "吡虫啉", "value": "0.02", "unit": "mg/kg"}])
    assert alerts == ()
    c.ok(c.farm, "certificate", lot="JZ-0601", event_time=t(1, 11), certificate_no="HG-0001",
         basis="self_test", quantity=q("500"))
    _to_packer(c)
    c.ok(c.packer, "packing", inputs=[{"lot": "JZ-0601", "quantity": q("400")}],
         output={"lot": "BOX-0601", "product": CHERRY_BOX, "quantity": q("200", "XBX")},
         location="dl-packhouse", event_time=t(2), serials=[f"S{i:03d}" for i in range(5)])
    c.ok(c.packer, "shipping", shipment="SH-2", lots=[{"lot": "BOX-0601",
                                                      "quantity": q("150", "XBX")}],
         to="fresh-shop", location="dl-packhouse", event_time=t(2, 12))
    c.ok(c.shop, "receiving", shipment="SH-2", lots=[{"lot": "BOX-0601",
                                                     "quantity": q("150", "XBX")}],
         location="shop-dc", event_time=t(3))
    _, alerts = c.ok(c.shop, "sale", lot="BOX-0601", quantity=q("1", "XBX"), serial="S001",
                     channel="ecommerce", event_time=t(3, 10))
    assert alerts == ()
    with c.world.db.reader() as session, session.begin():
        back = lineage.trace_back(session, "BOX-0601")
        forward = lineage.trace_forward(session, "JZ-0601")
    assert [lot.code for lot in back.lots] == ["BOX-0601", "JZ-0601"]
    assert back.origins == ["JZ-0601"]
    assert [i["active_ingredient"] for i in back.inputs] == ["吡虫啉"]
    assert [lot.code for lot in forward.lots] == ["JZ-0601", "BOX-0601"]
    assert [(s["shipment"], s["receiver"]) for s in forward.shipments] == [
        ("SH-1", "dl-packer"), ("SH-2", "fresh-shop")]
    assert {(h["actor"], h["lot"], h["quantity"]) for h in forward.holders} == {
        ("dl-packer", "JZ-0601", "100"), ("dl-packer", "BOX-0601", "50"),
        ("fresh-shop", "BOX-0601", "149")}
    assert [(s["lot"], s["actor"]) for s in forward.sales] == [("BOX-0601", "fresh-shop")]


# --- rejections ------------------------------------------------------------------------------


def test_a_carrier_cannot_record_a_harvest(chain: Chain) -> None:
    chain.refused(chain.carrier, "harvest", NotPermitted, lot="X", product=CHERRY,
                  quantity=q("1"), location="jz-orchard-1", event_time=t(1))


def test_shipping_a_lot_you_do_not_hold_is_refused(chain: Chain) -> None:
    _harvest(chain)
    chain.refused(chain.packer, "shipping", CustodyViolation, shipment="S", to="fresh-shop",
                  lots=[{"lot": "JZ-0601", "quantity": q("1")}], location="dl-packhouse",
                  event_time=t(2))


def test_shipping_more_than_held_is_refused(chain: Chain) -> None:
    _harvest(chain, kg="500")
    error = chain.refused(chain.farm, "shipping", QuantityExceeded, shipment="S", to="dl-packer",
                          lots=[{"lot": "JZ-0601", "quantity": q("0.6", "TNE")}],
                          location="jz-orchard-1", event_time=t(2))
    assert "holds 500 KGM" in str(error)


def test_receiving_without_a_shipment_is_refused(chain: Chain) -> None:
    chain.refused(chain.packer, "receiving", UnknownReference, shipment="NOPE",
                  lots=[{"lot": "JZ-0601", "quantity": q("1")}], location="dl-packhouse",
                  event_time=t(2))


def test_receiving_a_shipment_sent_to_someone_else_is_refused(chain: Chain) -> None:
    _harvest(chain)
    chain.ok(chain.farm, "shipping", shipment="S", to="dl-packer", location="jz-orchard-1",
             lots=[{"lot": "JZ-0601", "quantity": q("10")}], event_time=t(1, 12))
    chain.refused(chain.shop, "receiving", CustodyViolation, shipment="S", location="shop-dc",
                  lots=[{"lot": "JZ-0601", "quantity": q("10")}], event_time=t(2))


def test_receipt_before_the_shipment_is_refused(chain: Chain) -> None:
    _harvest(chain)
    chain.ok(chain.farm, "shipping", shipment="S", to="dl-packer", location="jz-orchard-1",
             lots=[{"lot": "JZ-0601", "quantity": q("10")}], event_time=t(2, 12))
    chain.refused(chain.packer, "receiving", ChronologyViolation, shipment="S",
                  location="dl-packhouse", lots=[{"lot": "JZ-0601", "quantity": q("10")}],
                  event_time=t(2, 11))


def test_a_shipment_may_arrive_in_parts_but_never_more_than_sent(chain: Chain) -> None:
    _harvest(chain)
    chain.ok(chain.farm, "shipping", shipment="S", to="dl-packer", location="jz-orchard-1",
             lots=[{"lot": "JZ-0601", "quantity": q("10")}], event_time=t(1, 12))
    chain.refused(chain.packer, "receiving", QuantityExceeded, shipment="S",
                  location="dl-packhouse", lots=[{"lot": "JZ-0601", "quantity": q("11")}],
                  event_time=t(2))
    chain.ok(chain.packer, "receiving", shipment="S", location="dl-packhouse",
             lots=[{"lot": "JZ-0601", "quantity": q("6")}], event_time=t(2))
    error = chain.refused(chain.packer, "receiving", QuantityExceeded, shipment="S",
                          location="dl-packhouse", lots=[{"lot": "JZ-0601",
                                                          "quantity": q("5")}], event_time=t(2))
    assert "6 were received before" in str(error)
    chain.ok(chain.packer, "receiving", shipment="S", location="dl-packhouse",
             lots=[{"lot": "JZ-0601", "quantity": q("4")}], event_time=t(2, 9))
    error = chain.refused(chain.packer, "receiving", Rejected, shipment="S",
                          location="dl-packhouse", lots=[{"lot": "JZ-0601",
                                                          "quantity": q("1")}], event_time=t(2))
    assert error.reason == "already_received"
    with chain.world.db.reader() as session, session.begin():
        assert chain_holding(session, "JZ-0601", "dl-packer") == "10"


def chain_holding(session, lot: str, actor: str) -> str:
    from suyuan.storage.schema import HoldingRow

    return session.get(HoldingRow, (lot, actor)).quantity


def test_an_event_before_the_lot_exists_is_refused(chain: Chain) -> None:
    _harvest(chain, day=5)
    chain.refused(chain.farm, "cooling", ChronologyViolation, lot="JZ-0601",
                  location="jz-orchard-1", event_time=t(4),
                  readings=[{"time": t(4), "celsius": "2"}])


@pytest.mark.parametrize("body, error, words", [
    ({"product": "02000000000099"}, MalformedInput, "check digit"),
    ({"product": gtin("77")}, UnknownReference, "unknown product"),
    ({"location": "nowhere"}, UnknownReference, "unknown location"),
    ({"quantity": {"value": 5, "unit": "KGM"}}, MalformedInput, "decimal string"),
    ({"quantity": q("5", "POUNDS")}, MalformedInput, "unit"),
    ({"event_time": "2026-06-01 08:00"}, MalformedInput, "offset"),
])
def test_malformed_or_unknown_references_are_refused(chain: Chain, body: dict, error: type,
                                                     words: str) -> None:
    fields = {"lot": "NEW", "product": CHERRY, "quantity": q("1"), "location": "jz-orchard-1",
              "event_time": t(1)} | body
    assert words in str(chain.refused(chain.farm, "harvest", error, **fields))


def test_a_new_lot_needs_a_new_code(chain: Chain) -> None:
    _harvest(chain)
    _to_packer(chain)
    error = chain.refused(chain.packer, "packing", Rejected,
                          inputs=[{"lot": "JZ-0601", "quantity": q("1")}],
                          output={"lot": "JZ-0601", "product": CHERRY_BOX,
                                  "quantity": q("1", "XBX")},
                          location="dl-packhouse", event_time=t(2))
    assert error.reason == "already_exists"


# --- alerts ----------------------------------------------------------------------------------


def _spray(c: Chain, when: str) -> None:
    c.ok(c.farm, "input_application", location="jz-orchard-1", event_time=when,
         input_type="pesticide", product_name="吡虫啉 10% WP", active_ingredient="吡虫啉")


def test_harvest_inside_the_pesticide_interval_raises_an_alert(chain: Chain) -> None:
    _spray(chain, t(1).replace("06-01", "05-20"))  # 12 days before: the 2026 edition says 21
    _, alerts = _harvest(chain)
    assert [a.rule for a in alerts] == ["pesticide_interval"]
    assert "21 days" in alerts[0].message and "GB 2763-2026" in alerts[0].message


def test_the_edition_in_force_on_the_event_date_decides(chain: Chain) -> None:
    # In 2025 the 2021 edition applied (14 days): 15 days is outside the interval.
    chain.ok(chain.farm, "input_application", location="jz-orchard-1",
             event_time="2025-06-01T08:00:00+08:00", input_type="pesticide",
             product_name="吡虫啉", active_ingredient="吡虫啉")
    _, alerts = chain.ok(chain.farm, "harvest", lot="JZ-2025", product=CHERRY,
                         quantity=q("10"), location="jz-orchard-1",
                         event_time="2025-06-16T08:00:00+08:00")
    assert alerts == ()


def test_residue_above_the_limit_raises_an_alert(chain: Chain) -> None:
    _harvest(chain)
    _, alerts = chain.ok(chain.lab, "test", lot="JZ-0601", event_time=t(1, 11), results=[
        {"analyte": "吡虫啉", "value": "0.45", "unit": "mg/kg"}])
    assert [a.rule for a in alerts] == ["residue_limit"]
    assert "exceeds 0.3" in alerts[0].message


def test_cold_chain_excursion_and_gap_raise_alerts(chain: Chain) -> None:
    _harvest(chain)
    _, alerts = chain.ok(chain.farm, "storing", lot="JZ-0601", location="jz-orchard-1",
                         event_time=t(1, 12), readings=[
                             {"time": t(1, 9), "celsius": "3"},
                             {"time": t(1, 9, 30), "celsius": "7.5"},
                             {"time": t(1, 11), "celsius": "2"}])
    assert [a.rule for a in alerts] == ["cold_chain", "cold_chain_gap"]
    _, alerts = chain.ok(chain.farm, "storing", lot="JZ-0601", location="jz-orchard-1",
                         event_time=t(1, 13), readings=[
                             {"time": t(1, 12), "celsius": "3"},
                             {"time": t(1, 12, 50), "celsius": "3.9"}])
    assert alerts == ()


def test_pre_cooling_is_judged_by_the_temperature_it_reaches(chain: Chain) -> None:
    _harvest(chain)
    warm_start = [{"time": t(1, 9), "celsius": "12"}, {"time": t(1, 10), "celsius": "3.5"}]
    _, alerts = chain.ok(chain.farm, "cooling", lot="JZ-0601", location="jz-orchard-1",
                         event_time=t(1, 10), readings=warm_start)
    assert alerts == ()
    _, alerts = chain.ok(chain.farm, "cooling", lot="JZ-0601", location="jz-orchard-1",
                         event_time=t(1, 11), readings=[{"time": t(1, 11), "celsius": "6"}])
    assert [a.rule for a in alerts] == ["cold_chain"]


def test_yield_outside_the_declared_tolerance_raises_an_alert(chain: Chain) -> None:
    _harvest(chain)
    _to_packer(chain)
    base = {"inputs": [{"lot": "JZ-0601", "quantity": q("100")}], "process": "process",
            "location": "dl-packhouse", "event_time": t(2), "yield_min": "0.1",
            "yield_max": "0.2"}
    _, alerts = chain.ok(chain.packer, "transformation", **base, outputs=[
        {"lot": "DRY-1", "product": DRIED, "quantity": q("15")}])
    assert alerts == ()
    _, alerts = chain.ok(chain.packer, "transformation", **base, outputs=[
        {"lot": "DRY-2", "product": DRIED, "quantity": q("60")}])
    assert [a.rule for a in alerts] == ["yield"]


def test_sale_after_recall_and_a_serial_sold_twice_raise_alerts(chain: Chain) -> None:
    _harvest(chain)
    _to_packer(chain)
    chain.ok(chain.packer, "packing", inputs=[{"lot": "JZ-0601", "quantity": q("10")}],
             output={"lot": "BOX-1", "product": CHERRY_BOX, "quantity": q("5", "XBX")},
             location="dl-packhouse", event_time=t(2), serials=["A1", "A2"])
    chain.ok(chain.packer, "shipping", shipment="SH-B", to="fresh-shop", location="dl-packhouse",
             lots=[{"lot": "BOX-1", "quantity": q("5", "XBX")}], event_time=t(2, 8))
    chain.ok(chain.shop, "receiving", shipment="SH-B", location="shop-dc",
             lots=[{"lot": "BOX-1", "quantity": q("5", "XBX")}], event_time=t(2, 9))
    _, alerts = chain.ok(chain.shop, "sale", lot="BOX-1", quantity=q("1", "XBX"), serial="A1",
                         channel="ecommerce", event_time=t(2, 10))
    assert alerts == ()
    _, alerts = chain.ok(chain.shop, "sale", lot="BOX-1", quantity=q("1", "XBX"),
                         serial="A1", channel="ecommerce", event_time=t(2, 11))
    assert [a.rule for a in alerts] == ["serial_sold_twice"]
    chain.ok(chain.regulator, "recall", lots=["JZ-0601"], reason="residue above limit",
             event_time=t(2, 12))
    _, alerts = chain.ok(chain.shop, "sale", lot="BOX-1", quantity=q("1", "XBX"),
                         serial="A2", channel="ecommerce", event_time=t(2, 13))
    assert [a.rule for a in alerts] == ["sale_after_recall"]
    chain.refused(chain.shop, "sale", UnknownReference, lot="BOX-1",
                  quantity=q("1", "XBX"), serial="ZZ", channel="ecommerce", event_time=t(2, 14))
    chain.refused(chain.packer, "sale", NotPermitted, lot="BOX-1", quantity=q("1", "XBX"),
                  channel="retail", event_time=t(2, 15))


def test_only_a_regulator_declares_a_recall(chain: Chain) -> None:
    _harvest(chain)
    chain.refused(chain.farm, "recall", NotPermitted, lots=["JZ-0601"], reason="x",
                  event_time=t(2))


# --- rebuild ---------------------------------------------------------------------------------


def _snapshot(db: Database) -> dict[str, list[tuple]]:
    out = {}
    with db.reader() as session, session.begin():
        for name in PROJECTION_TABLES:
            table = metadata.tables[name]
            cols = [c for c in table.columns if c.name != "id"]
            rows = session.execute(select(*cols)).all()
            out[name] = sorted(tuple(str(v) for v in row) for row in rows)
    return out


def test_rebuild_gives_the_same_projections_as_the_incremental_path(chain: Chain) -> None:
    test_a_whole_chain_is_accepted_and_traced_both_ways(chain)
    _spray(chain, t(9))
    chain.ok(chain.farm, "harvest", lot="JZ-0610", product=CHERRY, quantity=q("50"),
             location="jz-orchard-1", event_time=t(10))
    chain.ok(chain.regulator, "recall", lots=["JZ-0601"], reason="test", event_time=t(10))
    before = _snapshot(chain.world.db)
    assert before["alerts"] and before["lineage"] and before["serials"]
    with chain.world.db.writer() as session, session.begin():
        report = supply.rebuild(session)
    assert report.replay_rejections == 0
    assert _snapshot(chain.world.db) == before


# --- what an independent review found ----------------------------------------------------------


@pytest.mark.parametrize("kind, body", [
    ("receiving", {"shipment": "S", "location": "dl-packhouse",
                   "lots": [{"lot": "JZ-0601", "quantity": q("10")}] * 2}),
    ("shipping", {"shipment": "S2", "to": "fresh-shop", "location": "dl-packhouse",
                  "lots": [{"lot": "JZ-0601", "quantity": q("1")}] * 2}),
    ("packing", {"inputs": [{"lot": "JZ-0601", "quantity": q("1")}] * 2,
                 "output": {"lot": "B", "product": CHERRY_BOX, "quantity": q("1", "XBX")},
                 "location": "dl-packhouse", "serials": ["S1", "S1"]}),
])
def test_a_lot_or_serial_listed_twice_is_refused(chain: Chain, kind: str, body: dict) -> None:
    _harvest(chain)
    chain.ok(chain.farm, "shipping", shipment="S", to="dl-packer", location="jz-orchard-1",
             lots=[{"lot": "JZ-0601", "quantity": q("10")}], event_time=t(1, 12))
    error = chain.refused(chain.packer, kind, MalformedInput, **body, event_time=t(2))
    assert "list each only once" in str(error)


def test_serials_are_unique_per_gtin(chain: Chain) -> None:
    _harvest(chain)
    _to_packer(chain)
    pack = {"location": "dl-packhouse", "event_time": t(2), "serials": ["S1"]}
    chain.ok(chain.packer, "packing", inputs=[{"lot": "JZ-0601", "quantity": q("1")}],
             output={"lot": "B1", "product": CHERRY_BOX, "quantity": q("1", "XBX")}, **pack)
    error = chain.refused(chain.packer, "packing", Rejected,
                          inputs=[{"lot": "JZ-0601", "quantity": q("1")}],
                          output={"lot": "B2", "product": CHERRY_BOX, "quantity": q("1", "XBX")},
                          **pack)
    assert "already in use" in str(error)


def test_origin_events_need_the_actors_own_place(chain: Chain) -> None:
    error = chain.refused(chain.farm, "harvest", NotPermitted, lot="X", product=CHERRY,
                          quantity=q("1"), location="dl-packhouse", event_time=t(1))
    assert "belongs to dl-packer" in str(error)


def test_a_recalled_lot_taints_what_is_made_from_it(chain: Chain) -> None:
    _harvest(chain)
    _to_packer(chain)
    chain.ok(chain.regulator, "recall", lots=["JZ-0601"], reason="test", event_time=t(1, 17))
    _, alerts = chain.ok(chain.packer, "packing", inputs=[{"lot": "JZ-0601", "quantity": q("5")}],
                         output={"lot": "B9", "product": CHERRY_BOX, "quantity": q("2", "XBX")},
                         location="dl-packhouse", event_time=t(2))
    assert [a.rule for a in alerts] == ["recalled_lot_moved"]
    with chain.world.db.reader() as session, session.begin():
        assert lineage.trace_forward(session, "JZ-0601").lots[1].status == "recalled"


@pytest.mark.parametrize("result, rule", [
    ({"analyte": "吡虫啉", "value": "450", "unit": "µg/kg"}, ["residue_limit"]),
    ({"analyte": "吡虫啉", "value": "0.2", "unit": "µg/kg"}, []),
    ({"analyte": "吡虫啉", "value": "0.45", "unit": "mg/kg", "limit": "5"}, ["residue_limit"]),
    ({"analyte": "吡虫啉", "value": "0.25", "unit": "mg/kg", "limit": "0.2"}, ["residue_limit"]),
])
def test_the_stricter_limit_applies_in_any_unit(chain: Chain, result: dict, rule: list) -> None:
    _harvest(chain)
    _, alerts = chain.ok(chain.lab, "test", lot="JZ-0601", event_time=t(1, 11), results=[result])
    assert [a.rule for a in alerts] == rule


def test_a_republished_edition_replaces_the_earlier_publication(chain: Chain) -> None:
    chain.ok(chain.regulator, "limits_published", standard="GB 2763-2026",
             effective_from="2026-03-01", source="corrected demo values", demo_values=True,
             limits=[{"active_ingredient": "吡虫啉", "food_category": "cherry", "phi_days": 30,
                      "mrl": "0.1"}])
    _harvest(chain)
    _, alerts = chain.ok(chain.lab, "test", lot="JZ-0601", event_time=t(1, 11), results=[
        {"analyte": "吡虫啉", "value": "0.2", "unit": "mg/kg"}])
    assert [a.rule for a in alerts] == ["residue_limit"] and "0.1" in alerts[0].message


def test_a_correction_of_an_entry_in_the_same_batch_is_accepted(chain: Chain) -> None:
    from tests.helpers import make_signed as signed_by

    harvest = signed_by(chain.farm, kind="harvest", body={
        "lot": "JZ-C", "product": CHERRY, "quantity": q("5"), "location": "jz-orchard-1",
        "event_time": t(1)})
    first, second = chain.world.append(harvest, signed_by(chain.farm, kind="correction", body={
        "corrects": 0, "reason": "placeholder", "event_time": t(1, 9)}))
    assert first.error is None and second.error is not None  # entry 0 is the registrar's
    start = first.index + 1
    more = signed_by(chain.farm, kind="harvest", body={
        "lot": "JZ-D", "product": CHERRY, "quantity": q("5"), "location": "jz-orchard-1",
        "event_time": t(1)})
    fix = signed_by(chain.farm, kind="correction", body={
        "corrects": start, "reason": "wrong weight", "event_time": t(1, 9)})
    results = chain.world.append(more, fix)
    assert [r.error for r in results] == [None, None]


def test_pesticide_names_are_compared_loosely(chain: Chain) -> None:
    chain.ok(chain.farm, "input_application", location="jz-orchard-1",
             event_time=t(1).replace("06-01", "05-25"), input_type="pesticide",
             product_name="吡虫啉", active_ingredient=" 吡虫啉 ")
    _, alerts = _harvest(chain)
    assert [a.rule for a in alerts] == ["pesticide_interval"]


def test_nothing_is_sold_or_shipped_before_the_seller_had_it(chain: Chain) -> None:
    _harvest(chain)
    _to_packer(chain)  # received at 16:00 on day 1
    error = chain.refused(chain.packer, "shipping", ChronologyViolation, shipment="EARLY",
                          to="fresh-shop", location="dl-packhouse", event_time=t(1, 15),
                          lots=[{"lot": "JZ-0601", "quantity": q("1")}])
    assert "before dl-packer had lot JZ-0601" in str(error)
    chain.ok(chain.packer, "shipping", shipment="LATER", to="fresh-shop",
             location="dl-packhouse", event_time=t(1, 17),
             lots=[{"lot": "JZ-0601", "quantity": q("1")}])


def test_an_application_recorded_after_the_harvest_still_raises_the_interval_alert(
    chain: Chain,
) -> None:
    _, alerts = _harvest(chain)
    assert alerts == ()
    late = t(1).replace("06-01", "05-25")
    _, alerts = chain.ok(chain.farm, "input_application", location="jz-orchard-1",
                         event_time=late, input_type="pesticide", product_name="吡虫啉",
                         active_ingredient="吡虫啉")
    assert [a.rule for a in alerts] == ["pesticide_interval"] and "recorded later" in alerts[0].message
    _, alerts = chain.ok(chain.farm, "input_application", location="jz-orchard-1",
                         event_time=t(2), input_type="pesticide", product_name="吡虫啉",
                         active_ingredient="吡虫啉")
    assert alerts == ()  # after the harvest: no interval to break


def test_sales_around_a_recall_are_judged_by_event_time(chain: Chain) -> None:
    _harvest(chain)
    _to_packer(chain)
    chain.ok(chain.packer, "shipping", shipment="S3", to="fresh-shop", location="dl-packhouse",
             lots=[{"lot": "JZ-0601", "quantity": q("50")}], event_time=t(2, 8))
    chain.ok(chain.shop, "receiving", shipment="S3", location="shop-dc",
             lots=[{"lot": "JZ-0601", "quantity": q("50")}], event_time=t(2, 9))
    # Sold on day 4 at 10:00 but recorded first; the recall is dated day 4 at 09:00.
    _, alerts = chain.ok(chain.shop, "sale", lot="JZ-0601", quantity=q("1"),
                         channel="retail", event_time=t(4, 10))
    assert alerts == ()
    _, alerts = chain.ok(chain.regulator, "recall", lots=["JZ-0601"], reason="x",
                         event_time=t(4, 9))
    assert [a.rule for a in alerts] == ["sale_after_recall"]
    # Sold on day 3, recorded after the recall: no fault.
    _, alerts = chain.ok(chain.shop, "sale", lot="JZ-0601", quantity=q("1"),
                         channel="retail", event_time=t(3, 10))
    assert alerts == ()


def test_packing_cannot_make_mass(chain: Chain) -> None:
    _harvest(chain)
    _to_packer(chain)
    _, alerts = chain.ok(chain.packer, "packing", inputs=[{"lot": "JZ-0601", "quantity": q("1")}],
                         output={"lot": "BIG", "product": DRIED, "quantity": q("1000")},
                         location="dl-packhouse", event_time=t(2))
    assert [a.rule for a in alerts] == ["yield"]
    _, alerts = chain.ok(chain.packer, "packing", inputs=[{"lot": "JZ-0601", "quantity": q("2")}],
                         output={"lot": "OK", "product": DRIED, "quantity": q("1.9")},
                         location="dl-packhouse", event_time=t(2))
    assert alerts == ()


# --- cold-chain gaps across a shipment's statements ----------------------------------------------


def _ship(c: Chain, shipment: str = "SH-C", day: int = 1, hour: int = 12) -> None:
    c.ok(c.farm, "shipping", shipment=shipment, lots=[{"lot": "JZ-0601", "quantity": q("100")}],
         to="dl-packer", location="jz-orchard-1", to_location="dl-packhouse",
         event_time=t(day, hour), carrier="sf-cold")


def _readings(*times: str, celsius: str = "2.5") -> list[dict[str, str]]:
    return [{"time": when, "celsius": celsius} for when in times]


def _receive(c: Chain, shipment: str = "SH-C", when: str = t(1, 16), kg: str = "100"
             ) -> tuple[supply.Alert, ...]:
    _, alerts = c.ok(c.packer, "receiving", shipment=shipment, location="dl-packhouse",
                     lots=[{"lot": "JZ-0601", "quantity": q(kg)}], event_time=when)
    return alerts


def test_transit_readings_that_cover_the_trip_raise_nothing(chain: Chain) -> None:
    _harvest(chain)
    _ship(chain)
    for first, second in ((t(1, 12, 30), t(1, 13, 20)), (t(1, 14, 10), t(1, 15, 0))):
        _, alerts = chain.ok(chain.carrier, "transport", shipment="SH-C", event_time=second,
                             readings=_readings(first, second))
        assert alerts == ()
    assert _receive(chain, when=t(1, 15, 40)) == ()


def test_a_hole_between_two_transport_statements_raises_a_gap_alert(chain: Chain) -> None:
    _harvest(chain)
    _ship(chain)
    chain.ok(chain.carrier, "transport", shipment="SH-C", event_time=t(1, 13),
             readings=_readings(t(1, 12, 30), t(1, 13)))
    # Each statement is regular within itself; the 3-hour hole is between them.
    _, alerts = chain.ok(chain.carrier, "transport", shipment="SH-C", event_time=t(1, 16, 30),
                         readings=_readings(t(1, 16), t(1, 16, 30)))
    assert [a.rule for a in alerts] == ["cold_chain_gap"]
    assert "180 minutes after the previous reading" in alerts[0].message
    assert alerts[0].lot == "JZ-0601"
    assert _receive(chain, when=t(1, 17)) == ()


def test_a_first_reading_long_after_shipping_raises_a_gap_alert(chain: Chain) -> None:
    _harvest(chain)
    _ship(chain)
    _, alerts = chain.ok(chain.carrier, "transport", shipment="SH-C", event_time=t(1, 14, 30),
                         readings=_readings(t(1, 14), t(1, 14, 30)))
    assert [a.rule for a in alerts] == ["cold_chain_gap"]
    assert "120 minutes after shipping" in alerts[0].message


def test_readings_recorded_late_for_earlier_times_do_not_hide_or_invent_a_gap(
    chain: Chain,
) -> None:
    _harvest(chain)
    _ship(chain)
    chain.ok(chain.carrier, "transport", shipment="SH-C", event_time=t(1, 14),
             readings=_readings(t(1, 12, 30), t(1, 13, 20), t(1, 14)))
    # An upload of readings already covered by the previous one changes nothing.
    _, alerts = chain.ok(chain.carrier, "transport", shipment="SH-C", event_time=t(1, 14, 5),
                         readings=_readings(t(1, 12, 40), t(1, 13, 30)))
    assert alerts == ()
    assert _receive(chain, when=t(1, 14, 50)) == ()


def test_a_shipment_that_arrives_without_recent_readings_raises_a_gap_alert(
    chain: Chain,
) -> None:
    _harvest(chain, kg="500")
    _ship(chain)  # 12:00, never a reading
    alerts = _receive(chain, kg="60")
    assert [a.rule for a in alerts] == ["cold_chain_gap"]
    assert "240 minutes after it left with no temperature reading" in alerts[0].message
    # The rest of the same shipment arriving later is not counted again.
    assert _receive(chain, when=t(1, 18), kg="40") == ()
    # Readings that stop two hours before arrival.
    _ship(chain, shipment="SH-D", day=2, hour=8)
    chain.ok(chain.carrier, "transport", shipment="SH-D", event_time=t(2, 9),
             readings=_readings(t(2, 8, 30), t(2, 9)))
    alerts = _receive(chain, shipment="SH-D", when=t(2, 11))
    assert [a.rule for a in alerts] == ["cold_chain_gap"]
    assert "after its last reading" in alerts[0].message
    # A short trip needs no readings.
    _ship(chain, shipment="SH-E", day=3, hour=8)
    assert _receive(chain, shipment="SH-E", when=t(3, 8, 45)) == ()


# --- yields in counted units and against a published tolerance -----------------------------------


NET_BOX = gtin("4")
BARE_BOX = gtin("5")


def _boxes(c: Chain) -> None:
    c.ok(c.packer, "product_registered", gtin=NET_BOX, name_zh="美早大樱桃礼盒 2kg",
         commodity="cherry", unit="XBX", food_category="cherry", net_content=q("2"))
    c.ok(c.packer, "product_registered", gtin=BARE_BOX, name_zh="大樱桃散盒",
         commodity="cherry", unit="XBX", food_category="cherry")


def test_boxes_are_weighed_by_their_net_content(chain: Chain) -> None:
    _harvest(chain)
    _to_packer(chain)
    _boxes(chain)
    _, alerts = chain.ok(chain.packer, "packing",
                         inputs=[{"lot": "JZ-0601", "quantity": q("100")}],
                         output={"lot": "BOX-OK", "product": NET_BOX, "quantity": q("48", "XBX")},
                         location="dl-packhouse", event_time=t(2))
    assert alerts == ()
    # 60 boxes of 2 kg from 100 kg of cherries: mass made from nothing.
    _, alerts = chain.ok(chain.packer, "packing",
                         inputs=[{"lot": "JZ-0601", "quantity": q("100")}],
                         output={"lot": "BOX-BIG", "product": NET_BOX,
                                 "quantity": q("60", "XBX")},
                         location="dl-packhouse", event_time=t(2))
    assert [a.rule for a in alerts] == ["yield"]
    assert "1.200 (120 kg from 100 kg)" in alerts[0].message
    # Boxes of a product without a net content cannot be weighed: nothing is judged.
    _, alerts = chain.ok(chain.packer, "packing",
                         inputs=[{"lot": "JZ-0601", "quantity": q("100")}],
                         output={"lot": "BOX-BARE", "product": BARE_BOX,
                                 "quantity": q("500", "XBX")},
                         location="dl-packhouse", event_time=t(2))
    assert alerts == ()


def test_counted_inputs_are_weighed_too(chain: Chain) -> None:
    _harvest(chain)
    _to_packer(chain)
    _boxes(chain)
    chain.ok(chain.packer, "packing", inputs=[{"lot": "JZ-0601", "quantity": q("100")}],
             output={"lot": "BOX-IN", "product": NET_BOX, "quantity": q("40", "XBX")},
             location="dl-packhouse", event_time=t(2))
    base = {"inputs": [{"lot": "BOX-IN", "quantity": q("10", "XBX")}], "process": "process",
            "location": "dl-packhouse", "event_time": t(3), "yield_min": "0.1",
            "yield_max": "0.3"}
    _, alerts = chain.ok(chain.packer, "transformation", **base,
                         outputs=[{"lot": "DRY-A", "product": DRIED, "quantity": q("4")}])
    assert alerts == ()  # 4 kg from 10 boxes × 2 kg
    _, alerts = chain.ok(chain.packer, "transformation", **base,
                         outputs=[{"lot": "DRY-B", "product": DRIED, "quantity": q("12")}])
    assert [a.rule for a in alerts] == ["yield"]
    assert "(12 kg from 20 kg)" in alerts[0].message


def test_a_published_yield_tolerance_binds_whatever_the_processor_declares(chain: Chain) -> None:
    _harvest(chain)
    _to_packer(chain)
    chain.ok(chain.regulator, "limits_published", standard="DL-YIELD-2026",
             effective_from="2026-01-01", source="demo values", demo_values=True, limits=[],
             yields=[{"commodity": "cherry", "process": "process", "min": "0.12",
                      "max": "0.25"}])
    base = {"inputs": [{"lot": "JZ-0601", "quantity": q("100")}], "process": "process",
            "location": "dl-packhouse", "event_time": t(2), "yield_min": "0", "yield_max": "1"}
    _, alerts = chain.ok(chain.packer, "transformation", **base, outputs=[
        {"lot": "DRY-P1", "product": DRIED, "quantity": q("20")}])
    assert alerts == ()
    _, alerts = chain.ok(chain.packer, "transformation", **base, outputs=[
        {"lot": "DRY-P2", "product": DRIED, "quantity": q("50")}])
    assert [a.rule for a in alerts] == ["yield"]
    assert "published 0.12-0.25 for process of cherry" in alerts[0].message
    assert "declared" not in alerts[0].message
    # A later publication replaces the earlier one for that commodity and process.
    chain.ok(chain.regulator, "limits_published", standard="DL-YIELD-2026b",
             effective_from="2026-01-01", source="demo values", demo_values=True, limits=[],
             yields=[{"commodity": "cherry", "process": "process", "min": "0.1",
                      "max": "0.6"}])
    _, alerts = chain.ok(chain.packer, "transformation", **base, outputs=[
        {"lot": "DRY-P3", "product": DRIED, "quantity": q("40")}])
    assert alerts == ()  # 0.4: outside the first publication, inside the second


@pytest.mark.parametrize("kind, body, message", [
    ("product_registered", {"gtin": gtin("6"), "name_zh": "盒", "commodity": "cherry",
                            "unit": "XBX", "net_content": q("2", "XBX")}, "net mass of one unit"),
    ("limits_published", {"standard": "x", "effective_from": "2026-01-01", "source": "x",
                          "demo_values": True, "limits": [],
                          "yields": [{"commodity": "cherry", "process": "process",
                                      "min": "0.5", "max": "0.2"}]}, "is above max"),
    ("limits_published", {"standard": "x", "effective_from": "2026-01-01", "source": "x",
                          "demo_values": True, "limits": [],
                          "yields": [{"commodity": "cherry", "process": "boil",
                                      "min": "0.1", "max": "0.2"}]}, "process"),
])
def test_malformed_net_content_or_yield_tolerance_is_refused(chain: Chain, kind: str, body: dict,
                                                             message: str) -> None:
    actor = chain.regulator if kind == "limits_published" else chain.packer
    error = chain.refused(actor, kind, MalformedInput, **body)
    assert message in str(error)


def test_rebuild_restores_transit_readings_net_content_and_published_yields(chain: Chain) -> None:
    test_a_published_yield_tolerance_binds_whatever_the_processor_declares(chain)
    _boxes(chain)
    chain.ok(chain.farm, "harvest", lot="JZ-0611", product=CHERRY, quantity=q("80"),
             location="jz-orchard-1", event_time=t(11))
    chain.ok(chain.farm, "shipping", shipment="SH-R", to="dl-packer", location="jz-orchard-1",
             lots=[{"lot": "JZ-0611", "quantity": q("80")}], event_time=t(11, 12),
             carrier="sf-cold")
    chain.ok(chain.carrier, "transport", shipment="SH-R", event_time=t(11, 13),
             readings=_readings(t(11, 12, 30), t(11, 13)))
    before = _snapshot(chain.world.db)
    assert before["yield_limits"]
    assert any("2" in row for row in before["products"])
    assert any(t(11, 13) in row for row in before["shipments"])
    with chain.world.db.writer() as session, session.begin():
        assert supply.rebuild(session).replay_rejections == 0
    assert _snapshot(chain.world.db) == before


def _changed_at(c: Chain) -> dict[str, int | None]:
    from suyuan.storage.schema import LotRow
    with c.world.db.reader() as session, session.begin():
        return {row.code: row.changed_at for row in session.scalars(select(LotRow))}


def test_a_lots_history_changes_with_its_own_events_and_its_ancestors(chain: Chain) -> None:
    harvest, _ = _harvest(chain)
    _to_packer(chain)
    packed, _ = chain.ok(chain.packer, "packing", inputs=[{"lot": "JZ-0601", "quantity": q("10")}],
                         output={"lot": "BOX-H", "product": CHERRY_BOX,
                                 "quantity": q("5", "XBX")},
                         location="dl-packhouse", event_time=t(2))
    other, _ = chain.ok(chain.farm, "harvest", lot="JZ-OTHER", product=CHERRY, quantity=q("5"),
                        location="jz-orchard-1", event_time=t(2))
    stamps = _changed_at(chain)
    assert stamps["BOX-H"] == packed and stamps["JZ-OTHER"] == other
    assert stamps["JZ-0601"] == packed  # packing took from it: an event of the harvest lot
    # A late test of the harvest lot changes the box's history too, not the unrelated lot's.
    tested, _ = chain.ok(chain.lab, "test", lot="JZ-0601", event_time=t(3), results=[
        {"analyte": "吡虫啉", "value": "0.01", "unit": "mg/kg"}])
    stamps = _changed_at(chain)
    assert stamps["JZ-0601"] == stamps["BOX-H"] == tested
    assert stamps["JZ-OTHER"] == other
    # An event of the box leaves its ancestor alone.
    stored, _ = chain.ok(chain.packer, "storing", lot="BOX-H", location="dl-packhouse",
                       event_time=t(3, 9))
    stamps = _changed_at(chain)
    assert stamps["BOX-H"] == stored and stamps["JZ-0601"] == tested
    assert harvest < packed < tested < stored
