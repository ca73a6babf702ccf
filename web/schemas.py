"""marshmallow schemas of the JSON API: query parameters and request bodies it loads, and the
responses it dumps (the OpenAPI document is generated from the same classes).

Checks that the core already makes (actor names, lot codes, GTIN check digits, statement
envelopes) are delegated to it, so the API refuses exactly what the command line refuses,
with the same words, but reported per field.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from suyuan import fields as core_fields
from suyuan.errors import MalformedInput
from suyuan.events import KINDS
from suyuan.interop.epcis import EXPORTABLE_KINDS
from suyuan.interop.gs1 import normalize_gtin
from suyuan.model import (
    KEY_ID,
    KIND_NAME,
    NONCE,
    STATEMENT_VERSION,
    check_actor_name,
    decode_signature,
    is_origin,
    parse_time,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
"""Events per page: the default, and the most a client may ask for."""

MAX_TRACE_DEPTH = 10_000

MAX_INDEX = 2**63 - 1
"""The largest entry index the databases can compare with."""

EVENT_KINDS = tuple(sorted(EXPORTABLE_KINDS))
"""Statement kinds the events query returns: supply-chain events, imported EPCIS events and
corrections."""

CBV_BIZ_STEP = "https://ref.gs1.org/cbv/BizStep-"
_EPCIS1_BIZ_STEP = "urn:epcglobal:cbv:bizstep:"

# Patterns for the OpenAPI document (ECMA regular expressions); the checks themselves are
# the core's.
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"
ACTOR_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
HEX32_PATTERN = r"^[0-9a-f]{64}$"


def _core(check: Callable[[Any], Any]) -> Callable[[Any], None]:
    """A marshmallow validator from a core checker that raises ``MalformedInput``."""

    def run(value: Any) -> None:
        try:
            check(value)
        except MalformedInput as exc:
            raise ValidationError(str(exc)) from exc

    return run


def _code_field(what: str, description: str, **kwargs: Any) -> fields.String:
    return fields.String(
        validate=_core(lambda value: core_fields.code(value, what)),
        metadata={"description": description, "pattern": CODE_PATTERN, "maxLength": 64},
        **kwargs,
    )


def _actor_field(description: str, **kwargs: Any) -> fields.String:
    return fields.String(
        validate=_core(check_actor_name),
        metadata={"description": description, "pattern": ACTOR_PATTERN, "maxLength": 64},
        **kwargs,
    )


class Gtin(fields.String):
    """A GTIN-8/12/13/14 with a valid check digit, loaded as its 14-digit form."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalize_gtin(text)
        except MalformedInput as exc:
            raise ValidationError(str(exc)) from exc


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


class Moment(fields.String):
    """An RFC 3339 time with its offset (``2026-06-05T08:00:00+08:00``), or a day
    (``2026-06-05``, meaning its first instant in UTC); loaded as an aware UTC datetime."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            if _DAY.match(text):
                return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            if not core_fields.EVENT_TIME.match(text):
                raise ValidationError(
                    "give a time with its offset, like 2026-06-05T08:00:00+08:00, or a day "
                    "like 2026-06-05")
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
        except (ValueError, OverflowError) as exc:
            raise ValidationError(f"not a real date and time: {text}") from exc


_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,40}\Z")
_CURSOR_TEXT = re.compile(r"after:(-1|0|[1-9][0-9]{0,18})\Z")
_BAD_CURSOR = "not a cursor given by this API: use the `next` value of the previous page"


def encode_cursor(after: int) -> str:
    """The opaque cursor of the page that starts after entry ``after``."""
    return base64.urlsafe_b64encode(f"after:{after}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> int:
    """The entry index a cursor from :func:`encode_cursor` continues after."""
    if not _CURSOR.match(text):
        raise ValidationError(_BAD_CURSOR)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(_BAD_CURSOR) from exc
    found = _CURSOR_TEXT.match(raw)
    if not found or int(found.group(1)) > MAX_INDEX:
        raise ValidationError(_BAD_CURSOR)
    return int(found.group(1))


class Cursor(fields.String):
    """An opaque page cursor, loaded as the entry index the page continues after."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        return decode_cursor(super()._deserialize(value, attr, data, **kwargs))


