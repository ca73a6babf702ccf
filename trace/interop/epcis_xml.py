"""EPCIS XML documents (1.2 and 2.0) read as the JSON-LD events the rest of the interop code
takes, so that an event hash ID is the same whichever syntax a partner sent.

The mapping is the EPCIS 2.0 XML/JSON-LD binding: an event element's name is its ``type``;
standard fields are the un-namespaced elements of the same names; lists (``epcList``,
``quantityList``, ``bizTransactionList``…) become arrays of their children; a business
transaction, source or destination becomes ``{"type": …, "bizTransaction": …}`` (and so on);
a sensor element's metadata and reports, written as attributes, become objects; EPCIS 1.x
``extension`` and ``baseExtension`` wrappers are unwrapped. User extensions keep their
namespace: an element ``<example:batch>`` of ``https://ns.example.com/epcis/`` becomes the key
``{https://ns.example.com/epcis/}batch``, which :mod:`suyuan.interop.event_hash` reads as the
expanded form of the JSON-LD key ``example:batch`` (ElementTree resolves each element's
prefix in its own scope). Values written as CURIEs are read with the EPCIS context's own
prefixes only (``gs1:MT-Temperature`` is a GS1 web URI), as the reference implementation
reads XML: ``example:x`` in an attribute or text stays as written, whatever the document
binds ``example`` to. A namespace is taken as declared, as the reference implementation does:
where the two bindings declare one differently (``cbvmda`` is ``urn:epcglobal:cbv:mda`` in the
XML schema, ``urn:epcglobal:cbv:mda:`` in the JSON-LD context), fields in it hash differently
between the syntaxes there too. Text an element holds beside attributes or child elements is
kept under the key ``#text``.

Documents are parsed with defusedxml: a DTD, entity declarations or external references are
refused, never expanded.
"""

from __future__ import annotations

import io
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from suyuan.errors import MalformedInput
from suyuan.interop.event_hash import EVENT_TYPES

__all__ = ["document_events", "parse_document"]

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64
"""Elements nested deeper than this are refused (an EPCIS event needs fewer than ten)."""

_EVENT_ELEMENTS = frozenset(EVENT_TYPES | {"AssociationEvent"})

_LISTS = {
    "epcList": "epc",
    "childEPCs": "epc",
    "inputEPCList": "epc",
    "outputEPCList": "epc",
    "quantityList": "quantityElement",
    "childQuantityList": "quantityElement",
    "inputQuantityList": "quantityElement",
    "outputQuantityList": "quantityElement",
    "bizTransactionList": "bizTransaction",
    "sourceList": "source",
    "destinationList": "destination",
    "sensorElementList": "sensorElement",
    "correctiveEventIDs": "correctiveEventID",
}
"""Standard list elements and the name of their items."""

_TYPED = frozenset({"bizTransaction", "source", "destination"})
"""Items whose text is the identifier and whose ``type`` attribute says what it is."""

_WRAPPERS = frozenset({"extension", "baseExtension"})
"""EPCIS 1.x containers whose children belong to the element that holds them."""

_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"


def parse_document(data: bytes) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """The events of an EPCIS XML document (``EPCISDocument`` or ``EPCISQueryDocument``), in
    document order, each with its JSON-LD context (empty: only the EPCIS context's own
    prefixes apply). Extension fields a document-level (or query results') ``ignoreFields``
    names are left out, as :func:`suyuan.interop.event_hash.document_events` does for
    JSON-LD.

    Raises :class:`MalformedInput` for anything that is not well-formed XML, that declares a
    DTD or entities, that nests deeper than :data:`MAX_DEPTH`, or that holds no EPCIS event
    list."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise MalformedInput(f"the XML document is {len(data)} bytes; the limit is "
                             f"{MAX_DOCUMENT_BYTES}")
    depth = 0
    root: Element | None = None
    try:
        for kind, item in iterparse(io.BytesIO(data), events=("start", "end"),
                                    forbid_dtd=True):
            if kind == "start":
                depth += 1
                if depth > MAX_DEPTH:
                    raise MalformedInput(f"the XML document nests deeper than {MAX_DEPTH} "
                                         "elements")
            else:
                depth -= 1
                root = item
    except DefusedXmlException as exc:
        raise MalformedInput(f"the XML document is refused: {type(exc).__name__} "
                             "(a DTD, entities or external references are not accepted)"
                             ) from None
    except ParseError as exc:
        raise MalformedInput(f"not well-formed XML: {exc}") from None
    except (LookupError, ValueError) as exc:  # an unknown encoding, a bad byte order mark…
        raise MalformedInput(f"not readable XML: {exc}") from None
    if root is None or _local(root.tag) not in ("EPCISDocument", "EPCISQueryDocument"):
        raise MalformedInput("not an EPCIS XML document: the root element must be "
                             "EPCISDocument or EPCISQueryDocument")
    lists, holders = _event_lists(root)
    if not lists:
        raise MalformedInput("the EPCIS XML document has no EPCISBody/EventList (or "
                             "EPCISBody/QueryResults/resultsBody/EventList)")
    ignored = {child.tag for holder in holders for element in holder
               if isinstance(element.tag, str) and _local(element.tag) == "ignoreFields"
               for child in element if isinstance(child.tag, str) and child.tag[:1] == "{"}
    events: list[tuple[dict[str, Any], dict[str, str]]] = []
    for event_list in lists:
        for element in _unwrapped(event_list):
            if element.tag not in _EVENT_ELEMENTS:
                raise MalformedInput(f"EventList holds <{_local(element.tag)}>, not an EPCIS "
                                     "event")
            event = _event(element)
            for key in ignored:
                event.pop(key, None)
            events.append((event, {}))  # values are read with the EPCIS context's prefixes
    return events


def _event_lists(root: Element) -> tuple[list[Element], list[Element]]:
    """The EventList elements where the bindings put them, and the elements that may carry
    an ``ignoreFields`` declaration (the document, its query results)."""
    holders = [root]
    lists: list[Element] = []
    for body in root.findall("EPCISBody"):
        lists += body.findall("EventList")
        for results in body.findall("QueryResults") + body.findall("{*}QueryResults"):
            holders.append(results)
            for results_body in results.findall("resultsBody"):
                lists += results_body.findall("EventList")
    return lists, holders


def document_events(data: bytes) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Alias of :func:`parse_document`, named like :func:`event_hash.document_events`."""
    return parse_document(data)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _unwrapped(element: Element) -> list[Element]:
    """The children of ``element``, with those of EPCIS 1.x extension wrappers in their place."""
    children: list[Element] = []
    for child in element:
        if not isinstance(child.tag, str):
            continue  # a comment or processing instruction
        if child.tag in _WRAPPERS:
            children += _unwrapped(child)
        else:
            children.append(child)
    return children


