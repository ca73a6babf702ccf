"""The OpenAPI 3 document of the JSON API, generated with apispec from the marshmallow schemas
the views load and dump, and the same document arranged for the browsable page."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app, url_for

from suyuan import __version__
from suyuan_web import schemas as s

OPENAPI_VERSION = "3.0.3"
_CACHE = "suyuan_web.openapi"

JSON = "application/json"
JSON_LD = "application/ld+json"

_DESCRIPTION = """\
Suyuan (溯源) is an append-only, verifiable traceability ledger. Every statement is signed by
the actor who makes it (Ed25519 over `suyuan/statement/v1\\n` + the RFC 8785 canonical
statement) and appended to an RFC 9162 Merkle log whose C2SP checkpoints are cosigned by
witnesses.

Capture takes the lines `suyuan sign` prints and applies the rules of `suyuan append` and
`suyuan import`; a replay of a statement already in the log is idempotent. Query reads
events (EPCIS-style filters, cursor pagination), lots, lineage, entries, proofs, checkpoints
and the log policy. Events and lot histories are also available as GS1 EPCIS 2.0 JSON-LD
(`Accept: application/ld+json`).

Errors are JSON: `{"error": {"code": …, "message": …, "fields": {…}}}`. `code` is
`invalid_request` for parameters or bodies that do not fit this document (with messages per
field), `malformed` for input the ledger cannot read, `not_found`, or the reason code of the
rule a statement breaks (`custody`, `mass_balance`, `unknown_key`, `revoked_key`,
`not_permitted`, `chronology`, `nonce_reused`, `future_time` …).
"""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}


_ERRORS = {
    "400": "Invalid parameters or body (`invalid_request` with messages per field, or "
           "`malformed`).",
    "404": "Not found.",
    "413": "The body is larger than the server accepts.",
    "415": "Wrong Content-Type.",
    "422": "The statement is refused: `code` is the rule's reason.",
    "429": "Too many capture requests from this address; see Retry-After.",
}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _error(_ERRORS[code]) for code in codes}


def _ok(schema: Any, description: str, **other_types: Any) -> dict[str, Any]:
    content = {JSON: {"schema": schema}}
    content.update({media: {"schema": value} for media, value in other_types.items()})
    return {"description": description, "content": content}


_EPCIS_DOCUMENT = {
    "type": "object",
    "description": "A GS1 EPCIS 2.0 EPCISDocument (JSON-LD).",
    "required": ["@context", "type", "schemaVersion", "creationDate", "epcisBody"],
    "properties": {
        "type": {"type": "string", "enum": ["EPCISDocument"]},
        "schemaVersion": {"type": "string"},
        "epcisBody": {
            "type": "object",
            "required": ["eventList"],
            "properties": {"eventList": {"type": "array", "items": {"type": "object"}}},
        },
    },
}
_TEXT = {"type": "string"}
_LINK_HEADER = {"Link": {"description": 'The next page: `<…?cursor=…>; rel="next"`.',
                         "schema": {"type": "string"}}}


def _path(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"in": "path", "name": name, "required": True, "description": description,
            "schema": schema}


def _query(schema: type) -> dict[str, Any]:
    return {"in": "query", "schema": schema}


def _operations(bulk_max_lines: int, max_bytes: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) of every operation, in the order the page lists them."""
    lot_code = _path("code", "The traceability lot code.",
                     {"type": "string", "pattern": s.CODE_PATTERN, "maxLength": 64})
    return [
        ("/", "get", {
            "tags": ["log"], "operationId": "logInfo", "summary": "The log and the API's parts",
            "description": "Origin, size and verifier key of the log, the latest checkpoint "
                           "size and links to the rest of the API.",
            "parameters": [_query(s.EmptyQuerySchema)],
            "responses": {"200": _ok(s.LogInfoSchema, "The log."), **_errors("400")},
        }),
        ("/statements", "post", {
            "tags": ["capture"], "operationId": "captureStatement",
            "summary": "Append one signed statement",
            "description": "The body is one signed statement, as `suyuan sign` prints it. "
                           "It is checked like `suyuan append`: envelope, time (at most 5 "
                           "minutes ahead), signature, the actor's key as of this point of "
                           "the log, role, the kind's fields, and the supply-chain rules. "
                           "Rules that only raise alerts are reported in `alerts`. Sending "
                           "a statement already in the log appends nothing and answers 200 "
                           "with the original index and `duplicate: true`. Rate limited "
                           "per client address.",
            "parameters": [_query(s.EmptyQuerySchema)],
            "requestBody": {"required": True, "content": {JSON: {"schema": s.SignedStatementSchema}}},
            "responses": {
                "201": {**_ok(s.CaptureResultSchema, "Appended."),
                        "headers": {"Location": {"description": "The new entry.",
                                                 "schema": {"type": "string"}}}},
                "200": _ok(s.CaptureResultSchema, "Already in the log (idempotent replay)."),
                **_errors("400", "413", "415", "422", "429"),
            },
        }),
        ("/statements/bulk", "post", {
            "tags": ["capture"], "operationId": "captureBulk",
            "summary": "Append NDJSON signed statements",
            "description": "One signed statement per line (NDJSON, as `suyuan sign` prints "
                           f"them), at most {bulk_max_lines} lines and {max_bytes} bytes; "
                           "blank lines are skipped, lines are numbered from 1. If any line "
                           "cannot be read as a signed statement (not JSON, wrong fields, "
                           "bad base64, over 64 KiB) the request is refused with 400 listing "
                           "those lines in `error.lines`, and nothing is appended. Otherwise "
                           "the lines are appended in one transaction and each gets a "
                           "result, as with `suyuan import`: `appended`, `duplicate` (with "
                           "the original index) or `rejected` (with the reason code); the "
                           "others are appended even when some are rejected.",
            "parameters": [_query(s.EmptyQuerySchema)],
            "requestBody": {"required": True, "content": {"application/x-ndjson": {
                "schema": {"type": "string",
                           "description": "Signed statements, one JSON object per line."}}}},
            "responses": {
                "200": _ok(s.BulkResultSchema, "Every line's result."),
                **_errors("400", "413", "415", "429"),
            },
        }),
        ("/events", "get", {
            "tags": ["query"], "operationId": "listEvents",
            "summary": "Events, filtered EPCIS-style",
            "description": "Supply-chain events (and imported EPCIS events and corrections) "
                           "in log order, filtered by what (lot, product), why (bizStep, "
                           "kind), who (actor), where (location) and when (event time). "
                           "Follow `next` (or the Link header) until it is null. With "
                           "`Accept: application/ld+json` the page is an EPCIS 2.0 document "
                           "(corrections of entries with no EPCIS form are left out).",
            "parameters": [_query(s.EventQuerySchema)],
            "responses": {
                "200": {**_ok(s.EventPageSchema, "A page of events.",
                              **{JSON_LD: _EPCIS_DOCUMENT}), "headers": _LINK_HEADER},
                **_errors("400"),
            },
        }),
        ("/lots/{code}", "get", {
            "tags": ["query"], "operationId": "getLot", "summary": "One lot",
            "description": "Product, quantity, owner, holders, status (active or recalled), "
                           "history and alerts of a lot, with its GS1 Digital Link URI. "
                           "With `Accept: application/ld+json`: the lot's history as an "
                           "EPCIS 2.0 document.",
            "parameters": [lot_code, _query(s.EmptyQuerySchema)],
            "responses": {"200": _ok(s.LotSchema, "The lot.", **{JSON_LD: _EPCIS_DOCUMENT}),
                          **_errors("400", "404")},
        }),
        ("/trace/back", "get", {
            "tags": ["lineage"], "operationId": "traceBack", "summary": "Trace a lot back",
            "description": "Every lot the lot was made from, through transformations and "
                           "packing, down to the origin lots and the inputs (pesticides, "
                           "fertiliser) applied to them or their places.",
            "parameters": [_query(s.TraceQuerySchema)],
            "responses": {"200": _ok(s.TraceSchema, "The trace."), **_errors("400", "404")},
        }),
        ("/trace/forward", "get", {
            "tags": ["lineage"], "operationId": "traceForward",
            "summary": "Trace a lot forward (recall scope)",
            "description": "Every lot made from the lot, every shipment of them and its "
                           "receiver, who holds them now and every sale.",
            "parameters": [_query(s.TraceQuerySchema)],
            "responses": {"200": _ok(s.TraceSchema, "The trace."), **_errors("400", "404")},
        }),
        ("/entries/{index}", "get", {
            "tags": ["log"], "operationId": "getEntry", "summary": "One entry of the log",
            "description": "The statement, signature, leaf hash and the exact leaf bytes "
                           "(base64). With `Accept: application/octet-stream`: the leaf "
                           "bytes themselves (for `suyuan verify-proof --leaf`).",
            "parameters": [_path("index", "Index of the entry (from 0).",
                                 {"type": "integer", "minimum": 0}),
                           _query(s.EmptyQuerySchema)],
            "responses": {"200": _ok(s.EntrySchema, "The entry.", **{
                "application/octet-stream": {"type": "string", "format": "binary"}}),
                **_errors("400", "404")},
        }),
        ("/proofs/inclusion", "get", {
            "tags": ["proofs"], "operationId": "inclusionProof",
            "summary": "Inclusion proof (RFC 9162)",
            "description": "The audit path of an entry in a tree, hex encoded, with the "
                           "tree's root and, when a checkpoint of that size was signed, the "
                           "cosigned checkpoint.",
            "parameters": [_query(s.InclusionQuerySchema)],
            "responses": {"200": _ok(s.InclusionProofSchema, "The proof."),
                          **_errors("400", "404")},
        }),
        ("/proofs/consistency", "get", {
            "tags": ["proofs"], "operationId": "consistencyProof",
            "summary": "Consistency proof (RFC 9162)",
            "description": "Proof that the tree of size1 is a prefix of the tree of size2.",
            "parameters": [_query(s.ConsistencyQuerySchema)],
            "responses": {"200": _ok(s.ConsistencyProofSchema, "The proof."),
                          **_errors("400", "404")},
        }),
        ("/proofs/tlog", "get", {
            "tags": ["proofs"], "operationId": "tlogProof",
            "summary": "Offline proof (C2SP tlog-proof)",
            "description": "The `c2sp.org/tlog-proof@v1` text of an entry against the latest "
                           "cosigned checkpoint: check it with the log policy and the leaf "
                           "bytes, no database needed.",
            "parameters": [_query(s.TlogProofQuerySchema)],
            "responses": {"200": {"description": "The proof.",
                                  "content": {"text/plain": {"schema": _TEXT}}},
                          **_errors("400", "404")},
        }),
        ("/checkpoints/latest", "get", {
            "tags": ["proofs"], "operationId": "latestCheckpoint",
            "summary": "The latest checkpoint",
            "description": "The latest checkpoint signed by the log, with every witness "
                           "cosignature; with `Accept: text/plain`, the C2SP note itself.",
            "parameters": [_query(s.EmptyQuerySchema)],
            "responses": {"200": _ok(s.CheckpointSchema, "The checkpoint.",
                                     **{"text/plain": _TEXT}), **_errors("400", "404")},
        }),
        ("/checkpoints/{size}", "get", {
            "tags": ["proofs"], "operationId": "checkpointAt",
            "summary": "The checkpoint of a tree size",
            "description": "The checkpoint signed when the log had `size` entries.",
            "parameters": [_path("size", "Tree size.", {"type": "integer", "minimum": 0}),
                           _query(s.EmptyQuerySchema)],
            "responses": {"200": _ok(s.CheckpointSchema, "The checkpoint.",
                                     **{"text/plain": _TEXT}), **_errors("400", "404")},
        }),
        ("/policy", "get", {
            "tags": ["proofs"], "operationId": "logPolicy", "summary": "The log policy",
            "description": "The C2SP tlog-policy of this log: its verifier key and origin, "
                           "the witnesses' keys and the quorum. Keep it apart from the "
                           "server to verify proofs offline.",
            "parameters": [_query(s.PolicyQuerySchema)],
            "responses": {"200": _ok(s.PolicySchema, "The policy.", **{"text/plain": _TEXT}),
                          **_errors("400")},
        }),
        ("/docs", "get", {
            "tags": ["log"], "operationId": "docs", "summary": "This document as a page",
            "description": "Endpoints, parameters and schemas, for people.",
            "parameters": [_query(s.PageQuerySchema)],
            "responses": {"200": {"description": "The page.",
                                  "content": {"text/html": {"schema": _TEXT}}},
                          **_errors("400")},
        }),
        ("/openapi.json", "get", {
            "tags": ["log"], "operationId": "openapi", "summary": "This document",
            "parameters": [_query(s.EmptyQuerySchema)],
            "responses": {"200": _ok({"type": "object"}, "OpenAPI 3 document."),
                          **_errors("400")},
        }),
    ]