_SHORT_STEP = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}\Z")
_URI_STEP = re.compile(r"(https?://|urn:)[\x21-\x7e]{1,250}\Z")


def normalise_biz_step(text: str) -> str | None:
    """A bizStep as a full URI: CBV short names (``shipping``) and EPCIS 1.x URNs become CBV
    2.0 URIs, the project's own steps (``farmHarvest``) their ``urn:suyuan:bizStep:`` URIs.
    None when ``text`` is neither a short name nor a URI."""
    if _URI_STEP.match(text):
        if text.lower().startswith(_EPCIS1_BIZ_STEP):
            return CBV_BIZ_STEP + text[len(_EPCIS1_BIZ_STEP):]
        return text
    if not _SHORT_STEP.match(text):
        return None
    for spec in KINDS.values():
        if spec.biz_step and not spec.biz_step.startswith(CBV_BIZ_STEP) \
                and spec.biz_step.rsplit(":", 1)[-1] == text:
            return spec.biz_step
    return CBV_BIZ_STEP + text


class BizStep(fields.String):
    """A CBV or project business step, loaded as its full URI."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        uri = normalise_biz_step(text)
        if uri is None:
            raise ValidationError("give a CBV step such as shipping, a project step such as "
                                  "farmHarvest, or a bizStep URI")
        return uri


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


# --- query parameters ------------------------------------------------------------------------


class EventQuerySchema(StrictSchema):
    """Filters of the events query (all optional, combined with AND)."""

    lot = _code_field("lot", "Only events concerning this lot (traceability lot code).")
    gtin = Gtin(metadata={
        "description": "Only events concerning lots of this product (GTIN-8/12/13/14).",
        "pattern": r"^[0-9]{8,14}$"})
    biz_step = BizStep(metadata={
        "description": "Only events of this business step: a CBV 2.0 name (shipping, "
                       "receiving, packing…), a project step (farmHarvest, cooling, "
                       "inputApplication, planting, certifying) or a full bizStep URI.",
        "maxLength": 256})
    kind = fields.String(validate=validate.OneOf(EVENT_KINDS), metadata={
        "description": "Only statements of this kind."})
    actor = _actor_field("Only events stated by this actor.")
    location = _code_field("location", "Only events at this registered location id "
                           "(an imported EPCIS event matches on its readPoint or "
                           "bizLocation id).")
    since = Moment(data_key="from", metadata={
        "description": "Only events whose event time is at or after this time (RFC 3339 "
                       "with offset, or a day meaning 00:00 UTC).", "maxLength": 40})
    until = Moment(data_key="to", metadata={
        "description": "Only events whose event time is before this time.", "maxLength": 40})
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Events per page (default {DEFAULT_LIMIT}, at most "
                                 f"{MAX_LIMIT})."})
    cursor = Cursor(metadata={
        "description": "The `next` value of the previous page (opaque).", "maxLength": 40})

    @validates_schema
    def _range(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "since" in data and "until" in data and data["until"] <= data["since"]:
            raise ValidationError("must be after `from`", "to")


class TraceQuerySchema(StrictSchema):
    lot = _code_field("lot", "The lot to trace (traceability lot code).", required=True)
    max_depth = fields.Integer(
        load_default=MAX_TRACE_DEPTH, validate=validate.Range(min=1, max=MAX_TRACE_DEPTH),
        metadata={"description": "How many transformation steps to follow."})


class InclusionQuerySchema(StrictSchema):
    index = fields.Integer(required=True, validate=validate.Range(min=0), metadata={
        "description": "The entry whose inclusion is proved."})
    tree_size = fields.Integer(validate=validate.Range(min=1), metadata={
        "description": "Size of the tree to prove against (default: the latest checkpoint, "
                       "or the whole log when none is signed yet)."})

    @validates_schema
    def _inside(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "tree_size" in data and data["index"] >= data["tree_size"]:
            raise ValidationError("must be less than tree_size", "index")


class ConsistencyQuerySchema(StrictSchema):
    size1 = fields.Integer(required=True, validate=validate.Range(min=1), metadata={
        "description": "Size of the older tree."})
    size2 = fields.Integer(validate=validate.Range(min=1), metadata={
        "description": "Size of the newer tree (default: the latest checkpoint, or the whole "
                       "log when none is signed yet)."})

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "size2" in data and data["size1"] > data["size2"]:
            raise ValidationError("must not be larger than size2", "size1")


class TlogProofQuerySchema(StrictSchema):
    index = fields.Integer(required=True, validate=validate.Range(min=0), metadata={
        "description": "The entry to prove (covered by the latest checkpoint)."})


class PolicyQuerySchema(StrictSchema):
    quorum = fields.Integer(validate=validate.Range(min=0), metadata={
        "description": "Witness cosignatures a proof needs (default: 1 when the log has "
                       "witnesses, else 0)."})


class EmptyQuerySchema(StrictSchema):
    """Operations that take no query parameters refuse unknown ones."""


class PageQuerySchema(StrictSchema):
    """Pages for people take the language switch of every page."""

    lang = fields.String(validate=validate.Length(max=16), metadata={
        "description": "Language of the page (zh or en); remembered in a cookie."})


# --- request bodies --------------------------------------------------------------------------


def _check_v(value: Any) -> None:
    if isinstance(value, bool) or value != STATEMENT_VERSION:
        raise ValidationError(f"statement version must be {STATEMENT_VERSION}")


def _check_kind(value: Any) -> None:
    if not KIND_NAME.match(value):
        raise ValidationError("kind must be a lowercase name such as 'note'")


def _check_key_id(value: Any) -> None:
    if not KEY_ID.match(value):
        raise ValidationError("key_id must be 8 lowercase hex digits")


def _check_nonce(value: Any) -> None:
    if not NONCE.match(value):
        raise ValidationError("nonce must be 8-64 characters of letters, digits, '.', '_', ':', '-'")


def _check_log(value: Any) -> None:
    if not is_origin(value):
        raise ValidationError("log must be a log origin such as suyuan.example/dalian "
                              "(1-255 printable characters, no spaces, no '+')")


class StatementSchema(StrictSchema):
    """What an actor asserts (signed as RFC 8785 canonical JSON)."""

    v = fields.Integer(required=True, strict=True, validate=_check_v,
                       metadata={"description": "Statement format version (1).", "enum": [1]})
    kind = fields.String(required=True, validate=_check_kind, metadata={
        "description": "What is stated: a supply-chain kind (harvest, shipping …), a registry "
                       "action, or note.", "pattern": r"^[a-z][a-z0-9_]{0,47}$"})
    actor = _actor_field("The actor making the statement.", required=True)
    key_id = fields.String(required=True, validate=_check_key_id, metadata={
        "description": "The signing key's id (8 hex digits).", "pattern": r"^[0-9a-f]{8}$"})
    time = fields.String(required=True, validate=_core(parse_time), metadata={
        "description": "When the statement was signed (RFC 3339 UTC, e.g. "
                       "2026-06-05T08:00:00.000Z); at most 5 minutes ahead of the log.",
        "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"})
    nonce = fields.String(required=True, validate=_check_nonce, metadata={
        "description": "Unique per actor: a replay of the same statement is idempotent.",
        "pattern": r"^[A-Za-z0-9._:-]{8,64}$"})
    body = fields.Dict(keys=fields.String(), required=True, metadata={
        "description": "Kind-specific fields; quantities and readings are decimal strings "
                       "(no floats in signed data)."})
    log = fields.String(validate=_check_log, metadata={
        "description": "Origin of the log the statement is for (as in its checkpoints). "
                       "Optional; when present, another log refuses the statement, so it "
                       "cannot be replayed there.", "example": "suyuan.example/dalian"})


class SignedStatementSchema(StrictSchema):
    """One line printed by `suyuan sign`: a statement and the actor's Ed25519 signature."""

    statement = fields.Nested(StatementSchema, required=True)
    signature = fields.String(required=True, validate=_core(decode_signature), metadata={
        "description": "Ed25519 signature (base64) over `suyuan/statement/v1\\n` followed by "
                       "the JCS canonical statement."})