def _event(element: Element) -> dict[str, Any]:
    event: dict[str, Any] = {}
    _fields_into(event, element)
    event["type"] = element.tag  # the element says what the event is, nothing inside it
    return event


def _fields_into(target: dict[str, Any], element: Element) -> None:
    """The attributes and child elements of ``element`` as keys of ``target``; a name that
    repeats becomes a list."""
    for name, value in element.attrib.items():
        if not name.startswith(_XSI):
            target[name] = value
    groups: dict[str, list[Any]] = {}
    for child in _unwrapped(element):
        groups.setdefault(child.tag, []).append(_value(child))
    for key, values in groups.items():
        target[key] = values[0] if len(values) == 1 else values
    text = _all_text(element)
    if text and (groups or target):
        target[TEXT] = text  # text beside attributes or elements (mixed content) counts too


def _value(element: Element) -> Any:
    name = element.tag
    item = _LISTS.get(name)
    if item is not None:
        return [_item(child, item) for child in _unwrapped(element) if child.tag == item]
    if name == "sensorElement":
        return _sensor_element(element)
    if name == "persistentDisposition":
        found: dict[str, Any] = {}
        for child in _unwrapped(element):
            found.setdefault(child.tag, []).append(_text(child))
        return found
    if not _unwrapped(element) and not any(not k.startswith(_XSI) for k in element.attrib):
        return _text(element)
    value: dict[str, Any] = {}
    _fields_into(value, element)
    return value


def _item(element: Element, kind: str) -> Any:
    if kind in _TYPED:
        item: dict[str, Any] = {}
        if "type" in element.attrib:
            item["type"] = element.attrib["type"]
        item[kind] = _text(element)
        return item
    if kind == "quantityElement":
        quantity: dict[str, Any] = {}
        _fields_into(quantity, element)
        return quantity
    if kind == "sensorElement":
        return _sensor_element(element)
    return _text(element)


def _sensor_element(element: Element) -> dict[str, Any]:
    sensor: dict[str, Any] = {}
    reports: list[dict[str, Any]] = []
    for child in _unwrapped(element):
        if child.tag == "sensorMetadata":
            if "sensorMetadata" in sensor:
                raise MalformedInput("a sensorElement has more than one sensorMetadata")
            sensor["sensorMetadata"] = _attributes_and_children(child)
        elif child.tag == "sensorReport":
            reports.append(_attributes_and_children(child))
        else:
            groups = sensor.setdefault(child.tag, [])
            groups.append(_value(child))
    for key, values in list(sensor.items()):
        if key not in ("sensorMetadata",) and isinstance(values, list) and len(values) == 1:
            sensor[key] = values[0]
    if reports:
        sensor["sensorReport"] = reports
    return sensor


def _attributes_and_children(element: Element) -> dict[str, Any]:
    found: dict[str, Any] = {}
    _fields_into(found, element)
    return found


def _text(element: Element) -> str:
    return (element.text or "").strip()


TEXT = "#text"
"""The key of an element's text when it also has attributes or child elements."""


def _all_text(element: Element) -> str:
    """The element's own text, including text between its children (mixed content)."""
    parts = [element.text or ""] + [child.tail or "" for child in element]
    return " ".join(part.strip() for part in parts if part.strip())
