"""FDA FSMA 204 electronic sortable spreadsheet: one row per Critical Tracking Event (CTE) and
traceability lot code (TLC), with the Key Data Elements (KDEs) of that event, as CSV or XLSX.

Sources
-------
- The rule: 21 CFR Part 1 Subpart S, "Additional Traceability Records for Certain Foods"
  (eCFR, https://www.ecfr.gov/current/title-21/chapter-I/subchapter-A/part-1/subpart-S):
  §1.1310 (definitions of location description, product description, TLC source and TLC
  source reference), the KDE lists of §1.1325 (harvesting, cooling), §1.1330 (initial
  packing), §1.1335 (first land-based receiving), §1.1340 (shipping), §1.1345 (receiving),
  §1.1350 (transformation), and §1.1455(c)(3)(ii) (the electronic sortable spreadsheet within
  24 hours of a request, "for the foods and date ranges or traceability lot codes specified").
- FDA's illustrative template, "Electronic Sortable Spreadsheet" (fda.gov/media/179617, with
  a filled-in sample at fda.gov/media/181946). FDA says the template is an example, not a
  required format. Its file could not be read when this module was written, so the headings
  below use the rule's own KDE wording ("Traceability Lot Code", "Traceability Lot Code
  Source", "Product Description", "Quantity", "Unit of Measure", "Location Description for
  ...", "Date of ...", "Reference Document Type/Number", "Immediate Previous Source",
  "Immediate Subsequent Recipient"). FDA's template follows the same wording. To match the
  template word for word, rename entries in :data:`COLUMNS`; nothing else depends on the text.

Shape
-----
The export is one sheet, so that sorting and filtering work across every event. Each CTE uses
only its own KDE columns and leaves the rest empty. ``Event Date`` is the date of the CTE: the
date of harvesting, cooling, initial packing or landing, the date shipped or received, or the
date the transformation was completed. It is taken as recorded, in the event's own time zone.
Rows are sorted by event date, then TLC, then ledger entry.

How ledger kinds map to CTEs (a statement body is read from its log entry, never from
projections that summarise it):

- ``harvest`` → Harvesting; ``cooling`` → Cooling (only for a raw agricultural commodity (RAC),
  i.e. a lot made by ``harvest`` or ``planting``, because the rule's cooling is cooling before
  initial packing);
- ``packing`` → Initial Packing when every input is a RAC lot that did not come from a fishing
  vessel; a repack of packed or landed lots is a Transformation (§1.1310, "transformation");
- ``receiving`` with ``first_land_based: true`` → First Land-Based Receiving;
- ``shipping`` → Shipping and ``receiving`` → Receiving, one row per lot in the shipment;
- ``transformation`` → Transformation, one row for each output TLC, listing its input TLCs.

Some steps have no row, by the rule's own exceptions:

- The shipping and receiving of a RAC before initial packing (§1.1340(c), §1.1345(c)). Their
  facts still appear elsewhere: the Harvesting and Cooling rows name the immediate subsequent
  recipient, and the Initial Packing row gives the date the food was received.
- The harvesting, cooling and shipping of a lot caught by a fishing vessel, before its first
  land-based receiving (§1.1325(a) and (b) cover only food "not obtained from a fishing
  vessel"). The harvest dates and fishing areas appear on the First Land-Based Receiving row.
- Kinds that are not CTEs: tests, certificates, storing, transport readings, sales to
  consumers, recalls, notes, registrations.

Column contents:

- Locations are described by the business that owns the place (the actor's display name from
  the actors projection, with the phone number from the actor's ``info.phone`` when there is
  one), the place's name and address (or its coordinates), and its GLN or, without one, its
  registered location id.
- The TLC Source is the location where the TLC was assigned: the location of the entry that
  created the lot (packing, transformation, harvest). For a lot from a fishing vessel it is the
  first land-based receiver, which is the TLC source under §1.1335(e). The TLC Source
  Reference is the GLN of that location, or its registered id.
- Quantities are the exact decimal strings the statements carry. Units are UN/CEFACT codes
  with their names. Cooling statements carry no quantity, so the Cooling row gives the lot's
  recorded quantity.
- Reference documents are those the shipping statement names (bill of lading, advance
  shipping notice, purchase order, invoice), plus the shipment code (追溯码) and the inbound
  batch (入库批次). Events without documents cite their ledger entry, which is a database
  record, one of the reference document types §1.1310 names.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from sqlalchemy import select
from sqlalchemy.orm import Session

from suyuan import fields, lineage
from suyuan.errors import MalformedInput
from suyuan.interop.gs1 import normalize_gtin
from suyuan.model import Entry
from suyuan.storage.schema import (
    ActorRow,
    EntryRow,
    LocationRow,
    LotEventRow,
    LotRow,
    ProductRow,
    ShipmentRow,
)

__all__ = ["COLUMNS", "CTES", "DATE_COLUMNS", "rows", "write_csv", "write_xlsx"]

HARVESTING = "Harvesting"
COOLING = "Cooling"
INITIAL_PACKING = "Initial Packing"
FIRST_LAND_BASED_RECEIVING = "First Land-Based Receiving"
SHIPPING = "Shipping"
RECEIVING = "Receiving"
TRANSFORMATION = "Transformation"
CTES = (HARVESTING, COOLING, INITIAL_PACKING, FIRST_LAND_BASED_RECEIVING, SHIPPING, RECEIVING,
        TRANSFORMATION)
"""The seven Critical Tracking Events of §§1.1325–1.1350, as named in the first column."""

COLUMNS: list[str] = [
    "Critical Tracking Event",
    "Event Date",
    "Traceability Lot Code",
    "Product Description",
    "Product GTIN",
    "On Food Traceability List",
    "Quantity",
    "Unit of Measure",
    "Traceability Lot Code Source",
    "Traceability Lot Code Source Reference",
    "Event Location Description",
    "Location Description for the Immediate Previous Source",
    "Location Description for the Immediate Subsequent Recipient",
    "Commodity and Variety",
    "Field or Container Name",
    "Location Description for the Farm Where the Food Was Harvested",
    "Harvester Business Name and Phone Number",
    "Date of Harvesting",
    "Location Description for Where the Food Was Cooled",
    "Date of Cooling",
    "Date the Food Was Received",
    "Harvest Date Range",
    "Harvest Locations",
    "Input Traceability Lot Codes",
    "Input Product Descriptions",
    "Input Quantities and Units of Measure",
    "Reference Document Type",
    "Reference Document Number",
    "Event Time",
    "Ledger Entry",
]
"""The spreadsheet's header row, in order.