# --- responses -------------------------------------------------------------------------------


class AlertSchema(Schema):
    rule = fields.String(required=True)
    severity = fields.String(required=True)
    message = fields.String(required=True)
    lot = fields.String(allow_none=True)


class CaptureResultSchema(Schema):
    index = fields.Integer(required=True, metadata={"description": "The entry's index."})
    leaf_hash = fields.String(required=True, metadata={
        "description": "RFC 9162 leaf hash of the entry (hex).", "pattern": HEX32_PATTERN})
    duplicate = fields.Boolean(required=True, metadata={
        "description": "True when the statement was already in the log (nothing appended)."})
    alerts = fields.List(fields.Nested(AlertSchema), required=True, metadata={
        "description": "Rules the statement broke that are reported, not refused."})
    entry = fields.String(required=True, metadata={"description": "URL of the entry."})


class LineErrorSchema(Schema):
    code = fields.String(required=True, metadata={
        "description": "Why the line was refused: a rule's reason code (custody, "
                       "mass_balance, unknown_key, nonce_reused …), malformed or "
                       "verification_failed."})
    message = fields.String(required=True)


class BulkLineSchema(Schema):
    line = fields.Integer(required=True, metadata={"description": "Line number (from 1)."})
    status = fields.String(required=True, validate=validate.OneOf(
        ["appended", "duplicate", "rejected"]))
    index = fields.Integer(allow_none=True)
    leaf_hash = fields.String(allow_none=True, metadata={"pattern": HEX32_PATTERN})
    alerts = fields.List(fields.Nested(AlertSchema))
    error = fields.Nested(LineErrorSchema, allow_none=True)


