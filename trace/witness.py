"""A witness: cosigns a log's checkpoints only when they extend what it cosigned before.

The witness keeps, per log origin, the last (size, root) it cosigned in a state file beside
its key, replaced atomically under an exclusive lock, so two cosigning runs cannot race and a
crash leaves the old or the new state, never a mix. Cosignatures are C2SP tlog-cosignature/v1.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from suyuan import crypto, merkle, note
from suyuan.errors import InconsistentCheckpoint, KeyStoreError, ProofError
from suyuan.keystore import make_private_folder, write_atomically


@dataclass(frozen=True)
class TreeState:
    """What the witness last cosigned for one origin, and the log key it trusted then."""

    size: int
    root: bytes
    log_vkey: str | None = None


@contextmanager
def locked_state(path: Path) -> Iterator[dict[str, TreeState]]:
    """Hold the witness's state lock; yields the state by origin (save with :func:`save_state`)."""
    make_private_folder(path.parent)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield load_state(path)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def load_state(path: Path) -> dict[str, TreeState]:
    """The state file's (size, root, log key) by origin; ``KeyStoreError`` if it is damaged."""
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
            raise TypeError("not a JSON object of {size, root} objects by log origin")
        state = {}
        for origin, v in raw.items():
            log_vkey = v.get("log_vkey")
            if not isinstance(log_vkey, str | None):
                raise TypeError(f"the log key of {origin} is not a string")
            state[origin] = TreeState(int(v["size"]),
                                      base64.b64decode(v["root"], validate=True), log_vkey)
        return state
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise KeyStoreError(f"witness state {path} is damaged: {exc}") from exc


def save_state(path: Path, state: dict[str, TreeState]) -> None:
    data = {
        origin: {"size": s.size, "root": base64.b64encode(s.root).decode(),
                 **({"log_vkey": s.log_vkey} if s.log_vkey else {})}
        for origin, s in sorted(state.items())
    }
    write_atomically(path, (json.dumps(data, indent=1) + "\n").encode())


def check_extends(
    old: TreeState | None,
    new: note.Checkpoint,
    proof_for: Callable[[int, int], Sequence[bytes]],
) -> None:
    """Refuse (``InconsistentCheckpoint``) unless ``new`` provably extends ``old``."""
    if old is None or old.size == 0:
        return
    if new.size < old.size:
        raise InconsistentCheckpoint(
            f"checkpoint size {new.size} is smaller than the size {old.size} already cosigned"
        )
    if new.size == old.size:
        if new.root_hash != old.root:
            raise InconsistentCheckpoint(
                f"checkpoint of size {new.size} has a different root than the one cosigned: "
                "the log has forked"
            )
        return
    proof = proof_for(old.size, new.size)
    try:
        merkle.verify_consistency(old.size, new.size, proof, old.root, new.root_hash)
    except ProofError as exc:
        raise InconsistentCheckpoint(
            f"checkpoint {new.size} is not consistent with the cosigned size {old.size}: {exc}"
        ) from exc


def cosign(
    *,
    checkpoint_note: str,
    log_key: crypto.VerifierKey,
    origin: str,
    name: str,
    key: crypto.SigningKey,
    state_path: Path,
    proof_for: Callable[[int, int], Sequence[bytes]],
    timestamp: int,
) -> tuple[note.Checkpoint, note.NoteSignature]:
    """Verify the log's checkpoint, check it extends the witness's state, cosign, advance."""
    cp, _ = note.open_checkpoint(checkpoint_note, log_key, origin)
    with locked_state(state_path) as state:
        old = state.get(cp.origin)
        # The witness pins the log key it first trusted: a log whose key was swapped
        # (with its checkpoints re-signed) is not cosigned, whatever its database says.
        if old is not None and old.log_vkey is not None and old.log_vkey != str(log_key):
            raise InconsistentCheckpoint(
                f"the log key of {cp.origin} changed since this witness last cosigned "
                f"({old.log_vkey} → {log_key}): refusing"
            )
        check_extends(old, cp, proof_for)
        signature = note.cosign(cp.body(), name, key, timestamp)
        state[cp.origin] = TreeState(cp.size, cp.root_hash, str(log_key))
        save_state(state_path, state)
    return cp, signature