- ``Critical Tracking Event``: one of :data:`CTES`.
- ``Event Date``: the date of the CTE, in the event's own time zone (see the module docstring).
- ``Traceability Lot Code``: the lot the row is about. For Initial Packing and Transformation
  it is the new lot.
- ``Product Description``, ``Product GTIN``, ``On Food Traceability List``: that lot's product,
  from its ``product_registered`` entry (English and Chinese names; ``ftl``).
- ``Quantity``, ``Unit of Measure``: the quantity of that lot in this event, exactly as stated.
- ``Traceability Lot Code Source`` / ``... Reference``: where the TLC was assigned, and its GLN
  or registered location id.
- ``Event Location Description``: where the CTE took place (the farm or growing area, the
  place of cooling, packing, landing or transformation, the place shipped from or received at).
- ``Location Description for the Immediate Previous Source`` (Receiving) and ``... Immediate
  Subsequent Recipient`` (Harvesting, Cooling, Shipping).
- ``Commodity and Variety``, ``Field or Container Name``, ``Location Description for the Farm
  Where the Food Was Harvested``, ``Harvester Business Name and Phone Number``, ``Date of
  Harvesting``, ``Location Description for Where the Food Was Cooled``, ``Date of Cooling``,
  ``Date the Food Was Received``: the harvesting, cooling and initial-packing KDEs of §1.1325
  and §1.1330. Initial Packing rows (and Transformation rows of a RAC that was never packed,
  §1.1350(b)) take them from their input lots' harvest, cooling and receiving entries.
  Receiving rows also fill ``Date the Food Was Received``.
- ``Harvest Date Range``, ``Harvest Locations``: First Land-Based Receiving (§1.1335(d)). These
  are the dates of the lot's harvest entries, and the FAO major fishing area (``fao_area``) and
  name of each harvest location.
