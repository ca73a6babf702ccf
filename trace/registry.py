"""The actor registry kept inside the log: actors, roles, keys and revocations.

State is a pure function of the log prefix: :meth:`Registry.check` decides whether a statement
may be appended at index ``i`` given the state after entries ``0..i-1``, and
:meth:`Registry.apply` advances the state. The ledger and the auditor run the same code, so a
later revocation never rewrites history and a full audit reaches the same verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from suyuan import crypto
from suyuan.errors import MalformedInput, NotPermitted, Rejected, RevokedKey, UnknownKey
from suyuan.events import KINDS
from suyuan.model import Statement, check_actor_name

ROLES: dict[str, str] = {
    "registrar": "operator of the log: registers actors and keys",
    "regulator": "market supervision / agriculture bureau: registers, audits, recalls",
    "farm": "farm or family farm (家庭农场)",
    "cooperative": "farmers' cooperative (合作社)",
    "packer": "packing house",
    "processor": "processor",
    "wholesaler": "wholesaler",
    "carrier": "carrier / cold-chain logistics",
    "cold_store": "cold store / warehouse",
    "market": "wholesale market",
    "retailer": "shop, supermarket or e-commerce store",
    "lab": "testing laboratory",
}
REGISTRARS = frozenset({"registrar", "regulator"})
REGISTRY_KINDS = frozenset({"actor_registered", "key_added", "key_revoked"})


@dataclass(frozen=True)
class KeyRecord:
    """One key of one actor and the span of the log in which it may sign."""

    actor: str
    key_id: str
    public_key: bytes
    added_at: int
    revoked_at: int | None = None


@dataclass(frozen=True)
class ActorRecord:
    """A registered actor."""

    name: str
    role: str
    registered_at: int
    display_name: str | None = None
    org_id: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _text(body: dict[str, Any], name: str, *, required: bool, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise MalformedInput(f"body.{name} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise MalformedInput(f"body.{name} must be a non-empty string")
    if len(value) > limit:
        raise MalformedInput(f"body.{name} is longer than {limit} characters")
    return value


def _only(body: dict[str, Any], allowed: frozenset[str], kind: str) -> None:
    if not allowed.issuperset(body):
        extra = set(body) - allowed
        raise MalformedInput(f"{kind} body has unknown field(s) {', '.join(sorted(extra))}")


_FIELDS = {
    "actor_registered": frozenset({"name", "role", "vkey", "display_name", "org_id", "info"}),
    "key_added": frozenset({"actor", "vkey"}),
    "key_revoked": frozenset({"actor", "key_id", "reason"}),
    "note": frozenset({"text", "lot"}),
}


def _actor_vkey(body: dict[str, Any], actor: str) -> crypto.VerifierKey:
    vkey = crypto.parse_verifier_key(_text(body, "vkey", required=True, limit=200) or "")
    if vkey.name != actor:
        raise MalformedInput(f"body.vkey is named {vkey.name!r}, not {actor!r}")
    if vkey.alg != crypto.ALG_ED25519:
        raise MalformedInput("body.vkey must be an Ed25519 signing key (type 0x01)")
    return vkey


def validate_body(statement: Statement) -> None:
    """Check the body of a registry or note statement, or of a kind in ``KINDS``; any other
    kind is refused as unknown."""
    validate_kind_body(statement.kind, statement.body)


def validate_kind_body(kind: str, body: dict[str, Any]) -> None:
    """:func:`validate_body` of a statement of this kind and body (for bulk checks that have
    not built the statement)."""
    if kind == "actor_registered":
        _only(body, _FIELDS["actor_registered"], kind)
        name = check_actor_name(body.get("name"), "body.name")
        role = body.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise MalformedInput(f"body.role must be one of {', '.join(ROLES)}")
        _actor_vkey(body, name)
        _text(body, "display_name", required=False, limit=200)
        _text(body, "org_id", required=False, limit=64)
        if "info" in body and not isinstance(body["info"], dict):
            raise MalformedInput("body.info must be a JSON object")
    elif kind == "key_added":
        _only(body, _FIELDS["key_added"], kind)
        _actor_vkey(body, check_actor_name(body.get("actor"), "body.actor"))
    elif kind == "key_revoked":
        _only(body, _FIELDS["key_revoked"], kind)
        check_actor_name(body.get("actor"), "body.actor")
        key_id = body.get("key_id")
        if not isinstance(key_id, str) or len(key_id) != 8 or not all(
            c in "0123456789abcdef" for c in key_id
        ):
            raise MalformedInput("body.key_id must be 8 lowercase hex digits")
        _text(body, "reason", required=False, limit=500)
    elif kind == "note":
        _only(body, _FIELDS["note"], kind)
        _text(body, "text", required=True, limit=4000)
        _text(body, "lot", required=False, limit=128)
    elif kind in KINDS:
        KINDS[kind].validate(body)
    else:
        raise Rejected(f"unknown statement kind {kind!r}", reason="unknown_kind")


class Registry:
    """Actors and keys as of some point of the log."""

    def __init__(self) -> None:
        self.actors: dict[str, ActorRecord] = {}
        self.keys: dict[tuple[str, str], KeyRecord] = {}

    @property
    def is_empty(self) -> bool:
        return not self.actors

    def copy(self) -> Registry:
        clone = Registry()
        clone.actors = dict(self.actors)
        clone.keys = dict(self.keys)
        return clone

    def public_keys(self) -> dict[tuple[str, str], bytes]:
        """Every key ever registered, for signature checks that run apart from the state."""
        return {k: rec.public_key for k, rec in self.keys.items()}

    def signing_key(self, statement: Statement, index: int) -> KeyRecord:
        """The key that must have signed ``statement`` if appended at ``index``."""
        if self.is_empty:
            # Genesis: the registrar registers itself with the key that signs the statement.
            if statement.kind != "actor_registered" or statement.body.get("role") != "registrar":
                raise Rejected(
                    "the log is empty: its first statement must register the registrar",
                    reason="no_registrar",
                )
            if statement.body.get("name") != statement.actor:
                raise Rejected("the registrar's genesis statement must register itself")
            vkey = _actor_vkey(statement.body, statement.actor)
            if vkey.key_id_hex != statement.key_id:
                raise Rejected("the genesis statement must be signed by the key it registers")
            return KeyRecord(statement.actor, statement.key_id, vkey.public_key, index)
        record = self.keys.get((statement.actor, statement.key_id))
        if record is None:
            if statement.actor not in self.actors:
                raise UnknownKey(f"unknown actor {statement.actor!r}")
            raise UnknownKey(f"actor {statement.actor!r} has no key {statement.key_id}")
        if record.revoked_at is not None and record.revoked_at < index:
            raise RevokedKey(
                f"key {statement.key_id} of {statement.actor!r} was revoked at entry "
                f"{record.revoked_at}"
            )
        return record

    def check(self, statement: Statement, index: int) -> KeyRecord:
        """Everything but the signature: key state, body and role. Returns the signing key.

        The key is resolved first, so an unknown or revoked signer is refused before any
        of its body is looked at."""
        if not self.is_empty:
            self.signing_key(statement, index)
        validate_body(statement)
        return self.check_state(statement, index)

    def check_state(self, statement: Statement, index: int) -> KeyRecord:
        """Key state and role of an already well-formed statement (bodies are needed only
        for registry kinds). Returns the key that must have signed it."""
        record = self.signing_key(statement, index)
        if self.is_empty:
            return record
        role = self.actors[statement.actor].role
        kind, body = statement.kind, statement.body
        spec = KINDS.get(kind)
        if spec is not None and spec.roles and role not in spec.roles:
            raise NotPermitted(f"a {role} cannot record {spec.title_en} ({spec.title_zh})")
        if kind in REGISTRY_KINDS:
            is_self_revocation = kind == "key_revoked" and body["actor"] == statement.actor
            if role not in REGISTRARS and not is_self_revocation:
                raise NotPermitted(f"a {role} cannot state {kind}; only a registrar or regulator")
        if kind == "actor_registered":
            if body["name"] in self.actors:
                raise Rejected(f"actor {body['name']!r} is already registered",
                               reason="already_registered")
            if body["role"] == "registrar" and role != "registrar":
                raise NotPermitted("only the registrar can register another registrar")
        elif kind in ("key_added", "key_revoked"):
            if body["actor"] not in self.actors:
                raise Rejected(f"unknown actor {body['actor']!r}", reason="unknown_actor")
            if (self.actors[body["actor"]].role == "registrar" and role != "registrar"
                    and body["actor"] != statement.actor):
                raise NotPermitted("only a registrar changes a registrar's keys")
            if kind == "key_added":
                vkey = crypto.parse_verifier_key(body["vkey"])
                if (body["actor"], vkey.key_id_hex) in self.keys:
                    raise Rejected(f"key {vkey.key_id_hex} is already registered",
                                   reason="already_registered")
            else:
                target = self.keys.get((body["actor"], body["key_id"]))
                if target is None:
                    raise Rejected(f"actor {body['actor']!r} has no key {body['key_id']}",
                                   reason="unknown_key")
                if target.revoked_at is not None:
                    raise Rejected(f"key {body['key_id']} is already revoked",
                                   reason="already_revoked")
        return record

    def apply(self, statement: Statement, index: int) -> None:
        """Advance the state past an accepted statement at ``index``."""
        kind, body = statement.kind, statement.body
        if kind == "actor_registered":
            vkey = crypto.parse_verifier_key(body["vkey"])
            self.actors[body["name"]] = ActorRecord(
                body["name"], body["role"], index, body.get("display_name"),
                body.get("org_id"), body.get("info") or {},
            )
            self.keys[(body["name"], vkey.key_id_hex)] = KeyRecord(
                body["name"], vkey.key_id_hex, vkey.public_key, index
            )
        elif kind == "key_added":
            vkey = crypto.parse_verifier_key(body["vkey"])
            self.keys[(body["actor"], vkey.key_id_hex)] = KeyRecord(
                body["actor"], vkey.key_id_hex, vkey.public_key, index
            )
        elif kind == "key_revoked":
            key = (body["actor"], body["key_id"])
            self.keys[key] = replace(self.keys[key], revoked_at=index)
