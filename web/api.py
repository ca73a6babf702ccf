"""The JSON API at /api/v1: capture signed statements (one, or NDJSON in bulk); query events,
lots, lineage, entries, proofs, checkpoints and the log policy; the OpenAPI document and a
page listing it.

Capture takes the lines `suyuan sign` prints and applies exactly the rules of `suyuan append`
and `suyuan import`. A replay of a statement already in the log is idempotent: it answers the
original entry's index and appends nothing.

Bulk capture (``POST /statements/bulk``, NDJSON) first reads every non-blank line. If any line
cannot be read as a signed statement (not JSON, wrong or missing fields, bad base64, longer
than 64 KiB) the request is refused with 400 naming each such line, and nothing is appended.
The lines that read are appended in one transaction and each gets its result, as with
`suyuan import`: appended, duplicate (with the original index) or rejected with the reason
code of the rule it breaks.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for
from marshmallow import Schema, ValidationError
from sqlalchemy import exists, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import UnsupportedMediaType

from suyuan import canonical, fields, ledger, lineage, lots, merkle
from suyuan.errors import MalformedInput, NotFound
from suyuan.events import KINDS
from suyuan.importer import MAX_LINE_BYTES, read_lines
from suyuan.interop import epcis
from suyuan.ledger import AppendResult
from suyuan.model import Entry, SignedStatement, Statement, parse_signed_statement
from suyuan.storage import repo
from suyuan.storage.schema import (
    EntryRow,
    LotEventRow,
    LotRow,
)
from suyuan_web import openapi
from suyuan_web import schemas as s
from suyuan_web.common import capture_limit, digital_link, limiter, reading, writing
from suyuan_web.errors import classify, error_response

bp = Blueprint("api", __name__)

JSON = "application/json"
JSON_LD = "application/ld+json"
TEXT = "text/plain"
OCTETS = "application/octet-stream"
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl",
                "application/x-jsonlines")
"""Media types accepted for bulk capture (one JSON document per line)."""

MAX_BAD_LINES = 100
"""Unreadable lines listed in a refused bulk request (the count is always given)."""

SCAN_BUDGET = 5000
SCAN_CHUNK = 500
"""The events query reads at most SCAN_BUDGET candidate entries per request (in chunks):
a filter SQL cannot apply (location, time) then ends the page early with a `next` cursor
instead of scanning the whole log."""

_EVENT_QUERY = s.EventQuerySchema()
_TRACE_QUERY = s.TraceQuerySchema()
_INCLUSION_QUERY = s.InclusionQuerySchema()
_CONSISTENCY_QUERY = s.ConsistencyQuerySchema()
_TLOG_QUERY = s.TlogProofQuerySchema()
_POLICY_QUERY = s.PolicyQuerySchema()
_NO_QUERY = s.EmptyQuerySchema()
_DOCS_QUERY = s.PageQuerySchema()
_SIGNED = s.SignedStatementSchema()


# --- request and response helpers ------------------------------------------------------------


def _query(schema: Schema) -> dict[str, Any]:
    """The query string loaded by ``schema``; each parameter may be given once."""
    repeated = {name: ["give this parameter once"]
                for name, values in request.args.lists() if len(values) > 1}
    if repeated:
        raise ValidationError(repeated)
    return schema.load(request.args.to_dict())  # type: ignore[no-any-return]


def _preferred(*offered: str) -> str:
    """The media type to answer with: the first offered unless Accept prefers another."""
    if not request.accept_mimetypes:
        return offered[0]
    return request.accept_mimetypes.best_match(offered, default=offered[0]) or offered[0]


def _json(schema: Schema, data: Any, status: int = 200) -> Response:
    response = jsonify(schema.dump(data))
    response.status_code = status
    return response


def _json_ld(document: Mapping[str, Any]) -> Response:
    response = jsonify(document)
    response.mimetype = JSON_LD
    return response


def _text(text: str) -> Response:
    return Response(text, mimetype=TEXT)


def _messages(exc: ValidationError | MalformedInput) -> str:
    """One line from a marshmallow error's nested field messages (or a core error)."""
    if isinstance(exc, MalformedInput):
        return str(exc)
    parts: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value, path)
        else:
            parts.append(f"{path}: {node}" if path else str(node))

    walk(exc.messages, "")
    return "; ".join(parts)