- ``Input Traceability Lot Codes``, ``Input Product Descriptions``, ``Input Quantities and
  Units of Measure``: Initial Packing and Transformation (§1.1330(a), §1.1350(a)(1)), joined
  with ``"; "`` in the same order.
- ``Reference Document Type`` / ``Number``: pairs joined with ``"; "`` in the same order.
- ``Event Time``: the event time as recorded (RFC 3339 with its offset).
- ``Ledger Entry``: the index of the log entry that states the event. Its inclusion proof
  shows that the row comes from the signed log.
"""

DATE_COLUMNS = ("Event Date", "Date of Harvesting", "Date of Cooling", "Date the Food Was Received")
"""Columns that hold an ISO date (or several, joined with ``"; "``). The XLSX writer makes a
single date a real Excel date."""

_NUMBER_COLUMNS = ("Quantity", "Ledger Entry")
_CTE_KINDS = ("harvest", "cooling", "packing", "shipping", "receiving", "transformation")
_RAW_KINDS = frozenset({"harvest", "planting"})
"""Kinds that create a lot of a raw agricultural commodity."""
_DOCUMENT_TYPES = {"bol": "Bill of Lading", "desadv": "Advance Shipping Notice",
                   "po": "Purchase Order", "inv": "Invoice"}
_SHIPMENT_CODE = "Shipment Code (追溯码)"
_INBOUND_BATCH = "Inbound Batch (入库批次)"
_LEDGER_RECORD = "Database Record (Suyuan ledger entry)"
_CHUNK = 400
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Bound = datetime | date | None


# --- reading the log ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Event:
    """One CTE-kind statement as the log holds it."""

    entry: int
    kind: str
    actor: str
    body: dict[str, Any]
    when: datetime

    @property
    def day(self) -> str:
        return self.when.date().isoformat()


def _chunks(items: list[str] | list[int]) -> Iterator[list[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class _Log:
    """The lots, events and master data the rows need. A lot's events are found through the
    lot_events projection, and each event's body is read from its log entry."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.lots: dict[str, LotRow] = {}
        self._entries: dict[str, list[int]] = {}
        self._events: dict[int, _Event] = {}
        self._products: dict[str, ProductRow | None] = {}
        self._locations: dict[str, LocationRow | None] = {}
        self._actors: dict[str, ActorRow | None] = {}
        self._landed: dict[str, _Event | None] = {}

    def load(self, codes: Iterable[str]) -> None:
        """Read the lots and the CTE entries of each lot not read yet."""
        missing = [code for code in dict.fromkeys(codes) if code not in self._entries]
        for code in missing:
            self._entries[code] = []
        for chunk in _chunks(missing):
            for lot in self.session.scalars(select(LotRow).where(LotRow.code.in_(chunk))):
                self.lots[lot.code] = lot
            for code, entry in self.session.execute(
                select(LotEventRow.lot, LotEventRow.entry).where(
                    LotEventRow.lot.in_(chunk), LotEventRow.kind.in_(_CTE_KINDS))
            ):
                self._entries[code].append(int(entry))
        for code in missing:
            self._entries[code].sort()
        self._read([entry for code in missing for entry in self._entries[code]])

    def _read(self, entries: list[int]) -> None:
        wanted = sorted({entry for entry in entries if entry not in self._events})
        for chunk in _chunks(wanted):
            for idx, leaf in self.session.execute(
                select(EntryRow.idx, EntryRow.leaf).where(EntryRow.idx.in_(chunk))
            ):
                statement = Entry.from_leaf(bytes(leaf)).statement_json()
                body = statement["body"]
                self._events[int(idx)] = _Event(
                    int(idx), statement["kind"], statement["actor"], body,
                    fields.event_time(body["event_time"], "body.event_time"))

    def event(self, entry: int) -> _Event:
        if entry not in self._events:
            self._read([entry])
        return self._events[entry]

    def history(self, code: str) -> list[_Event]:
        """The lot's CTE-kind events in log order (load the lot first)."""
        return [self._events[entry] for entry in self._entries.get(code, [])]

    def involved(self, event: _Event) -> list[str]:
        """Every lot an event names."""
        body = event.body
        if event.kind in ("packing", "transformation"):
            outputs = [body["output"]] if event.kind == "packing" else body["outputs"]
            return [item["lot"] for item in body["inputs"]] + [out["lot"] for out in outputs]
        if event.kind in ("shipping", "receiving"):
            return [item["lot"] for item in body["lots"]]
        return [body["lot"]]

    # --- master data ---------------------------------------------------------------------

    def product(self, gtin: str) -> ProductRow | None:
        if gtin not in self._products:
            self._products[gtin] = self.session.get(ProductRow, gtin)
        return self._products[gtin]

    def location(self, ident: str) -> LocationRow | None:
        if ident not in self._locations:
            self._locations[ident] = self.session.get(LocationRow, ident)
        return self._locations[ident]

    def actor(self, name: str) -> ActorRow | None:
        if name not in self._actors:
            self._actors[name] = self.session.get(ActorRow, name)
        return self._actors[name]

    # --- facts about lots ----------------------------------------------------------------

    def is_raw(self, code: str) -> bool:
        lot = self.lots.get(code)
        return lot is not None and lot.created_kind in _RAW_KINDS

    def landed(self, code: str) -> _Event | None:
        """The lot's first land-based receiving, if it came from a fishing vessel."""
        if code not in self._landed:
            self._landed[code] = next((
                event for event in self.history(code)
                if event.kind == "receiving" and event.body.get("first_land_based") is True
                and any(item["lot"] == code for item in event.body["lots"])), None)
        return self._landed[code]

    def is_unpacked_raw(self, code: str, entry: int) -> bool:
        """A RAC before initial packing: not caught by a fishing vessel, or caught and not yet
        landed at ``entry``."""
        if not self.is_raw(code):
            return False
        landed = self.landed(code)
        return landed is None or entry < landed.entry

    def is_field_raw(self, code: str) -> bool:
        """A RAC grown or raised on land or in aquaculture (never landed from a vessel)."""
        return self.is_raw(code) and self.landed(code) is None


