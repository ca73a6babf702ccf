"""C2SP signed notes, checkpoints, cosignatures, tlog-proofs and tlog-policy files.

Formats, byte for byte:

- ``c2sp.org/signed-note``: text ending in a newline, a blank line, then ``— name base64(keyid||sig)``
  lines; Ed25519 signatures are type 0x01 over the text.
- ``c2sp.org/tlog-checkpoint``: origin, decimal size (no leading zeros), base64 root, extension lines.
- ``c2sp.org/tlog-cosignature`` (``cosignature/v1``, Ed25519, type 0x04): the signature is an
  8-byte big-endian timestamp followed by an Ed25519 signature over
  ``cosignature/v1\\ntime <ts>\\n`` plus the checkpoint body.
- ``c2sp.org/tlog-proof@v1``: header, optional ``extra``, ``index``, one base64 hash per line, a
  blank line, then the cosigned checkpoint verbatim.
- ``c2sp.org/tlog-policy``: ``log``, ``witness``, ``group`` and ``quorum`` lines. C2SP does define
  this format (it grew out of the Sigsum policy file), so it is followed as written, with these
  documented limits: a :class:`Policy` binds exactly one log (Suyuan proofs name one origin; the
  spec lets an implementation limit policy complexity), a missing newline after the last line is
  tolerated, and group thresholds must be written without leading zeros.

Parsing is strict (the same bytes always give the same object and formatting gives the same bytes
back): base64 must be canonical, sizes and indexes are ASCII decimal without leading zeros, and
notes are bounded in size and number of signatures. Every malformed or badly signed object raises
:class:`~suyuan.errors.NoteError`; a policy file that cannot be parsed raises
:class:`~suyuan.errors.MalformedInput`; an inclusion proof that does not verify raises
:class:`~suyuan.errors.InclusionProofError`.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from suyuan import crypto
from suyuan.crypto import ALG_COSIGNATURE, ALG_ED25519, SigningKey, VerifierKey
from suyuan.errors import BadSignature, InclusionProofError, MalformedInput, NoteError
from suyuan.merkle import leaf_hash, verify_inclusion

__all__ = [
    "COSIGNATURE_HEADER",
    "MAX_NOTE_BYTES",
    "MAX_PROOF_HASHES",
    "MAX_SIGNATURES",
    "TLOG_PROOF_HEADER",
    "Checkpoint",
    "Note",
    "NoteSignature",
    "Policy",
    "TlogProof",
    "VerifiedProof",
    "WitnessGroup",
    "cosign",
    "cosignature_message",
    "open_checkpoint",
    "parse_checkpoint",
    "parse_note",
    "parse_policy",
    "parse_signature_line",
    "parse_signature_lines",
    "parse_tlog_proof",
    "sign_checkpoint",
    "sign_note",
    "verify_cosignature",
    "verify_note",
    "verify_tlog_proof",
    "witness_verifier_key",
]

MAX_NOTE_BYTES = 1 << 20
"""Largest signed note accepted (UTF-8 bytes): bounds the work an untrusted note can cause."""

MAX_SIGNATURES = 100
"""Most signature lines accepted in one note (C2SP requires at least 16; Go's sumdb uses 100)."""

MAX_PROOF_HASHES = 64
"""Longest inclusion path in a tlog-proof: a tree of at most 2**64 leaves is 64 levels deep."""

MAX_UINT64 = (1 << 64) - 1
MAX_TIMESTAMP = (1 << 63) - 1  # tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1

COSIGNATURE_HEADER = "cosignature/v1"
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"

_SIG_PREFIX = "\u2014 "  # em dash, space
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HASH_SIZE = 32
_ED25519_SIG_SIZE = 64
_COSIG_SIZE = 8 + _ED25519_SIG_SIZE


# --- small strict helpers --------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Decode standard padded base64, rejecting any non-canonical spelling.

    Python (like Go) accepts encodings whose unused low bits are set; requiring the canonical form
    means one value has exactly one encoding, so a parsed object formats back to the same bytes.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    if _b64(raw) != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _parse_decimal(text: str, what: str, maximum: int = MAX_UINT64) -> int:
    # int() would also take "+1", "1_000", " 1" and non-ASCII digits; the specs allow only this.
    if not _DECIMAL.fullmatch(text):
        raise NoteError(f"{what} {text!r} is not a decimal number without leading zeros")
    value = int(text)
    if value > maximum:
        raise NoteError(f"{what} {value} is larger than {maximum}")
    return value


def _has_control(text: str) -> bool:
    return any(ord(ch) < 0x20 and ch != "\n" for ch in text)


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates cannot be UTF-8
        raise NoteError(f"{what} is not valid UTF-8") from exc


def _is_note_key_name(name: str) -> bool:
    """signed-note key name: non-empty, no Unicode spaces, no '+' (and no control characters)."""
    return (
        bool(name)
        and "+" not in name
        and not _has_control(name)
        and "\n" not in name
        and not any(ch.isspace() or unicodedata.category(ch) in ("Zs", "Zl", "Zp") for ch in name)
    )


def _check_signer_name(name: str) -> None:
    try:
        crypto.check_key_name(name)
    except MalformedInput as exc:
        raise NoteError(str(exc)) from exc


def _check_note_text(text: str) -> None:
    if not isinstance(text, str):
        raise NoteError("note text must be a str")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if not text.strip("\n"):
        raise NoteError("note text is empty")
    if _has_control(text):
        raise NoteError("note text contains a control character other than newline")
    if len(_utf8(text, "note text")) > MAX_NOTE_BYTES:
        raise NoteError(f"note text is larger than {MAX_NOTE_BYTES} bytes")


# --- signed notes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note.

    ``key_id`` is the 4-byte key id; ``signature`` is everything after it (64 bytes for Ed25519,
    72 for an Ed25519 cosignature: timestamp and signature).
    """

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _is_note_key_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}: non-empty, no spaces, no '+'")
        if not isinstance(self.key_id, bytes) or len(self.key_id) != 4:
            raise NoteError("a note signature key id is 4 bytes")
        if not isinstance(self.signature, bytes) or not self.signature:
            raise NoteError("a note signature is not empty")

    def line(self) -> str:
        """The signature line, ``— name base64(keyid||signature)`` and a newline."""
        return f"{_SIG_PREFIX}{self.name} {_b64(self.key_id + self.signature)}\n"

    def matches(self, key: VerifierKey) -> bool:
        """Whether this line claims to be by ``key`` (same name and same key id)."""
        return self.name == key.name and self.key_id == key.key_id


@dataclass(frozen=True)
class Note:
    """A signed note: its text (ending in a newline) and one or more signatures."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        _check_note_text(self.text)
        if not isinstance(self.signatures, tuple):
            object.__setattr__(self, "signatures", tuple(self.signatures))
        if not self.signatures:
            raise NoteError("a signed note has at least one signature")
        if len(self.signatures) > MAX_SIGNATURES:
            raise NoteError(f"a note may carry at most {MAX_SIGNATURES} signatures")
        if not all(isinstance(sig, NoteSignature) for sig in self.signatures):
            raise NoteError("note signatures must be NoteSignature objects")

    def __str__(self) -> str:
        return self.text + "\n" + "".join(sig.line() for sig in self.signatures)

    def with_signatures(self, *signatures: NoteSignature) -> Note:
        """This note with ``signatures`` appended (lines already present are not repeated)."""
        extra = tuple(sig for sig in dict.fromkeys(signatures) if sig not in self.signatures)
        return Note(self.text, self.signatures + extra)


def parse_signature_line(line: str) -> NoteSignature:
    """Parse one signature line, with or without its final newline."""
    if line.endswith("\n"):
        line = line[:-1]
    if "\n" in line:
        raise NoteError("a signature line is a single line")
    if not line.startswith(_SIG_PREFIX):
        raise NoteError(f"signature line does not start with an em dash and a space: {line[:40]!r}")
    name, sep, blob = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep or not _is_note_key_name(name):
        raise NoteError(f"signature line has an invalid key name: {line[:60]!r}")
    raw = _b64decode(blob, f"signature of {name}")
    if len(raw) < 5:  # a key id and at least one byte of signature
        raise NoteError(f"signature of {name} is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def parse_signature_lines(text: str | bytes) -> tuple[NoteSignature, ...]:
    """Parse a block of signature lines, each ending in a newline.

    This is the body of a tlog-witness ``add-checkpoint`` response.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("signature lines are not valid UTF-8") from exc
    if not text or not text.endswith("\n"):
        raise NoteError("signature lines must be non-empty and end with a newline")
    if _has_control(text):
        raise NoteError("signature lines contain a control character other than newline")
    lines = text[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signature lines")
    return tuple(parse_signature_line(line) for line in lines)


def parse_note(data: str | bytes) -> Note:
    """Parse a signed note strictly (c2sp.org/signed-note); verifies nothing."""
    if isinstance(data, bytes):
        if len(data) > MAX_NOTE_BYTES:
            raise NoteError(f"note is larger than {MAX_NOTE_BYTES} bytes")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("note is not valid UTF-8") from exc
    elif not isinstance(data, str):
        raise NoteError("a note is text (str or UTF-8 bytes)")
    if len(_utf8(data, "note")) > MAX_NOTE_BYTES:
        raise NoteError(f"note is larger than {MAX_NOTE_BYTES} bytes")
    if _has_control(data):
        raise NoteError("note contains a control character other than newline")
    # The text may itself contain blank lines: it ends at the *last* blank line.
    split = data.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = data[: split + 1], data[split + 2 :]
    if not block:
        raise NoteError("note has no signature lines")
    if not block.endswith("\n"):
        raise NoteError("note does not end with a newline (truncated?)")
    return Note(text, parse_signature_lines(block))


def sign_note(text: str, name: str, key: SigningKey) -> NoteSignature:
    """An Ed25519 (type 0x01) signature of ``text`` by ``key`` under ``name``."""
    _check_note_text(text)
    _check_signer_name(name)
    kid = crypto.key_id(name, key.public_key, ALG_ED25519)
    return NoteSignature(name, kid, key.sign(text.encode("utf-8")))


def _key_label(key: VerifierKey) -> str:
    return f"{key.name}+{key.key_id.hex()}"


def verify_note(note: Note, key: VerifierKey) -> NoteSignature:
    """Return the signature by ``key`` on ``note`` after checking it; raise :class:`NoteError`.

    Lines that share only the name or only the key id are ignored, as the spec requires. Every
    line that matches both must verify: one forged line rejects the note.
    """
    if key.alg != ALG_ED25519:
        raise NoteError(
            f"key {_key_label(key)} is not an Ed25519 note key (type 0x01); "
            "check witness cosignatures with verify_cosignature"
        )
    candidates = [sig for sig in note.signatures if sig.matches(key)]
    if not candidates:
        raise NoteError(f"note is not signed by {_key_label(key)}")
    message = note.text.encode("utf-8")
    for sig in candidates:
        try:
            crypto.verify(key.public_key, message, sig.signature)
        except BadSignature as exc:
            raise NoteError(
                f"signature by {_key_label(key)} does not verify: the note text or the "
                "signature was altered"
            ) from exc
    return candidates[0]


# --- checkpoints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log checkpoint (c2sp.org/tlog-checkpoint): origin, tree size, root hash, extensions."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise NoteError("checkpoint origin must be non-empty")
        if "\n" in self.origin or _has_control(self.origin):
            raise NoteError("checkpoint origin must be one line without control characters")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise NoteError("checkpoint size must be an int")
        if not 0 <= self.size <= MAX_UINT64:
            raise NoteError(f"checkpoint size {self.size} is outside 0..2**64-1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _HASH_SIZE:
            raise NoteError("checkpoint root hash must be 32 bytes")
        if not isinstance(self.extensions, tuple):
            object.__setattr__(self, "extensions", tuple(self.extensions))
        for line in self.extensions:
            if not isinstance(line, str) or not line or "\n" in line or _has_control(line):
                raise NoteError("checkpoint extension lines must be non-empty single lines")

    def body(self) -> str:
        """The note text: origin, size, base64 root and extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), _b64(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint body (the note text, not the signatures) strictly."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("checkpoint is not valid UTF-8") from exc
    if not isinstance(body, str) or not body.endswith("\n"):
        raise NoteError("checkpoint body must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint has fewer than three lines (origin, size, root hash)")
    if any(not line for line in lines):
        raise NoteError("checkpoint has an empty line")
    origin, size_text, root_text, *extensions = lines
    size = _parse_decimal(size_text, "checkpoint size")
    root = _b64decode(root_text, "checkpoint root hash")
    if len(root) != _HASH_SIZE:
        raise NoteError(f"checkpoint root hash is {len(root)} bytes, not 32")
    return Checkpoint(origin, size, root, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, name: str, key: SigningKey) -> Note:
    """The checkpoint signed by the log as a one-signature note."""
    body = cp.body()
    return Note(body, (sign_note(body, name, key),))


def open_checkpoint(
    note_text: str | bytes, log_key: VerifierKey, origin: str | None = None
) -> tuple[Checkpoint, Note]:
    """Verify the log's signature on a checkpoint note, parse it and check its origin.

    ``origin=None`` skips the origin check (the key name usually equals the origin, but the
    checkpoint spec only says it SHOULD: sum.golang.org signs ``go.sum database tree``).
    """
    note = parse_note(note_text)
    verify_note(note, log_key)
    cp = parse_checkpoint(note.text)
    if origin is not None and cp.origin != origin:
        raise NoteError(f"checkpoint origin is {cp.origin!r}, expected {origin!r}")
    return cp, note


# --- cosignatures ----------------------------------------------------------------------------


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise NoteError("cosignature timestamp must be an int")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is outside 0..2**63-1")


def cosignature_message(checkpoint_body: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosigner signs: ``cosignature/v1``, ``time <ts>``, then the body."""
    _check_timestamp(timestamp)
    parse_checkpoint(checkpoint_body)  # a witness vouches only for well-formed checkpoints
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{checkpoint_body}".encode()


def witness_verifier_key(name: str, public_key: bytes) -> VerifierKey:
    """The type 0x04 (cosignature/v1) verifier key of a witness."""
    try:
        return crypto.verifier_key(name, public_key, ALG_COSIGNATURE)
    except MalformedInput as exc:
        raise NoteError(str(exc)) from exc


def cosign(checkpoint_body: str, name: str, key: SigningKey, timestamp: int) -> NoteSignature:
    """A witness cosignature: 8-byte big-endian timestamp then the Ed25519 signature."""
    _check_signer_name(name)
    signature = key.sign(cosignature_message(checkpoint_body, timestamp))
    kid = crypto.key_id(name, key.public_key, ALG_COSIGNATURE)
    return NoteSignature(name, kid, timestamp.to_bytes(8, "big") + signature)


def verify_cosignature(note: Note, witness_key: VerifierKey) -> int:
    """Check the witness's cosignature on a checkpoint note and return its timestamp.

    Every line by this witness must verify (one bad line rejects). When the witness cosigned
    more than once the latest timestamp is returned: it is the freshest statement that this is
    the largest tree the witness has seen.
    """
    label = _key_label(witness_key)
    if witness_key.alg != ALG_COSIGNATURE:
        raise NoteError(f"witness key {label} is not a cosignature/v1 key (type 0x04)")
    candidates = [sig for sig in note.signatures if sig.matches(witness_key)]
    if not candidates:
        raise NoteError(f"checkpoint has no cosignature by witness {label}")
    timestamps = []
    for sig in candidates:
        if len(sig.signature) != _COSIG_SIZE:
            raise NoteError(
                f"cosignature by witness {label} is {len(sig.signature)} bytes, "
                f"not {_COSIG_SIZE} (timestamp and Ed25519 signature)"
            )
        timestamp = int.from_bytes(sig.signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            raise NoteError(f"cosignature by witness {label} has a timestamp above 2**63-1")
        try:
            message = cosignature_message(note.text, timestamp)
        except NoteError as exc:
            raise NoteError(f"witness {label} cosigned a note that is not a checkpoint") from exc
        try:
            crypto.verify(witness_key.public_key, message, sig.signature[8:])
        except BadSignature as exc:
            raise NoteError(
                f"cosignature by witness {label} does not verify: the checkpoint or the "
                "cosignature was altered"
            ) from exc
        timestamps.append(timestamp)
    return max(timestamps)


# --- tlog-proof ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlogProof:
    """An offline proof (c2sp.org/tlog-proof@v1).

    ``checkpoint`` is the full signed (cosigned) checkpoint note, verbatim; ``extra`` is the
    optional opaque, unauthenticated extra data.
    """

    index: int
    path: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, int):
            raise NoteError("proof index must be an int")
        if not 0 <= self.index <= MAX_UINT64:
            raise NoteError(f"proof index {self.index} is outside 0..2**64-1")
        if not isinstance(self.path, tuple):
            object.__setattr__(self, "path", tuple(self.path))
        if len(self.path) > MAX_PROOF_HASHES:
            raise NoteError(f"an inclusion proof has at most {MAX_PROOF_HASHES} hashes")
        for node in self.path:
            if not isinstance(node, bytes) or len(node) != _HASH_SIZE:
                raise NoteError("every inclusion proof hash must be 32 bytes")
        if self.extra is not None and (not isinstance(self.extra, bytes) or not self.extra):
            raise NoteError("proof extra data must be non-empty bytes (or None)")
        if not isinstance(self.checkpoint, str):
            raise NoteError("proof checkpoint must be the signed note text")
        parse_checkpoint(parse_note(self.checkpoint).text)

    def __str__(self) -> str:
        lines = [TLOG_PROOF_HEADER]
        if self.extra is not None:
            lines.append(f"extra {_b64(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(_b64(node) for node in self.path)
        return "".join(line + "\n" for line in lines) + "\n" + self.checkpoint


def parse_tlog_proof(text: str | bytes) -> TlogProof:
    """Parse a ``c2sp.org/tlog-proof@v1`` proof strictly; verifies nothing."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("proof is not valid UTF-8") from exc
    if not isinstance(text, str):
        raise NoteError("a proof is text (str or UTF-8 bytes)")
    # The proof section ends at the first blank line; the rest is the checkpoint note.
    head, sep, checkpoint = text.partition("\n\n")
    if not sep:
        raise NoteError("proof has no blank line before its checkpoint")
    lines = head.split("\n")
    if lines[0] != TLOG_PROOF_HEADER:
        raise NoteError(f"proof does not start with {TLOG_PROOF_HEADER!r}")
    pos = 1
    extra = None
    if pos < len(lines) and lines[pos].startswith("extra "):
        extra = _b64decode(lines[pos][len("extra ") :], "proof extra data")
        if not extra:
            raise NoteError("proof extra line carries no data")
        pos += 1
    if pos >= len(lines) or not lines[pos].startswith("index "):
        raise NoteError("proof has no 'index <n>' line after its header")
    index = _parse_decimal(lines[pos][len("index ") :], "proof index")
    hash_lines = lines[pos + 1 :]
    if len(hash_lines) > MAX_PROOF_HASHES:
        raise NoteError(f"proof has more than {MAX_PROOF_HASHES} hashes")
    path = []
    for n, line in enumerate(hash_lines):
        node = _b64decode(line, f"proof hash {n}")
        if len(node) != _HASH_SIZE:
            raise NoteError(f"proof hash {n} is {len(node)} bytes, not 32")
        path.append(node)
    return TlogProof(index, tuple(path), checkpoint, extra)


# --- policies (c2sp.org/tlog-policy) ---------------------------------------------------------


@dataclass(frozen=True)
class WitnessGroup:
    """A policy group: witnessed when at least ``threshold`` of its ``members`` are."""

    name: str
    threshold: int
    members: tuple[str, ...]


_POLICY_WS = re.compile(r"[ \t]+")
_NONE = "none"


def _check_policy_token(token: str, what: str) -> None:
    # Names and URLs are single whitespace-free tokens of the allowed character set.
    if not isinstance(token, str) or not token:
        raise MalformedInput(f"{what} must be non-empty")
    if any(ch in " \t\n" or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in token):
        raise MalformedInput(f"{what} {token!r} contains whitespace or a control character")


@dataclass(frozen=True)
class Policy:
    """Which checkpoints to trust: one log key, witness keys and a quorum rule.

    The quorum is satisfied when at least ``quorum`` of ``quorum_members`` have witnessed the
    checkpoint; ``quorum_members=None`` means all of ``witnesses``, and ``quorum=0`` means no
    cosignature is needed (``quorum none``). Members are names of witnesses or of ``groups``;
    a witness has witnessed when its cosignature verifies, a group when ``threshold`` of its
    members have. ``witness_names`` are the policy file's local names (default: each key's
    name); ``origin`` must be the log key's name, as tlog-policy requires.
    """

    log: VerifierKey
    origin: str
    witnesses: tuple[VerifierKey, ...]
    quorum: int
    quorum_members: tuple[str, ...] | None = None
    groups: tuple[WitnessGroup, ...] = ()
    witness_names: tuple[str, ...] = ()
    log_url: str | None = None
    witness_urls: tuple[str | None, ...] = ()

    def __post_init__(self) -> None:
        # Normalise the defaults so that equal policies compare equal after a round trip.
        witnesses = tuple(self.witnesses)
        object.__setattr__(self, "witnesses", witnesses)
        names = tuple(self.witness_names) or tuple(key.name for key in witnesses)
        object.__setattr__(self, "witness_names", names)
        urls = tuple(self.witness_urls) or (None,) * len(witnesses)
        object.__setattr__(self, "witness_urls", urls)
        object.__setattr__(self, "groups", tuple(self.groups))
        members = None if self.quorum_members is None else tuple(self.quorum_members)
        if self.quorum == 0 or (
            members is not None and len(members) == len(names) and set(members) == set(names)
        ):
            members = None
        object.__setattr__(self, "quorum_members", members)
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.log, VerifierKey) or self.log.alg != ALG_ED25519:
            raise MalformedInput("the policy log key must be an Ed25519 vkey (type 0x01)")
        if self.origin != self.log.name:
            raise MalformedInput(
                f"policy origin {self.origin!r} must be the log key's name {self.log.name!r}"
            )
        if self.log_url is not None:
            _check_policy_token(self.log_url, "log URL")
        if len(self.witness_names) != len(self.witnesses) or len(self.witness_urls) != len(
            self.witnesses
        ):
            raise MalformedInput("witness_names and witness_urls must match witnesses")
        seen_keys: dict[bytes, str] = {}
        defined: set[str] = set()
        for name, key, url in zip(
            self.witness_names, self.witnesses, self.witness_urls, strict=True
        ):
            self._define(name, defined, "witness")
            if not isinstance(key, VerifierKey) or key.alg != ALG_COSIGNATURE:
                raise MalformedInput(f"witness {name}: key must be a cosignature vkey (type 0x04)")
            if key.public_key in seen_keys:
                raise MalformedInput(
                    f"witness {name} has the same public key as witness {seen_keys[key.public_key]}"
                )
            seen_keys[key.public_key] = name
            if url is not None:
                _check_policy_token(url, f"witness {name} URL")
        listed: set[str] = set()
        for group in self.groups:
            if not isinstance(group, WitnessGroup):
                raise MalformedInput("policy groups must be WitnessGroup objects")
            self._check_members(group.members, group.threshold, defined, listed, group.name)
            self._define(group.name, defined, "group")
        if isinstance(self.quorum, bool) or not isinstance(self.quorum, int):
            raise MalformedInput("policy quorum must be an int")
        if self.quorum == 0:
            return
        members = self.effective_quorum_members
        if len(members) == 1 and self.quorum == 1:
            # Written as "quorum <name>": not a group listing, so no at-most-once rule.
            if members[0] not in defined:
                raise MalformedInput(f"quorum names undefined witness or group {members[0]!r}")
        else:
            self._check_members(members, self.quorum, defined, listed, "quorum")

    @staticmethod
    def _define(name: str, defined: set[str], what: str) -> None:
        _check_policy_token(name, f"{what} name")
        if name == _NONE:
            raise MalformedInput(f"'none' is predefined and cannot name a {what}")
        if name in defined:
            raise MalformedInput(f"policy name {name!r} is defined twice")
        defined.add(name)

    @staticmethod
    def _check_members(
        members: tuple[str, ...], threshold: int, defined: set[str], listed: set[str], owner: str
    ) -> None:
        if not members:
            raise MalformedInput(f"{owner}: at least one member is required")
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            raise MalformedInput(f"{owner}: threshold must be an int")
        if not 1 <= threshold <= len(members):
            raise MalformedInput(
                f"{owner}: threshold {threshold} is outside 1..{len(members)} (its member count)"
            )
        for member in members:
            if member == _NONE:
                raise MalformedInput(f"{owner}: 'none' cannot be a group member")
            if member not in defined:
                raise MalformedInput(f"{owner}: member {member!r} is not defined before it")
            # Each name contributes to the quorum in only one way (tlog-policy).
            if member in listed:
                raise MalformedInput(f"{owner}: {member!r} is already a member of another group")
            listed.add(member)

    @property
    def effective_quorum_members(self) -> tuple[str, ...]:
        """The names the top-level quorum counts (all witnesses when not given)."""
        if self.quorum_members is None:
            return self.witness_names
        return self.quorum_members

    def witness_key(self, name: str) -> VerifierKey:
        """The key of the witness with local ``name``."""
        return self.witnesses[self.witness_names.index(name)]

    def is_satisfied(self, witnessed: Iterable[str]) -> bool:
        """Whether the quorum is met when the witnesses named ``witnessed`` have cosigned."""
        done = set(witnessed)
        groups = {group.name: group for group in self.groups}

        def holds(name: str) -> bool:
            group = groups.get(name)
            if group is None:
                return name in done
            return sum(holds(member) for member in group.members) >= group.threshold

        if self.quorum == 0:
            return True
        return sum(holds(member) for member in self.effective_quorum_members) >= self.quorum

    def describe_quorum(self) -> str:
        """The quorum rule in words, for error messages."""
        groups = {group.name: group for group in self.groups}

        def rule(threshold: int, members: tuple[str, ...]) -> str:
            parts = []
            for member in members:
                group = groups.get(member)
                inner = "" if group is None else f" = {rule(group.threshold, group.members)}"
                parts.append(f"{member}{inner}")
            return f"{threshold} of ({', '.join(parts)})"

        if self.quorum == 0:
            return "no cosignatures"
        return rule(self.quorum, self.effective_quorum_members)

    def __str__(self) -> str:
        def threshold_word(threshold: int, count: int) -> str:
            if threshold == count:
                return "all"
            return "any" if threshold == 1 else str(threshold)

        lines = [f"log {self.log}" + (f" {self.log_url}" if self.log_url else "")]
        for name, key, url in zip(
            self.witness_names, self.witnesses, self.witness_urls, strict=True
        ):
            lines.append(f"witness {name} {key}" + (f" {url}" if url else ""))
        for group in self.groups:
            word = threshold_word(group.threshold, len(group.members))
            lines.append(f"group {group.name} {word} {' '.join(group.members)}")
        members = self.effective_quorum_members
        if self.quorum == 0:
            lines.append(f"quorum {_NONE}")
        elif len(members) == 1 and self.quorum == 1:
            lines.append(f"quorum {members[0]}")
        else:
            taken = set(self.witness_names) | {group.name for group in self.groups}
            top, n = "quorum", 1
            while top in taken:
                top, n = f"quorum-{n}", n + 1
            word = threshold_word(self.quorum, len(members))
            lines.append(f"group {top} {word} {' '.join(members)}")
            lines.append(f"quorum {top}")
        return "".join(line + "\n" for line in lines)


def parse_policy(text: str | bytes) -> Policy:
    """Parse a c2sp.org/tlog-policy file; :class:`MalformedInput` names the bad line."""
    if isinstance(text, bytes):
        # Octets with the high bit set are opaque to the policy syntax; keep them undamaged.
        text = text.decode("utf-8", errors="surrogateescape")
    if not isinstance(text, str):
        raise MalformedInput("a policy is text")
    for ch in text:
        if ch not in "\t\n" and (ord(ch) < 0x20 or ord(ch) == 0x7F):
            raise MalformedInput(
                f"policy contains control character {ord(ch):#04x} (only tab and newline allowed)"
            )
    logs: list[tuple[VerifierKey, str | None]] = []
    witnesses: list[tuple[str, VerifierKey, str | None]] = []
    groups: list[WitnessGroup] = []
    quorum_target: str | None = None
    defined: set[str] = set()
    group_names: set[str] = set()

    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(" \t")
        if not line or line.startswith("#"):
            continue
        keyword, *args = _POLICY_WS.split(line)

        def fail(message: str, lineno: int = lineno) -> MalformedInput:
            return MalformedInput(f"policy line {lineno}: {message}")

        def vkey(blob: str, alg: int, what: str, lineno: int = lineno) -> VerifierKey:
            try:
                key = crypto.parse_verifier_key(blob)
            except MalformedInput as exc:
                raise MalformedInput(f"policy line {lineno}: {what}: {exc}") from exc
            if key.alg != alg:
                raise MalformedInput(f"policy line {lineno}: {what} must be a type {alg:#04x} vkey")
            return key

        if keyword == "log":
            if len(args) not in (1, 2):
                raise fail("expected 'log <vkey> [<url>]'")
            logs.append((vkey(args[0], ALG_ED25519, "log key"), args[1] if len(args) > 1 else None))
        elif keyword == "witness":
            if len(args) not in (2, 3):
                raise fail("expected 'witness <name> <vkey> [<url>]'")
            name = args[0]
            if name == _NONE or name in defined:
                raise fail(f"name {name!r} is predefined or already defined")
            key = vkey(args[1], ALG_COSIGNATURE, f"witness {name} key")
            for other, other_key, _ in witnesses:
                if other_key.public_key == key.public_key:
                    raise fail(f"witness {name} has the same public key as witness {other}")
            witnesses.append((name, key, args[2] if len(args) > 2 else None))
            defined.add(name)
        elif keyword == "group":
            if len(args) < 3:
                raise fail("expected 'group <name> <all|any|k> <name>...'")
            name, word, members = args[0], args[1], tuple(args[2:])
            if name == _NONE or name in defined:
                raise fail(f"name {name!r} is predefined or already defined")
            for member in members:
                if member not in defined:
                    raise fail(f"group {name}: {member!r} is not a witness or group defined above")
            if word == "all":
                threshold = len(members)
            elif word == "any":
                threshold = 1
            elif _DECIMAL.fullmatch(word) and 1 <= int(word) <= len(members):
                threshold = int(word)
            else:
                raise fail(f"group {name}: threshold {word!r} is not all, any or 1..{len(members)}")
            groups.append(WitnessGroup(name, threshold, members))
            defined.add(name)
            group_names.add(name)
        elif keyword == "quorum":
            if len(args) != 1:
                raise fail("expected 'quorum <name>'")
            if quorum_target is not None:
                raise fail("a policy has exactly one quorum line")
            if args[0] != _NONE and args[0] not in defined:
                raise fail(f"quorum names {args[0]!r}, which is not defined above")
            quorum_target = args[0]
        else:
            raise fail(f"unknown keyword {keyword!r}")

    if quorum_target is None:
        raise MalformedInput("policy has no quorum line")
    if len(logs) != 1:
        raise MalformedInput(
            f"policy lists {len(logs)} logs; Suyuan verifies proofs against exactly one log"
        )
    log_key, log_url = logs[0]

    quorum: int
    quorum_members: tuple[str, ...] | None
    if quorum_target == _NONE:
        quorum, quorum_members = 0, None
    elif quorum_target in group_names and not any(
        quorum_target in group.members for group in groups
    ):
        # The quorum group is the top-level rule: keep its threshold and members directly.
        top = next(group for group in groups if group.name == quorum_target)
        groups = [group for group in groups if group is not top]
        quorum, quorum_members = top.threshold, top.members
    else:
        quorum, quorum_members = 1, (quorum_target,)
    try:
        return Policy(
            log=log_key,
            origin=log_key.name,
            witnesses=tuple(key for _, key, _ in witnesses),
            quorum=quorum,
            quorum_members=quorum_members,
            groups=tuple(groups),
            witness_names=tuple(name for name, _, _ in witnesses),
            log_url=log_url,
            witness_urls=tuple(url for _, _, url in witnesses),
        )
    except MalformedInput as exc:
        raise MalformedInput(f"policy: {exc}") from exc


# --- verifying a proof offline ---------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedProof:
    """What a verified tlog-proof established: the leaf at ``index`` is in ``checkpoint``,
    which the log signed and the named witnesses (their key names) cosigned."""

    index: int
    checkpoint: Checkpoint
    witnesses: tuple[str, ...]


def verify_tlog_proof(proof: TlogProof | str | bytes, leaf: bytes, policy: Policy) -> VerifiedProof:
    """Verify an offline proof that ``leaf`` is in the log, with no database.

    Checks, in order: the log's signature and origin, a quorum of valid cosignatures from distinct
    policy witnesses, then the RFC 9162 inclusion proof of ``leaf_hash(leaf)`` at the proof's index
    against the checkpoint's size and root. Raises :class:`NoteError` or
    :class:`InclusionProofError` saying which check failed.
    """
    if not isinstance(proof, TlogProof):
        proof = parse_tlog_proof(proof)
    note = parse_note(proof.checkpoint)
    try:
        verify_note(note, policy.log)
    except NoteError as exc:
        raise NoteError(f"checkpoint rejected: {exc}") from exc
    cp = parse_checkpoint(note.text)
    if cp.origin != policy.origin:
        raise NoteError(
            f"checkpoint origin {cp.origin!r} is not the policy's log origin {policy.origin!r}"
        )

    cosigned: list[str] = []
    for name, key in zip(policy.witness_names, policy.witnesses, strict=True):
        if not any(sig.matches(key) for sig in note.signatures):
            continue  # this witness did not cosign; signatures by unknown keys are ignored
        verify_cosignature(note, key)  # raises, naming the witness, if its line is bad
        cosigned.append(name)
    if not policy.is_satisfied(cosigned):
        have = ", ".join(cosigned) if cosigned else "no policy witness"
        raise NoteError(
            f"witness quorum not met for {cp.origin} at size {cp.size}: valid cosignatures from "
            f"{have}; the policy needs {policy.describe_quorum()}"
        )

    try:
        verify_inclusion(leaf_hash(leaf), proof.index, cp.size, list(proof.path), cp.root_hash)
    except InclusionProofError as exc:
        raise InclusionProofError(
            f"leaf at index {proof.index} is not proven in {cp.origin} at size {cp.size}: {exc}",
            index=proof.index,
        ) from exc
    return VerifiedProof(proof.index, cp, tuple(policy.witness_key(name).name for name in cosigned))
