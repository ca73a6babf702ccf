"""Ed25519 keys: the only module that touches the key libraries.

Signing and verification use libsodium through PyNaCl (about twice as fast as OpenSSL
here); private keys at rest use ``cryptography``'s OpenSSH format with the bcrypt KDF.
Key names and key strings follow C2SP signed-note (``name+hexid+base64(type||key)``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import NewType

import nacl.bindings
import nacl.exceptions
import nacl.signing

try:  # PyNaCl's own cffi binding of libsodium, to verify without an output buffer
    from nacl._sodium import ffi as _ffi
    from nacl._sodium import lib as _sodium

    def _opens(signed: bytes, public_key: bytes) -> bool:
        return bool(_sodium.crypto_sign_open(_ffi.NULL, _ffi.NULL, signed, len(signed),
                                             public_key) == 0)
except (ImportError, AttributeError):  # a PyNaCl that moved it: its public wrapper, same checks
    def _opens(signed: bytes, public_key: bytes) -> bool:
        try:
            nacl.bindings.crypto_sign_open(signed, public_key)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

from suyuan.errors import BadSignature, KeyStoreError, MalformedInput

PublicKey = NewType("PublicKey", bytes)
"""A raw 32-byte Ed25519 public key."""

Signature = NewType("Signature", bytes)
"""A raw 64-byte Ed25519 signature."""

ALG_ED25519 = 0x01
"""signed-note signature type of a plain Ed25519 note signature."""

ALG_COSIGNATURE = 0x04
"""signed-note signature type of a tlog-cosignature/v1 Ed25519 cosignature."""

KDF_ROUNDS = 32
"""bcrypt KDF rounds for keys at rest (ssh-keygen's default is 16)."""


class SigningKey:
    """An Ed25519 private key held in memory."""

    __slots__ = ("_key",)

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise MalformedInput("an Ed25519 seed is 32 bytes")
        self._key = nacl.signing.SigningKey(seed)

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh random key."""
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @property
    def seed(self) -> bytes:
        return bytes(self._key)

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(bytes(self._key.verify_key))

    def sign(self, message: bytes) -> Signature:
        """The 64-byte Ed25519 signature of ``message``."""
        return Signature(self._key.sign(message).signature)

    def __repr__(self) -> str:  # never show the seed
        return f"SigningKey(public={self.public_key.hex()})"


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Check an Ed25519 signature; return ``None`` or raise :class:`BadSignature`."""
    if not is_valid_signature(public_key, message, signature):
        try:
            malformed = len(public_key) != 32 or len(signature) != 64
        except TypeError:
            malformed = True
        raise BadSignature("malformed Ed25519 key or signature" if malformed
                           else "signature does not verify")


def is_valid_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Like :func:`verify` but answers with a bool, for batch workers that count failures.

    This is libsodium's ``crypto_sign_open``, what ``nacl.bindings.crypto_sign_open`` calls,
    called directly: given no output buffer, libsodium only verifies (same checks), and the
    wrapper's allocation and copy of the message cost about 4% of a verification."""
    if type(public_key) is not bytes or type(message) is not bytes or type(signature) is not bytes:
        try:
            public_key, message, signature = (
                bytes(memoryview(public_key)), bytes(memoryview(message)),
                bytes(memoryview(signature)))
        except TypeError:
            return False
    if len(public_key) != 32 or len(signature) != 64:
        return False
    return _opens(signature + message, public_key)


def is_valid_prefixed_signature(public_key: bytes, signature: bytes, prefix: bytes,
                                message: bytes) -> bool:
    """:func:`is_valid_signature` over ``prefix + message`` (a domain-separated message),
    for bulk checks of ``bytes`` arguments: one copy of the message instead of two."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    return _opens(b"".join((signature, prefix, message)), public_key)


# --- C2SP signed-note key names and strings -------------------------------------------------


def check_key_name(name: str) -> str:
    """Return ``name`` if it is a valid signed-note key name (non-empty, no space, no '+')."""
    if (
        not isinstance(name, str)
        or not name
        or "+" in name
        or any(ch.isspace() for ch in name)
        or not name.isprintable()
    ):
        raise MalformedInput(f"invalid key name {name!r}: non-empty, no spaces, no '+'")
    return name


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> bytes:
    """The 4-byte signed-note key id: SHA-256(name || 0x0A || alg || key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A parsed signed-note verifier key: ``name+hexid+base64(alg||public key)``."""

    name: str
    key_id: bytes
    alg: int
    public_key: PublicKey

    def __str__(self) -> str:
        blob = base64.b64encode(bytes([self.alg]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()


def verifier_key(name: str, public_key: bytes, alg: int = ALG_ED25519) -> VerifierKey:
    """The verifier key of ``public_key`` under ``name``."""
    check_key_name(name)
    if len(public_key) != 32:
        raise MalformedInput("an Ed25519 public key is 32 bytes")
    return VerifierKey(name, key_id(name, public_key, alg), alg, PublicKey(bytes(public_key)))


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse and check a verifier key string (name, id and key must agree)."""
    if not isinstance(text, str):
        raise MalformedInput("a verifier key is a string")
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise MalformedInput("a verifier key has the form name+hexid+base64key")
    name, hexid, blob = parts
    check_key_name(name)
    if len(hexid) != 8 or hexid != hexid.lower():
        raise MalformedInput("a verifier key id is 8 lowercase hex digits")
    try:
        kid = bytes.fromhex(hexid)
        raw = base64.b64decode(blob, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise MalformedInput("verifier key is not valid hex/base64") from exc
    if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE):
        raise MalformedInput("verifier key is not an Ed25519 key (type 0x01 or 0x04)")
    alg, pub = raw[0], PublicKey(raw[1:])
    if key_id(name, pub, alg) != kid:
        raise MalformedInput("verifier key id does not match its name and key")
    return VerifierKey(name, kid, alg, pub)


def signer_key_string(name: str, key: SigningKey, alg: int = ALG_ED25519) -> str:
    """The signed-note private key string ``PRIVATE+KEY+name+hexid+base64(alg||seed)``."""
    check_key_name(name)
    kid = key_id(name, key.public_key, alg).hex()
    return f"PRIVATE+KEY+{name}+{kid}+" + base64.b64encode(bytes([alg]) + key.seed).decode()


def parse_signer_key(text: str) -> tuple[str, SigningKey, int]:
    """Parse ``PRIVATE+KEY+name+hexid+base64(alg||seed)``; returns (name, key, alg)."""
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise MalformedInput("a signer key has the form PRIVATE+KEY+name+hexid+base64key")
    name, hexid, blob = parts[2], parts[3], parts[4]
    check_key_name(name)
    try:
        raw = base64.b64decode(blob, validate=True)
        kid = bytes.fromhex(hexid)
    except (ValueError, binascii.Error) as exc:
        raise MalformedInput("signer key is not valid hex/base64") from exc
    if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE):
        raise MalformedInput("signer key is not an Ed25519 key")
    key = SigningKey(raw[1:])
    if key_id(name, key.public_key, raw[0]) != kid:
        raise MalformedInput("signer key id does not match its name and key")
    return name, key, raw[0]


# --- keys at rest ---------------------------------------------------------------------------


def encrypt_private_key(key: SigningKey, passphrase: str, *, rounds: int = KDF_ROUNDS) -> bytes:
    """OpenSSH PEM of ``key``, encrypted (aes256-ctr) under a bcrypt-KDF of the passphrase."""
    # `cryptography` is imported here: only keys at rest need it, and it is a sizeable share
    # of every command's start-up.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not passphrase:
        raise KeyStoreError("an empty passphrase cannot protect a private key")
    private = Ed25519PrivateKey.from_private_bytes(key.seed)
    encryption = (
        serialization.PrivateFormat.OpenSSH.encryption_builder()
        .kdf_rounds(rounds)
        .build(passphrase.encode())
    )
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    )


def decrypt_private_key(data: bytes, passphrase: str) -> SigningKey:
    """Load an encrypted OpenSSH private key; :class:`KeyStoreError` on a wrong passphrase."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        private = serialization.load_ssh_private_key(data, passphrase.encode())
    except TypeError as exc:
        raise KeyStoreError("the key file is not encrypted: refusing to use it") from exc
    except ValueError as exc:
        raise KeyStoreError("cannot decrypt the key: wrong passphrase or damaged file") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyStoreError("the key file does not hold an Ed25519 key")
    raw = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return SigningKey(raw)