class BulkResultSchema(Schema):
    appended = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    first_index = fields.Integer(allow_none=True, required=True)
    last_index = fields.Integer(allow_none=True, required=True)
    results = fields.List(fields.Nested(BulkLineSchema), required=True, metadata={
        "description": "One result per non-blank line, in order."})


class EventSchema(Schema):
    entry = fields.Integer(required=True, metadata={"description": "Index of the entry."})
    kind = fields.String(required=True)
    event_type = fields.String(allow_none=True, required=True, metadata={
        "description": "EPCIS event type (ObjectEvent, TransformationEvent …)."})
    biz_step = fields.String(allow_none=True, required=True, metadata={
        "description": "Business step URI."})
    event_time = fields.String(allow_none=True, required=True, metadata={
        "description": "When the event happened, in its own offset."})
    location = fields.String(allow_none=True, required=True)
    actor = fields.String(required=True)
    lots = fields.List(fields.String(), required=True, metadata={
        "description": "Lots the event concerns."})
    received_at = fields.String(required=True, metadata={
        "description": "When the log accepted the statement."})
    leaf_hash = fields.String(required=True, metadata={"pattern": HEX32_PATTERN})
    signature = fields.String(required=True)
    statement = fields.Dict(required=True, metadata={"description": "The signed statement."})


class EventPageSchema(Schema):
    events = fields.List(fields.Nested(EventSchema), required=True)
    next = fields.String(allow_none=True, required=True, metadata={
        "description": "Cursor of the next page, null at the end. A page may hold fewer "
                       "events than `limit` (even none) and still have a next page."})


