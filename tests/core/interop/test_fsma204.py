"""The FSMA 204 electronic sortable spreadsheet: rows and KDEs per CTE, filters, CSV and XLSX.

Two chains are recorded on one real ledger (SQLite and PostgreSQL): Dalian cherries (harvest,
cooling, a move to the packer, initial packing, shipping, receiving) and Zhangzidao scallops
(a catch landed at a port, processing, export to a US importer). Each one also has steps that
are not CTEs: tests, certificates, storing, notes and sales.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import openpyxl
import pytest

from suyuan.errors import MalformedInput, NotFound
from suyuan.interop import fsma204
from suyuan.interop.fsma204 import COLUMNS
from suyuan.interop.gs1 import gs1_check_digit
from suyuan.storage.db import Database
from tests.helpers import Actor, LedgerWorld, make_signed, make_world, register


def gtin(item: str) -> str:
    """A restricted-circulation (prefix 20, never a real company) GTIN-14."""
    body = "0200000" + item.rjust(6, "0")
    return body + gs1_check_digit(body)


def gln(item: int) -> str:
    body = f"061414100{item:03d}"
    return body + gs1_check_digit(body)


CHERRY, CHERRY_BOX, SCALLOP, SCALLOP_HS = gtin("11"), gtin("12"), gtin("21"), gtin("22")


def t(day: int, hour: int = 8, minute: int = 0) -> str:
    return f"2026-06-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


def q(value: str, unit: str = "KGM") -> dict[str, str]:
    return {"value": value, "unit": unit}


SEATTLE_RECEIPT = "2026-06-24T17:30:00-07:00"  # 2026-06-25T00:30Z: the local date is the 24th

COOP = "金州樱桃合作社 Jinzhou Cherry Co-op, tel. +86 411 8765 0001"
PACKER = "大连鲜果包装厂 Dalian Fresh Packing, tel. +86 411 8765 0002"
FISHERS = "獐子岛渔业合作社 Zhangzidao Fishing Co-op, tel. +86 411 8765 0003"
PROCESSOR = "大连海宝水产 Dalian Haibao Seafood, tel. +86 411 8765 0004"
ORCHARD_NAME = "金州樱桃园 3 号地块 Orchard plot 3"
ORCHARD = f"{COOP}; {ORCHARD_NAME}; 辽宁省大连市金州区七顶山街道; location id jz-orchard-1"
COLDROOM = f"{COOP}; 合作社预冷库 Co-op pre-cooling room; 辽宁省大连市金州区七顶山街道; GLN {gln(1)}"
PACKHOUSE = f"{PACKER}; 包装车间 Packhouse; 辽宁省大连市甘井子区革镇堡街道; GLN {gln(2)}"
SHOP_DC = "鲜到家 Fresh Home; 鲜到家前置仓 Fresh Home DC; 38.9140, 121.6147; location id shop-dc"
PORT = f"{PROCESSOR}; 大连湾渔港 Dalian Bay fishing port; 辽宁省大连市甘井子区大连湾街道; GLN {gln(3)}"
PLANT = f"{PROCESSOR}; 海宝加工厂 Haibao processing plant; 辽宁省大连市甘井子区大连湾街道; GLN {gln(4)}"
US_DC = ("Pacific Seafood Imports LLC, tel. +1 206 555 0100; Seattle cold store; "
         f"1200 Alaskan Way, Seattle, WA 98101, USA; GLN {gln(5)}")
CHERRY_TEXT = "Mei Zao sweet cherry (美早大樱桃)"
BOX_TEXT = "Mei Zao sweet cherries, 2 kg gift box (美早大樱桃礼盒 2kg)"
SCALLOP_TEXT = "Yesso scallop, live in shell (虾夷扇贝（鲜活）)"
HALF_SHELL_TEXT = "Frozen half-shell Yesso scallops (冻半壳扇贝)"
LEDGER = "Database Record (Suyuan ledger entry)"

SHORT = {
    "product": "Product Description", "gtin": "Product GTIN", "ftl": "On Food Traceability List",
    "quantity": "Quantity", "unit": "Unit of Measure", "source": "Traceability Lot Code Source",
    "source_ref": "Traceability Lot Code Source Reference",
    "location": "Event Location Description",
    "previous": "Location Description for the Immediate Previous Source",
    "recipient": "Location Description for the Immediate Subsequent Recipient",
    "commodity": "Commodity and Variety", "field": "Field or Container Name",
    "farm": "Location Description for the Farm Where the Food Was Harvested",
    "harvester": "Harvester Business Name and Phone Number",
    "harvested": "Date of Harvesting",
    "cooled_at": "Location Description for Where the Food Was Cooled",
    "cooled": "Date of Cooling", "received": "Date the Food Was Received",
    "harvest_range": "Harvest Date Range", "harvest_areas": "Harvest Locations",
    "inputs": "Input Traceability Lot Codes", "input_products": "Input Product Descriptions",
    "input_quantities": "Input Quantities and Units of Measure",
    "doc_types": "Reference Document Type", "doc_numbers": "Reference Document Number",
    "time": "Event Time",
}


def expected(cte: str, day: str, lot: str, entry: int, **values: str) -> dict[str, str]:
    """A whole row: every column not named is empty, except the ledger-entry citation."""
    row = dict.fromkeys(COLUMNS, "")
    row.update({"Critical Tracking Event": cte, "Event Date": day, "Traceability Lot Code": lot,
                "Ledger Entry": str(entry), "Reference Document Type": LEDGER,
                "Reference Document Number": str(entry)})
    row.update({SHORT[key]: value for key, value in values.items()})
    return row


@dataclass
class Chains:
    world: LedgerWorld
    actors: dict[str, Actor]
    entries: dict[str, int] = field(default_factory=dict)

    def ok(self, label: str | None, actor: str, kind: str, /, **body: Any) -> int:
        (result,) = self.world.append(make_signed(self.actors[actor], kind=kind, body=body))
        if result.error is not None:
            raise result.error
        if label is not None:
            self.entries[label] = result.index  # type: ignore[assignment]
        return result.index  # type: ignore[return-value]

    def rows(self, **filters: Any) -> list[dict[str, str]]:
        with self.world.db.reader() as session, session.begin():
            return fsma204.rows(session, **filters)


ACTORS = {
    "jinzhou-coop": ("cooperative", "金州樱桃合作社 Jinzhou Cherry Co-op", "+86 411 8765 0001"),
    "dl-packer": ("packer", "大连鲜果包装厂 Dalian Fresh Packing", "+86 411 8765 0002"),
    "fresh-shop": ("retailer", "鲜到家 Fresh Home", None),
    "dl-lab": ("lab", "大连检测中心 Dalian Testing Centre", None),
    "zzd-fishing": ("cooperative", "獐子岛渔业合作社 Zhangzidao Fishing Co-op", "+86 411 8765 0003"),
    "dl-seafood": ("processor", "大连海宝水产 Dalian Haibao Seafood", "+86 411 8765 0004"),
    "pacific-imports": ("wholesaler", "Pacific Seafood Imports LLC", "+1 206 555 0100"),
}

LOCATIONS = [
    ("jinzhou-coop", {"id": "jz-orchard-1", "name": ORCHARD_NAME, "kind": "orchard",
                      "address": "辽宁省大连市金州区七顶山街道", "admin_code": "210213"}),
    ("jinzhou-coop", {"id": "jz-coldroom", "name": "合作社预冷库 Co-op pre-cooling room",
                      "kind": "cold_store", "address": "辽宁省大连市金州区七顶山街道",
                      "gln": gln(1)}),
    ("dl-packer", {"id": "dl-packhouse", "name": "包装车间 Packhouse", "kind": "packhouse",
                   "address": "辽宁省大连市甘井子区革镇堡街道", "gln": gln(2)}),
    ("fresh-shop", {"id": "shop-dc", "name": "鲜到家前置仓 Fresh Home DC",
                    "kind": "ecommerce_warehouse",
                    "coordinates": {"lat": "38.9140", "lon": "121.6147"}}),
    ("zzd-fishing", {"id": "zzd-sea", "name": "獐子岛海域 Zhangzidao waters", "kind": "sea_area",
                     "fao_area": "61", "coordinates": {"lat": "39.0200", "lon": "122.7500"}}),
    ("dl-seafood", {"id": "dl-port", "name": "大连湾渔港 Dalian Bay fishing port", "kind": "port",
                    "address": "辽宁省大连市甘井子区大连湾街道", "gln": gln(3),
                    "fao_area": "61"}),
    ("dl-seafood", {"id": "dl-plant", "name": "海宝加工厂 Haibao processing plant",
                    "kind": "processing_plant", "address": "辽宁省大连市甘井子区大连湾街道",
                    "gln": gln(4)}),
    ("pacific-imports", {"id": "us-dc", "name": "Seattle cold store", "kind": "warehouse",
                         "address": "1200 Alaskan Way, Seattle, WA 98101, USA",
                         "gln": gln(5)}),
]


def _cherries(c: Chains) -> None:
    c.ok("harvest", "jinzhou-coop", "harvest", lot="JZ-0601", product=CHERRY, quantity=q("500"),
         location="jz-orchard-1", event_time=t(1, 8))
    c.ok("cooling", "jinzhou-coop", "cooling", lot="JZ-0601", location="jz-coldroom",
         event_time=t(1, 10), readings=[{"time": t(1, 9), "celsius": "3.5"}])
    c.ok("cherry test", "dl-lab", "test", lot="JZ-0601", event_time=t(1, 11),
         results=[{"analyte": "吡虫啉", "value": "0.02", "unit": "mg/kg"}])
    c.ok("certificate", "jinzhou-coop", "certificate", lot="JZ-0601", event_time=t(1, 11),
         certificate_no="HG-0001", basis="self_test", quantity=q("500"))
    c.ok("field shipping", "jinzhou-coop", "shipping", shipment="SH-1", to="dl-packer",
         lots=[{"lot": "JZ-0601", "quantity": q("500")}], location="jz-coldroom",
         to_location="dl-packhouse", event_time=t(1, 12))
    c.ok("field receiving", "dl-packer", "receiving", shipment="SH-1", location="dl-packhouse",
         lots=[{"lot": "JZ-0601", "quantity": q("500")}], event_time=t(1, 16))
    c.ok("packing", "dl-packer", "packing", inputs=[{"lot": "JZ-0601", "quantity": q("400")}],
         output={"lot": "BOX-0601", "product": CHERRY_BOX, "quantity": q("200", "XBX")},
         location="dl-packhouse", event_time=t(2, 8))
    c.ok("box shipping", "dl-packer", "shipping", shipment="SH-2", to="fresh-shop",
         lots=[{"lot": "BOX-0601", "quantity": q("150", "XBX")}], location="dl-packhouse",
         to_location="shop-dc", event_time=t(2, 12),
         documents={"desadv": "DESADV-0602", "bol": "BOL-0602"})
    c.ok("box receiving", "fresh-shop", "receiving", shipment="SH-2", location="shop-dc",
         lots=[{"lot": "BOX-0601", "quantity": q("150", "XBX")}], event_time=t(3, 9),
         inbound_batch="IN-0603-01")
    c.ok("sale", "fresh-shop", "sale", lot="BOX-0601", quantity=q("1", "XBX"), channel="retail",
         event_time=t(3, 10))
    c.ok("note", "fresh-shop", "note", lot="BOX-0601", text="上架 on the shelf")


def _scallops(c: Chains) -> None:
    # Bottom-sown (底播) scallops: the sowing makes the lot, the vessel's two-day trip
    # harvests it, and the processor at the port is the first land-based receiver.
    c.ok("sowing", "zzd-fishing", "planting", lot="ZZD-C-0601", product=SCALLOP,
         location="zzd-sea", event_time="2024-05-10T08:00:00+08:00")
    c.ok("catch 1", "zzd-fishing", "harvest", lot="ZZD-C-0601", product=SCALLOP,
         quantity=q("600"), location="zzd-sea", event_time=t(1, 5))
    c.ok("catch 2", "zzd-fishing", "harvest", lot="ZZD-C-0601", product=SCALLOP,
         quantity=q("400"), location="zzd-sea", event_time=t(2, 5))
    c.ok("vessel shipping", "zzd-fishing", "shipping", shipment="ZZD-S-0602", to="dl-seafood",
         lots=[{"lot": "ZZD-C-0601", "quantity": q("1000")}], location="zzd-sea",
         to_location="dl-port", event_time=t(2, 10))
    c.ok("landing", "dl-seafood", "receiving", shipment="ZZD-S-0602", location="dl-port",
         lots=[{"lot": "ZZD-C-0601", "quantity": q("1000")}], event_time=t(2, 12),
         first_land_based=True, inbound_batch="RK-0602-01")
    c.ok("storing", "dl-seafood", "storing", lot="ZZD-C-0601", location="dl-port",
         event_time=t(2, 13))
    c.ok("processing", "dl-seafood", "transformation", process="process",
         inputs=[{"lot": "ZZD-C-0601", "quantity": q("800")}],
         outputs=[{"lot": "DLS-HS-0603", "product": SCALLOP_HS, "quantity": q("600")}],
         location="dl-plant", event_time=t(3, 9))
    c.ok("scallop test", "dl-lab", "test", lot="DLS-HS-0603", event_time=t(3, 11),
         results=[{"analyte": "腹泻性贝类毒素 DSP", "value": "0", "unit": "µg/kg"}])
    c.ok("export", "dl-seafood", "shipping", shipment="DLS-EXP-0604", to="pacific-imports",
         lots=[{"lot": "DLS-HS-0603", "quantity": q("600")}], location="dl-plant",
         to_location="us-dc", event_time=t(4, 8),
         documents={"inv": "HB-INV-2026-088", "bol": "COSU6123456780", "po": "PSI-PO-7731"})
    c.ok("import", "pacific-imports", "receiving", shipment="DLS-EXP-0604", location="us-dc",
         lots=[{"lot": "DLS-HS-0603", "quantity": q("600")}], event_time=SEATTLE_RECEIPT)
    c.ok("wholesale", "pacific-imports", "sale", lot="DLS-HS-0603", quantity=q("20"),
         channel="wholesale", event_time="2026-06-25T10:00:00-07:00")


@pytest.fixture
def chains(database: Database) -> Chains:
    world = make_world(database, actors={})
    actors = {}
    for name, (role, display, phone) in ACTORS.items():
        extra: dict[str, Any] = {"display_name": display}
        if phone:
            extra["info"] = {"phone": phone}
        actors[name] = register(world, name, role, **extra)
    c = Chains(world, actors)
    for owner, body in LOCATIONS:
        c.ok(None, owner, "location_registered", **body)
    c.ok(None, "jinzhou-coop", "product_registered", gtin=CHERRY, name_zh="美早大樱桃",
         name_en="Mei Zao sweet cherry", commodity="cherry", variety="Mei Zao", unit="KGM")
    c.ok(None, "dl-packer", "product_registered", gtin=CHERRY_BOX, name_zh="美早大樱桃礼盒 2kg",
         name_en="Mei Zao sweet cherries, 2 kg gift box", commodity="cherry",
         variety="Mei Zao", unit="XBX")
    c.ok(None, "zzd-fishing", "product_registered", gtin=SCALLOP, name_zh="虾夷扇贝（鲜活）",
         name_en="Yesso scallop, live in shell", commodity="scallop", unit="KGM", ftl=True)
    c.ok(None, "dl-seafood", "product_registered", gtin=SCALLOP_HS, name_zh="冻半壳扇贝",
         name_en="Frozen half-shell Yesso scallops", commodity="scallop", unit="KGM", ftl=True)
    _cherries(c)
    _scallops(c)
    return c


def _all_rows(c: Chains) -> list[dict[str, str]]:
    e = c.entries
    return [
        expected(
            "Harvesting", "2026-06-01", "JZ-0601", e["harvest"], product=CHERRY_TEXT,
            gtin=CHERRY, ftl="No", quantity="500", unit="KGM (kilogram)", source=ORCHARD,
            source_ref="location id jz-orchard-1", location=ORCHARD, recipient=PACKHOUSE,
            commodity="cherry, Mei Zao", field=ORCHARD_NAME, farm=ORCHARD, harvester=COOP,
            harvested="2026-06-01", time=t(1, 8)),
        expected(
            "Cooling", "2026-06-01", "JZ-0601", e["cooling"], product=CHERRY_TEXT, gtin=CHERRY,
            ftl="No", quantity="500", unit="KGM (kilogram)", source=ORCHARD,
            source_ref="location id jz-orchard-1", location=COLDROOM, recipient=PACKHOUSE,
            commodity="cherry, Mei Zao", farm=ORCHARD, cooled_at=COLDROOM, cooled="2026-06-01",
            time=t(1, 10)),
        expected(
            "Initial Packing", "2026-06-02", "BOX-0601", e["packing"], product=BOX_TEXT,
            gtin=CHERRY_BOX, ftl="No", quantity="200", unit="XBX (box)", source=PACKHOUSE,
            source_ref=f"GLN {gln(2)}", location=PACKHOUSE, commodity="cherry, Mei Zao",
            field=ORCHARD_NAME, farm=ORCHARD, harvester=COOP, harvested="2026-06-01",
            cooled_at=COLDROOM, cooled="2026-06-01", received="2026-06-01", inputs="JZ-0601",
            input_products=CHERRY_TEXT, input_quantities="400 KGM", time=t(2, 8)),
        expected(
            "Shipping", "2026-06-02", "BOX-0601", e["box shipping"], product=BOX_TEXT,
            gtin=CHERRY_BOX, ftl="No", quantity="150", unit="XBX (box)", source=PACKHOUSE,
            source_ref=f"GLN {gln(2)}", location=PACKHOUSE, recipient=SHOP_DC,
            doc_types="Bill of Lading; Advance Shipping Notice; Shipment Code (追溯码)",
            doc_numbers="BOL-0602; DESADV-0602; SH-2", time=t(2, 12)),
        expected(
            "First Land-Based Receiving", "2026-06-02", "ZZD-C-0601", e["landing"],
            product=SCALLOP_TEXT, gtin=SCALLOP, ftl="Yes", quantity="1000",
            unit="KGM (kilogram)", source=PORT, source_ref=f"GLN {gln(3)}", location=PORT,
            harvest_range="2026-06-01/2026-06-02",
            harvest_areas="FAO Major Fishing Area 61 (獐子岛海域 Zhangzidao waters)",
            doc_types="Shipment Code (追溯码); Inbound Batch (入库批次)",
            doc_numbers="ZZD-S-0602; RK-0602-01", time=t(2, 12)),
        expected(
            "Receiving", "2026-06-03", "BOX-0601", e["box receiving"], product=BOX_TEXT,
            gtin=CHERRY_BOX, ftl="No", quantity="150", unit="XBX (box)", source=PACKHOUSE,
            source_ref=f"GLN {gln(2)}", location=SHOP_DC, previous=PACKHOUSE,
            received="2026-06-03",
            doc_types="Bill of Lading; Advance Shipping Notice; Shipment Code (追溯码); "
                      "Inbound Batch (入库批次)",
            doc_numbers="BOL-0602; DESADV-0602; SH-2; IN-0603-01", time=t(3, 9)),
        expected(
            "Transformation", "2026-06-03", "DLS-HS-0603", e["processing"],
            product=HALF_SHELL_TEXT, gtin=SCALLOP_HS, ftl="Yes", quantity="600",
            unit="KGM (kilogram)", source=PLANT, source_ref=f"GLN {gln(4)}", location=PLANT,
            inputs="ZZD-C-0601", input_products=SCALLOP_TEXT, input_quantities="800 KGM",
            time=t(3, 9)),
        expected(
            "Shipping", "2026-06-04", "DLS-HS-0603", e["export"], product=HALF_SHELL_TEXT,
            gtin=SCALLOP_HS, ftl="Yes", quantity="600", unit="KGM (kilogram)", source=PLANT,
            source_ref=f"GLN {gln(4)}", location=PLANT, recipient=US_DC,
            doc_types="Bill of Lading; Purchase Order; Invoice; Shipment Code (追溯码)",
            doc_numbers="COSU6123456780; PSI-PO-7731; HB-INV-2026-088; DLS-EXP-0604",
            time=t(4, 8)),
        expected(
            "Receiving", "2026-06-24", "DLS-HS-0603", e["import"], product=HALF_SHELL_TEXT,
            gtin=SCALLOP_HS, ftl="Yes", quantity="600", unit="KGM (kilogram)", source=PLANT,
            source_ref=f"GLN {gln(4)}", location=US_DC, previous=PLANT, received="2026-06-24",
            doc_types="Bill of Lading; Purchase Order; Invoice; Shipment Code (追溯码)",
            doc_numbers="COSU6123456780; PSI-PO-7731; HB-INV-2026-088; DLS-EXP-0604",
            time=SEATTLE_RECEIPT),
    ]


def _keys(rows: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    return [(r["Event Date"], r["Traceability Lot Code"], r["Critical Tracking Event"])
            for r in rows]


# --- rows and KDEs ---------------------------------------------------------------------------


def test_each_cte_row_carries_its_key_data_elements(chains: Chains) -> None:
    got = chains.rows()
    want = _all_rows(chains)
    assert _keys(got) == _keys(want)
    for got_row, want_row in zip(got, want, strict=True):
        assert got_row == want_row, got_row["Critical Tracking Event"]
    assert list(got[0]) == COLUMNS
    assert {row["Critical Tracking Event"] for row in got} == set(fsma204.CTES)


def test_steps_that_are_not_ctes_make_no_rows(chains: Chains) -> None:
    entries = {int(row["Ledger Entry"]) for row in chains.rows()}
    e = chains.entries
    # Tests, certificates, storing, sales and notes are not CTEs; nor are a RAC's moves
    # before initial packing, nor a fishing vessel's catch and delivery before landing.
    for label in ("cherry test", "certificate", "sale", "note", "scallop test", "storing",
                  "wholesale", "sowing", "field shipping", "field receiving", "catch 1",
                  "catch 2", "vessel shipping"):
        assert e[label] not in entries, label
    assert entries == {e[label] for label in (
        "harvest", "cooling", "packing", "box shipping", "box receiving", "landing",
        "processing", "export", "import")}


def test_a_repack_of_packed_lots_is_a_transformation(chains: Chains) -> None:
    index = chains.ok(None, "dl-packer", "packing",
                      inputs=[{"lot": "BOX-0601", "quantity": q("10", "XBX")}],
                      output={"lot": "GIFT-0605", "product": CHERRY_BOX,
                              "quantity": q("5", "XBX")},
                      location="dl-packhouse", event_time=t(5))
    (row,) = chains.rows(lot="GIFT-0605", start=date(2026, 6, 5))
    assert row["Critical Tracking Event"] == "Transformation"
    assert row["Ledger Entry"] == str(index)
    assert row["Input Traceability Lot Codes"] == "BOX-0601"
    assert row["Input Quantities and Units of Measure"] == "10 XBX"
    # Packed inputs carry no harvest KDEs: the initial packer already recorded them.
    assert row["Date of Harvesting"] == row["Field or Container Name"] == ""


# --- filters ---------------------------------------------------------------------------------


CHERRY_ROWS = [("2026-06-01", "JZ-0601", "Harvesting"), ("2026-06-01", "JZ-0601", "Cooling"),
               ("2026-06-02", "BOX-0601", "Initial Packing"),
               ("2026-06-02", "BOX-0601", "Shipping"), ("2026-06-03", "BOX-0601", "Receiving")]
SCALLOP_ROWS = [("2026-06-02", "ZZD-C-0601", "First Land-Based Receiving"),
                ("2026-06-03", "DLS-HS-0603", "Transformation"),
                ("2026-06-04", "DLS-HS-0603", "Shipping"),
                ("2026-06-24", "DLS-HS-0603", "Receiving")]


@pytest.mark.parametrize("lot, rows", [
    ("BOX-0601", CHERRY_ROWS), ("JZ-0601", CHERRY_ROWS),
    ("ZZD-C-0601", SCALLOP_ROWS), ("DLS-HS-0603", SCALLOP_ROWS),
])
def test_a_lot_gives_its_full_trace_back_and_forward(chains: Chains, lot: str,
                                                     rows: list[tuple[str, str, str]]) -> None:
    assert _keys(chains.rows(lot=lot)) == rows


def test_an_unknown_lot_is_not_found(chains: Chains) -> None:
    with pytest.raises(NotFound):
        chains.rows(lot="NO-SUCH-LOT")


def test_the_product_filter_keeps_the_rows_of_that_gtin(chains: Chains) -> None:
    assert _keys(chains.rows(product=CHERRY_BOX)) == CHERRY_ROWS[2:]
    assert _keys(chains.rows(product=CHERRY)) == CHERRY_ROWS[:2]
    assert _keys(chains.rows(product=SCALLOP_HS.lstrip("0"))) == SCALLOP_ROWS[1:]
    assert _keys(chains.rows(product=SCALLOP, lot="DLS-HS-0603")) == SCALLOP_ROWS[:1]
    assert chains.rows(product=CHERRY, lot="DLS-HS-0603") == []
    with pytest.raises(MalformedInput):
        chains.rows(product="02000000000099")


def test_the_date_range_is_inclusive_on_local_dates(chains: Chains) -> None:
    got = chains.rows(start=date(2026, 6, 2), end=date(2026, 6, 3))
    assert _keys(got) == [("2026-06-02", "BOX-0601", "Initial Packing"),
                          ("2026-06-02", "BOX-0601", "Shipping"),
                          ("2026-06-02", "ZZD-C-0601", "First Land-Based Receiving"),
                          ("2026-06-03", "BOX-0601", "Receiving"),
                          ("2026-06-03", "DLS-HS-0603", "Transformation")]
    # Seattle's receipt is on the 24th there, although it is already the 25th in UTC.
    assert _keys(chains.rows(start=date(2026, 6, 24), end=date(2026, 6, 24))) == SCALLOP_ROWS[3:]
    assert chains.rows(start=date(2026, 6, 25)) == []


def test_datetime_bounds_compare_instants(chains: Chains) -> None:
    landed = datetime(2026, 6, 25, 0, 30, tzinfo=UTC)
    assert _keys(chains.rows(start=landed)) == SCALLOP_ROWS[3:]
    assert chains.rows(start=landed + timedelta(seconds=1)) == []
    assert _keys(chains.rows(end=landed - timedelta(seconds=1))) == _keys(_all_rows(chains))[:-1]
    beijing = timezone(timedelta(hours=8))
    got = chains.rows(start=datetime(2026, 6, 2, 8, tzinfo=beijing),
                      end=datetime(2026, 6, 2, 12, tzinfo=beijing), product=CHERRY_BOX)
    assert _keys(got) == CHERRY_ROWS[2:4]
    with pytest.raises(MalformedInput, match="timezone-aware"):
        chains.rows(start=datetime(2026, 6, 1))


# --- CSV and XLSX ----------------------------------------------------------------------------


def test_csv_has_a_bom_one_header_and_parses_back_to_the_same_rows(chains: Chains) -> None:
    rows = chains.rows()
    binary = io.BytesIO()
    fsma204.write_csv(rows, binary)
    data = binary.getvalue()
    assert data.startswith(b"\xef\xbb\xbf") and not data.startswith(b"\xef\xbb\xbf" * 2)
    text = data.decode("utf-8-sig")
    assert text.count("\ufeff") == 0
    reader = csv.reader(io.StringIO(text, newline=""))
    assert next(reader) == COLUMNS
    assert list(csv.DictReader(io.StringIO(text, newline=""))) == rows
    assert "獐子岛" in text and "\r\n" in text
    stream = io.StringIO(newline="")
    fsma204.write_csv(rows, stream)
    assert stream.getvalue().encode() == data


def test_csv_quotes_text_that_a_spreadsheet_would_run_as_a_formula() -> None:
    row = dict.fromkeys(COLUMNS, "")
    row["Product Description"] = "=HYPERLINK(\"http://evil.example\")"
    row["Event Location Description"] = "@SUM(A1)"
    row["Quantity"] = "12.5"
    out = io.StringIO(newline="")
    fsma204.write_csv([row], out)
    (parsed,) = csv.DictReader(io.StringIO(out.getvalue().lstrip("\ufeff"), newline=""))
    assert parsed["Product Description"] == "'=HYPERLINK(\"http://evil.example\")"
    assert parsed["Event Location Description"] == "'@SUM(A1)"
    assert parsed["Quantity"] == "12.5"


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        assert value.time() == datetime.min.time()
        return value.date().isoformat()
    if isinstance(value, int | float):
        return str(Decimal(str(value)).normalize()) if isinstance(value, float) else str(value)
    return str(value)


def test_xlsx_has_a_frozen_header_an_autofilter_and_real_dates(chains: Chains) -> None:
    rows = chains.rows()
    target = io.BytesIO()
    fsma204.write_xlsx(rows, target)
    workbook = openpyxl.load_workbook(io.BytesIO(target.getvalue()))
    assert workbook.sheetnames == ["FSMA 204"]
    sheet = workbook.active
    assert [cell.value for cell in sheet[1]] == COLUMNS
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:AD{len(rows) + 1}"
    assert sheet[1][0].font.bold
    for index, row in enumerate(rows, start=2):
        values = {name: _cell_text(cell.value) for name, cell in zip(COLUMNS, sheet[index],
                                                                     strict=True)}
        assert values == row
    date_column = COLUMNS.index("Event Date") + 1
    assert sheet.cell(row=2, column=date_column).value == datetime(2026, 6, 1)
    assert sheet.cell(row=2, column=date_column).is_date
    quantity = sheet.cell(row=2, column=COLUMNS.index("Quantity") + 1)
    assert quantity.value == 500 and quantity.data_type == "n"
    widths = [sheet.column_dimensions[chr(ord("A") + i)].width for i in range(26)]
    assert all(10 <= width <= 60 for width in widths)
    assert sheet.column_dimensions["K"].width == 60  # long location descriptions are capped


def test_xlsx_keeps_formula_like_and_inexact_values_as_text(tmp_path: Any) -> None:
    row = dict.fromkeys(COLUMNS, "")
    row["Product Description"] = "=1+1"
    row["Quantity"] = "123456789012345.123456"  # more digits than a double holds
    row["Date of Harvesting"] = "2026-06-01; 2026-06-02"
    path = tmp_path / "fsma204.xlsx"
    fsma204.write_xlsx([row], path)
    sheet = openpyxl.load_workbook(path).active
    cells = dict(zip(COLUMNS, sheet[2], strict=True))
    assert cells["Product Description"].value == "=1+1"
    assert cells["Product Description"].data_type == "s"
    assert cells["Quantity"].value == "123456789012345.123456"
    assert cells["Date of Harvesting"].value == "2026-06-01; 2026-06-02"
    empty = io.BytesIO()
    fsma204.write_xlsx([], empty)
    sheet = openpyxl.load_workbook(empty).active
    assert [cell.value for cell in sheet[1]] == COLUMNS
    assert sheet.auto_filter.ref == "A1:AD1" and sheet.max_row == 1
