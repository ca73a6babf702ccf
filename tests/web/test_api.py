"""The JSON API: capture (single and bulk) with the command line's rules, queries of events,
lots, lineage, entries, proofs, checkpoints and the policy, and the OpenAPI document.

Capture tests run on a real SQLite file and on a real PostgreSQL database; every refused
input is checked to leave the log as it was."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from suyuan import crypto, importer, ledger, lineage, merkle, note
from suyuan.errors import InclusionProofError
from suyuan.interop import epcis
from suyuan.model import SignedStatement, Statement, format_time, new_nonce, sign_statement
from suyuan.storage.db import Database, sqlite_url
from suyuan.storage.schema import EntryRow, LotEventRow, LotRow
from suyuan_web import openapi
from suyuan_web.schemas import EVENT_KINDS, MAX_LIMIT, decode_cursor, encode_cursor
from tests.web.conftest import ORIGIN, PUBLIC_URL, Dalian, make_app

API = "/api/v1"
CHERRY = "02000000001005"
GTIN13 = CHERRY[1:]
COOP = "jinzhou-cherry-coop"
NDJSON = "application/x-ndjson"
EPCIS_SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "gs1-epcis" \
    / "EPCIS-JSON-Schema.json"
needs_epcis_schema = pytest.mark.skipif(not EPCIS_SCHEMA.is_file(),
                                        reason="gs1-epcis corpus not present")


# --- builders --------------------------------------------------------------------------------


def event_time(hours_ago: float = 1) -> str:
    """An event time in Dalian's offset, a little in the past."""
    moment = datetime.now(UTC) - timedelta(hours=hours_ago)
    return moment.astimezone(timezone(timedelta(hours=8))).isoformat(timespec="seconds")


def sign(d: Dalian, actor: str, kind: str, body: dict[str, Any], *,
         key: crypto.SigningKey | None = None, signer_key: crypto.SigningKey | None = None,
         **envelope: Any) -> SignedStatement:
    """A statement by ``actor`` signed with its key (``key`` names the key id; ``signer_key``
    signs instead, to forge)."""
    key = key or (d.registrar_key if actor == "registrar" else d.keys[actor])
    fields: dict[str, Any] = {
        "kind": kind, "actor": actor, "key_id": crypto.key_id(actor, key.public_key).hex(),
        "time": format_time(datetime.now(UTC)), "nonce": new_nonce(), "body": body}
    fields.update(envelope)
    return sign_statement(Statement(**fields), signer_key or key)


def harvest(d: Dalian, lot: str, kg: str = "100", **envelope: Any) -> SignedStatement:
    return sign(d, COOP, "harvest", {
        "lot": lot, "product": CHERRY, "quantity": {"value": kg, "unit": "KGM"},
        "location": "jz-orchard-3", "event_time": event_time(2)}, **envelope)


def shipping(d: Dalian, lot: str, amount: str, shipment: str, actor: str = COOP,
             location: str = "jz-orchard-3", unit: str = "KGM") -> SignedStatement:
    return sign(d, actor, "shipping", {
        "shipment": shipment, "lots": [{"lot": lot, "quantity": {"value": amount, "unit": unit}}],
        "to": "dalian-fresh-ecom", "to_location": "dl-ecom-dc", "location": location,
        "event_time": event_time(1)})


def post(client: FlaskClient, signed: SignedStatement | str | bytes,
         content_type: str = "application/json") -> Any:
    data = signed.to_line() if isinstance(signed, SignedStatement) else signed
    return client.post(f"{API}/statements", data=data, content_type=content_type)


def post_bulk(client: FlaskClient, lines: list[SignedStatement | str],
              content_type: str = NDJSON) -> Any:
    text = "\n".join(x.to_line() if isinstance(x, SignedStatement) else x for x in lines)
    return client.post(f"{API}/statements/bulk", data=text + "\n", content_type=content_type)


def size(client: FlaskClient) -> int:
    return int(client.get(f"{API}/").json["size"])


@pytest.fixture
def any_app(dalian_any: Dalian) -> Any:
    application = make_app(dalian_any.url)
    yield application
    application.extensions["suyuan.db"].dispose()


@pytest.fixture
def writer(any_app: Flask) -> FlaskClient:
    return any_app.test_client()