def _hex(data: bytes) -> str:
    return bytes(data).hex()


def _code(value: str, what: str) -> str:
    try:
        return fields.code(value, what)
    except MalformedInput as exc:
        raise ValidationError({what: [str(exc)]}) from exc


# --- the log ---------------------------------------------------------------------------------


@bp.get("/")
def index() -> Response:
    """What this log is, and where the API's parts are."""
    _query(_NO_QUERY)
    with reading() as session:
        latest = repo.latest_checkpoint(session)
        info = {
            "origin": ledger.origin(session),
            "size": ledger.size(session),
            "vkey": str(ledger.log_vkey(session)),
            "checkpoint": None if latest is None else latest.size,
        }
    info["links"] = {
        "openapi": url_for("api.openapi_document"),
        "docs": url_for("api.docs"),
        "capture": url_for("api.capture"),
        "capture_bulk": url_for("api.capture_bulk"),
        "events": url_for("api.events"),
        "checkpoint": url_for("api.checkpoint_latest"),
        "policy": url_for("api.policy"),
    }
    return _json(s.LogInfoSchema(), info)


# --- capture ---------------------------------------------------------------------------------


def _read_signed(raw: bytes) -> SignedStatement:
    """A signed statement from one JSON document; raises MalformedInput for JSON it cannot
    read and ValidationError for a document that is no signed statement."""
    if len(raw) > MAX_LINE_BYTES:
        raise MalformedInput(f"the statement is {len(raw)} bytes; the limit is {MAX_LINE_BYTES}")
    data = canonical.loads(raw)
    if not isinstance(data, dict):
        raise ValidationError("a signed statement is a JSON object with the fields statement "
                              "and signature")
    _SIGNED.load(data)
    return parse_signed_statement(data)


def _leaf_hash(session: Session, result: AppendResult) -> str | None:
    if result.error is None and result.leaf_hash is not None:
        return result.leaf_hash.hex()
    if result.is_duplicate:
        return merkle.leaf_hash(repo.leaf(session, result.error.index)).hex()  # type: ignore[union-attr]
    return None


def _append(items: Sequence[SignedStatement]) -> list[tuple[AppendResult, str | None]]:
    """Append ``items`` in one transaction; each result with its entry's leaf hash (for a
    duplicate, the original entry's).

    Should the database refuse a value no rule foresaw, the batch is rolled back and each
    statement is tried alone, so that only the one at fault is refused."""
    try:
        with writing() as session:
            results = ledger.append(session, list(items))
            return [(result, _leaf_hash(session, result)) for result in results]
    except (DataError, IntegrityError) as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        refused = MalformedInput(f"the database refused a value of this statement: {reason}")
        if len(items) == 1:
            raise refused from exc
    out: list[tuple[AppendResult, str | None]] = []
    for item in items:
        try:
            out.extend(_append([item]))
        except MalformedInput as exc:
            out.append((AppendResult(error=exc), None))
    return out


def _capture_result(index: int, leaf_hash: str | None, *, duplicate: bool,
                    alerts: Sequence[Any] = ()) -> dict[str, Any]:
    return {"index": index, "leaf_hash": leaf_hash, "duplicate": duplicate,
            "alerts": [vars(alert) for alert in alerts],
            "entry": url_for("api.entry", index=index)}


@bp.post("/statements")
@limiter.limit(capture_limit)
def capture() -> Response:
    """Append one signed statement (the JSON `suyuan sign` prints)."""
    _query(_NO_QUERY)
    if request.mimetype != JSON:
        raise UnsupportedMediaType(
            "send one signed statement as application/json; NDJSON goes to "
            f"{url_for('api.capture_bulk')}")
    signed = _read_signed(request.get_data(cache=False))
    ((result, leaf_hash),) = _append([signed])
    if result.is_duplicate:
        original = result.error.index  # type: ignore[union-attr]
        return _json(s.CaptureResultSchema(), _capture_result(original, leaf_hash,
                                                              duplicate=True))
    if result.error is not None:
        raise result.error
    assert result.index is not None
    response = _json(s.CaptureResultSchema(), _capture_result(
        result.index, leaf_hash, duplicate=False, alerts=result.alerts), 201)
    response.headers["Location"] = url_for("api.entry", index=result.index)
    return response