class HolderSchema(Schema):
    actor = fields.String(required=True)
    quantity = fields.String(required=True)


class LotEventSchema(Schema):
    entry = fields.Integer(required=True)
    kind = fields.String(required=True)
    actor = fields.String(required=True)
    event_time = fields.String(allow_none=True, required=True)
    body = fields.Dict(required=True)


class LotAlertSchema(Schema):
    entry = fields.Integer(required=True)
    rule = fields.String(required=True)
    severity = fields.String(required=True)
    message = fields.String(required=True)
    status = fields.String(required=True)


class LotSchema(Schema):
    lot = fields.String(required=True)
    gtin = fields.String(required=True)
    product = fields.String(allow_none=True, required=True, metadata={
        "description": "Product name (Chinese)."})
    product_en = fields.String(allow_none=True, required=True)
    owner = fields.String(required=True, metadata={"description": "Actor who made the lot."})
    quantity = fields.String(required=True)
    unit = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "active or recalled."})
    created_at = fields.Integer(required=True, metadata={
        "description": "Entry that created the lot."})
    created_kind = fields.String(required=True)
    created_time = fields.String(required=True)
    location = fields.String(allow_none=True, required=True)
    digital_link = fields.String(required=True, metadata={
        "description": "The lot's GS1 Digital Link URI."})
    holders = fields.List(fields.Nested(HolderSchema), required=True)
    history = fields.List(fields.Nested(LotEventSchema), required=True)
    alerts = fields.List(fields.Nested(LotAlertSchema), required=True)


class TraceLotSchema(Schema):
    code = fields.String(required=True)
    gtin = fields.String(required=True)
    owner = fields.String(required=True)
    created_kind = fields.String(required=True)
    location = fields.String(allow_none=True, required=True)
    status = fields.String(required=True)
    depth = fields.Integer(required=True)


class EdgeSchema(Schema):
    parent = fields.String(required=True)
    child = fields.String(required=True)
    entry = fields.Integer(required=True)


class InputSchema(Schema):
    entry = fields.Integer(required=True)
    lot = fields.String(allow_none=True, required=True)
    location = fields.String(required=True)
    input_type = fields.String(required=True)
    product_name = fields.String(required=True)
    active_ingredient = fields.String(allow_none=True, required=True)
    event_time = fields.String(required=True)


class ShipmentSchema(Schema):
    shipment = fields.String(required=True)
    lot = fields.String(required=True)
    quantity = fields.String(required=True)
    sender = fields.String(required=True)
    receiver = fields.String(required=True)
    to_location = fields.String(allow_none=True, required=True)
    shipped_time = fields.String(required=True)
    received = fields.Boolean(required=True)


class LotHolderSchema(Schema):
    lot = fields.String(required=True)
    actor = fields.String(required=True)
    quantity = fields.String(required=True)


class TraceEventSchema(Schema):
    lot = fields.String(required=True)
    entry = fields.Integer(required=True)
    kind = fields.String(required=True)
    actor = fields.String(required=True)
    event_time = fields.String(allow_none=True, required=True)


class TraceSchema(Schema):
    lot = fields.String(required=True)
    direction = fields.String(required=True, validate=validate.OneOf(["back", "forward"]))
    lots = fields.List(fields.Nested(TraceLotSchema), required=True, metadata={
        "description": "Lots reached, breadth first, with their depth."})
    edges = fields.List(fields.Nested(EdgeSchema), required=True)
    origins = fields.List(fields.String(), required=True, metadata={
        "description": "Back: the lots nothing was made from (farms, ponds)."})
    inputs = fields.List(fields.Nested(InputSchema), required=True, metadata={
        "description": "Back: inputs applied to the origin lots or their places."})
    shipments = fields.List(fields.Nested(ShipmentSchema), required=True, metadata={
        "description": "Forward: shipments of the lots reached."})
    holders = fields.List(fields.Nested(LotHolderSchema), required=True, metadata={
        "description": "Forward: who holds the lots reached now."})
    sales = fields.List(fields.Nested(TraceEventSchema), required=True)
    events = fields.List(fields.Nested(TraceEventSchema), required=True)


