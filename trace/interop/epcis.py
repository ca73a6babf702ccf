"""GS1 EPCIS 2.0 JSON-LD: ledger entries exported as events, documents validated against the
official JSON schema, and events imported as ``epcis_event`` statements.

Export
    :func:`to_epcis_event` turns one entry of a supply-chain kind into an EPCIS event: *what*
    (lots as GS1 Digital Link URIs ``https://id.gs1.org/01/<gtin>/10/<lot>`` in quantity lists
    with UN/CEFACT units, serials as ``…/01/<gtin>/21/<serial>`` in EPC lists), *when*
    (``eventTime`` in the event's own offset and ``eventTimeZoneOffset``), *where*
    (``https://id.gs1.org/414/<gln>`` for places with a GLN, else ``urn:suyuan:loc:<id>``) and
    *why* (bizStep, disposition, business transactions, sources and destinations, sensor
    readings, lot master data, a recall's persistent disposition, a correction's error
    declaration). :func:`export_document` wraps events in an EPCISDocument;
    :func:`export_lot_history`, :func:`export_range` and :func:`export_all` choose the entries
    from the projections and the entries' ``kind`` index.

Event IDs
    ``eventID`` is the CBV 2.0 event hash (:mod:`suyuan.interop.event_hash`) of the event
    *without* the ledger's decorations ``suyuan:entry``, ``suyuan:actor`` and ``suyuan:kind``,
    which every exported document lists in ``suyuan:ignoreFields`` — the repository-decoration
    declaration the reference hash generator honours. So the ID names the business event, not
    where this ledger filed it: the same event exported by two ledgers, or imported and exported
    again, keeps one ID. :func:`event_id` computes it.

Import
    :func:`events_from_document` validates a document and returns its events, each carrying the
    document's own ``@context`` definitions (prefixes such as ``example:``) so that it reads and
    hashes the same on its own. :func:`statements_for_import` gives one ``epcis_event`` body per
    event with every JSON number written as a decimal string (signed data holds no floats, see
    :func:`encode_numbers`); :func:`decode_numbers` restores them exactly when the entry is
    exported, so an imported event exports back equal to what came in, with the same hash.

Validation
    :func:`validate_document` uses ``jsonschema.Draft7Validator`` with a format checker against
    the official schema, read in place (never copied into the project) from the path given, the
    ``SUYUAN_EPCIS_SCHEMA`` environment variable, or ``../shared/corpora/gs1-epcis/`` beside the
    repository. URI formats are only checked when ``rfc3986-validator`` is installed, so its
    absence is a :class:`~suyuan.errors.ConfigError`, not a silent pass; ``date-time`` is checked
    here (RFC 3339 with the upper-case ``T`` and ``Z`` of xsd:dateTime) because jsonschema only
    checks it with yet another optional package.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from suyuan import fields, ledger
from suyuan.errors import ConfigError, MalformedInput, NotFound
from suyuan.events import KINDS
from suyuan.interop.event_hash import EVENT_TYPES, document_events, event_hash_id
from suyuan.interop.gs1 import CANONICAL_STEM, DigitalLink, normalize_gln
from suyuan.model import Entry, Statement, format_time, utcnow
from suyuan.storage.schema import (
    ActorRow,
    EntryRow,
    LocationRow,
    LotEventRow,
    LotRow,
    ShipmentLotRow,
    ShipmentRow,
)

__all__ = [
    "EPCIS_CONTEXT",
    "EXPORTABLE_KINDS",
    "LEDGER_FIELDS",
    "NUMBER_TYPE",
    "SCHEMA_ENV",
    "STANDARD_CONTEXT",
    "SUYUAN_NS",
    "SchemaViolation",
    "decode_numbers",
    "encode_numbers",
    "event_id",
    "events_from_document",
    "export_all",
    "export_document",
    "export_lot_history",
    "export_range",
    "json_number",
    "schema_location",
    "statements_for_import",
    "to_epcis_event",
    "validate_document",
]

STANDARD_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
SUYUAN_NS = "urn:suyuan:epcis:"
"""Namespace of the project's EPCIS extension members (``suyuan:entry`` …)."""

EPCIS_CONTEXT: list[Any] = [STANDARD_CONTEXT, {"suyuan": SUYUAN_NS}]
"""The ``@context`` of every exported document."""

LEDGER_FIELDS = ("suyuan:entry", "suyuan:actor", "suyuan:kind")
"""Where the ledger filed an event: decorations left out of its hash (``suyuan:ignoreFields``)."""

NUMBER_TYPE = SUYUAN_NS + "number"
"""JSON-LD ``@type`` marking a JSON number of an extension member kept as a decimal string."""

SCHEMA_ENV = "SUYUAN_EPCIS_SCHEMA"
_REPO = Path(__file__).resolve().parents[2]
_DEFAULT_SCHEMA = _REPO.parent / "shared" / "corpora" / "gs1-epcis" / "EPCIS-JSON-Schema.json"