# --- descriptions ---------------------------------------------------------------------------


def _join(values: Iterable[str]) -> str:
    return "; ".join(dict.fromkeys(value for value in values if value))


def _business(log: _Log, name: str) -> str:
    """The business name (display name) and phone number of an actor."""
    actor = log.actor(name)
    if actor is None:
        return name
    label = actor.display_name or actor.name
    phone = _phone(actor)
    return f"{label}, tel. {phone}" if phone else label


def _phone(actor: ActorRow) -> str | None:
    try:
        info = json.loads(actor.info or "{}")
    except ValueError:
        return None
    phone = info.get("phone") if isinstance(info, dict) else None
    return phone if isinstance(phone, str) and phone.strip() else None


def _place_reference(location: LocationRow) -> str:
    return f"GLN {location.gln}" if location.gln else f"location id {location.id}"


def _place(log: _Log, ident: str | None) -> str:
    """A location description (§1.1310): business, place name, address, GLN or id."""
    if not ident:
        return ""
    location = log.location(ident)
    if location is None:
        return f"location id {ident}"
    where = location.address or (
        f"{location.lat}, {location.lon}" if location.lat and location.lon else None)
    parts = [_business(log, location.owner), location.name, where, _place_reference(location)]
    return "; ".join(part for part in parts if part)


def _product_description(product: ProductRow | None, gtin: str) -> str:
    if product is None:
        return gtin
    if product.name_en and product.name_en != product.name_zh:
        return f"{product.name_en} ({product.name_zh})"
    return product.name_zh


def _commodity(product: ProductRow | None) -> str:
    if product is None:
        return ""
    return f"{product.commodity}, {product.variety}" if product.variety else product.commodity


def _unit(code: str) -> str:
    name = fields.UNITS.get(code)
    return f"{code} ({name})" if name else code


def _amount(quantity: Mapping[str, str]) -> str:
    return f"{quantity['value']} {quantity['unit']}"


# --- rows -----------------------------------------------------------------------------------