class EntrySchema(Schema):
    index = fields.Integer(required=True)
    leaf_hash = fields.String(required=True, metadata={
        "description": "SHA-256(0x00 ‖ leaf), hex.", "pattern": HEX32_PATTERN})
    leaf = fields.String(required=True, metadata={
        "description": "The exact entry bytes hashed into the tree, base64.",
        "format": "byte"})
    prev = fields.String(required=True, metadata={
        "description": "Leaf hash of the entry before (hex).", "pattern": HEX32_PATTERN})
    key_id = fields.String(required=True)
    received_at = fields.String(required=True)
    signature = fields.String(required=True)
    statement = fields.Dict(required=True)


class InclusionProofSchema(Schema):
    index = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    leaf_hash = fields.String(required=True, metadata={"pattern": HEX32_PATTERN})
    root = fields.String(required=True, metadata={
        "description": "Root of the tree of size tree_size (hex).", "pattern": HEX32_PATTERN})
    proof = fields.List(fields.String(metadata={"pattern": HEX32_PATTERN}), required=True,
                        metadata={"description": "RFC 9162 inclusion path, leaf to root."})
    checkpoint = fields.String(allow_none=True, required=True, metadata={
        "description": "The cosigned checkpoint of this tree size, when one was signed."})


class ConsistencyProofSchema(Schema):
    size1 = fields.Integer(required=True)
    size2 = fields.Integer(required=True)
    root1 = fields.String(required=True, metadata={"pattern": HEX32_PATTERN})
    root2 = fields.String(required=True, metadata={"pattern": HEX32_PATTERN})
    proof = fields.List(fields.String(metadata={"pattern": HEX32_PATTERN}), required=True,
                        metadata={"description": "RFC 9162 consistency proof."})


class CosignatureSchema(Schema):
    witness = fields.String(required=True)
    timestamp = fields.Integer(required=True)


class CheckpointSchema(Schema):
    origin = fields.String(required=True)
    size = fields.Integer(required=True)
    root = fields.String(required=True, metadata={"pattern": HEX32_PATTERN})
    created_at = fields.String(required=True)
    cosignatures = fields.List(fields.Nested(CosignatureSchema), required=True)
    note = fields.String(required=True, metadata={
        "description": "The C2SP signed note with every witness cosignature."})


class PolicySchema(Schema):
    origin = fields.String(required=True)
    log = fields.String(required=True, metadata={"description": "The log's verifier key."})
    witnesses = fields.List(fields.String(), required=True, metadata={
        "description": "Witness verifier keys (tlog-cosignature)."})
    quorum = fields.Integer(required=True)
    text = fields.String(required=True, metadata={"description": "The C2SP tlog-policy file."})


class LogInfoSchema(Schema):
    origin = fields.String(required=True)
    size = fields.Integer(required=True, metadata={"description": "Entries in the log."})
    vkey = fields.String(required=True, metadata={"description": "The log's verifier key."})
    checkpoint = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Size of the latest signed checkpoint."})
    links = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class BadLineSchema(Schema):
    line = fields.Integer(required=True)
    message = fields.String(required=True)


class ErrorDetailSchema(Schema):
    code = fields.String(required=True, metadata={
        "description": "Machine-readable: invalid_request, malformed, not_found, a rule's "
                       "reason code (custody …), too_many_requests …"})
    message = fields.String(required=True, metadata={"description": "For people."})
    fields_ = fields.Dict(data_key="fields", metadata={
        "description": "Messages per request field (invalid_request)."})
    index = fields.Integer(metadata={"description": "The entry concerned, when there is one."})
    lines = fields.List(fields.Nested(BadLineSchema), metadata={
        "description": "Bulk capture: the lines that could not be read."})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)
