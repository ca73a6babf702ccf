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