class _Builder:
    """Turns events into rows, for the lots asked for."""

    def __init__(self, log: _Log, wanted: set[str]) -> None:
        self.log = log
        self.wanted = wanted

    def rows(self, event: _Event) -> list[dict[str, str]]:
        kind, body, log = event.kind, event.body, self.log
        out: list[dict[str, str]] = []
        if kind == "harvest":
            if body["lot"] in self.wanted and log.is_field_raw(body["lot"]):
                out.append(self._harvesting(event))
        elif kind == "cooling":
            if body["lot"] in self.wanted and log.is_field_raw(body["lot"]):
                out.append(self._cooling(event))
        elif kind in ("packing", "transformation"):
            outputs = [body["output"]] if kind == "packing" else body["outputs"]
            for output in outputs:
                if output["lot"] in self.wanted:
                    out.append(self._made(event, output))
        elif kind in ("shipping", "receiving"):
            for item in body["lots"]:
                code = item["lot"]
                if code not in self.wanted:
                    continue
                if kind == "receiving" and body.get("first_land_based") is True:
                    out.append(self._landing(event, item))
                elif not log.is_unpacked_raw(code, event.entry):
                    out.append(self._shipping(event, item) if kind == "shipping"
                               else self._receiving(event, item))
        return out

    # --- shared parts --------------------------------------------------------------------

    def _row(self, cte: str, event: _Event, code: str, quantity: Mapping[str, str]
             ) -> dict[str, str]:
        lot = self.log.lots.get(code)
        gtin = lot.gtin if lot is not None else ""
        product = self.log.product(gtin) if gtin else None
        row = dict.fromkeys(COLUMNS, "")
        source, reference = self._source(code)
        row.update({
            "Critical Tracking Event": cte,
            "Event Date": event.day,
            "Traceability Lot Code": code,
            "Product Description": _product_description(product, gtin),
            "Product GTIN": gtin,
            "On Food Traceability List": "Yes" if product is not None and product.ftl else "No",
            "Quantity": quantity["value"],
            "Unit of Measure": _unit(quantity["unit"]),
            "Traceability Lot Code Source": source,
            "Traceability Lot Code Source Reference": reference,
            "Event Location Description": _place(self.log, event.body.get("location")),
            "Reference Document Type": _LEDGER_RECORD,
            "Reference Document Number": str(event.entry),
            "Event Time": event.body["event_time"],
            "Ledger Entry": str(event.entry),
        })
        return row

    def _source(self, code: str) -> tuple[str, str]:
        """Where the TLC was assigned: the lot's creating entry, or for a lot from a fishing
        vessel its first land-based receiver (§1.1335(e))."""
        landed = self.log.landed(code) if self.log.is_raw(code) else None
        lot = self.log.lots.get(code)
        ident = landed.body["location"] if landed is not None else (
            lot.location if lot is not None else None)
        if not ident:
            return "", ""
        location = self.log.location(ident)
        return _place(self.log, ident), _place_reference(location) if location else ""

    def _lot_quantity(self, code: str) -> dict[str, str]:
        lot = self.log.lots[code]
        return {"value": lot.quantity, "unit": lot.unit}

    def _harvests(self, code: str, before: int | None = None) -> list[_Event]:
        return [event for event in self.log.history(code) if event.kind == "harvest"
                and event.body["lot"] == code and (before is None or event.entry < before)]

    def _farm(self, code: str, before: int | None = None) -> str:
        return _join(_place(self.log, event.body["location"])
                     for event in self._harvests(code, before))

    def _recipient(self, code: str, after: int, holder: str) -> str:
        """The first place the lot went after entry ``after``: the destination of a shipment,
        another business's cooling, or the packing or transformation that used it."""
        for event in self.log.history(code):
            if event.entry <= after:
                continue
            body = event.body
            if event.kind == "shipping" and any(item["lot"] == code for item in body["lots"]):
                if body.get("to_location"):
                    return _place(self.log, body["to_location"])
                return _business(self.log, body["to"])
            if event.kind == "cooling" and body["lot"] == code and event.actor != holder:
                return _place(self.log, body["location"])
            if event.kind in ("packing", "transformation") and any(
                    item["lot"] == code for item in body["inputs"]):
                return _place(self.log, body["location"])
        return ""

    def _documents(self, shipping: _Event | None) -> list[tuple[str, str]]:
        if shipping is None:
            return []
        documents = shipping.body.get("documents", {})
        pairs = [(label, documents[key]) for key, label in _DOCUMENT_TYPES.items()
                 if documents.get(key)]
        return pairs + [(_SHIPMENT_CODE, shipping.body["shipment"])]

    @staticmethod
    def _cite(row: dict[str, str], pairs: list[tuple[str, str]]) -> None:
        if pairs:
            row["Reference Document Type"] = "; ".join(label for label, _ in pairs)
            row["Reference Document Number"] = "; ".join(number for _, number in pairs)

    # --- one function per CTE ------------------------------------------------------------

    def _harvesting(self, event: _Event) -> dict[str, str]:
        code = event.body["lot"]
        row = self._row(HARVESTING, event, code, event.body["quantity"])
        location = self.log.location(event.body["location"])
        row.update({
            "Location Description for the Immediate Subsequent Recipient":
                self._recipient(code, event.entry, event.actor),
            "Commodity and Variety": _commodity(self.log.product(self.log.lots[code].gtin)),
            "Field or Container Name": location.name if location is not None else "",
            "Location Description for the Farm Where the Food Was Harvested":
                row["Event Location Description"],
            "Harvester Business Name and Phone Number": _business(self.log, event.actor),
            "Date of Harvesting": event.day,
        })
        return row

    def _cooling(self, event: _Event) -> dict[str, str]:
        code = event.body["lot"]
        row = self._row(COOLING, event, code, self._lot_quantity(code))
        row.update({
            "Location Description for the Immediate Subsequent Recipient":
                self._recipient(code, event.entry, event.actor),
            "Commodity and Variety": _commodity(self.log.product(self.log.lots[code].gtin)),
            "Location Description for the Farm Where the Food Was Harvested":
                self._farm(code, event.entry),
            "Location Description for Where the Food Was Cooled": row["Event Location Description"],
            "Date of Cooling": event.day,
        })
        return row

    def _made(self, event: _Event, output: Mapping[str, Any]) -> dict[str, str]:
        inputs = event.body["inputs"]
        codes = [item["lot"] for item in inputs]
        field_raw = [code for code in codes if self.log.is_field_raw(code)]
        initial = event.kind == "packing" and len(field_raw) == len(codes)
        row = self._row(INITIAL_PACKING if initial else TRANSFORMATION, event, output["lot"],
                        output["quantity"])
        row.update({
            "Input Traceability Lot Codes": "; ".join(codes),
            "Input Product Descriptions": "; ".join(self._description(code) for code in codes),
            "Input Quantities and Units of Measure":
                "; ".join(_amount(item["quantity"]) for item in inputs),
        })
        if field_raw:
            # §1.1330(a); for a transformation of a RAC never packed, §1.1350(b).
            row.update(self._origin(field_raw, event))
        return row

    def _description(self, code: str) -> str:
        lot = self.log.lots.get(code)
        return _product_description(self.log.product(lot.gtin), lot.gtin) if lot else code

    def _origin(self, codes: list[str], event: _Event) -> dict[str, str]:
        """The harvest, cooling and receipt KDEs of the RAC lots an initial packing used."""
        harvests = [h for code in codes for h in self._harvests(code, event.entry)]
        coolings = [c for code in codes for c in self.log.history(code)
                    if c.kind == "cooling" and c.body["lot"] == code and c.entry < event.entry]
        receipts = [r for code in codes for r in self.log.history(code)
                    if r.kind == "receiving" and r.actor == event.actor and r.entry < event.entry]
        fields_ = [self.log.location(h.body["location"]) for h in harvests]
        return {
            "Commodity and Variety": _join(
                _commodity(self.log.product(self.log.lots[code].gtin)) for code in codes),
            "Field or Container Name": _join(loc.name for loc in fields_ if loc is not None),
            "Location Description for the Farm Where the Food Was Harvested":
                _join(_place(self.log, h.body["location"]) for h in harvests),
            "Harvester Business Name and Phone Number":
                _join(_business(self.log, h.actor) for h in harvests),
            "Date of Harvesting": _join(sorted(h.day for h in harvests)),
            "Location Description for Where the Food Was Cooled":
                _join(_place(self.log, c.body["location"]) for c in coolings),
            "Date of Cooling": _join(sorted(c.day for c in coolings)),
            "Date the Food Was Received": _join(sorted(r.day for r in receipts)),
        }

    def _landing(self, event: _Event, item: Mapping[str, Any]) -> dict[str, str]:
        code = item["lot"]
        row = self._row(FIRST_LAND_BASED_RECEIVING, event, code, item["quantity"])
        harvests = self._harvests(code, event.entry)
        days = sorted(h.day for h in harvests)
        areas = []
        for harvest in harvests:
            location = self.log.location(harvest.body["location"])
            if location is None:
                areas.append(harvest.body["location"])
            elif location.fao_area:
                areas.append(f"FAO Major Fishing Area {location.fao_area} ({location.name})")
            elif location.lat and location.lon:
                areas.append(f"{location.name} ({location.lat}, {location.lon})")
            else:
                areas.append(location.name)
        row.update({
            "Harvest Date Range": "" if not days else (
                days[0] if days[0] == days[-1] else f"{days[0]}/{days[-1]}"),
            "Harvest Locations": _join(areas),
        })
        self._cite(row, self._receipt_documents(event))
        return row

    def _shipping(self, event: _Event, item: Mapping[str, Any]) -> dict[str, str]:
        row = self._row(SHIPPING, event, item["lot"], item["quantity"])
        body = event.body
        row["Location Description for the Immediate Subsequent Recipient"] = (
            _place(self.log, body["to_location"]) if body.get("to_location")
            else _business(self.log, body["to"]))
        self._cite(row, self._documents(event))
        return row

    def _receiving(self, event: _Event, item: Mapping[str, Any]) -> dict[str, str]:
        row = self._row(RECEIVING, event, item["lot"], item["quantity"])
        shipment = self.log.session.get(ShipmentRow, event.body["shipment"])
        if shipment is not None:
            row["Location Description for the Immediate Previous Source"] = _place(
                self.log, shipment.from_location)
        row["Date the Food Was Received"] = event.day
        self._cite(row, self._receipt_documents(event))
        return row

    def _receipt_documents(self, event: _Event) -> list[tuple[str, str]]:
        shipment = self.log.session.get(ShipmentRow, event.body["shipment"])
        pairs = self._documents(self.log.event(int(shipment.shipped_at))) if shipment else [
            (_SHIPMENT_CODE, event.body["shipment"])]
        if event.body.get("inbound_batch"):
            pairs.append((_INBOUND_BATCH, event.body["inbound_batch"]))
        return pairs