def _line_error(error: Exception) -> dict[str, str]:
    _, code = classify(error)
    return {"code": code, "message": str(error)}


@bp.post("/statements/bulk")
@limiter.limit(capture_limit)
def capture_bulk() -> Response:
    """Append NDJSON signed statements with a result per line (see the module docstring)."""
    _query(_NO_QUERY)
    if request.mimetype not in NDJSON_TYPES:
        raise UnsupportedMediaType(
            "send signed statements as application/x-ndjson, one per line; a single JSON "
            f"statement goes to {url_for('api.capture')}")
    lines = list(read_lines(request.get_data(cache=False).split(b"\n")))
    if not lines:
        raise MalformedInput("no statements: send one signed statement per line")
    most = int(current_app.config.get("BULK_MAX_LINES", 10_000))
    if len(lines) > most:
        return error_response(413, "too_many_lines",
                              f"{len(lines)} statements; at most {most} per request")
    numbered: list[tuple[int, SignedStatement]] = []
    unreadable: list[dict[str, Any]] = []
    for number, raw in lines:
        try:
            numbered.append((number, _read_signed(raw)))
        except (MalformedInput, ValidationError) as exc:
            unreadable.append({"line": number, "message": _messages(exc)})
    if unreadable:
        first = unreadable[0]
        return error_response(
            400, "malformed",
            f"line {first['line']}: {first['message']}; nothing appended "
            f"({len(unreadable)} unreadable line(s))",
            lines=unreadable[:MAX_BAD_LINES])

    outcome = _append([signed for _, signed in numbered])
    summary: dict[str, Any] = {"appended": 0, "duplicates": 0, "rejected": 0,
                               "first_index": None, "last_index": None, "results": []}
    for (number, _), (result, leaf_hash) in zip(numbered, outcome, strict=True):
        line: dict[str, Any] = {"line": number}
        if result.error is None:
            summary["appended"] += 1
            if summary["first_index"] is None:
                summary["first_index"] = result.index
            summary["last_index"] = result.index
            line.update(status="appended", index=result.index, leaf_hash=leaf_hash,
                        alerts=[vars(alert) for alert in result.alerts])
        elif result.is_duplicate:
            summary["duplicates"] += 1
            line.update(status="duplicate", index=result.error.index,  # type: ignore[attr-defined]
                        leaf_hash=leaf_hash)
        else:
            summary["rejected"] += 1
            line.update(status="rejected", error=_line_error(result.error))
        summary["results"].append(line)
    return _json(s.BulkResultSchema(), summary)


# --- events ----------------------------------------------------------------------------------


def _kind_step(kind: str) -> str | None:
    spec = KINDS.get(kind)
    return spec.biz_step if spec is not None else None