def build(*, bulk_max_lines: int, max_bytes: int, server: str = "/api/v1") -> dict[str, Any]:
    """The OpenAPI document of the JSON API."""
    spec = APISpec(
        title="Suyuan (溯源) JSON API",
        version=__version__,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={"description": _DESCRIPTION},
        servers=[{"url": server}],
        tags=[
            {"name": "capture", "description": "Append signed statements."},
            {"name": "query", "description": "Events and lots."},
            {"name": "lineage", "description": "Trace back and forward."},
            {"name": "proofs", "description": "Entries' inclusion, the log's consistency, "
                                              "checkpoints and the policy."},
            {"name": "log", "description": "The log and this API."},
        ],
    )
    spec.components.schema("Error", schema=s.ErrorSchema)
    for path, method, operation in _operations(bulk_max_lines, max_bytes):
        spec.path(path=path, operations={method: operation})
    return spec.to_dict()


def document() -> dict[str, Any]:
    """The document for the current application (built once, then reused)."""
    cached = current_app.extensions.get(_CACHE)
    if cached is None:
        server = url_for("api.index").rstrip("/")
        cached = build(
            bulk_max_lines=int(current_app.config.get("BULK_MAX_LINES", 10_000)),
            max_bytes=int(current_app.config.get("MAX_CONTENT_LENGTH") or 0),
            server=server,
        )
        current_app.extensions[_CACHE] = cached
    return cached  # type: ignore[no-any-return]