_CBV_BIZSTEP = "https://ref.gs1.org/cbv/BizStep-"
_EPCIS_EVENT = "epcis_event"
_CORRECTION = "correction"
EXPORTABLE_KINDS = frozenset(
    {name for name, kind in KINDS.items() if kind.epcis_type} | {_EPCIS_EVENT, _CORRECTION}
)
"""Statement kinds that become EPCIS events (a correction only when what it corrects does)."""

# Kinds the lot_events projection does not index by lot; range exports read them by kind.
_UNINDEXED_KINDS = (_EPCIS_EVENT, _CORRECTION, "input_application")
_CHUNK = 400


# --------------------------------------------------------------------------------------------
# Validation


class SchemaViolation(MalformedInput):
    """A document the EPCIS 2.0 JSON schema refuses; ``path`` is the JSON path of the most
    relevant failure (``$.epcisBody.eventList[0].readPoint.id``), ``reason`` the schema's
    message for it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"not a valid EPCIS 2.0 document at {path}: {reason}")
        self.path = path
        self.reason = reason


def schema_location(path: str | os.PathLike[str] | None = None) -> Path:
    """The EPCIS JSON schema file: ``path``, else ``$SUYUAN_EPCIS_SCHEMA``, else the shared
    corpus beside the repository. Raises :class:`ConfigError` when the file is not there."""
    if path is not None:
        candidate, how = Path(path), "the path given"
    elif os.environ.get(SCHEMA_ENV):
        candidate, how = Path(os.environ[SCHEMA_ENV]), f"${SCHEMA_ENV}"
    else:
        candidate, how = _DEFAULT_SCHEMA, "the default location"
    if not candidate.is_file():
        raise ConfigError(
            f"EPCIS JSON schema not found at {candidate} ({how}): set {SCHEMA_ENV} to the path "
            "of EPCIS-JSON-Schema.json from gs1/EPCIS"
        )
    return candidate


_DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})\Z"
)


def _is_date_time(value: object) -> bool:
    """RFC 3339 ``date-time`` as xsd:dateTime writes it (upper-case ``T`` and ``Z``)."""
    if not isinstance(value, str):
        return True  # formats only constrain strings; the type keyword handles the rest
    match = _DATE_TIME.match(value)
    if match is None:
        return False
    minutes, seconds, _, zone = match.groups()
    if seconds == "60":  # a leap second: valid RFC 3339, beyond what datetime represents
        seconds = "59"
    try:
        datetime.fromisoformat(f"{minutes}:{seconds}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=4)
def _validator(path: str, mtime_ns: int) -> Any:
    from jsonschema import Draft7Validator, FormatChecker
    from jsonschema.exceptions import SchemaError

    checker = FormatChecker()
    if "uri" not in checker.checkers:
        raise ConfigError(
            "rfc3986-validator is not installed, so jsonschema would accept any string as a "
            "URI: install it (pip install rfc3986-validator)"
        )
    checker.checks("date-time")(_is_date_time)
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
        Draft7Validator.check_schema(schema)
    except (OSError, ValueError, SchemaError) as exc:
        raise ConfigError(f"cannot use the EPCIS JSON schema at {path}: {exc}") from exc
    return Draft7Validator(schema, format_checker=checker)


def validate_document(doc: Any, schema_path: str | os.PathLike[str] | None = None) -> None:
    """Check ``doc`` (parsed JSON) against the EPCIS 2.0 JSON schema with formats checked.

    Returns ``None`` or raises :class:`SchemaViolation` naming the path and the schema's reason
    (the most relevant of the failures, as ``jsonschema.exceptions.best_match`` ranks them).
    """
    from jsonschema.exceptions import best_match

    location = schema_location(schema_path)
    validator = _validator(str(location), location.stat().st_mtime_ns)
    error = best_match(validator.iter_errors(doc))
    if error is not None:
        reason = error.message if len(error.message) <= 300 else error.message[:297] + "..."
        raise SchemaViolation(error.json_path, reason)


# --------------------------------------------------------------------------------------------
# Numbers: decimal strings in signed bodies, JSON numbers in EPCIS


def json_number(text: str | Decimal) -> int | float:
    """The JSON number for a decimal string, exactly: an ``int`` when whole, else the
    ``float`` whose shortest form is the same decimal (``"120.125"`` → ``120.125``).

    Raises :class:`MalformedInput` for a value a JSON number written by a standard encoder
    cannot carry exactly (more than about 15 significant digits).
    """
    try:
        value = text if isinstance(text, Decimal) else Decimal(text)
    except (InvalidOperation, TypeError) as exc:
        raise MalformedInput(f"{text!r} is not a decimal number") from exc
    if not value.is_finite():
        raise MalformedInput(f"{text!r} is not a finite number")
    if value == value.to_integral_value():
        return int(value)
    number = float(value)
    if Decimal(repr(number)) != value:
        raise MalformedInput(f"{text} has more digits than a JSON number keeps exactly")
    return number


def _decimal_text(value: int | float | Decimal, where: str) -> str:
    """A number as a decimal string; a ``.`` marks a value that was not an integer."""
    if isinstance(value, int):
        return str(value)
    number = Decimal(repr(value)) if isinstance(value, float) else value
    if not number.is_finite():
        raise MalformedInput(f"{where} is not a finite number")
    text = format(number, "f")
    return text if "." in text else text + ".0"


def _number_from_text(text: Any, where: str) -> int | float:
    if isinstance(text, int) and not isinstance(text, bool):
        return text  # a body signed with a whole number (signed data may hold integers)
    if not isinstance(text, str) or not _STORED_NUMBER.match(text):
        raise MalformedInput(f"{where} must be a decimal string, not {text!r}")
    return float(text) if "." in text else int(text)


_STORED_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
_QUANTITY_LISTS = frozenset(
    {"quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"}
)
_REPORT_NUMBERS = frozenset(
    {"value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"}
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _numeric_members(event: Mapping[str, Any]) -> Iterable[tuple[dict[str, Any], str, str]]:
    """(holder, key, path) of the standard members the schema types as numbers."""
    for name in _QUANTITY_LISTS:
        for i, element in enumerate(event.get(name) or []):
            if isinstance(element, dict) and "quantity" in element:
                yield element, "quantity", f"{name}[{i}].quantity"
    for i, sensor in enumerate(event.get("sensorElementList") or []):
        if not isinstance(sensor, dict):
            continue
        for j, report in enumerate(sensor.get("sensorReport") or []):
            if not isinstance(report, dict):
                continue
            for key in _REPORT_NUMBERS & report.keys():
                yield report, key, f"sensorElementList[{i}].sensorReport[{j}].{key}"


def encode_numbers(event: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an EPCIS event fit for a signed statement: no JSON numbers in it.

    Quantities and sensor values (the members the schema types as numbers) become decimal
    strings in place (``26.0`` → ``"26.0"``, ``500`` → ``"500"``); a number anywhere else (an
    extension member) becomes ``{"@value": "<decimal>", "@type": NUMBER_TYPE}``, so that it is
    told apart from a string. :func:`decode_numbers` is the exact inverse.
    """
    out = copy.deepcopy(dict(event))
    for holder, key, path in list(_numeric_members(out)):
        if _is_number(holder[key]):
            holder[key] = _decimal_text(holder[key], f"event.{path}")
    # Every number left is in an extension member, where a string could also stand.
    return _mark_numbers(out, "event")