# --- the export -----------------------------------------------------------------------------


def _check_bound(value: Bound, name: str) -> None:
    if isinstance(value, datetime) and value.tzinfo is None:
        raise MalformedInput(f"{name} must be timezone-aware (or a date)")


def _in_range(when: datetime, start: Bound, end: Bound) -> bool:
    """Both bounds are inclusive. A date compares with the event's local date; a datetime
    compares with the event's instant."""
    if start is not None:
        if when < start if isinstance(start, datetime) else when.date() < start:
            return False
    if end is not None:
        if when > end if isinstance(end, datetime) else when.date() > end:
            return False
    return True


def _lots(session: Session, product: str | None, lot: str | None) -> set[str]:
    if lot is not None:
        codes = {info.code for info in lineage.trace_back(session, lot).lots}
        codes |= {info.code for info in lineage.trace_forward(session, lot).lots}
        if product is not None:
            gtins = dict(session.execute(
                select(LotRow.code, LotRow.gtin).where(LotRow.code.in_(sorted(codes)))).all())
            codes = {code for code in codes if gtins.get(code) == product}
        return codes
    query = select(LotRow.code)
    if product is not None:
        query = query.where(LotRow.gtin == product)
    return set(session.scalars(query))


def rows(session: Session, *, product: str | None = None, lot: str | None = None,
         start: datetime | date | None = None, end: datetime | date | None = None
         ) -> list[dict[str, str]]:
    """The spreadsheet's rows, each a dict keyed by :data:`COLUMNS`, sorted by event date, then
    traceability lot code, then ledger entry.

    ``product`` keeps rows whose lot is of that GTIN. ``lot`` keeps rows whose lot is in that
    lot's full trace: every lot it was made from and every lot made from it, so the answer to a
    24-hour request about one lot is complete. ``start`` and ``end`` bound the event date
    (inclusive; a datetime must be timezone-aware). Raises :class:`~suyuan.errors.NotFound` for
    an unknown ``lot`` and :class:`~suyuan.errors.MalformedInput` for a malformed GTIN or a
    naive datetime.
    """
    _check_bound(start, "start")
    _check_bound(end, "end")
    if product is not None:
        product = normalize_gtin(product)
    wanted = _lots(session, product, lot)
    log = _Log(session)
    log.load(wanted)
    events = {event.entry: event for code in wanted for event in log.history(code)
              if _in_range(event.when, start, end)}
    # Second step: the other lots these events name (inputs, co-shipped lots), whose history
    # gives harvest, cooling, landing and next-recipient facts.
    log.load(code for event in events.values() for code in log.involved(event))
    builder = _Builder(log, wanted)
    found: list[tuple[tuple[str, str, int, int], dict[str, str]]] = []
    for entry in sorted(events):
        for position, row in enumerate(builder.rows(events[entry])):
            key = (row["Event Date"], row["Traceability Lot Code"], entry, position)
            found.append((key, row))
    found.sort(key=lambda pair: pair[0])
    return [row for _, row in found]


