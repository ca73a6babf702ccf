"""EPCIS XML read as JSON-LD events: the same event in either syntax has the same hash ID.

The XML documents below are hand-written translations (EPCIS 2.0 XML binding) of JSON-LD
vectors of the CBV event-hash corpus; their hashes must be the corpus's. Every value the XML
carries must reach the hash: removing any one element or attribute of an event, or changing
its text or value (outside the fields the hash ignores by definition), changes it.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from suyuan.errors import MalformedInput
from suyuan.interop.epcis_xml import parse_document
from suyuan.interop.event_hash import event_hash_id, prehash_string
from tests.helpers import run_cli

CORPUS = Path(__file__).resolve().parents[3] / ".." / "shared" / "corpora" / "event-hash"
EXAMPLES = CORPUS / "examples"
EXPECTED_EQUAL = CORPUS / "expected_equal"
needs_corpus = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="../shared corpora not present")

HEAD = ('<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0" '
        'creationDate="2022-02-17T11:30:47.0Z" xmlns:gs1="https://gs1.org/voc/" '
        'xmlns:example="https://ns.example.com/epcis/"><EPCISBody><EventList>')
TAIL = "</EventList></EPCISBody></epcis:EPCISDocument>"

REFERENCE = """
<ObjectEvent>
  <eventTime>2020-03-04T11:00:30.000+01:00</eventTime>
  <eventTimeZoneOffset>+01:00</eventTimeZoneOffset>
  <recordTime>2020-03-04T11:00:30.999+01:00</recordTime>
  <epcList>
    <epc>urn:epc:id:sscc:4012345.0000000333</epc>
    <epc>urn:epc:id:sscc:4012345.0000000111</epc>
    <epc>urn:epc:id:sscc:4012345.0000000222</epc>
  </epcList>
  <action>OBSERVE</action>
  <bizStep>urn:epcglobal:cbv:bizstep:departing</bizStep>
  <readPoint><id>urn:epc:id:sgln:4012345.00011.987</id></readPoint>
  <example:myField1>
    <example:mySubField1>2</example:mySubField1>
    <example:mySubField2>5</example:mySubField2>
  </example:myField1>
  <example:myField2>0</example:myField2>
  <example:myField3>
    <example:mySubField3>3</example:mySubField3>
    <example:mySubField3>1</example:mySubField3>
  </example:myField3>
</ObjectEvent>"""

SHIPPING = """
<ObjectEvent>
  <eventTime>2022-02-16T12:50:00.000+01:00</eventTime>
  <eventTimeZoneOffset>+01:00</eventTimeZoneOffset>
  <epcList><epc>urn:epc:id:sscc:4012345.1112223334</epc></epcList>
  <action>OBSERVE</action>
  <bizStep>urn:epcglobal:cbv:bizstep:departing</bizStep>
  <readPoint><id>urn:epc:id:sgln:4012345.00022.0</id></readPoint>
  <bizTransactionList>
    <bizTransaction type="urn:epcglobal:cbv:btt:desadv">urn:epcglobal:cbv:bt:4012345000009:ASN1099</bizTransaction>
  </bizTransactionList>
  <sourceList>
    <source type="urn:epcglobal:cbv:sdt:possessing_party">urn:epc:id:pgln:4012345.00000</source>
  </sourceList>
  <destinationList>
    <destination type="urn:epcglobal:cbv:sdt:possessing_party">urn:epc:id:pgln:4023333.00000</destination>
  </destinationList>
</ObjectEvent>"""

_META = ('deviceID="urn:epc:id:giai:4000001.111" deviceMetadata="https://id.gs1.org/8004/4000001111" '
         'rawData="https://id.example.org/8004/401234599999"')
_ELEMENTS = "".join(
    f'<sensorElement><sensorMetadata time="{time}" {_META}/>'
    f'<sensorReport type="gs1:Temperature" value="{t}" uom="CEL"/>'
    f'<sensorReport type="gs1:AbsoluteHumidity" value="{h}" uom="A93"/>'
    f'<sensorReport type="gs1:Speed" value="{s}" uom="KMH"/>'
    f'<sensorReport type="gs1:Illuminance" value="{lx}" uom="LUX"/></sensorElement>'
    for time, t, h, s, lx in (("2022-02-16T14:05:00.000+01:00", "26", "12.1", "160", "800"),
                              ("2022-02-16T14:35:00.000+01:00", "26.1", "12.2", "161", "801"),
                              ("2022-02-16T14:55:00.000+01:00", "26.2", "12.2", "162", "802")))
SENSORS = f"""
<ObjectEvent>
  <eventTime>2022-02-16T15:00:00.000+01:00</eventTime>
  <eventTimeZoneOffset>+01:00</eventTimeZoneOffset>
  <epcList><epc>urn:epc:id:sgtin:4012345.011111.9876</epc></epcList>
  <action>OBSERVE</action>
  <bizStep>urn:epcglobal:cbv:bizstep:inspecting</bizStep>
  <readPoint><id>urn:epc:id:sgln:4012345.00005.0</id></readPoint>
  <sensorElementList>{_ELEMENTS}</sensorElementList>