def _mark_numbers(value: Any, where: str) -> Any:
    if _is_number(value):
        return {"@value": _decimal_text(value, where), "@type": NUMBER_TYPE}
    if isinstance(value, dict):
        return {key: _mark_numbers(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_mark_numbers(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def decode_numbers(event: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`encode_numbers`: the event with its JSON numbers back, each an
    ``int`` or ``float`` exactly as it was."""
    out = _unmark_numbers(copy.deepcopy(dict(event)))
    for holder, key, path in _numeric_members(out):
        holder[key] = _number_from_text(holder[key], f"event.{path}")
    return out


def _unmark_numbers(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"@value", "@type"} and value["@type"] == NUMBER_TYPE:
            return _number_from_text(value["@value"], "a marked number")
        return {key: _unmark_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unmark_numbers(item) for item in value]
    return value


# --------------------------------------------------------------------------------------------
# Import


def _context_list(context: Any) -> list[Any]:
    if context is None:
        return []
    return list(context) if isinstance(context, list) else [context]


def events_from_document(doc: Any, *, schema_path: str | os.PathLike[str] | None = None
                         ) -> list[dict[str, Any]]:
    """The events of an EPCISDocument or EPCISQueryDocument, after validating it.

    Each event is a copy carrying the document's ``@context`` definitions beyond the standard
    EPCIS context (before any of its own), so it reads and hashes alike on its own. Fields the
    document declares repository decorations (``…:ignoreFields``) are left out. Extension event
    types, which have no CBV hash, are refused.
    """
    validate_document(doc, schema_path)
    if not isinstance(doc, Mapping) or doc.get("type") not in ("EPCISDocument",
                                                                 "EPCISQueryDocument"):
        raise MalformedInput("expected an EPCISDocument or EPCISQueryDocument")
    events = []
    for position, (event, context) in enumerate(document_events(doc)):
        if event.get("type") not in EVENT_TYPES:
            raise MalformedInput(
                f"event {position} has the extension type {event.get('type')!r}: only "
                f"{', '.join(sorted(EVENT_TYPES))} can be imported"
            )
        event = copy.deepcopy(event)
        own = _context_list(event.pop("@context", None))
        extra = [c for c in _context_list(context) if c != STANDARD_CONTEXT]
        merged = [c for i, c in enumerate(extra + own) if c not in (extra + own)[:i]]
        if merged:
            event = {"@context": merged, **event}
        try:
            event_hash_id(event, context)
        except MalformedInput as exc:
            raise MalformedInput(f"event {position} cannot be hashed: {exc}") from exc
        events.append(event)
    return events


def statements_for_import(doc: Any, *, source: str | None = None,
                          schema_path: str | os.PathLike[str] | None = None
                          ) -> list[dict[str, Any]]:
    """One ``epcis_event`` statement body per event of ``doc``, in document order.

    ``{"event": <the event, numbers as decimal strings>, "source": <source>}``; ``source``
    defaults to the document's ``id`` when it has one of at most 200 characters. Nothing is
    returned (:class:`SchemaViolation` is raised) unless the whole document is valid.
    """
    if source is None and isinstance(doc, Mapping):
        ident = doc.get("id")
        source = ident if isinstance(ident, str) and 0 < len(ident) <= 200 else None
    bodies = []
    for event in events_from_document(doc, schema_path=schema_path):
        body: dict[str, Any] = {"event": encode_numbers(event)}
        if source is not None:
            body["source"] = source
        bodies.append(body)
    return bodies


# --------------------------------------------------------------------------------------------
# Export: identifiers


def event_id(event: Mapping[str, Any], context: Any = None) -> str:
    """The CBV 2.0 event hash ID of ``event`` without the ledger's decorations
    (:data:`LEDGER_FIELDS`); ``context`` is the document's ``@context``."""
    business = {k: v for k, v in event.items() if k not in LEDGER_FIELDS}
    return event_hash_id(business, context)


def _lot_uri(gtin: str, lot: str) -> str:
    try:
        return DigitalLink(gtin, lot=lot).uri(CANONICAL_STEM)
    except MalformedInput:
        # Ledger lot codes may be longer than the 20 characters of AI (10).
        return f"urn:suyuan:lot:{gtin}:{quote(lot, safe='')}"


def _serial_uri(gtin: str, serial: str) -> str:
    try:
        return DigitalLink(gtin, serial=serial).uri(CANONICAL_STEM)
    except MalformedInput:
        return f"urn:suyuan:serial:{gtin}:{quote(serial, safe='')}"


class _Lookup:
    """Projection reads for one export, remembered (a document repeats the same places)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._locations: dict[str, str] = {}
        self._parties: dict[str, str] = {}

    def lot(self, code: str) -> LotRow:
        row = self.session.get(LotRow, code)
        if row is None:
            raise NotFound(f"unknown lot {code!r}")
        return row

    def lot_uri(self, code: str) -> str:
        return _lot_uri(self.lot(code).gtin, code)

    def location(self, ident: str) -> str:
        if ident not in self._locations:
            row = self.session.get(LocationRow, ident)
            uri = f"urn:suyuan:loc:{quote(ident, safe=':/.-_')}"
            if row is not None and row.gln:
                try:
                    uri = f"{CANONICAL_STEM}/414/{normalize_gln(row.gln)}"
                except MalformedInput:
                    pass  # a registered "gln" that is no GLN: keep the project URI
            self._locations[ident] = uri
        return self._locations[ident]

    def party(self, name: str) -> str:
        """``https://id.gs1.org/417/<gln>`` when the actor registered a party GLN
        (``info.gln``), else ``urn:suyuan:party:<name>``."""
        if name not in self._parties:
            row = self.session.get(ActorRow, name)
            uri = f"urn:suyuan:party:{quote(name, safe='.-_')}"
            info = json.loads(row.info or "{}") if row is not None else {}
            gln = info.get("gln") if isinstance(info, dict) else None
            if isinstance(gln, str):
                try:
                    uri = f"{CANONICAL_STEM}/417/{normalize_gln(gln)}"
                except MalformedInput:
                    pass
            self._parties[name] = uri
        return self._parties[name]

    def country(self, ident: str) -> str | None:
        row = self.session.get(LocationRow, ident)
        # A 6-digit 行政区划代码 (GB/T 2260) places the location in China.
        return "CN" if row is not None and row.admin_code else None


# --------------------------------------------------------------------------------------------
# Export: one event


def _when(text: str) -> tuple[str, str]:
    """``eventTime`` with seconds, in the event's own offset, and ``eventTimeZoneOffset``."""
    moment = fields.event_time(text, "event_time")
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return moment.isoformat(), f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _biz_step(uri: str) -> str:
    """CBV steps in the short form EPCIS JSON uses (``shipping``); project steps as URIs."""
    return uri[len(_CBV_BIZSTEP):] if uri.startswith(_CBV_BIZSTEP) else uri


def _quantity(epc_class: str, quantity: Mapping[str, str] | None) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": epc_class}
    if quantity is not None:
        element["quantity"] = json_number(quantity["value"])
        element["uom"] = quantity["unit"]
    return element


def _temperatures(readings: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    return [
        {"sensorMetadata": {"time": _when(r["time"])[0]},
         "sensorReport": [{"type": "Temperature", "value": json_number(r["celsius"]),
                           "uom": "CEL"}]}
        for r in readings
    ]


# Lab result units: (measurement type, UN/CEFACT Rec 20 code or None). A mass fraction is
# dimensionless; Rec 20 has no colony-forming-unit code, so CFU/g keeps only its text.
_RESULT_UNITS: dict[str, tuple[str, str | None]] = {
    "mg/kg": ("Dimensionless", "NA"),
    "µg/kg": ("Dimensionless", "J33"),
    "%": ("Dimensionless", "P1"),
    "CFU/g": (SUYUAN_NS + "MeasurementType-ColonyCount", None),
}


def _lab_results(results: Sequence[Mapping[str, Any]], when: str) -> list[dict[str, Any]]:
    reports = []
    for result in results:
        kind, uom = _RESULT_UNITS[result["unit"]]
        report: dict[str, Any] = {"type": kind, "value": json_number(result["value"])}
        if uom is not None:
            report["uom"] = uom
        report["suyuan:analyte"] = result["analyte"]
        report["suyuan:unit"] = result["unit"]
        if "limit" in result:
            report["suyuan:limit"] = json_number(result["limit"])
        if "method" in result:
            report["suyuan:method"] = result["method"]
        if "passed" in result:
            report["suyuan:passed"] = result["passed"]
        reports.append(report)
    return [{"sensorMetadata": {"time": when}, "sensorReport": reports}]


def _places(event: dict[str, Any], uri: str | None, *, business: bool = True) -> None:
    if uri is not None:
        event["readPoint"] = {"id": uri}
        if business:
            event["bizLocation"] = {"id": uri}


def _documents(documents: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [
        {"type": kind, "bizTransaction": f"urn:suyuan:bt:{kind}:{quote(code, safe=':/.-_')}"}
        for kind, code in sorted((documents or {}).items())
    ]


def _corrected(session: Session, index: int) -> Statement:
    return Statement.from_json(ledger.entry(session, index).statement_json())


def to_epcis_event(entry_index: int, statement: Statement, session: Session) -> dict[str, Any]:
    """The EPCIS 2.0 event for ledger entry ``entry_index`` holding ``statement``.

    Reads places, lots, shipments and actors from the projections through ``session``. The
    event carries ``suyuan:entry``, ``suyuan:actor`` and ``suyuan:kind`` and its ``eventID``
    (:func:`event_id`; an imported event keeps the ``eventID`` it came with). Raises
    :class:`MalformedInput` for a kind that is no supply-chain event.
    """
    return _Exporter(session).event(entry_index, statement)


class _Exporter:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.look = _Lookup(session)

    def event(self, index: int, statement: Statement) -> dict[str, Any]:
        kind = statement.kind
        if kind == _EPCIS_EVENT:
            event = self._imported(statement)
        elif kind == _CORRECTION:
            event = self._correction(index, statement)
        elif kind in EXPORTABLE_KINDS:
            event = self._native(index, statement)
            ident = event_id(event, EPCIS_CONTEXT)
            event = {"type": event.pop("type"), "eventID": ident, **event}
        else:
            raise MalformedInput(f"entry {index} ({kind}) is not a supply-chain event and has "
                                 "no EPCIS form")
        event.update({"suyuan:entry": index, "suyuan:actor": statement.actor,
                      "suyuan:kind": kind})
        return event

    def _imported(self, statement: Statement) -> dict[str, Any]:
        raw = statement.body.get("event")
        if not isinstance(raw, dict):
            raise MalformedInput("body.event must be an object")
        event = decode_numbers(raw)
        if "eventID" not in event:
            event = {"type": event.get("type"), "eventID": event_id(event, EPCIS_CONTEXT),
                     **{k: v for k, v in event.items() if k != "type"}}
        return event

    def _correction(self, index: int, statement: Statement) -> dict[str, Any]:
        body = KINDS[_CORRECTION].validate(statement.body)
        target = body["corrects"]
        original = _corrected(self.session, target)
        if original.kind not in EXPORTABLE_KINDS:
            raise MalformedInput(f"entry {index} corrects entry {target} ({original.kind}), "
                                 "which has no EPCIS form")
        event = self.event(target, original)
        for name in LEDGER_FIELDS:
            event.pop(name, None)
        # EPCIS declares an error by repeating the erroneous event (same eventID, since the
        # declaration is outside the hash) with an errorDeclaration added.
        event["errorDeclaration"] = {
            "declarationTime": _when(statement.body["event_time"])[0],
            "reason": "incorrect_data",
            "suyuan:reason": body["reason"],
            "suyuan:corrects": target,
        }
        return event

    def _native(self, index: int, st: Statement) -> dict[str, Any]:
        spec = KINDS[st.kind]
        spec.validate(st.body)  # an entry's body was checked on append; refuse anything else
        b = st.body
        look = self.look
        time, offset = _when(b["event_time"])
        event: dict[str, Any] = {"type": spec.epcis_type, "eventTime": time,
                                 "eventTimeZoneOffset": offset}
        assert spec.biz_step is not None
        step = _biz_step(spec.biz_step)
        kind = st.kind

        if kind in ("planting", "harvest"):
            lot = look.lot(b["lot"])
            created_here = lot.created_at == index
            event["quantityList"] = [_quantity(_lot_uri(b["product"], b["lot"]),
                                               b.get("quantity"))]
            event["action"] = "ADD" if created_here else "OBSERVE"
            event["bizStep"] = step
            event["disposition"] = "active"
            _places(event, look.location(b["location"]))
            if created_here:
                event["ilmd"] = self._ilmd(b["lot"], b["location"])
            if kind == "planting":
                if "area_mu" in b:
                    event["suyuan:areaMu"] = json_number(b["area_mu"])
                if "variety" in b:
                    event["suyuan:variety"] = b["variety"]
        elif kind == "input_application":
            event["epcList"] = []
            if "lot" in b:
                event["quantityList"] = [_quantity(look.lot_uri(b["lot"]), None)]
            event["action"] = "OBSERVE"
            event["bizStep"] = step
            _places(event, look.location(b["location"]))
            event["suyuan:inputType"] = b["input_type"]
            event["suyuan:productName"] = b["product_name"]
            for key, name in (("registration_no", "registrationNo"),
                              ("active_ingredient", "activeIngredient")):
                if key in b:
                    event[f"suyuan:{name}"] = b[key]
            if "dose" in b:
                event["suyuan:dose"] = json_number(b["dose"]["value"])
                event["suyuan:doseUom"] = b["dose"]["unit"]
        elif kind in ("cooling", "storing"):
            event["quantityList"] = [_quantity(look.lot_uri(b["lot"]), None)]
            event["action"] = "OBSERVE"
            event["bizStep"] = step
            _places(event, look.location(b["location"]))
            if b.get("readings"):
                event["sensorElementList"] = _temperatures(b["readings"])
        elif kind == "test":
            event["quantityList"] = [_quantity(look.lot_uri(b["lot"]), None)]
            event["action"] = "OBSERVE"
            event["bizStep"] = step
            verdicts = [r["passed"] for r in b["results"] if "passed" in r]
            if verdicts:
                event["disposition"] = "conformant" if all(verdicts) else "non_conformant"
            _places(event, look.location(b["location"]) if "location" in b else None)
            if "sample_id" in b:
                event["bizTransactionList"] = [{
                    "type": "testres",
                    "bizTransaction": f"urn:suyuan:bt:testres:{quote(b['sample_id'], safe=':/.-_')}",
                }]
            event["sensorElementList"] = _lab_results(b["results"], time)
            if "report_sha256" in b:
                event["suyuan:reportSha256"] = b["report_sha256"]
        elif kind == "certificate":
            event["quantityList"] = [_quantity(look.lot_uri(b["lot"]), b["quantity"])]
            event["action"] = "OBSERVE"
            event["bizStep"] = step
            event["bizTransactionList"] = [{
                "type": "cert",
                "bizTransaction": f"urn:suyuan:bt:cert:{quote(b['certificate_no'], safe=':/.-_')}",
            }]
            event["suyuan:certificateBasis"] = b["basis"]
            if "origin" in b:
                event["suyuan:origin"] = b["origin"]
        elif kind in ("packing", "transformation"):
            outputs = [b["output"]] if kind == "packing" else b["outputs"]
            event["inputQuantityList"] = [_quantity(look.lot_uri(i["lot"]), i["quantity"])
                                          for i in b["inputs"]]
            if b.get("serials"):
                gtin = b["output"]["product"]
                event["outputEPCList"] = [_serial_uri(gtin, s) for s in b["serials"]]
            event["outputQuantityList"] = [_quantity(_lot_uri(o["product"], o["lot"]),
                                                     o["quantity"]) for o in outputs]
            event["bizStep"] = step
            event["disposition"] = "active"
            _places(event, look.location(b["location"]))
            if len(outputs) == 1:
                event["ilmd"] = self._ilmd(outputs[0]["lot"], b["location"])
            if kind == "transformation":
                event["suyuan:process"] = b["process"]
                for key, name in (("yield_min", "yieldMin"), ("yield_max", "yieldMax")):
                    if key in b:
                        event[f"suyuan:{name}"] = json_number(b[key])
        elif kind == "shipping":
            event["quantityList"] = [_quantity(look.lot_uri(i["lot"]), i["quantity"])
                                     for i in b["lots"]]
            event["action"] = "OBSERVE"
            event["bizStep"] = step
            event["disposition"] = "in_transit"
            _places(event, look.location(b["location"]), business=False)
            if b.get("documents"):
                event["bizTransactionList"] = _documents(b["documents"])
            event["sourceList"] = [
                {"type": "owning_party", "source": look.party(st.actor)},
                {"type": "location", "source": look.location(b["location"])},
            ]
            event["destinationList"] = [
                {"type": "owning_party", "destination": look.party(b["to"])}]
            if "to_location" in b:
                event["destinationList"].append(
                    {"type": "location", "destination": look.location(b["to_location"])})
            event["suyuan:shipment"] = b["shipment"]
            if "carrier" in b:
                event["suyuan:carrier"] = look.party(b["carrier"])
        elif kind == "transport":
            rows = self.session.scalars(
                select(ShipmentLotRow).where(ShipmentLotRow.shipment == b["shipment"])
                .order_by(ShipmentLotRow.lot)
            ).all()
            event["quantityList"] = [_quantity(look.lot_uri(r.lot), None) for r in rows]
            event["action"] = "OBSERVE"
            event["bizStep"] = step
            event["disposition"] = "in_transit"
            event["sensorElementList"] = _temperatures(b["readings"])
            event["suyuan:shipment"] = b["shipment"]
        elif kind == "receiving":
            shipment = self.session.get(ShipmentRow, b["shipment"])
            if shipment is None:
                raise NotFound(f"unknown shipment {b['shipment']!r}")
            event["quantityList"] = [_quantity(look.lot_uri(i["lot"]), i["quantity"])
                                     for i in b["lots"]]
            event["action"] = "OBSERVE"
            event["bizStep"] = step
            event["disposition"] = "in_progress"
            _places(event, look.location(b["location"]))
            event["sourceList"] = [
                {"type": "owning_party", "source": look.party(shipment.sender)},
                {"type": "location", "source": look.location(shipment.from_location)},
            ]
            event["destinationList"] = [
                {"type": "owning_party", "destination": look.party(st.actor)},
                {"type": "location", "destination": look.location(b["location"])},
            ]
            event["suyuan:shipment"] = b["shipment"]
            if "inbound_batch" in b:
                event["suyuan:inboundBatch"] = b["inbound_batch"]
            if "first_land_based" in b:
                event["suyuan:firstLandBased"] = b["first_land_based"]
        elif kind == "sale":
            lot = look.lot(b["lot"])
            if "serial" in b:
                event["epcList"] = [_serial_uri(lot.gtin, b["serial"])]
            event["quantityList"] = [_quantity(_lot_uri(lot.gtin, lot.code), b["quantity"])]
            event["action"] = "OBSERVE"
            event["bizStep"] = step
            event["disposition"] = "retail_sold"
            _places(event, look.location(b["location"]) if "location" in b else None,
                    business=False)
            if "order" in b:
                event["bizTransactionList"] = [{
                    "type": "po",
                    "bizTransaction": f"urn:suyuan:bt:po:{quote(b['order'], safe=':/.-_')}",
                }]
            event["suyuan:channel"] = b["channel"]
        elif kind == "recall":
            # The recall scope as the log fixed it when the recall was appended: the lots
            # named and every lot then made from them (their lot_events rows for this entry).
            scope = self.session.scalars(
                select(LotEventRow.lot).where(LotEventRow.entry == index)
            ).all()
            codes = list(dict.fromkeys([*b["lots"], *sorted(scope)]))
            event["quantityList"] = [_quantity(look.lot_uri(c), None) for c in codes]
            event["action"] = "OBSERVE"
            event["bizStep"] = step
            event["disposition"] = "recalled"
            event["persistentDisposition"] = {"set": ["recalled"]}
            event["suyuan:reason"] = b["reason"]
            if "level" in b:
                event["suyuan:level"] = b["level"]
        else:  # pragma: no cover - every kind with an EPCIS type is handled above
            raise MalformedInput(f"no EPCIS mapping for {kind}")
        return event

    def _ilmd(self, lot: str, location: str) -> dict[str, Any]:
        ilmd: dict[str, Any] = {"cbvmda:lotNumber": lot}
        country = self.look.country(location)
        if country is not None:
            ilmd["cbvmda:countryOfOrigin"] = country
        return ilmd


# --------------------------------------------------------------------------------------------
# Export: documents and selections


def export_document(session: Session, events: Sequence[tuple[int, Statement]], *,
                    now: datetime | None = None) -> dict[str, Any]:
    """An EPCISDocument holding the events of ``events`` ((entry index, statement) pairs), in
    the order given. ``suyuan:log`` and ``suyuan:treeSize`` name the log the entries are in
    (for inclusion proofs); ``suyuan:ignoreFields`` lists the ledger's decorations."""
    exporter = _Exporter(session)
    return _document(session, [exporter.event(index, st) for index, st in events], now)


def _document(session: Session, event_list: list[dict[str, Any]], now: datetime | None
              ) -> dict[str, Any]:
    return {
        "@context": copy.deepcopy(EPCIS_CONTEXT),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": format_time(now or utcnow()),
        "suyuan:log": ledger.origin(session),
        "suyuan:treeSize": ledger.size(session),
        "suyuan:ignoreFields": list(LEDGER_FIELDS),
        "epcisBody": {"eventList": event_list},
    }


def _statements(session: Session, indexes: Iterable[int]) -> list[tuple[int, Statement]]:
    wanted = sorted(set(indexes))
    found: list[tuple[int, Statement]] = []
    for start in range(0, len(wanted), _CHUNK):
        rows = session.execute(
            select(EntryRow.idx, EntryRow.leaf).where(EntryRow.idx.in_(wanted[start:start + _CHUNK]))
        ).all()
        for idx, leaf in rows:
            entry = Entry.from_leaf(bytes(leaf))
            found.append((int(idx), Statement.from_json(entry.statement_json())))
    return sorted(found, key=lambda pair: pair[0])


def _of_kinds(session: Session, kinds: Iterable[str]) -> list[tuple[int, Statement]]:
    """Entries of the given kinds, through the entries' kind index."""
    indexes = session.scalars(
        select(EntryRow.idx).where(EntryRow.kind.in_(sorted(kinds))).order_by(EntryRow.idx)
    ).all()
    return _statements(session, (int(i) for i in indexes))


def _with_corrections(chosen: list[tuple[int, Statement]],
                      corrections: list[tuple[int, Statement]]) -> list[tuple[int, Statement]]:
    """``chosen`` plus the corrections of entries in it (or of entries they correct)."""
    indexes = {index for index, _ in chosen}
    picked = dict(chosen)
    for index, statement in corrections:  # in log order: a correction follows what it corrects
        target = statement.body.get("corrects")
        if target in indexes or target in picked:
            picked[index] = statement
    return sorted(picked.items())


def export_lot_history(session: Session, lot: str, *, now: datetime | None = None
                       ) -> dict[str, Any]:
    """Every supply-chain event of ``lot`` (from the ``lot_events`` projection) and the
    corrections of those events, as one EPCISDocument in log order."""
    if session.get(LotRow, lot) is None:
        raise NotFound(f"unknown lot {lot!r}")
    indexes = session.scalars(
        select(LotEventRow.entry).where(
            LotEventRow.lot == lot, LotEventRow.kind.in_(sorted(EXPORTABLE_KINDS))
        ).order_by(LotEventRow.entry)
    ).all()
    chosen = _statements(session, (int(i) for i in indexes))
    corrections = _of_kinds(session, [_CORRECTION])
    return export_document(session, _with_corrections(chosen, corrections), now=now)


def _utc(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise MalformedInput(f"{what} must be a timezone-aware datetime")
    return moment.astimezone(UTC)


def export_range(session: Session, start: datetime, end: datetime, *,
                 now: datetime | None = None) -> dict[str, Any]:
    """Every supply-chain event whose ``eventTime`` is in ``[start, end)``, in log order.

    Candidates come from the ``lot_events`` projection (its local event times narrowed in SQL
    with a day's margin for offsets) and, for the kinds it does not index (imported events,
    corrections, applications to a place), from the entries' kind index; the exact interval
    is then applied to each exported ``eventTime``.
    """
    lower, upper = _utc(start, "start"), _utc(end, "end")
    if upper <= lower:
        raise MalformedInput("end must be after start")
    indexes = session.scalars(
        select(LotEventRow.entry).distinct().where(
            LotEventRow.kind.in_(sorted(EXPORTABLE_KINDS)),
            LotEventRow.event_time >= (lower - timedelta(days=1)).date().isoformat(),
            LotEventRow.event_time < (upper + timedelta(days=2)).date().isoformat(),
        )
    ).all()
    candidates = dict(_statements(session, (int(i) for i in indexes)))
    candidates.update(_of_kinds(session, _UNINDEXED_KINDS))
    exporter = _Exporter(session)
    chosen = []
    for index, statement in sorted(candidates.items()):
        if statement.kind == _CORRECTION and not _is_exportable_correction(session, statement):
            continue
        event = exporter.event(index, statement)
        moment = datetime.fromisoformat(str(event["eventTime"]).replace("Z", "+00:00"))
        if lower <= moment < upper:
            chosen.append(event)
    return _document(session, chosen, now)


def _is_exportable_correction(session: Session, statement: Statement) -> bool:
    target = statement.body.get("corrects")
    seen: set[int] = set()
    while isinstance(target, int) and target not in seen:
        seen.add(target)
        try:
            original = _corrected(session, target)
        except NotFound:
            return False
        if original.kind != _CORRECTION:
            return original.kind in EXPORTABLE_KINDS
        target = original.body.get("corrects")
    return False


def export_all(session: Session, *, now: datetime | None = None) -> dict[str, Any]:
    """Every supply-chain event of the log, in log order (corrections of entries with no
    EPCIS form, such as a registration, are left out)."""
    chosen = [
        (index, statement) for index, statement in _of_kinds(session, EXPORTABLE_KINDS)
        if statement.kind != _CORRECTION or _is_exportable_correction(session, statement)
    ]
    return export_document(session, chosen, now=now)