def _aware(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _place(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _facts(statement: Mapping[str, Any]) -> dict[str, Any]:
    """What, when and where of a stored event statement, whatever its kind."""
    kind, body = statement["kind"], statement["body"]
    if kind == "epcis_event":
        event = body.get("event") if isinstance(body.get("event"), Mapping) else {}
        step = event.get("bizStep")
        return {
            "event_type": event.get("type") if isinstance(event.get("type"), str) else None,
            "biz_step": s.normalise_biz_step(step) if isinstance(step, str) else None,
            "event_time": event.get("eventTime") if isinstance(event.get("eventTime"), str)
            else None,
            "location": _place(event.get("bizLocation")) or _place(event.get("readPoint")),
        }
    spec = KINDS.get(kind)
    location = body.get("location")
    when = body.get("event_time")
    return {
        "event_type": spec.epcis_type if spec is not None else None,
        "biz_step": spec.biz_step if spec is not None else None,
        "event_time": when if isinstance(when, str) else None,
        "location": location if isinstance(location, str) else None,
    }


def _matches(event: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    """The filters SQL could not apply."""
    if "biz_step" in query and event["biz_step"] != query["biz_step"]:
        return False
    if "location" in query and event["location"] != query["location"]:
        return False
    if "since" in query or "until" in query:
        moment = _aware(event["event_time"])
        if moment is None:
            return False
        if "since" in query and moment < query["since"]:
            return False
        if "until" in query and moment >= query["until"]:
            return False
    return True


def _event_conditions(query: Mapping[str, Any]) -> list[Any] | None:
    """SQL conditions on entries for the filters SQL can apply; None when nothing matches."""
    kinds = set(s.EVENT_KINDS)
    if "kind" in query:
        kinds &= {query["kind"]}
    if "biz_step" in query:
        kinds &= {kind for kind in s.EVENT_KINDS if _kind_step(kind) == query["biz_step"]} \
            | {"epcis_event"}
    if not kinds:
        return None
    conditions: list[Any] = [EntryRow.kind.in_(sorted(kinds))]
    if "actor" in query:
        conditions.append(EntryRow.actor == query["actor"])
    if "lot" in query:
        conditions.append(EntryRow.idx.in_(
            select(LotEventRow.entry).where(LotEventRow.lot == query["lot"])))
    if "gtin" in query:
        conditions.append(EntryRow.idx.in_(
            select(LotEventRow.entry).join(LotRow, LotRow.code == LotEventRow.lot)
            .where(LotRow.gtin == query["gtin"])))
    return conditions


def _event(idx: int, leaf: bytes, leaf_hash: bytes) -> dict[str, Any]:
    entry = Entry.from_leaf(bytes(leaf))
    statement = entry.statement_json()
    return {"entry": idx, "kind": statement["kind"], **_facts(statement),
            "actor": statement["actor"], "lots": [], "received_at": entry.received_at,
            "leaf_hash": _hex(leaf_hash), "signature": entry.signature,
            "statement": statement}


def find_events(session: Session, query: Mapping[str, Any]
                ) -> tuple[list[dict[str, Any]], int | None]:
    """One page of events matching ``query`` (loaded by EventQuerySchema) in log order, and
    the entry index the next page continues after (None at the end of the log)."""
    conditions = _event_conditions(query)
    if conditions is None:
        return [], None
    after = int(query.get("cursor", -1))
    limit = int(query["limit"])
    found: list[dict[str, Any]] = []
    scanned = 0
    while True:
        chunk = min(SCAN_CHUNK, SCAN_BUDGET - scanned)
        rows = session.execute(
            select(EntryRow.idx, EntryRow.leaf, EntryRow.leaf_hash)
            .where(*conditions, EntryRow.idx > after).order_by(EntryRow.idx).limit(chunk)
        ).all()
        for idx, leaf, leaf_hash in rows:
            after = int(idx)
            scanned += 1
            event = _event(after, leaf, leaf_hash)
            if not _matches(event, query):
                continue
            found.append(event)
            if len(found) == limit:
                more = session.scalar(select(exists().where(*conditions, EntryRow.idx > after)))
                return _with_lots(session, found), after if more else None
        if len(rows) < chunk:
            return _with_lots(session, found), None
        if scanned >= SCAN_BUDGET:
            return _with_lots(session, found), after


def _with_lots(session: Session, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_entry = {event["entry"]: event for event in events}
    if by_entry:
        for lot, entry in session.execute(
            select(LotEventRow.lot, LotEventRow.entry)
            .where(LotEventRow.entry.in_(list(by_entry))).order_by(LotEventRow.lot)
        ):
            by_entry[int(entry)]["lots"].append(lot)
    return events


def _exportable(session: Session, pairs: Sequence[tuple[int, Statement]]
                ) -> list[tuple[int, Statement]]:
    """Leave out corrections of entries that have no EPCIS form (a registration)."""
    kept = []
    for index, statement in pairs:
        if statement.kind == "correction":
            try:
                epcis.to_epcis_event(index, statement, session)
            except (MalformedInput, NotFound):
                continue
        kept.append((index, statement))
    return kept


@bp.get("/events")
def events() -> Response:
    """Supply-chain events, filtered EPCIS-style, a page at a time."""
    query = _query(_EVENT_QUERY)
    as_epcis = _preferred(JSON, JSON_LD) == JSON_LD
    with reading() as session:
        page, after = find_events(session, query)
        document = None
        if as_epcis:
            pairs = [(e["entry"], Statement.from_json(e["statement"])) for e in page]
            document = epcis.export_document(session, _exportable(session, pairs))
    cursor = None if after is None else s.encode_cursor(after)
    if document is not None:
        response = _json_ld(document)
    else:
        response = _json(s.EventPageSchema(), {"events": page, "next": cursor})
    if cursor is not None:
        args = request.args.to_dict()
        args["cursor"] = cursor
        response.headers["Link"] = f'<{url_for("api.events", **args)}>; rel="next"'
    response.vary.add("Accept")
    return response


# --- lots and lineage ------------------------------------------------------------------------


def lot_summary(session: Session, code: str) -> dict[str, Any]:
    """Everything known about a lot, as `suyuan lot --json` prints it, with its Digital Link."""
    info = lots.summary(session, code)
    info["digital_link"] = digital_link(info["gtin"], code)
    return info


@bp.get("/lots/<path:code>")
def lot(code: str) -> Response:
    """One lot: product, quantity, holders, status, history, alerts; or its history as an
    EPCIS 2.0 document (``Accept: application/ld+json``)."""
    _query(_NO_QUERY)
    code = _code(code, "lot")
    as_epcis = _preferred(JSON, JSON_LD) == JSON_LD
    with reading() as session:
        if as_epcis:
            response = _json_ld(epcis.export_lot_history(session, code))
        else:
            response = _json(s.LotSchema(), lot_summary(session, code))
    response.vary.add("Accept")
    return response


def _trace(walk: Callable[..., lineage.Trace]) -> Response:
    query = _query(_TRACE_QUERY)
    with reading() as session:
        found = walk(session, query["lot"], max_depth=query["max_depth"])
    return _json(s.TraceSchema(), found.to_json())


@bp.get("/trace/back")
def trace_back() -> Response:
    """Every lot a lot was made from, to the origin farms and the inputs applied there."""
    return _trace(lineage.trace_back)


@bp.get("/trace/forward")
def trace_forward() -> Response:
    """Recall scope: every lot, shipment, holder and sale downstream of a lot."""
    return _trace(lineage.trace_forward)


# --- entries, proofs, checkpoints, policy ----------------------------------------------------


def _require_entry(session: Session, index: int) -> int:
    size = ledger.size(session)
    if index >= size:
        raise NotFound(f"no entry {index}: the log has {size} entries")
    return size


@bp.get("/entries/<int:index>")
def entry(index: int) -> Response:
    """One entry: the statement, signature and leaf hash, and the exact leaf bytes (base64;
    raw with ``Accept: application/octet-stream``)."""
    _query(_NO_QUERY)
    with reading() as session:
        _require_entry(session, index)
        found = ledger.entry(session, index)
    if _preferred(JSON, OCTETS) == OCTETS:
        response = Response(bytes(found.leaf), mimetype=OCTETS)
    else:
        doc = found.to_json()
        doc["leaf_hash"] = merkle.leaf_hash(found.leaf).hex()
        doc["leaf"] = base64.b64encode(found.leaf).decode()
        response = _json(s.EntrySchema(), doc)
    response.vary.add("Accept")
    return response


def _default_size(session: Session, size: int) -> int:
    latest = repo.latest_checkpoint(session)
    return size if latest is None else int(latest.size)


def _require_tree(size: int, tree_size: int) -> None:
    if tree_size > size:
        raise NotFound(f"the log has {size} entries, not {tree_size}")


@bp.get("/proofs/inclusion")
def inclusion_proof() -> Response:
    """RFC 9162 inclusion proof of an entry in a tree (the latest checkpoint by default)."""
    query = _query(_INCLUSION_QUERY)
    index = query["index"]
    with reading() as session:
        size = ledger.size(session)
        tree_size = query.get("tree_size") or _default_size(session, size)
        _require_tree(size, tree_size)
        if index >= tree_size:
            raise NotFound(f"entry {index} is not in the tree of size {tree_size}")
        proof = ledger.inclusion_proof(session, index, tree_size)
        leaf = repo.leaf(session, index)
        checkpoint = repo.checkpoint_at(session, tree_size)
        doc = {
            "index": index, "tree_size": tree_size, "leaf_hash": merkle.leaf_hash(leaf).hex(),
            "root": ledger.root(session, tree_size).hex(), "proof": [p.hex() for p in proof],
            "checkpoint": None if checkpoint is None else ledger.cosigned_note(session,
                                                                               tree_size),
        }
    return _json(s.InclusionProofSchema(), doc)


@bp.get("/proofs/consistency")
def consistency_proof() -> Response:
    """RFC 9162 consistency proof between two tree sizes."""
    query = _query(_CONSISTENCY_QUERY)
    size1 = query["size1"]
    with reading() as session:
        size = ledger.size(session)
        size2 = query.get("size2") or _default_size(session, size)
        _require_tree(size, size2)
        if size1 > size2:
            raise ValidationError({"size1": [f"must not be larger than size2 ({size2})"]})
        proof = ledger.consistency_proof(session, size1, size2)
        doc = {"size1": size1, "size2": size2, "root1": ledger.root(session, size1).hex(),
               "root2": ledger.root(session, size2).hex(), "proof": [p.hex() for p in proof]}
    return _json(s.ConsistencyProofSchema(), doc)


@bp.get("/proofs/tlog")
def tlog_proof() -> Response:
    """The C2SP tlog-proof of an entry against the latest cosigned checkpoint (text), for
    `suyuan verify-proof` or any tlog-proof verifier."""
    query = _query(_TLOG_QUERY)
    with reading() as session:
        text = str(ledger.tlog_proof(session, query["index"]))
    return _text(text)


def _checkpoint(size: int | None) -> Response:
    _query(_NO_QUERY)
    with reading() as session:
        if size is None:
            row = repo.latest_checkpoint(session)
            if row is None:
                raise NotFound("no checkpoint has been signed yet")
        else:
            row = repo.checkpoint_at(session, size) if size <= ledger.size(session) else None
            if row is None:
                raise NotFound(f"no checkpoint of size {size}")
        doc = {
            "origin": ledger.origin(session), "size": row.size, "root": _hex(row.root),
            "created_at": row.created_at,
            "cosignatures": [{"witness": c.witness, "timestamp": c.timestamp}
                             for c in repo.cosignatures(session, row.size)],
            "note": ledger.cosigned_note(session, row.size),
        }
    response = _text(doc["note"]) if _preferred(JSON, TEXT) == TEXT else _json(
        s.CheckpointSchema(), doc)
    response.vary.add("Accept")
    return response


@bp.get("/checkpoints/latest")
def checkpoint_latest() -> Response:
    """The latest signed checkpoint with its witness cosignatures (the C2SP note as text
    with ``Accept: text/plain``)."""
    return _checkpoint(None)


@bp.get("/checkpoints/<int:size>")
def checkpoint_at(size: int) -> Response:
    """The checkpoint signed at a tree size, with its witness cosignatures."""
    return _checkpoint(size)


@bp.get("/policy")
def policy() -> Response:
    """The C2SP tlog-policy of this log: its key, the witnesses and the quorum."""
    query = _query(_POLICY_QUERY)
    with reading() as session:
        try:
            found = ledger.policy(session, query.get("quorum"))
        except MalformedInput as exc:
            raise ValidationError({"quorum": [str(exc)]}) from exc
    doc = {"origin": found.origin, "log": str(found.log),
           "witnesses": [str(key) for key in found.witnesses], "quorum": found.quorum,
           "text": str(found)}
    response = _text(doc["text"]) if _preferred(JSON, TEXT) == TEXT else _json(
        s.PolicySchema(), doc)
    response.vary.add("Accept")
    return response


# --- the API's own description ---------------------------------------------------------------


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """This API as an OpenAPI 3 document."""
    _query(_NO_QUERY)
    return jsonify(openapi.document())


@bp.get("/docs")
def docs() -> str:
    """The OpenAPI document as a page for people."""
    _query(_DOCS_QUERY)
    return render_template("api_docs.html", api=openapi.page(openapi.document()))
