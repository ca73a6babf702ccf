"""Fuzzing the JSON API from its own OpenAPI document: no input makes it answer 5xx, and
answers fit the document."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from suyuan import crypto
from suyuan.events import KINDS
from suyuan.model import Statement, format_time, new_nonce, sign_statement, utcnow
from suyuan_web import DEFAULTS, openapi
from tests.web.conftest import Dalian, make_app


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_ctx: Any, value: Any) -> bytes:
    if isinstance(value, list):
        value = "\n".join(json.dumps(item) for item in value)
    elif not isinstance(value, str):
        value = json.dumps(value)
    return value.encode("utf-8", "surrogatepass")


# Capture is rate limited; fuzzing is not a flood. (The limiter is one object per process, so
# its switch is left on: other tests' apps keep their limits.)
UNLIMITED = "1000000 per minute"

# The same document the app serves (a test in test_api.py checks they are equal).
schema = schemathesis.openapi.from_dict(openapi.build(
    bulk_max_lines=DEFAULTS["BULK_MAX_LINES"], max_bytes=DEFAULTS["MAX_CONTENT_LENGTH"]))


@pytest.fixture(scope="module")
def fuzz_app(dalian_master: Dalian, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    ledger = dalian_master.copy_to(tmp_path_factory.mktemp("fuzz"))
    app = make_app(ledger.url, CAPTURE_RATE_LIMIT=UNLIMITED)
    yield app
    app.extensions["suyuan.db"].dispose()


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_the_api_fail(case: schemathesis.Case, fuzz_app: Flask) -> None:
    """Valid and invalid requests (parameters, bodies, methods) generated from the document:
    never a 5xx, and every answer has a documented status, type and shape."""
    case.call_and_validate(app=fuzz_app, checks=CHECKS)


# --- signed statements with arbitrary bodies -------------------------------------------------
# The document cannot describe a valid signature, so the fuzzing above never gets past the
# signature check. Here every statement is validly signed by a real actor of the Dalian world
# and its body is arbitrary: the kind's own fields with values that are sometimes plausible
# (known lots, places, GTINs, quantities) and sometimes any JSON at all. Every rule runs on it.

LOTS = ["JZ-MZ-260605", "JZ-MZ-260605-G", "WFD-FJ-251020", "MKT-BB-260701-M", "FZ-NEW-1"]
PLACES = ["jz-orchard-3", "jz-packhouse", "dl-market", "dl-store-1", "nowhere"]
GTINS = ["02000000001005", "02000000001012", "2000000001005", "02000000001006", "1"]
ACTORS = ["jinzhou-cherry-coop", "dl-coldchain", "dalian-fresh-ecom", "dalian-amr",
          "dalian-agri-lab", "dalian-wholesale-market", "dl-supermarket"]

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | text
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(text, inner, max_size=3), max_leaves=8)
decimals = st.sampled_from(["1", "20", "0.5", "800", "0", "-3"]) | st.from_regex(
    r"-?(0|[1-9][0-9]{0,6})(\.[0-9]{1,3})?", fullmatch=True)
quantity = st.fixed_dictionaries({"value": decimals,
                                  "unit": st.sampled_from(["KGM", "KGM", "XBX", "H87", "LB"])})
times = st.sampled_from(["2026-06-05T08:00:00+08:00", "2026-06-06T23:59:59Z", "2025-01-01T00:00",
                         "2026-07-01T18:00:00+08:00", "2030-01-01T00:00:00+08:00",
                         "2026-02-30T08:00:00+08:00"])
lot_quantities = st.lists(st.fixed_dictionaries({"lot": st.sampled_from(LOTS),
                                                 "quantity": quantity}), max_size=3)
PLAUSIBLE: dict[str, Any] = {
    "lot": st.sampled_from(LOTS), "product": st.sampled_from(GTINS),
    "gtin": st.sampled_from(GTINS), "location": st.sampled_from(PLACES),
    "to_location": st.sampled_from(PLACES), "quantity": quantity, "event_time": times,
    "lots": lot_quantities | st.lists(st.sampled_from(LOTS), max_size=3),
    "inputs": lot_quantities, "to": st.sampled_from(ACTORS),
    "shipment": st.sampled_from(["ZS-210213-260605-01", "ZS-210211-260702-01", "FZ-SH-1"]),
    "text": st.sampled_from(["雨", "note"]), "reason": st.sampled_from(["抽检", "test"]),
    "id": st.sampled_from(PLACES), "name": st.sampled_from(["地点", "place"]),
    "process": st.sampled_from(["split", "merge", "process"]),
    "channel": st.sampled_from(["retail", "ecommerce", "wholesale"]),
    "readings": st.lists(st.fixed_dictionaries({"time": times, "celsius": decimals}),
                         max_size=3),
    "outputs": st.lists(st.fixed_dictionaries({"lot": st.sampled_from(LOTS),
                                               "product": st.sampled_from(GTINS),
                                               "quantity": quantity}), max_size=2),
    "corrects": st.integers(-1, 200),
}


@st.composite
def bodies(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """Mostly the kind's required fields with plausible values, sometimes anything."""
    spec = KINDS[kind].spec
    required = sorted(name for name, (_, needed) in spec.items() if needed)
    names = set(draw(st.lists(st.sampled_from(sorted(spec)), unique=True, max_size=4)))
    if draw(st.integers(0, 4)):
        names |= set(required)
    body = {}
    for name in sorted(names):
        plausible = PLAUSIBLE.get(name)
        if plausible is not None and draw(st.integers(0, 7)):
            body[name] = draw(plausible)
        else:
            body[name] = draw(anything)
    if not draw(st.integers(0, 7)):
        body.update(draw(st.dictionaries(text, anything, max_size=2)))
    return body


@st.composite
def statements(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    kind = draw(st.sampled_from(sorted(KINDS)) | st.just("note"))
    body = draw(bodies(kind)) if kind in KINDS else {"text": draw(text), "lot": draw(
        st.sampled_from(LOTS))}
    return draw(st.sampled_from(ACTORS)), kind, body


def test_signed_statements_with_any_body_never_fail_the_api(dalian_any: Dalian) -> None:
    app = make_app(dalian_any.url, CAPTURE_RATE_LIMIT=UNLIMITED)
    client = app.test_client()

    def signed_line(actor: str, kind: str, body: dict[str, Any]) -> str:
        key = dalian_any.keys[actor]
        statement = Statement(kind=kind, actor=actor,
                              key_id=crypto.key_id(actor, key.public_key).hex(),
                              time=format_time(utcnow()), nonce=new_nonce(), body=body)
        return sign_statement(statement, key).to_line()

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(statements(), min_size=1, max_size=4))
    def run(drafts: list[tuple[str, str, dict[str, Any]]]) -> None:
        lines = [signed_line(*draft) for draft in drafts]
        one = client.post("/api/v1/statements", data=lines[0],
                          content_type="application/json")
        assert one.status_code in (200, 201, 400, 422), one.data
        assert set(one.json) == ({"error"} if one.status_code >= 400 else
                                 {"index", "leaf_hash", "duplicate", "alerts", "entry"})
        bulk = client.post("/api/v1/statements/bulk", data="\n".join(lines),
                           content_type="application/x-ndjson")
        assert bulk.status_code == 200, bulk.data
        assert len(bulk.json["results"]) == len(lines)

    try:
        run()
        audit = client.get("/api/v1/events?limit=500")
        assert audit.status_code == 200
    finally:
        app.extensions["suyuan.db"].dispose()