def assert_error(response: Any, status: int, code: str, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    error = response.json["error"]
    assert error["code"] == code, error
    for word in words:
        assert word in error["message"] or word in json.dumps(error, ensure_ascii=False), error
    assert "Traceback" not in response.get_data(as_text=True)
    return error  # type: ignore[no-any-return]


# --- capture: one statement ------------------------------------------------------------------


def test_a_signed_statement_is_appended_and_a_replay_is_idempotent(
        writer: FlaskClient, dalian_any: Dalian) -> None:
    before = size(writer)
    signed = harvest(dalian_any, "API-H-1")
    created = post(writer, signed)
    assert created.status_code == 201, created.json
    body = created.json
    assert body["index"] == before and body["duplicate"] is False and body["alerts"] == []
    assert created.headers["Location"] == f"{API}/entries/{before}" == body["entry"]
    entry = writer.get(body["entry"]).json
    leaf = base64.b64decode(entry["leaf"])
    assert body["leaf_hash"] == merkle.leaf_hash(leaf).hex() == entry["leaf_hash"]
    assert entry["statement"] == signed.statement.to_json()
    assert size(writer) == before + 1
    assert writer.get(f"{API}/lots/API-H-1").json["owner"] == COOP

    again = post(writer, signed)
    assert again.status_code == 200
    assert again.json == {**body, "duplicate": True}
    assert size(writer) == before + 1


def test_rule_breaking_statements_are_refused_with_the_reason_and_change_nothing(
        writer: FlaskClient, dalian_any: Dalian) -> None:
    d = dalian_any
    stranger = crypto.SigningKey.generate()
    used = harvest(d, "API-N-1")
    assert post(writer, used).status_code == 201
    before = size(writer)
    cases = [
        (sign(d, "dl-coldchain", "harvest", {
            "lot": "API-X", "product": CHERRY, "quantity": {"value": "1", "unit": "KGM"},
            "location": "jz-orchard-3", "event_time": event_time()}), "not_permitted",
         "carrier"),
        (shipping(d, "JZ-MZ-260605-G", "1", "API-SH-X", actor="dl-supermarket",
                  location="dl-store-1", unit="XBX"), "custody", "JZ-MZ-260605-G"),
        (shipping(d, "API-N-1", "5000", "API-SH-Y"), "mass_balance", "API-N-1"),
        (sign(d, COOP, "harvest", {
            "lot": "API-Y", "product": CHERRY, "quantity": {"value": "1", "unit": "KGM"},
            "location": "no-such-place", "event_time": event_time()}), "unknown_reference",
         "no-such-place"),
        (sign(d, "nobody-here", "note", {"text": "hello"}, key=stranger), "unknown_key",
         "nobody-here"),
        (harvest(d, "API-Z", time=format_time(datetime.now(UTC) + timedelta(hours=1))),
         "future_time", "future"),
        (harvest(d, "API-Q", nonce=used.statement.nonce), "nonce_reused", "nonce"),
        (harvest(d, "API-W", log="another.example/log"), "wrong_log", "another.example/log"),
    ]
    for signed, code, word in cases:
        assert_error(post(writer, signed), 422, code, word)
    forged = harvest(d, "API-F", signer_key=stranger)
    assert_error(post(writer, forged), 422, "bad_signature", "signature")
    assert size(writer) == before
    assert writer.get(f"{API}/lots/API-X").status_code == 404


def test_a_statement_bound_to_this_log_is_taken_and_a_malformed_binding_is_not(
        client: FlaskClient, dalian: Dalian) -> None:
    bound = post(client, harvest(dalian, "API-LOG", log=ORIGIN))
    assert bound.status_code == 201, bound.json
    before = size(client)
    doc = harvest(dalian, "API-LOG2").to_json()
    doc["statement"]["log"] = "has space"
    error = assert_error(post(client, json.dumps(doc)), 400, "invalid_request")
    assert "log origin" in error["fields"]["statement"]["log"][0]
    assert size(client) == before


def test_a_revoked_key_signs_nothing_after_its_revocation(
        writer: FlaskClient, dalian_any: Dalian) -> None:
    d = dalian_any
    key_id = crypto.key_id("dl-supermarket", d.keys["dl-supermarket"].public_key).hex()
    revoked = post(writer, sign(d, "registrar", "key_revoked",
                                {"actor": "dl-supermarket", "key_id": key_id}))
    assert revoked.status_code == 201, revoked.json
    before = size(writer)
    assert_error(post(writer, sign(d, "dl-supermarket", "note", {"text": "after"})), 422,
                 "revoked_key")
    assert size(writer) == before


@pytest.mark.parametrize(("data", "status", "code", "word"), [
    (b"{not json", 400, "malformed", "malformed JSON"),
    (b'{"statement": {}, "signature": "x", "statement": {}}', 400, "malformed", "duplicate key"),
    (b"[1, 2]", 400, "invalid_request", "JSON object"),
    (b'"text"', 400, "invalid_request", "JSON object"),
    (b"\xff\xfe\x00", 400, "malformed", "malformed JSON"),
])
def test_unreadable_bodies_are_refused(client: FlaskClient, data: bytes, status: int, code: str,
                                       word: str) -> None:
    before = size(client)
    assert_error(post(client, data), status, code, word)
    assert size(client) == before


def test_a_statement_of_the_wrong_shape_gets_messages_per_field(
        client: FlaskClient, dalian: Dalian) -> None:
    before = size(client)
    doc = harvest(dalian, "API-S").to_json()
    del doc["statement"]["nonce"]
    doc["statement"]["key_id"] = "XYZ"
    doc["extra"] = 1
    doc["signature"] = "!!"
    error = assert_error(post(client, json.dumps(doc)), 400, "invalid_request")
    assert error["fields"] == {
        "statement": {"nonce": ["Missing data for required field."],
                      "key_id": ["key_id must be 8 lowercase hex digits"]},
        "signature": ["signature is not valid base64"],
        "extra": ["Unknown field."],
    }
    floats = harvest(dalian, "API-S").to_line().replace('"value":"100"', '"value":100.5')
    assert_error(post(client, floats), 400, "malformed", "decimal strings")
    bad_gtin = sign(dalian, COOP, "harvest", {
        "lot": "API-G", "product": "02000000001006", "quantity": {"value": "1", "unit": "KGM"},
        "location": "jz-orchard-3", "event_time": event_time()})
    assert_error(post(client, bad_gtin), 400, "malformed", "body.product")
    assert size(client) == before


def test_capture_needs_json_and_a_body_of_reasonable_size(
        client: FlaskClient, dalian: Dalian, tmp_path: Path) -> None:
    before = size(client)
    signed = harvest(dalian, "API-T")
    assert_error(post(client, signed, "text/plain"), 415, "unsupported_media_type",
                 "application/json")
    assert_error(post(client, signed, "application/x-www-form-urlencoded"), 415,
                 "unsupported_media_type")
    huge = signed.to_json()
    huge["statement"]["body"]["padding"] = "x" * 70_000
    assert_error(post(client, json.dumps(huge)), 400, "malformed", "the limit is 65536")
    small = make_app(dalian.url, MAX_CONTENT_LENGTH=500)
    assert_error(post(small.test_client(), signed), 413, "request_entity_too_large")
    small.extensions["suyuan.db"].dispose()
    assert size(client) == before


def test_capture_is_rate_limited_per_client(dalian: Dalian) -> None:
    app = make_app(dalian.url, CAPTURE_RATE_LIMIT="2 per minute")
    client = app.test_client()
    assert post(client, harvest(dalian, "API-R1")).status_code == 201
    assert post(client, harvest(dalian, "API-R2")).status_code == 201
    before = size(client)
    refused = post(client, harvest(dalian, "API-R3"))
    assert_error(refused, 429, "too_many_requests")
    assert refused.headers.get("Retry-After")
    assert size(client) == before
    assert client.get(f"{API}/lots/API-R1").status_code == 200  # queries are not limited
    app.extensions["suyuan.db"].dispose()


def test_a_control_character_is_refused_alike_on_both_databases(
        writer: FlaskClient, dalian_any: Dalian) -> None:
    # PostgreSQL text cannot hold NUL while SQLite can: the core refuses control characters
    # itself, so both answer the same and, in bulk, only the line at fault is refused.
    before = size(writer)
    nul = sign(dalian_any, COOP, "location_registered",
               {"id": "api-nul-place", "name": "a\x00b", "kind": "field"})
    lines: list[SignedStatement | str] = [harvest(dalian_any, "API-NUL-1"), nul,
                                          harvest(dalian_any, "API-NUL-2")]
    assert_error(post(writer, nul), 400, "malformed", "control character", "U+0000")
    assert size(writer) == before
    results = post_bulk(writer, lines).json["results"]
    assert [r["status"] for r in results] == ["appended", "rejected", "appended"]
    assert results[1]["error"]["code"] == "malformed"
    assert size(writer) == before + 2


# --- capture: bulk ---------------------------------------------------------------------------


def bulk_lines(d: Dalian) -> list[SignedStatement | str]:
    first = harvest(d, "API-B-1", kg="100")
    return [
        first,
        "",
        sign(d, "dl-coldchain", "harvest", {
            "lot": "API-B-2", "product": CHERRY, "quantity": {"value": "1", "unit": "KGM"},
            "location": "jz-orchard-3", "event_time": event_time()}),
        shipping(d, "API-B-1", "60", "API-BSH-1"),     # needs line 1, in the same request
        shipping(d, "API-B-1", "60", "API-BSH-2"),     # only 40 kg left
        first,                                          # a replay inside the request
    ]


def test_bulk_capture_gives_a_result_per_line_like_suyuan_import(
        writer: FlaskClient, dalian_any: Dalian) -> None:
    before = size(writer)
    lines = bulk_lines(dalian_any)
    response = post_bulk(writer, lines)
    assert response.status_code == 200, response.json
    body = response.json
    results = body["results"]
    assert [(r["line"], r["status"]) for r in results] == [
        (1, "appended"), (3, "rejected"), (4, "appended"), (5, "rejected"), (6, "duplicate")]
    assert results[1]["error"]["code"] == "not_permitted"
    assert results[3]["error"]["code"] == "mass_balance"
    assert results[0]["index"] == before and results[2]["index"] == before + 1
    assert results[4]["index"] == before and results[4]["leaf_hash"] == results[0]["leaf_hash"]
    assert (body["appended"], body["duplicates"], body["rejected"]) == (2, 1, 2)
    assert (body["first_index"], body["last_index"]) == (before, before + 1)
    assert size(writer) == before + 2
    holders = writer.get(f"{API}/lots/API-B-1").json["holders"]
    assert holders == [{"actor": COOP, "quantity": "40"}]

    again = post_bulk(writer, lines).json
    assert again["appended"] == 0 and again["duplicates"] == 3 and again["rejected"] == 2
    assert [r.get("index") for r in again["results"] if r["status"] == "duplicate"] == [
        before, before + 1, before]
    assert size(writer) == before + 2


def test_bulk_and_suyuan_import_refuse_the_same_lines(
        client: FlaskClient, dalian: Dalian, dalian_master: Dalian, tmp_path: Path) -> None:
    lines = bulk_lines(dalian)
    text = "\n".join(x.to_line() if isinstance(x, SignedStatement) else x for x in lines)
    api = post_bulk(client, lines).json
    other = dalian_master.copy_to(tmp_path / "cli")
    db = Database(other.url)
    summary = importer.import_lines(db, importer.read_lines(text.encode().split(b"\n")), jobs=1)
    db.dispose()
    assert [(e.line, e.reason) for e in summary.errors] == [
        (r["line"], r["error"]["code"]) for r in api["results"] if r["status"] == "rejected"]
    assert (summary.appended, summary.duplicates) == (api["appended"], api["duplicates"])
    assert (summary.first_index, summary.last_index) == (api["first_index"], api["last_index"])


def test_an_unreadable_line_refuses_the_whole_bulk_request(
        writer: FlaskClient, dalian_any: Dalian) -> None:
    before = size(writer)
    good = harvest(dalian_any, "API-U-1")
    shapeless = good.to_json()
    del shapeless["signature"]
    response = post_bulk(writer, [good, "{oops", "", json.dumps(shapeless), "[]"])
    error = assert_error(response, 400, "malformed", "line 2", "nothing appended")
    assert [x["line"] for x in error["lines"]] == [2, 4, 5]
    assert "signature: Missing data for required field." in error["lines"][1]["message"]
    assert size(writer) == before
    assert writer.get(f"{API}/lots/API-U-1").status_code == 404


def test_bulk_limits_and_content_type(client: FlaskClient, dalian: Dalian) -> None:
    before = size(client)
    lines: list[SignedStatement | str] = [harvest(dalian, f"API-L-{n}") for n in range(3)]
    assert_error(post_bulk(client, lines, "application/json"), 415, "unsupported_media_type",
                 "x-ndjson")
    assert_error(client.post(f"{API}/statements/bulk", data="\n \n", content_type=NDJSON), 400,
                 "malformed", "no statements")
    small = make_app(dalian.url, BULK_MAX_LINES=2)
    assert_error(post_bulk(small.test_client(), lines), 413, "too_many_lines", "at most 2")
    small.extensions["suyuan.db"].dispose()
    assert size(client) == before
    assert post_bulk(client, lines, "application/jsonl").json["appended"] == 3


def test_bulk_registers_an_actor_and_takes_its_statements_in_one_request(
        client: FlaskClient, dalian: Dalian) -> None:
    key = crypto.SigningKey.generate()
    vkey = str(crypto.verifier_key("api-new-farm", key.public_key))
    register = sign(dalian, "registrar", "actor_registered",
                    {"name": "api-new-farm", "role": "farm", "vkey": vkey})
    hello = sign(dalian, "api-new-farm", "note", {"text": "你好"}, key=key)
    body = post_bulk(client, [register, hello]).json
    assert [r["status"] for r in body["results"]] == ["appended", "appended"]


# --- events ----------------------------------------------------------------------------------


def all_pages(client: FlaskClient, url: str) -> list[dict[str, Any]]:
    """Every event of a query, following the Link header from page to page."""
    events = []
    for _ in range(200):
        response = client.get(url)
        assert response.status_code == 200, response.json
        page = response.json
        events += page["events"]
        link = response.headers.get("Link")
        if page["next"] is None:
            assert link is None
            return events
        assert link.startswith("<") and link.endswith('>; rel="next"')
        following = link[1:link.index(">")]
        path, _, query = following.partition("?")
        assert path == url.partition("?")[0]
        assert dict(parse_qsl(query)) == {**dict(parse_qsl(url.partition("?")[2])),
                                          "cursor": page["next"]}
        url = following
    raise AssertionError("the pages never end")


@pytest.fixture(scope="module")
def every_event(shared_app: Flask) -> list[dict[str, Any]]:
    return all_pages(shared_app.test_client(), f"{API}/events?limit={MAX_LIMIT}")


def test_events_are_every_supply_chain_entry_in_log_order_in_pages(
        reader: FlaskClient, shared_app: Flask, every_event: list[dict[str, Any]]) -> None:
    with shared_app.extensions["suyuan.db"].reader() as session:
        expected = list(session.scalars(select(EntryRow.idx).where(
            EntryRow.kind.in_(EVENT_KINDS)).order_by(EntryRow.idx)))
    assert [e["entry"] for e in every_event] == expected and len(expected) > 50
    assert all_pages(reader, f"{API}/events?limit=7") == every_event
    harvest_event = next(e for e in every_event if e["kind"] == "harvest")
    assert harvest_event["biz_step"] == "urn:suyuan:bizStep:farmHarvest"
    assert harvest_event["event_type"] == "ObjectEvent"
    assert harvest_event["lots"] == [harvest_event["statement"]["body"]["lot"]]
    assert harvest_event["location"] == harvest_event["statement"]["body"]["location"]


def _lot_entries(app: Flask, *, lot: str | None = None, gtin: str | None = None) -> list[int]:
    with app.extensions["suyuan.db"].reader() as session:
        query = select(LotEventRow.entry).distinct().join(LotRow, LotRow.code == LotEventRow.lot)
        query = query.where(LotEventRow.lot == lot) if lot else query.where(LotRow.gtin == gtin)
        return sorted(int(i) for i in session.scalars(query))


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(("query", "expect"), [
    ("kind=sale", lambda e: e["kind"] == "sale"),
    ("biz_step=shipping", lambda e: e["kind"] == "shipping"),
    ("biz_step=https://ref.gs1.org/cbv/BizStep-shipping", lambda e: e["kind"] == "shipping"),
    ("biz_step=urn:epcglobal:cbv:bizstep:receiving", lambda e: e["kind"] == "receiving"),
    ("biz_step=farmHarvest", lambda e: e["kind"] == "harvest"),
    ("biz_step=shipping&kind=sale", lambda e: False),
    ("actor=dalian-wholesale-market", lambda e: e["actor"] == "dalian-wholesale-market"),
    ("location=dl-market", lambda e: e["statement"]["body"].get("location") == "dl-market"),
    ("from=2026-06-05T00:00:00%2B08:00&to=2026-06-06",
     lambda e: _moment("2026-06-05T00:00:00+08:00")
     <= _moment(e["statement"]["body"]["event_time"]) < _moment("2026-06-06T00:00:00+00:00")),
    ("from=2026-07-01&actor=dalian-wholesale-market&biz_step=receiving",
     lambda e: e["kind"] == "receiving" and e["actor"] == "dalian-wholesale-market"
     and _moment(e["statement"]["body"]["event_time"]) >= _moment("2026-07-01T00:00:00Z")),
])
def test_event_filters(reader: FlaskClient, every_event: list[dict[str, Any]], query: str,
                       expect: Any) -> None:
    found = all_pages(reader, f"{API}/events?{query}&limit=3")
    assert found == [e for e in every_event if expect(e)]


def test_event_filters_by_lot_and_product(reader: FlaskClient, shared_app: Flask,
                                          every_event: list[dict[str, Any]]) -> None:
    kinds = set(EVENT_KINDS)
    by_lot = all_pages(reader, f"{API}/events?lot=JZ-MZ-260605")
    assert [e["entry"] for e in by_lot] == [
        i for i in _lot_entries(shared_app, lot="JZ-MZ-260605")
        if next(e for e in every_event if e["entry"] == i)["kind"] in kinds]
    assert {"harvest", "test", "packing", "recall"} <= {e["kind"] for e in by_lot}
    by_gtin = all_pages(reader, f"{API}/events?gtin={GTIN13}")   # GTIN-13 is normalised
    assert [e["entry"] for e in by_gtin] == [
        i for i in _lot_entries(shared_app, gtin=CHERRY)
        if any(e["entry"] == i for e in every_event)]
    assert all(e["lots"] for e in by_gtin)


@pytest.mark.parametrize(("query", "field", "word"), [
    ("limit=0", "limit", "greater than or equal to 1"),
    (f"limit={MAX_LIMIT + 1}", "limit", f"less than or equal to {MAX_LIMIT}"),
    ("limit=ten", "limit", "Not a valid integer"),
    ("cursor=abc!", "cursor", "not a cursor"),
    ("cursor=" + base64.urlsafe_b64encode(b"before:3").decode(), "cursor", "not a cursor"),
    ("from=yesterday", "from", "give a time with its offset"),
    ("from=2026-06-05T08:00:00", "from", "give a time with its offset"),
    ("from=2026-02-30", "from", "not a real date"),
    ("from=2026-06-06&to=2026-06-05", "to", "must be after"),
    ("gtin=02000000001006", "gtin", "check digit"),
    ("actor=no%20spaces", "actor", "actor must be"),
    ("lot=%00", "lot", "lot must be"),
    ("location=" + "x" * 65, "location", "location must be"),
    ("kind=shopping", "kind", "Must be one of"),
    ("biz_step=two%20words", "biz_step", "CBV step"),
    ("colour=red", "colour", "Unknown field"),
    ("actor=a&actor=b", "actor", "give this parameter once"),
])
def test_bad_event_queries_say_which_parameter_is_wrong(reader: FlaskClient, query: str,
                                                        field: str, word: str) -> None:
    error = assert_error(reader.get(f"{API}/events?{query}"), 400, "invalid_request")
    assert word in " ".join(error["fields"][field]), error


def test_cursors_are_opaque_round_trips(reader: FlaskClient) -> None:
    for after in (-1, 0, 7, 2**63 - 1):
        assert decode_cursor(encode_cursor(after)) == after
    assert reader.get(f"{API}/events?cursor={encode_cursor(2**63 - 1)}").json == {
        "events": [], "next": None}
    assert_error(reader.get(f"{API}/events?cursor={encode_cursor(2**63)}"), 400,
                 "invalid_request", "not a cursor")


def _without_creation_date(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "creationDate"}


@needs_epcis_schema
def test_events_and_lot_history_as_epcis_json_ld(reader: FlaskClient, shared_app: Flask) -> None:
    ld = {"Accept": "application/ld+json"}
    page = reader.get(f"{API}/events?lot=JZ-MZ-260605-G&limit=4", headers=ld)
    assert page.status_code == 200 and page.mimetype == "application/ld+json"
    assert page.headers["Link"].endswith('rel="next"') and "Accept" in page.headers["Vary"]
    doc = page.json
    epcis.validate_document(doc, schema_path=EPCIS_SCHEMA)
    json_page = reader.get(f"{API}/events?lot=JZ-MZ-260605-G&limit=4").json
    assert [e["suyuan:entry"] for e in doc["epcisBody"]["eventList"]] == [
        e["entry"] for e in json_page["events"]]
    history = reader.get(f"{API}/lots/JZ-MZ-260605", headers=ld)
    assert history.mimetype == "application/ld+json"
    epcis.validate_document(history.json, schema_path=EPCIS_SCHEMA)
    with shared_app.extensions["suyuan.db"].reader() as session:
        expected = epcis.export_lot_history(session, "JZ-MZ-260605")
    assert _without_creation_date(history.json) == _without_creation_date(expected)
    assert reader.get(f"{API}/lots/NO-SUCH", headers=ld).status_code == 404


# --- lots and lineage ------------------------------------------------------------------------


def test_a_lot_with_its_holders_history_alerts_and_digital_link(reader: FlaskClient) -> None:
    lot = reader.get(f"{API}/lots/JZ-MZ-260605").json
    assert lot["product"] == "大连大樱桃 美早" and lot["gtin"] == CHERRY
    assert lot["status"] == "recalled" and lot["owner"] == COOP
    assert lot["digital_link"] == f"{PUBLIC_URL}/01/{CHERRY}/10/JZ-MZ-260605"
    assert [h["kind"] for h in lot["history"]][:3] == ["harvest", "cooling", "test"]
    assert lot["history"][0]["body"]["quantity"] == {"value": "800", "unit": "KGM"}
    assert lot["holders"] == [{"actor": COOP, "quantity": "200"}]
    assert {a["rule"] for a in lot["alerts"]} == {"pesticide_interval", "residue_limit"}


def test_unknown_or_malformed_lots(reader: FlaskClient) -> None:
    assert_error(reader.get(f"{API}/lots/NO-SUCH-LOT"), 404, "not_found", "NO-SUCH-LOT")
    error = assert_error(reader.get(f"{API}/lots/-bad"), 400, "invalid_request")
    assert "lot" in error["fields"]
    assert_error(reader.get(f"{API}/lots/JZ-MZ-260605?x=1"), 400, "invalid_request")


@pytest.mark.parametrize("direction", ["back", "forward"])
def test_trace_matches_the_lineage_service(reader: FlaskClient, shared_app: Flask,
                                           direction: str) -> None:
    lot = "MKT-BB-260701-M" if direction == "back" else "ZH-BB-A-260701"
    found = reader.get(f"{API}/trace/{direction}?lot={lot}")
    assert found.status_code == 200
    walk = lineage.trace_back if direction == "back" else lineage.trace_forward
    with shared_app.extensions["suyuan.db"].reader() as session:
        expected = json.loads(json.dumps(walk(session, lot).to_json()))
    assert found.json == expected
    if direction == "back":
        assert set(found.json["origins"]) == {"ZH-BB-A-260701", "ZH-BB-B-260701"}
    else:
        assert any(s["receiver"] == "dl-supermarket" for s in found.json["shipments"])
    shallow = reader.get(f"{API}/trace/{direction}?lot={lot}&max_depth=1").json
    assert max(x["depth"] for x in shallow["lots"]) <= 1
    assert_error(reader.get(f"{API}/trace/{direction}?lot=NOPE"), 404, "not_found")
    error = assert_error(reader.get(f"{API}/trace/{direction}"), 400, "invalid_request")
    assert error["fields"] == {"lot": ["Missing data for required field."]}
    assert_error(reader.get(f"{API}/trace/{direction}?lot={lot}&max_depth=0"), 400,
                 "invalid_request")


# --- entries, proofs, checkpoints, policy ----------------------------------------------------


def test_entries_as_json_and_as_exact_bytes(reader: FlaskClient) -> None:
    entry = reader.get(f"{API}/entries/5").json
    raw = reader.get(f"{API}/entries/5", headers={"Accept": "application/octet-stream"})
    assert raw.mimetype == "application/octet-stream"
    assert raw.data == base64.b64decode(entry["leaf"])
    assert merkle.leaf_hash(raw.data).hex() == entry["leaf_hash"]
    assert entry["index"] == 5 and entry["statement"]["kind"]
    previous = reader.get(f"{API}/entries/4").json
    assert entry["prev"] == previous["leaf_hash"]
    last = size(reader)
    assert_error(reader.get(f"{API}/entries/{last}"), 404, "not_found", f"{last} entries")
    assert_error(reader.get(f"{API}/entries/{10**30}"), 404, "not_found")
    assert_error(reader.get(f"{API}/entries/-1"), 404, "not_found")


def test_inclusion_and_consistency_proofs_verify(reader: FlaskClient) -> None:
    latest = reader.get(f"{API}/checkpoints/latest").json
    proof = reader.get(f"{API}/proofs/inclusion?index=17").json
    assert proof["tree_size"] == latest["size"] and proof["root"] == latest["root"]
    assert proof["checkpoint"] == latest["note"]
    merkle.verify_inclusion(bytes.fromhex(proof["leaf_hash"]), 17, proof["tree_size"],
                            [bytes.fromhex(p) for p in proof["proof"]],
                            bytes.fromhex(proof["root"]))
    small = reader.get(f"{API}/proofs/inclusion?index=3&tree_size=20").json
    assert small["checkpoint"] is None
    merkle.verify_inclusion(bytes.fromhex(small["leaf_hash"]), 3, 20,
                            [bytes.fromhex(p) for p in small["proof"]],
                            bytes.fromhex(small["root"]))
    consistency = reader.get(f"{API}/proofs/consistency?size1=20").json
    assert consistency["size2"] == latest["size"] and consistency["root1"] == small["root"]
    merkle.verify_consistency(20, consistency["size2"],
                              [bytes.fromhex(p) for p in consistency["proof"]],
                              bytes.fromhex(consistency["root1"]),
                              bytes.fromhex(consistency["root2"]))
    same = reader.get(f"{API}/proofs/consistency?size1=20&size2=20").json
    assert same["proof"] == [] and same["root1"] == same["root2"]


@pytest.mark.parametrize(("url", "status", "field"), [
    ("/proofs/inclusion", 400, "index"),
    ("/proofs/inclusion?index=-1", 400, "index"),
    ("/proofs/inclusion?index=5&tree_size=5", 400, "index"),
    ("/proofs/inclusion?index=5&tree_size=0", 400, "tree_size"),
    ("/proofs/inclusion?index=5&tree_size=100000", 404, None),
    (f"/proofs/inclusion?index={10**40}", 404, None),
    ("/proofs/consistency?size1=0", 400, "size1"),
    ("/proofs/consistency?size1=9&size2=8", 400, "size1"),
    (f"/proofs/consistency?size1=3&size2={10**30}", 404, None),
    (f"/proofs/consistency?size1={10**30}", 400, "size1"),
    ("/proofs/tlog?index=x", 400, "index"),
    (f"/proofs/tlog?index={10**30}", 404, None),
    ("/policy?quorum=5", 400, "quorum"),
    ("/policy?quorum=-1", 400, "quorum"),
])
def test_bad_proof_requests(reader: FlaskClient, url: str, status: int,
                            field: str | None) -> None:
    response = reader.get(API + url)
    error = assert_error(response, status, "invalid_request" if status == 400 else "not_found")
    if field:
        assert field in error["fields"], error


def test_a_tlog_proof_verifies_offline_with_the_policy_and_the_leaf(reader: FlaskClient) -> None:
    text = reader.get(f"{API}/proofs/tlog?index=42")
    assert text.mimetype == "text/plain"
    assert text.get_data(as_text=True).startswith("c2sp.org/tlog-proof@v1\nindex 42\n")
    policy_text = reader.get(f"{API}/policy", headers={"Accept": "text/plain"})
    assert policy_text.mimetype == "text/plain"
    policy = note.parse_policy(policy_text.get_data(as_text=True))
    leaf = reader.get(f"{API}/entries/42", headers={"Accept": "application/octet-stream"}).data
    verified = note.verify_tlog_proof(text.data, leaf, policy)
    assert verified.index == 42 and verified.witnesses
    with pytest.raises(InclusionProofError):
        note.verify_tlog_proof(text.data, leaf + b" ", policy)


def test_checkpoints_and_the_policy(reader: FlaskClient) -> None:
    latest = reader.get(f"{API}/checkpoints/latest").json
    assert latest["size"] == size(reader)
    assert [c["witness"] for c in latest["cosignatures"]] == ["witness.dalian-amr.example"]
    assert latest["note"].startswith(f"{latest['origin']}\n{latest['size']}\n")
    as_text = reader.get(f"{API}/checkpoints/latest", headers={"Accept": "text/plain"})
    assert as_text.mimetype == "text/plain" and as_text.get_data(as_text=True) == latest["note"]
    assert reader.get(f"{API}/checkpoints/{latest['size']}").json == latest
    assert_error(reader.get(f"{API}/checkpoints/3"), 404, "not_found", "size 3")
    assert_error(reader.get(f"{API}/checkpoints/{10**30}"), 404, "not_found")
    policy = reader.get(f"{API}/policy").json
    assert policy["quorum"] == 1 and len(policy["witnesses"]) == 1
    assert policy["text"].startswith(f"log {policy['log']}\n")
    assert reader.get(f"{API}/policy?quorum=0").json["quorum"] == 0


def test_no_checkpoint_yet_is_a_clear_404(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "new.db"))
    db.upgrade()
    with db.writer() as session, session.begin():
        ledger.initialise(session, origin="ledger.example/new", log_key=crypto.SigningKey
                          .generate(), registrar="registrar",
                          registrar_key=crypto.SigningKey.generate())
    db.dispose()
    app = make_app(sqlite_url(tmp_path / "new.db"))
    client = app.test_client()
    assert_error(client.get(f"{API}/checkpoints/latest"), 404, "not_found", "no checkpoint")
    assert_error(client.get(f"{API}/proofs/tlog?index=0"), 404, "not_found", "no checkpoint")
    proof = client.get(f"{API}/proofs/inclusion?index=0").json   # against the whole log
    assert proof["tree_size"] == 1 and proof["proof"] == [] and proof["checkpoint"] is None
    app.extensions["suyuan.db"].dispose()


