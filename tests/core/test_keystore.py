"""Keys at rest and the witness state file."""

from __future__ import annotations

import base64
import fcntl
import multiprocessing
import os
import stat
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from suyuan import crypto, merkle, note, witness
from suyuan.errors import InconsistentCheckpoint, KeyStoreError
from suyuan.keystore import KeyStore, write_atomically


def _store(tmp_path: Path, passphrase: str = "correct horse") -> KeyStore:
    return KeyStore(tmp_path / "keys", lambda _creating: passphrase)


def _openssh_kdf(pem: bytes) -> tuple[str, str, int]:
    body = b"".join(pem.splitlines()[1:-1])
    blob = base64.b64decode(body)
    assert blob.startswith(b"openssh-key-v1\x00")
    pos = len(b"openssh-key-v1\x00")

    def string() -> bytes:
        nonlocal pos
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        pos += 4 + length
        return blob[pos - length : pos]

    cipher, kdf, options = string().decode(), string().decode(), string()
    rounds = struct.unpack(">I", options[-4:])[0]
    return cipher, kdf, rounds


def test_private_key_is_encrypted_with_bcrypt_kdf_and_mode_0600(tmp_path: Path) -> None:
    store = _store(tmp_path)
    key, vkey = store.create("actors", "coop-jinzhou")
    path = store.key_path("actors", "coop-jinzhou")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert key.seed not in data and base64.b64encode(key.seed) not in data
    assert _openssh_kdf(data) == ("aes256-ctr", "bcrypt", crypto.KDF_ROUNDS)
    assert store.load("actors", "coop-jinzhou").seed == key.seed
    assert store.vkey("actors", "coop-jinzhou") == vkey


def test_wrong_passphrase_is_refused(tmp_path: Path) -> None:
    _store(tmp_path).create("actors", "a")
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        _store(tmp_path, "wrong").load("actors", "a")


def test_keys_are_never_overwritten(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.create("log", "ledger.test/x")
    before = store.key_path("log").read_bytes()
    with pytest.raises(KeyStoreError, match="refusing to overwrite"):
        store.create("log", "ledger.test/x")
    assert store.key_path("log").read_bytes() == before


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="empty passphrase"):
        _store(tmp_path, "").create("actors", "a")
    assert not _store(tmp_path).exists("actors", "a")


def test_missing_key_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="no actor key 'ghost'"):
        _store(tmp_path).load("actors", "ghost")
    with pytest.raises(KeyStoreError, match="no witness key 'nobody' in"):
        _store(tmp_path).load("witnesses", "nobody")
    with pytest.raises(KeyStoreError, match="no log key in"):
        _store(tmp_path).load("log")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folders_the_keystore_makes_are_private_whatever_the_umask(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    os.chmod(mine, 0o755)
    previous = os.umask(0)
    try:
        store = KeyStore(mine / "a" / "keys", lambda _creating: "correct horse")
        store.create("actors", "coop")
        store.create("witnesses", "witness.example/w", alg=crypto.ALG_COSIGNATURE)
        with witness.locked_state(mine / "b" / "w.state"):
            pass
    finally:
        os.umask(previous)
    for made in ("a", "a/keys", "a/keys/actors", "a/keys/witnesses", "b"):
        assert _mode(mine / made) == 0o700, made
    assert _mode(mine) == 0o755  # it was there before: the user's, left as it was
    assert _mode(store.key_path("actors", "coop")) == 0o600


def test_an_existing_keystore_folder_keeps_its_mode(tmp_path: Path) -> None:
    root = tmp_path / "keys"
    root.mkdir()
    os.chmod(root, 0o750)
    _store(tmp_path).create("log", "ledger.test/x")
    assert _mode(root) == 0o750


def test_witness_names_with_slashes_stay_inside_the_keystore(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.create("witnesses", "witness.example/../../escape", alg=crypto.ALG_COSIGNATURE)
    files = [p for p in (tmp_path / "keys").rglob("*") if p.is_file()]
    assert all(p.parent == tmp_path / "keys" / "witnesses" for p in files)
    assert store.names("witnesses") == ["witness.example/../../escape"]


def test_interoperable_with_openssh_format(tmp_path: Path) -> None:
    store = _store(tmp_path)
    key, _ = store.create("actors", "a")
    loaded = serialization.load_ssh_private_key(store.key_path("actors", "a").read_bytes(),
                                                b"correct horse")
    raw = loaded.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
    assert raw == key.public_key


# --- witness state -------------------------------------------------------------------------


def test_state_round_trips_and_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "w.state"
    witness.save_state(path, {"log.a": witness.TreeState(5, b"\x01" * 32)})
    witness.save_state(path, {"log.a": witness.TreeState(9, b"\x02" * 32),
                              "log.b": witness.TreeState(1, b"\x03" * 32)})
    assert witness.load_state(path) == {"log.a": witness.TreeState(9, b"\x02" * 32),
                                        "log.b": witness.TreeState(1, b"\x03" * 32)}
    assert not path.with_name("w.state.tmp").exists()


@pytest.mark.parametrize("text", [
    '{"log.a": {"size": "x"}}',
    "[]",
    '"log.a"',
    "7",
    '{"log.a": []}',
    '{"log.a": {"size": 1, "root": "AAAA", "log_vkey": 5}}',
    "{",
])
def test_damaged_state_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "w.state"
    path.write_text(text)
    with pytest.raises(KeyStoreError, match=f"witness state {path} is damaged: "):
        witness.load_state(path)


def _hold_lock(path: str, ready: multiprocessing.Event, release: multiprocessing.Event) -> None:
    with witness.locked_state(Path(path)):
        ready.set()
        release.wait(10)


def test_state_lock_excludes_a_second_process(tmp_path: Path) -> None:
    path = tmp_path / "w.state"
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(path), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with open(path.with_name("w.state.lock"), "a") as lock:
            with pytest.raises(BlockingIOError):
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        release.set()
        holder.join(30)
    with witness.locked_state(path) as state:
        assert state == {}


def test_check_extends_accepts_growth_with_a_valid_proof_only() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(10)]
    nodes = {}
    for level in range(5):
        width = 1 << level
        for idx in range(len(leaves) // width):
            nodes[(level, idx)] = merkle.root(leaves[idx * width : (idx + 1) * width])
    old = witness.TreeState(6, merkle.root(leaves[:6]))
    new = note.Checkpoint("log.a", 10, merkle.root(leaves))
    proof = merkle.consistency_proof(6, 10, lambda ids: {i: nodes[i] for i in ids})
    witness.check_extends(old, new, lambda a, b: proof)
    witness.check_extends(None, new, lambda a, b: [])
    bad = list(proof)
    bad[0] = bytes(32)
    with pytest.raises(InconsistentCheckpoint):
        witness.check_extends(old, new, lambda a, b: bad)


def test_write_atomically_leaves_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write_atomically(path, b"one")
    write_atomically(path, b"two")
    assert path.read_bytes() == b"two" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]