# --- the page --------------------------------------------------------------------------------


def _type(schema: dict[str, Any] | None) -> str:
    """A schema in a few words: ``string``, ``array of Event``, ``integer ≥ 0``."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    kind = schema.get("type", "object")
    if kind == "array":
        text = f"array of {_type(schema.get('items'))}"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        text = f"object of {_type(schema['additionalProperties'])}"
    else:
        text = str(kind)
        if schema.get("format"):
            text += f" ({schema['format']})"
    if "enum" in schema:
        text += ": " + " | ".join(str(v) for v in schema["enum"])
    if "minimum" in schema and "maximum" in schema:
        text += f", {schema['minimum']}–{schema['maximum']}"
    elif "minimum" in schema:
        text += f" ≥ {schema['minimum']}"
    if schema.get("nullable"):
        text += " or null"
    return text


def _refs(schema: dict[str, Any] | None) -> list[str]:
    """Names of component schemas a schema refers to (for links on the page)."""
    if not schema:
        return []
    if "$ref" in schema:
        return [str(schema["$ref"]).rsplit("/", 1)[-1]]
    if schema.get("type") == "array":
        return _refs(schema.get("items"))
    return []


def _rich(text: str) -> list[tuple[bool, str]]:
    """Text as (is_code, part) pairs: the parts between backticks are code."""
    return [(n % 2 == 1, part) for n, part in enumerate(text.split("`")) if part]


def page(doc: dict[str, Any]) -> dict[str, Any]:
    """The document arranged for the template: operations with their parameters, bodies and
    responses, then the schemas with their properties."""
    base = doc["servers"][0]["url"]
    operations = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            parameters = [{
                "name": p["name"], "where": p["in"], "required": p.get("required", False),
                "type": _type(p.get("schema")),
                "description": _rich(p.get("description")
                                     or p.get("schema", {}).get("description", "")),
            } for p in op.get("parameters", [])]
            body = op.get("requestBody", {}).get("content", {})
            responses = [{
                "status": status, "description": _rich(response.get("description", "")),
                "content": [{"type": media, "schema": _type(v.get("schema")),
                             "refs": _refs(v.get("schema"))}
                            for media, v in response.get("content", {}).items()],
            } for status, response in op.get("responses", {}).items()]
            operations.append({
                "id": op.get("operationId", ""), "method": method.upper(), "path": base + path,
                "summary": op.get("summary", ""), "description": _rich(op.get("description", "")),
                "parameters": parameters,
                "body": [{"type": media, "schema": _type(v.get("schema")),
                          "refs": _refs(v.get("schema"))} for media, v in body.items()],
                "responses": responses,
            })
    schemas = []
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        required = set(schema.get("required", []))
        schemas.append({"name": name, "description": _rich(schema.get("description", "")),
                        "properties": [{
                            "name": prop, "type": _type(value), "refs": _refs(value),
                            "required": prop in required,
                            "description": _rich(value.get("description", "")),
                        } for prop, value in schema.get("properties", {}).items()]})
    return {"title": doc["info"]["title"], "version": doc["info"]["version"],
            "description": [_rich(paragraph) for paragraph in
                            doc["info"].get("description", "").split("\n\n")],
            "base": base,
            "operations": operations, "schemas": schemas}