# --- the API's own description ---------------------------------------------------------------


def test_the_log_index_links_to_the_parts(reader: FlaskClient) -> None:
    info = reader.get(f"{API}/").json
    assert info["origin"] == "ledger.suyuan.example/dalian" and info["checkpoint"] == info["size"]
    for link in info["links"].values():
        assert reader.get(link).status_code in (200, 405)


def test_the_openapi_document_describes_every_route(reader: FlaskClient,
                                                    shared_app: Flask) -> None:
    response = reader.get(f"{API}/openapi.json")
    assert response.status_code == 200
    doc = response.json
    assert doc["openapi"].startswith("3.") and doc["servers"] == [{"url": API}]
    assert doc == json.loads(json.dumps(openapi.build(
        bulk_max_lines=shared_app.config["BULK_MAX_LINES"],
        max_bytes=shared_app.config["MAX_CONTENT_LENGTH"])))
    documented = {(API + path.replace("{", "<").replace("}", ">"), method.upper())
                  for path, item in doc["paths"].items() for method in item}
    routes = set()
    for rule in shared_app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule
            for converter in ("int:", "path:"):
                path = path.replace(f"<{converter}", "<")
            routes |= {(path, m) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    assert documented == routes
    params = {p["name"] for p in doc["paths"]["/events"]["get"]["parameters"]}
    assert params == {"lot", "gtin", "biz_step", "kind", "actor", "location", "from", "to",
                      "limit", "cursor"}


def test_the_docs_page_lists_endpoints_parameters_and_schemas(reader: FlaskClient) -> None:
    page = reader.get(f"{API}/docs", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script" not in html and "style=" not in html and "https://cdn" not in html
    for path in ("/api/v1/statements/bulk", "/api/v1/events", "/api/v1/proofs/tlog",
                 "/api/v1/lots/{code}"):
        assert f"<code>{path}</code>" in html
    assert 'id="schema-SignedStatement"' in html and "<code>biz_step</code>" in html
    assert 'href="/api/v1/openapi.json"' in html
    chinese = reader.get(f"{API}/docs?lang=zh")   # the language switch of every page
    assert chinese.status_code == 200 and '<html lang="zh-CN">' in chinese.get_data(as_text=True)
    assert reader.get(f"{API}/docs?lang=en").status_code == 200


def test_unknown_paths_and_methods_answer_json(reader: FlaskClient) -> None:
    assert_error(reader.get(f"{API}/nothing-here"), 404, "not_found")
    response = reader.delete(f"{API}/events")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]
    assert_error(reader.get(f"{API}/statements"), 405, "method_not_allowed")