</ObjectEvent>"""

TRANSLATIONS = {
    "ReferenceEventHashAlgorithm": REFERENCE,
    "epcisDocWithShippingAndTransportingEvent": SHIPPING,
    "epcisDocWithSensorDataObjectEvent": SENSORS,
}


def _document(*events: str) -> bytes:
    return (HEAD + "".join(events) + TAIL).encode()


def _hashes(data: bytes) -> list[str]:
    return [event_hash_id(event, context) for event, context in parse_document(data)]


@needs_corpus
@pytest.mark.parametrize("stem", sorted(TRANSLATIONS))
def test_an_xml_translation_hashes_as_the_corpus_json_ld_event(stem: str) -> None:
    expected = (EXAMPLES / f"{stem}.hashes").read_text().splitlines()[0]
    assert _hashes(_document(TRANSLATIONS[stem])) == [expected]


IGNORED = {"recordTime", "eventID", "errorDeclaration"}  # left out of the hash by CBV 2.0


def _removals(event: ET.Element) -> list[tuple[str, ET.Element]]:
    """Copies of ``event`` with one element or one attribute removed, each named."""
    found = []
    paths = [(parent, child) for parent in event.iter() for child in parent]
    for index, (_, child) in enumerate(paths):
        if child.tag in IGNORED:
            continue
        variant = copy.deepcopy(event)
        v_parent, v_child = [(p, c) for p in variant.iter() for c in p][index]
        v_parent.remove(v_child)
        found.append((f"<{child.tag}>", variant))
        for name in child.attrib:
            variant = copy.deepcopy(event)
            _, v_child = [(p, c) for p in variant.iter() for c in p][index]
            del v_child.attrib[name]
            found.append((f"<{child.tag} {name}>", variant))
    return found


def _changes(event: ET.Element) -> list[tuple[str, ET.Element]]:
    """Copies of ``event`` with one text or one attribute value changed, each named."""
    def changed(text: str) -> str:
        return text[:-1] + str((int(text[-1]) + 1) % 10) if text[-1:].isdigit() else text + "x"

    found = []
    paths = [(parent, child) for parent in event.iter() for child in parent]
    for index, (_, child) in enumerate(paths):
        if child.tag in IGNORED:
            continue
        if (child.text or "").strip():
            variant = copy.deepcopy(event)
            _, v_child = [(p, c) for p in variant.iter() for c in p][index]
            v_child.text = changed(v_child.text.strip())
            found.append((f"<{child.tag}> text", variant))
        for name in child.attrib:
            variant = copy.deepcopy(event)
            _, v_child = [(p, c) for p in variant.iter() for c in p][index]
            v_child.attrib[name] = changed(v_child.attrib[name])
            found.append((f"<{child.tag} {name}>", variant))
    return found


def _event_xml(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")  # with its own namespace declarations


@pytest.mark.parametrize("stem", sorted(TRANSLATIONS))
def test_every_value_an_xml_event_carries_reaches_its_hash(stem: str) -> None:
    ET.register_namespace("example", "https://ns.example.com/epcis/")
    ET.register_namespace("gs1", "https://gs1.org/voc/")
    opening = HEAD.replace("<EPCISBody><EventList>", "").replace("<epcis:EPCISDocument",
                                                                 "<wrapper")
    event = ET.fromstring(opening + TRANSLATIONS[stem] + "</wrapper>")[0]
    (original,) = _hashes(_document(_event_xml(event)))
    variants = _removals(event) + _changes(event)
    assert len(variants) >= 16
    compared = 0
    for what, variant in variants:
        try:
            changed = _hashes(_document(_event_xml(variant)))
        except MalformedInput:
            continue  # a field the event cannot do without (eventTime…): refused, not equal
        assert changed != [original], f"{what}: the hash did not change"
        compared += 1
    assert compared >= len(variants) - 4  # refusals are the exception


def _expected_equal_xml() -> list[str]:
    if not EXPECTED_EQUAL.is_dir():
        return []
    return sorted(p.name for p in EXPECTED_EQUAL.glob("*.xml"))


@needs_corpus
def test_the_corpus_has_its_xml_sets() -> None:
    assert len(_expected_equal_xml()) == 10


@needs_corpus
@pytest.mark.parametrize("name", _expected_equal_xml())
def test_expected_equal_xml_representations_hash_alike(name: str) -> None:
    data = (EXPECTED_EQUAL / name).read_bytes()
    hashes = _hashes(data)
    assert len(hashes) >= 2
    assert len(set(hashes)) == 1, hashes
    # and the first event is not an empty shell: a changed time makes another hash
    events = parse_document(data)
    event, context = events[0]
    assert event["eventTime"] and event["type"].endswith("Event")
    moved = dict(event, eventTime="2001-01-01T00:00:00.000Z")
    assert event_hash_id(moved, context) != hashes[0]


def test_epcis_1_2_extension_wrappers_are_unwrapped() -> None:
    """1.2 puts 2.0-era fields in <extension> and TransformationEvent in the EventList's
    <extension>: the same event hashes as its 2.0 form."""
    flat = _document("""<ObjectEvent><eventTime>2026-06-10T06:00:00.000+08:00</eventTime>
        <eventTimeZoneOffset>+08:00</eventTimeZoneOffset><action>OBSERVE</action>
        <quantityList><quantityElement><epcClass>urn:epc:class:lgtin:6901234.012345.L7</epcClass>
        <quantity>12.5</quantity><uom>KGM</uom></quantityElement></quantityList>
        </ObjectEvent><TransformationEvent><eventTime>2026-06-10T07:00:00.000+08:00</eventTime>
        <eventTimeZoneOffset>+08:00</eventTimeZoneOffset>
        <inputEPCList><epc>urn:epc:id:sgtin:6901234.012345.1</epc></inputEPCList>
        </TransformationEvent>""")
    wrapped = _document("""<ObjectEvent><eventTime>2026-06-10T06:00:00.000+08:00</eventTime>
        <eventTimeZoneOffset>+08:00</eventTimeZoneOffset><action>OBSERVE</action>
        <extension><quantityList><quantityElement>
        <epcClass>urn:epc:class:lgtin:6901234.012345.L7</epcClass><quantity>12.50</quantity>
        <uom>KGM</uom></quantityElement></quantityList></extension></ObjectEvent>
        <extension><TransformationEvent><eventTime>2026-06-10T07:00:00.000+08:00</eventTime>
        <eventTimeZoneOffset>+08:00</eventTimeZoneOffset>
        <inputEPCList><epc>urn:epc:id:sgtin:6901234.012345.1</epc></inputEPCList>
        </TransformationEvent></extension>""")
    assert _hashes(wrapped) == _hashes(flat)
    assert len(set(_hashes(flat))) == 2


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2"><EPCISBody><EventList>
<ObjectEvent><eventTime>&lol2;</eventTime></ObjectEvent></EventList></EPCISBody>
</epcis:EPCISDocument>"""

EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2"><EPCISBody><EventList>
<ObjectEvent><eventTime>&secret;</eventTime></ObjectEvent></EventList></EPCISBody>
</epcis:EPCISDocument>"""


@pytest.mark.parametrize(("data", "message"), [
    (BOMB, "DTD"),
    (EXTERNAL, "DTD"),
    (b"<epcis:EPCISDocument xmlns:epcis='urn:x'><EPCISBody>", "not well-formed XML"),
    (b"\xff\xfe<a/>", "not well-formed XML"),
    (b"<html><body>hello</body></html>", "root element must be EPCISDocument"),
    (b"<epcis:EPCISDocument xmlns:epcis='urn:x'><EPCISBody/></epcis:EPCISDocument>",
     "no EPCISBody/EventList"),
    (_document("<Shipment><id>1</id></Shipment>"), "not an EPCIS event"),
], ids=["entity-bomb", "external-entity", "truncated", "not-utf8", "not-epcis", "no-events",
        "unknown-event"])
def test_bad_xml_is_refused_with_its_reason(data: bytes, message: str) -> None:
    with pytest.raises(MalformedInput, match=message):
        parse_document(data)


@needs_corpus
def test_the_event_hash_command_reads_either_syntax(tmp_path: Path) -> None:
    stem = "epcisDocWithShippingAndTransportingEvent"
    expected = (EXAMPLES / f"{stem}.hashes").read_text().splitlines()
    (tmp_path / "events.xml").write_bytes(_document(SHIPPING))
    as_xml = run_cli("event-hash", "events.xml", cwd=tmp_path)
    as_json = run_cli("event-hash", str(EXAMPLES / f"{stem}.jsonld"), "--json", cwd=tmp_path)
    assert as_xml.returncode == 0 and as_json.returncode == 0, as_xml.stderr + as_json.stderr
    assert as_xml.stdout.decode().split()[:2] == [expected[0], "ObjectEvent"]
    assert [row["hash"] for row in json.loads(as_json.stdout)] == expected
    (tmp_path / "bomb.xml").write_bytes(BOMB)
    refused = run_cli("event-hash", "bomb.xml", cwd=tmp_path)
    err = refused.stderr.decode()
    assert refused.returncode == 1 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("suyuan: error: bomb.xml: the XML document is refused")
    deep: dict = {"example:x": "1"}
    for _ in range(800):
        deep = {"example:x": deep}
    event = {"type": "ObjectEvent", "eventTime": "2026-06-10T06:00:00Z",
             "eventTimeZoneOffset": "+08:00", "action": "OBSERVE", "example:deep": deep}
    (tmp_path / "deep.jsonld").write_text(json.dumps({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                     {"example": "https://ns.example.com/epcis/"}],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-06-10T06:00:00Z",
        "epcisBody": {"eventList": [event]}}))
    refused = run_cli("event-hash", "deep.jsonld", cwd=tmp_path)
    err = refused.stderr.decode()
    assert refused.returncode == 1 and "Traceback" not in err and err.count("\n") == 1, err


def _one(event: str, head: str = HEAD) -> str:
    (digest,) = [event_hash_id(e, c) for e, c in parse_document(
        (head + event + TAIL).encode())]
    return digest


EVENT = ("<ObjectEvent><eventTime>2026-06-10T06:00:00.000+08:00</eventTime>"
         "<eventTimeZoneOffset>+08:00</eventTimeZoneOffset><action>OBSERVE</action>{}"
         "</ObjectEvent>")


@pytest.mark.parametrize(("one", "other"), [
    ('<example:weight uom="KGM">12</example:weight>',
     '<example:weight uom="KGM">13</example:weight>'),
    ("<example:note>cold <example:b>chain</example:b> kept</example:note>",
     "<example:note>cold <example:b>chain</example:b> broken</example:note>"),
    ("<quantityList><quantityElement><epcClass>urn:epc:class:lgtin:6901234.012345.L7</epcClass>"
     "<quantity>1</quantity><example:grade>A</example:grade></quantityElement></quantityList>",
     "<quantityList><quantityElement><epcClass>urn:epc:class:lgtin:6901234.012345.L7</epcClass>"
     "<quantity>1</quantity><example:grade>B</example:grade></quantityElement></quantityList>"),
], ids=["text-with-attributes", "mixed-content", "quantity-extension"])
def test_text_beside_attributes_or_elements_counts(one: str, other: str) -> None:
    assert _one(EVENT.format(one)) != _one(EVENT.format(other))


def test_an_event_is_what_its_element_says() -> None:
    plain = _one(EVENT.format(""))
    assert _one(EVENT.replace("<ObjectEvent>", '<ObjectEvent type="AggregationEvent">')
                .format("")) == plain


def test_prefixes_are_read_in_their_scope() -> None:
    """The same prefix bound to two namespaces on two events names two different fields;
    two prefixes bound to one namespace name the same one."""
    field = "<p:grade>A</p:grade>"
    first = EVENT.replace("<ObjectEvent>", '<ObjectEvent xmlns:p="https://a.example/">')
    second = EVENT.replace("<ObjectEvent>", '<ObjectEvent xmlns:p="https://b.example/">')
    third = EVENT.replace("<ObjectEvent>", '<ObjectEvent xmlns:q="https://b.example/">')
    hashes = _hashes(_document(first.format(field), second.format(field),
                               third.format("<q:grade>A</q:grade>")))
    assert hashes[0] != hashes[1] and hashes[1] == hashes[2]


IGNORED_EVENT = """<ObjectEvent><eventTime>2024-06-08T10:58:56.591+02:00</eventTime>
    <recordTime>2024-06-08T15:38:32.052+02:00</recordTime>
    <eventTimeZoneOffset>+02:00</eventTimeZoneOffset><epcList/><action>ADD</action>
    <bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>
    <readPoint><id>urn:epc:id:sgln:4054738.00005.0</id></readPoint>
    <extension><quantityList><quantityElement>
      <epcClass>urn:epc:class:lgtin:4054739.099961.2015-03-30a</epcClass>
      <quantity>150</quantity><uom>KGM</uom></quantityElement></quantityList></extension>
    {fields}</ObjectEvent>"""
IGNORING = ("""<epcis:{root} xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"
  creationDate="2024-06-08T12:00:00.000+01:00" xmlns:repository-x="https://repository-x.example.com/"
  xmlns:example="https://ns.example.com/epcis/">{document_level}<EPCISBody>{open}<EventList>"""
            + IGNORED_EVENT.format(fields="<example:testField1>1234</example:testField1>"
                                          "<example:testField4>{f4}</example:testField4>")
            + IGNORED_EVENT.format(fields="<example:testField2>1234</example:testField2>"
                                          "<example:testField3>{f3}</example:testField3>")
            + "</EventList>{close}</EPCISBody></epcis:{root}>")
DECLARATION = ("<repository-x:ignoreFields><example:testField1/><example:testField2/>"
               "</repository-x:ignoreFields>")


@needs_corpus
@pytest.mark.parametrize("stem", ["epcisXmlDocHavingEventWithIgnoreFields",
                                  "epcisXmlQueryDocHavingEventWithIgnoreFields"])
def test_ignore_fields_in_xml_hash_as_the_corpus_says(stem: str) -> None:
    expected = (EXAMPLES / f"{stem}.hashes").read_text().splitlines()
    if "Query" in stem:
        data = IGNORING.format(
            root="EPCISQueryDocument", document_level="", f4="ABC", f3="XYZ",
            open="<epcisq:QueryResults xmlns:epcisq='urn:epcglobal:epcis-query:xsd:2'>"
                 f"<queryName>SimpleEventQuery</queryName>{DECLARATION}<resultsBody>",
            close="</resultsBody></epcisq:QueryResults>")
    else:
        data = IGNORING.format(root="EPCISDocument", document_level=DECLARATION, f4="ABCD",
                               f3="PQRS", open="", close="")
    assert _hashes(data.encode()) == expected
    undeclared = data.replace(DECLARATION, "")
    assert _hashes(undeclared.encode()) != expected  # the declaration is what left them out


def test_deep_nesting_and_unknown_encodings_are_refused() -> None:
    deep = "<example:a>" * 200 + "x" + "</example:a>" * 200
    with pytest.raises(MalformedInput, match="nests deeper"):
        parse_document(_document(EVENT.format(deep)))
    with pytest.raises(MalformedInput, match="not readable XML"):
        parse_document(b'<?xml version="1.0" encoding="x-nope"?>' + _document(EVENT.format("")))
    with pytest.raises(MalformedInput, match="more than one sensorMetadata"):
        parse_document(_document(EVENT.format(
            "<sensorElementList><sensorElement><sensorMetadata time='2026-06-10T06:00:00Z'/>"
            "<sensorMetadata time='2026-06-10T07:00:00Z'/></sensorElement></sensorElementList>")))


def test_events_outside_the_body_are_not_read() -> None:
    header = ("<epcis:EPCISDocument xmlns:epcis='urn:epcglobal:epcis:xsd:2'><EPCISHeader>"
              f"<EventList>{EVENT.format('')}</EventList></EPCISHeader><EPCISBody>"
              "</EPCISBody></epcis:EPCISDocument>")
    with pytest.raises(MalformedInput, match="no EPCISBody/EventList"):
        parse_document(header.encode())


def test_curie_values_are_read_with_the_epcis_context_only() -> None:
    """As the reference reads XML: ``gs1:`` values become GS1 web URIs; a value in a prefix
    the document itself binds stays as written (the corpus's XML sensor vectors carry
    ``type=example:…`` and ``component=example:x`` so)."""
    report = '<sensorReport type="{}" component="example:x" value="1" uom="CEL"/>'
    ((event, context),) = parse_document(_document(EVENT.format(
        "<sensorElementList><sensorElement>" + report.format("gs1:MT-Temperature")
        + report.format("example:Ghi") + "</sensorElement></sensorElementList>")))
    text = prehash_string(event, context)
    assert "type=https://gs1.org/voc/MT-Temperature" in text
    assert "type=example:Ghi" in text and "component=example:x" in text
    assert "ns.example.com/epcis/x" not in text
