"""The keystore: private keys encrypted at rest (OpenSSH format, bcrypt KDF), files 0600.

Layout under the keystore folder (default ``keys/``)::

    log.key / log.vkey                 the log's checkpoint-signing key
    actors/<name>.key / .vkey          actor keys (the registrar is an actor)
    witnesses/<name>.key / .vkey       witness cosigning keys
    witnesses/<name>.state             the witness's last cosigned (size, root) per log origin

No command overwrites a key: files are created with ``O_EXCL``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote

from suyuan import crypto
from suyuan.errors import KeyStoreError

PASSPHRASE_ENV = "SUYUAN_KEY_PASSPHRASE"
KINDS = ("log", "actors", "witnesses")

KIND_NAMES = {"log": "log", "actors": "actor", "witnesses": "witness"}
"""A kind of key as a message names one of its keys."""

PassphraseSource = Callable[[bool], str]
"""Returns the passphrase; the argument says whether a new key is being created."""


def env_passphrase(_creating: bool) -> str:
    value = os.environ.get(PASSPHRASE_ENV)
    if not value:
        raise KeyStoreError(f"no passphrase: set {PASSPHRASE_ENV} or run on a terminal")
    return value


class KeyStore:
    """Encrypted private keys and their verifier keys in one folder."""

    def __init__(self, root: Path, passphrase: PassphraseSource = env_passphrase) -> None:
        self.root = Path(root)
        self._passphrase = passphrase
        self._cached: str | None = None

    def _path(self, kind: str, name: str, suffix: str) -> Path:
        if kind == "log":
            return self.root / f"log{suffix}"
        if kind not in KINDS:
            raise KeyStoreError(f"unknown key kind {kind!r}")
        return self.root / kind / (quote(name, safe="") + suffix)

    def key_path(self, kind: str, name: str = "") -> Path:
        return self._path(kind, name, ".key")

    def state_path(self, name: str) -> Path:
        return self._path("witnesses", name, ".state")

    def exists(self, kind: str, name: str = "") -> bool:
        return self._path(kind, name, ".key").exists()

    def passphrase(self, creating: bool = False) -> str:
        if self._cached is None:
            self._cached = self._passphrase(creating)
        return self._cached

    def create(
        self, kind: str, name: str, *, alg: int = crypto.ALG_ED25519,
        key: crypto.SigningKey | None = None,
    ) -> tuple[crypto.SigningKey, crypto.VerifierKey]:
        """Make (or store) a key and write it encrypted; refuses to overwrite an existing one."""
        crypto.check_key_name(name)
        key = key or crypto.SigningKey.generate()
        vkey = crypto.verifier_key(name, key.public_key, alg)
        path = self._path(kind, name, ".key")
        if path.exists():
            raise KeyStoreError(f"{path} exists: refusing to overwrite a key")
        blob = crypto.encrypt_private_key(key, self.passphrase(creating=True))
        make_private_folder(path.parent)
        _write_new(path, blob, 0o600)
        vkey_path = self._path(kind, name, ".vkey")
        vkey_path.unlink(missing_ok=True)
        _write_new(vkey_path, (str(vkey) + "\n").encode(), 0o644)
        return key, vkey

    def load(self, kind: str, name: str = "") -> crypto.SigningKey:
        path = self._path(kind, name, ".key")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            what = "log key" if kind == "log" else f"{KIND_NAMES[kind]} key {name!r}"
            raise KeyStoreError(f"no {what} in {self.root} (looked for {path})") from None
        except OSError as exc:
            raise KeyStoreError(f"cannot read {path}: {exc.strerror}") from exc
        return crypto.decrypt_private_key(data, self.passphrase())

    def vkey(self, kind: str, name: str = "") -> crypto.VerifierKey:
        path = self._path(kind, name, ".vkey")
        try:
            return crypto.parse_verifier_key(path.read_text().strip())
        except FileNotFoundError:
            raise KeyStoreError(f"no verifier key at {path}") from None

    def names(self, kind: str) -> list[str]:
        folder = self.root / kind
        if not folder.is_dir():
            return []
        return sorted(unquote(p.name[:-4]) for p in folder.glob("*.key"))


def make_private_folder(path: Path) -> None:
    """Create the folder ``path``, and any missing folder above it, with mode 0700 whatever
    the umask. A folder that exists already is left as it is: it is its owner's."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile by another process: not ours to change
            continue
        os.chmod(folder, 0o700)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyStoreError(f"{path} exists: refusing to overwrite a key") from None
    except OSError as exc:
        raise KeyStoreError(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, mode)


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so a crash leaves either the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
