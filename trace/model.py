"""Frozen domain objects of the ledger: statements, signed statements and entries."""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from suyuan import canonical, crypto
from suyuan.canonical import LeafBytes, StatementBytes
from suyuan.errors import MalformedInput

STATEMENT_VERSION = 1
MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a statement's own time may be, against the log's clock."""
STATEMENT_FIELDS = frozenset({"v", "kind", "actor", "key_id", "time", "nonce", "body"})
OPTIONAL_FIELDS = frozenset({"log"})
"""``log``: the origin of the log the statement is meant for. Signed with the rest, it stops a
statement made for one log from being replayed into another that knows the same key; a log
refuses a statement naming another origin. Statements made by ``suyuan`` always carry it."""

ACTOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
KIND_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}\Z")
NONCE = re.compile(r"[A-Za-z0-9._:-]{8,64}\Z")
KEY_ID = re.compile(r"[0-9a-f]{8}\Z")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z\Z")


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with millisecond precision and a ``Z``, as used in statements and entries."""
    if moment.tzinfo is None:
        raise MalformedInput("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: Any, what: str = "time") -> datetime:
    """Parse a statement timestamp (``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``)."""
    if not isinstance(text, str) or not TIMESTAMP.match(text):
        raise MalformedInput(f"{what} must be an RFC 3339 UTC time like 2026-05-01T08:00:00Z")
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise MalformedInput(f"{what} is not a real date and time: {text}") from exc


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_nonce() -> str:
    """A fresh 128-bit nonce; with the actor name it identifies a statement for replay checks."""
    return os.urandom(16).hex()


def check_actor_name(name: Any, what: str = "actor") -> str:
    if not isinstance(name, str) or not ACTOR_NAME.match(name):
        raise MalformedInput(
            f"{what} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class Statement:
    """What an actor asserts. ``body`` is kind-specific JSON (no floats)."""

    kind: str
    actor: str
    key_id: str
    time: str
    nonce: str
    body: dict[str, Any] = field(default_factory=dict)
    v: int = STATEMENT_VERSION
    log: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc = {
            "v": self.v,
            "kind": self.kind,
            "actor": self.actor,
            "key_id": self.key_id,
            "time": self.time,
            "nonce": self.nonce,
            "body": self.body,
        }
        if self.log is not None:
            doc["log"] = self.log
        return doc

    @classmethod
    def from_json(cls, data: Any) -> Statement:
        """Check the envelope's shape and types (the body is checked by its kind)."""
        if not isinstance(data, dict):
            raise MalformedInput("a statement is a JSON object")
        missing = STATEMENT_FIELDS - data.keys()
        extra = data.keys() - STATEMENT_FIELDS - OPTIONAL_FIELDS
        if missing:
            raise MalformedInput(f"statement is missing {', '.join(sorted(missing))}")
        if extra:
            raise MalformedInput(f"statement has unknown field(s) {', '.join(sorted(extra))}")
        if data["v"] != STATEMENT_VERSION or isinstance(data["v"], bool):
            raise MalformedInput(f"statement version must be {STATEMENT_VERSION}")
        kind = data["kind"]
        if not isinstance(kind, str) or not KIND_NAME.match(kind):
            raise MalformedInput("kind must be a lowercase name such as 'note'")
        check_actor_name(data["actor"])
        if not isinstance(data["key_id"], str) or not KEY_ID.match(data["key_id"]):
            raise MalformedInput("key_id must be 8 lowercase hex digits")
        parse_time(data["time"])
        if not isinstance(data["nonce"], str) or not NONCE.match(data["nonce"]):
            raise MalformedInput("nonce must be 8-64 characters of letters, digits, '.', '_', ':', '-'")
        if not isinstance(data["body"], dict):
            raise MalformedInput("body must be a JSON object")
        log = data.get("log")
        if "log" in data and not is_origin(log):
            raise MalformedInput("log must be a log origin such as suyuan.example/dalian "
                                 "(1-255 printable characters, no spaces, no '+')")
        return cls(
            kind=kind,
            actor=data["actor"],
            key_id=data["key_id"],
            time=data["time"],
            nonce=data["nonce"],
            body=data["body"],
            log=log,
        )


def is_origin(value: Any) -> bool:
    return (isinstance(value, str) and 0 < len(value) <= 255 and "+" not in value
            and value.isprintable() and not any(ch.isspace() for ch in value))


@dataclass(frozen=True)
class SignedStatement:
    """A statement with its canonical bytes and the actor's signature over them."""

    statement: Statement
    data: StatementBytes
    signature: bytes

    @property
    def signature_b64(self) -> str:
        return base64.b64encode(self.signature).decode()

    @property
    def message(self) -> bytes:
        return canonical.signing_message(self.data)

    def to_json(self) -> dict[str, Any]:
        return {"statement": self.statement.to_json(), "signature": self.signature_b64}

    def to_line(self) -> str:
        """One NDJSON line (canonical JSON, no trailing newline)."""
        return canonical.jcs(self.to_json()).decode()

    def verify(self, public_key: bytes) -> None:
        """Check the signature under ``public_key``; raises :class:`BadSignature`."""
        crypto.verify(public_key, self.message, self.signature)


def sign_statement(statement: Statement, key: crypto.SigningKey) -> SignedStatement:
    """Canonicalise and sign ``statement`` with ``key``."""
    data = canonical.statement_bytes(statement.to_json())
    return SignedStatement(statement, data, key.sign(canonical.signing_message(data)))


def decode_signature(value: Any) -> bytes:
    if not isinstance(value, str):
        raise MalformedInput("signature must be a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedInput("signature is not valid base64") from exc
    if len(raw) != 64:
        raise MalformedInput("signature must be 64 bytes (Ed25519)")
    return raw


def parse_signed_statement(data: Any) -> SignedStatement:
    """Parse ``{"statement": {...}, "signature": "<base64>"}`` (a dict or JSON text)."""
    if isinstance(data, str | bytes):
        data = canonical.loads(data)
    if not isinstance(data, dict):
        raise MalformedInput("a signed statement is a JSON object")
    if set(data) != {"statement", "signature"}:
        raise MalformedInput('a signed statement has exactly the fields "statement" and "signature"')
    statement = Statement.from_json(data["statement"])
    signature = decode_signature(data["signature"])
    return SignedStatement(statement, canonical.statement_bytes(data["statement"]), signature)


GENESIS_HASH = bytes(32)
"""The ``prev`` of entry 0."""


@dataclass(frozen=True)
class Entry:
    """An accepted statement as the log stores it; ``leaf`` is exactly what was hashed."""

    index: int
    prev: str
    key_id: str
    received_at: str
    signature: str
    statement: StatementBytes
    leaf: LeafBytes

    @classmethod
    def build(
        cls, index: int, prev: str, signed: SignedStatement, received_at: str
    ) -> Entry:
        signature = signed.signature_b64
        leaf = canonical.entry_bytes(
            index=index,
            key_id=signed.statement.key_id,
            prev=prev,
            received_at=received_at,
            signature=signature,
            statement=signed.data,
        )
        return cls(index, prev, signed.statement.key_id, received_at, signature, signed.data,
                   leaf)

    @classmethod
    def from_leaf(cls, leaf: bytes) -> Entry:
        index, key_id, prev, received_at, signature, statement = canonical.split_entry(leaf)
        return cls(index, prev, key_id, received_at, signature, statement, LeafBytes(leaf))

    def statement_json(self) -> dict[str, Any]:
        return canonical.loads(self.statement)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "prev": self.prev,
            "key_id": self.key_id,
            "received_at": self.received_at,
            "signature": self.signature,
            "statement": self.statement_json(),
        }