# --- writers --------------------------------------------------------------------------------


def _defuse(value: str) -> str:
    """Spreadsheet programs run a cell that starts with = + - @ as a formula. Quote it (the
    OWASP advice for CSV files), because these names come from the actors who signed them."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_csv(rows: Iterable[Mapping[str, str]], stream: IO[str] | IO[bytes]) -> None:
    """Write the rows as CSV: UTF-8 with a byte-order mark (so Excel reads Chinese text
    correctly), one header row of :data:`COLUMNS`, CRLF line ends. ``stream`` is a text stream
    (opened with ``newline=""``) or a binary one."""
    if isinstance(stream, io.RawIOBase | io.BufferedIOBase):
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            _write_csv(rows, text)
        finally:
            text.flush()
            text.detach()
    else:
        _write_csv(rows, stream)  # type: ignore[arg-type]


def _write_csv(rows: Iterable[Mapping[str, str]], text: IO[str]) -> None:
    text.write("\ufeff")
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_defuse(row.get(name, "")) for name in COLUMNS])


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _number(value: str) -> int | float | None:
    """The value as an Excel number if a double holds it exactly, else None (kept as text)."""
    try:
        exact = Decimal(value)
    except ArithmeticError:
        return None
    if not exact.is_finite():
        return None
    if exact == exact.to_integral_value() and abs(exact) < 2**53:
        return int(exact)
    number = float(exact)
    return number if Decimal(repr(number)) == exact else None


def write_xlsx(rows: Iterable[Mapping[str, str]],
               path_or_stream: str | os.PathLike[str] | IO[bytes]) -> None:
    """Write the rows as an XLSX workbook of one sheet: a bold header row that stays frozen on
    scrolling, an autofilter over every column, column widths to fit, single dates as real
    Excel dates, and quantities as numbers wherever a double holds them exactly."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "FSMA 204"
    widths = [_width(name) for name in COLUMNS]
    for column, name in enumerate(COLUMNS, start=1):
        cell = sheet.cell(row=1, column=column, value=name)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(vertical="top")
    count = 0
    for count, row in enumerate(rows, start=1):
        for column, name in enumerate(COLUMNS, start=1):
            value = row.get(name, "")
            if not value:
                continue
            cell = sheet.cell(row=count + 1, column=column)
            number = _number(value) if name in _NUMBER_COLUMNS else None
            if name in DATE_COLUMNS and _ISO_DATE.match(value):
                cell.value = date.fromisoformat(value)
                cell.number_format = "yyyy-mm-dd"
            elif number is not None:
                cell.value = number
            else:
                cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
                cell.data_type = "s"  # never a formula, whatever the text starts with
            widths[column - 1] = max(widths[column - 1], _width(value))
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = min(max(width + 2, 10), 60)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{count + 1}"
    workbook.save(path_or_stream)  # type: ignore[arg-type]
