"""The C2SP tlog-tiles read API: a mirror rebuilds the whole log from /checkpoint, the tiles and
the entry bundles alone and recomputes every hash; malformed paths, tiles beyond the checkpoint
and widths no checkpoint produced are refused; published tiles never change."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from suyuan import crypto, ledger, note
from suyuan.model import Entry
from suyuan.storage.db import Database, sqlite_url
from suyuan.tiles import entries_path, tile_path
from suyuan_web.tlog import CHECKPOINT_CACHE, IMMUTABLE
from tests.helpers import Actor, make_signed, make_world
from tests.web.conftest import ORIGIN, WITNESS, Dalian, make_app, seal

WIDTH = 256
JSON = {"Accept": "application/json"}
SIZE = 119
"""Entries of the Dalian log (genesis, actors, limits, places, products, the six chains): one
partial tile. It changes when fixtures/dalian/world.json does."""

# --------------------------------------------------------------------------------------------
# An independent RFC 9162 §2.1 implementation: the mirror trusts nothing the log computed.


def _leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def _mth(hashes: list[bytes]) -> bytes:
    """MTH over already-hashed leaves, by the RFC's recursion (split at the largest power of
    two below n)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(hashes[:k]) + _mth(hashes[k:])).digest()


def _tiles_at(size: int) -> list[tuple[int, int, int]]:
    """(level, full tiles, partial width) straight from the spec's formulas."""
    out, level = [], 0
    while size // WIDTH**level:
        out.append((level, size // WIDTH ** (level + 1), size // WIDTH**level % WIDTH))
        level += 1
    return out


@dataclass
class Mirror:
    """What a mirror holds after fetching everything a checkpoint needs."""

    checkpoint: note.Checkpoint
    note_text: bytes
    leaves: list[bytes] = field(default_factory=list)
    bodies: dict[str, bytes] = field(default_factory=dict)


def _get(client: FlaskClient, path: str, **kwargs: object) -> TestResponse:
    response = client.get(f"/{path}", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, (path, response.status_code, response.data[:300])
    return response


def _split_bundle(data: bytes) -> list[bytes]:
    entries, offset = [], 0
    while offset < len(data):
        assert offset + 2 <= len(data), "truncated length prefix"
        length = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        assert offset + length <= len(data), "truncated entry"
        entries.append(data[offset : offset + length])
        offset += length
    return entries


def mirror(client: FlaskClient, dalian: Dalian) -> Mirror:
    """Fetch /checkpoint, verify its signatures, then fetch every tile and entry bundle of its
    tree, checking headers and sizes on the way."""
    response = _get(client, "checkpoint")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Cache-Control"] == CHECKPOINT_CACHE
    log_key = crypto.verifier_key(ORIGIN, dalian.log_key.public_key)
    cp, signed = note.open_checkpoint(response.data, log_key, ORIGIN)
    witness_key = note.witness_verifier_key(WITNESS, dalian.witness_key.public_key)
    note.verify_cosignature(signed, witness_key)
    result = Mirror(cp, response.data)

    for level, full, partial in _tiles_at(cp.size):
        widths = [(n, None) for n in range(full)] + ([(full, partial)] if partial else [])
        for n, width in widths:
            path = tile_path(level, n, width)
            tile = _get(client, path)
            assert tile.headers["Content-Type"] == "application/octet-stream"
            assert tile.headers["Cache-Control"] == IMMUTABLE
            assert len(tile.data) == 32 * (width or WIDTH), path
            result.bodies[path] = tile.data
            if level == 0:
                # Clients SHOULD accept gzip and identity; the log may compress entry bundles.
                path = entries_path(n, width)
                bundle = _get(client, path, headers={"Accept-Encoding": "gzip, identity"})
                assert bundle.headers["Cache-Control"] == IMMUTABLE
                data = bundle.data
                if bundle.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                entries = _split_bundle(data)
                assert len(entries) == (width or WIDTH), path
                result.bodies[path] = data
                result.leaves.extend(entries)
    return result


def check_mirror(m: Mirror) -> None:
    """Recompute the tree from the entries: root, every tile hash, the hash chain."""
    size = m.checkpoint.size
    assert len(m.leaves) == size
    leaf_hashes = [_leaf_hash(leaf) for leaf in m.leaves]
    assert _mth(leaf_hashes) == m.checkpoint.root_hash

    for level, full, partial in _tiles_at(size):
        widths = [(n, None) for n in range(full)] + ([(full, partial)] if partial else [])
        for n, width in widths:
            body = m.bodies[tile_path(level, n, width)]
            span = WIDTH**level
            for i in range(width or WIDTH):
                first = (n * WIDTH + i) * span
                expected = _mth(leaf_hashes[first : first + span])
                assert body[32 * i : 32 * (i + 1)] == expected, (level, n, i)

    for index, leaf in enumerate(m.leaves):
        entry = Entry.from_leaf(leaf)
        assert entry.index == index
        if index:
            assert entry.prev == leaf_hashes[index - 1].hex(), index


def append_notes(dalian: Dalian, count: int) -> int:
    """Append ``count`` signed notes by the Jinzhou cooperative; return the new log size."""
    author = Actor("jinzhou-cherry-coop", dalian.keys["jinzhou-cherry-coop"])
    signed = [make_signed(author, body={"text": f"巡园记录 orchard round {i}"})
              for i in range(count)]
    db = Database(dalian.url)
    try:
        with db.writer() as session, session.begin():
            results = ledger.append(session, signed)
            assert [r.error for r in results if r.error] == []
            return ledger.size(session)
    finally:
        db.dispose()


def seal_log(dalian: Dalian) -> int:
    db = Database(dalian.url)
    try:
        return seal(db, dalian.log_key, dalian.witness_key, dalian.witness_state)
    finally:
        db.dispose()


@pytest.fixture
def grown(dalian_any: Dalian) -> Dalian:
    """The Dalian log (on SQLite, then on PostgreSQL) grown past two full tiles (SIZE + 450 entries)
    and sealed again."""
    assert append_notes(dalian_any, 450) == SIZE + 450
    assert seal_log(dalian_any) == SIZE + 450
    return dalian_any


@pytest.fixture
def grown_app(grown: Dalian) -> Iterator[Flask]:
    application = make_app(grown.url)
    yield application
    application.extensions["suyuan.db"].dispose()


# --------------------------------------------------------------------------------------------
# Mirroring


def test_a_mirror_rebuilds_the_dalian_log_from_the_tiles_alone(
        reader: FlaskClient, dalian_master: Dalian) -> None:
    m = mirror(reader, dalian_master)
    assert m.checkpoint.size == SIZE
    assert sorted(m.bodies) == [f"tile/0/000.p/{SIZE}", f"tile/entries/000.p/{SIZE}"]
    check_mirror(m)


def test_a_mirror_of_more_than_512_entries_uses_full_partial_and_level_1_tiles(
        grown_app: Flask, grown: Dalian) -> None:
    m = mirror(grown_app.test_client(), grown)
    assert m.checkpoint.size == SIZE + 450
    assert sorted(m.bodies) == [
        "tile/0/000", "tile/0/001", f"tile/0/002.p/{SIZE + 450 - 512}", "tile/1/000.p/2",
        "tile/entries/000", "tile/entries/001", f"tile/entries/002.p/{SIZE + 450 - 512}",
    ]
    check_mirror(m)
    # The level-1 hashes are the roots of the two full level-0 tiles, as the spec defines.
    level0 = m.bodies["tile/0/000"] + m.bodies["tile/0/001"]
    roots = [_mth([level0[i : i + 32] for i in range(start, start + 32 * WIDTH, 32)])
             for start in (0, 32 * WIDTH)]
    assert m.bodies["tile/1/000.p/2"] == b"".join(roots)


def test_a_mirror_detects_a_tile_that_disagrees_with_the_entries(
        reader: FlaskClient, dalian_master: Dalian) -> None:
    """The checks above can fail: one flipped bit in a tile or an entry is caught."""
    m = mirror(reader, dalian_master)
    path = f"tile/0/000.p/{SIZE}"
    m.bodies[path] = m.bodies[path][:40] + bytes([m.bodies[path][40] ^ 1]) + m.bodies[path][41:]
    with pytest.raises(AssertionError):
        check_mirror(m)
    m = mirror(reader, dalian_master)
    m.leaves[5] = m.leaves[5].replace(b'"index":5', b'"index":6')
    with pytest.raises(AssertionError):
        check_mirror(m)


# --------------------------------------------------------------------------------------------
# Immutability: what was published never changes; nothing past the checkpoint is published


def test_published_tiles_stay_byte_identical_as_the_log_grows(dalian: Dalian) -> None:
    assert append_notes(dalian, 300) == SIZE + 300
    assert seal_log(dalian) == SIZE + 300
    app = make_app(dalian.url)
    client = app.test_client()
    part = SIZE + 300 - 256  # leaves in the second, partial tile
    first_paths = ["tile/0/000", "tile/entries/000", f"tile/0/001.p/{part}",
                   f"tile/entries/001.p/{part}", "tile/1/000.p/1"]
    before = {path: _get(client, path).data for path in first_paths}
    checkpoint_before = _get(client, "checkpoint").data

    # The log grows but is not checkpointed: nothing new is published.
    assert append_notes(dalian, 200) == SIZE + 500
    assert _get(client, "checkpoint").data == checkpoint_before
    for path in ["tile/0/001", "tile/entries/001", f"tile/0/002.p/{SIZE + 500 - 512}", "tile/1/000.p/2"]:
        refused = client.get(f"/{path}", headers=JSON)
        assert refused.status_code == 404, path
        assert f"size {SIZE + 300}" in refused.json["error"]["message"]

    assert seal_log(dalian) == SIZE + 500
    after = {path: _get(client, path).data for path in first_paths}
    assert after == before
    # The old partial tiles are prefixes of what replaced them.
    assert _get(client, "tile/0/001").data[: part * 32] == before[f"tile/0/001.p/{part}"]
    assert _get(client, "tile/1/000.p/2").data[:32] == before["tile/1/000.p/1"]
    bundle = _split_bundle(_get(client, "tile/entries/001").data)
    assert bundle[:part] == _split_bundle(before[f"tile/entries/001.p/{part}"])
    check_mirror(mirror(client, dalian))
    app.extensions["suyuan.db"].dispose()


# --------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize("path", [
    "tile/0/67",                   # index groups have three digits
    "tile/0/x000/067",             # non-canonical index: 67 is "067"
    "tile/00/000",                 # leading zero in the level
    "tile/64/000",                 # level above 63
    "tile/-1/000",
    "tile/x/000",
    "tile/0/000.p/0",              # widths are 1…255
    "tile/0/000.p/256",            # a full tile has no .p/
    "tile/0/000.p/007",
    "tile/0/000.p/",
    "tile/0/000/",
    "tile/0/000/001",
    "tile/0/０００",               # full-width digits are not ASCII digits
    "tile/entries",
    "tile/entries/000.p/1.5",
    "tile/",
])
def test_a_malformed_tile_path_is_a_400(reader: FlaskClient, path: str) -> None:
    response = reader.get(f"/{path}", headers=JSON)
    assert response.status_code == 400, path
    assert response.json["error"]["code"] == "malformed"
    assert "tile" in response.json["error"]["message"]
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("path", "reason"), [
    ("tile/0/000", "not full"),                  # the tree has SIZE leaves
    ("tile/entries/000", "not full"),
    (f"tile/0/000.p/{SIZE + 1}", "beyond"),
    (f"tile/entries/000.p/{SIZE + 1}", "beyond"),
    ("tile/0/001.p/1", "beyond"),
    ("tile/1/000.p/1", "beyond"),                 # no level-1 hash before 256 leaves
    ("tile/63/000.p/1", "beyond"),
    ("tile/entries/x999/x999/x999/x999/x999/x999/999", "not full"),
    ("tile/0/x999/x999/x999/x999/x999/x999/999.p/255", "beyond"),
])
def test_a_tile_beyond_the_checkpoint_is_a_404(reader: FlaskClient, path: str,
                                              reason: str) -> None:
    response = reader.get(f"/{path}", headers=JSON)
    assert response.status_code == 404, path
    assert response.json["error"]["code"] == "not_found"
    message = response.json["error"]["message"]
    assert path in message and reason in message and f"size {SIZE}" in message
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["tile/0/000.p/106", "tile/0/000.p/1",
                                  "tile/entries/000.p/50"])
def test_a_partial_tile_of_a_width_no_checkpoint_made_is_a_404(reader: FlaskClient,
                                                                path: str) -> None:
    response = reader.get(f"/{path}", headers=JSON)
    assert response.status_code == 404
    assert "no checkpoint's tree ends inside it" in response.json["error"]["message"]


def test_a_log_without_a_checkpoint_publishes_nothing(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "fresh.db"))
    db.upgrade()
    make_world(db)   # entries, but no checkpoint yet
    db.dispose()
    app = make_app(sqlite_url(tmp_path / "fresh.db"))
    client = app.test_client()
    for path in ["checkpoint", "tile/0/000.p/3", "tile/entries/000.p/3"]:
        response = client.get(f"/{path}", headers=JSON)
        assert response.status_code == 404, path
        assert "checkpoint" in response.json["error"]["message"]
    app.extensions["suyuan.db"].dispose()


# --------------------------------------------------------------------------------------------
# HTTP details


def test_entry_bundles_are_gzipped_only_for_clients_that_accept_it(reader: FlaskClient) -> None:
    path = f"/tile/entries/000.p/{SIZE}"
    plain = reader.get(path)
    assert "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers["Vary"]
    zipped = reader.get(path, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert len(zipped.data) < len(plain.data)
    assert gzip.decompress(zipped.data) == plain.data
    refused = reader.get(path, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers and refused.data == plain.data
    # Hash tiles are random bytes: never compressed.
    tile = reader.get(f"/tile/0/000.p/{SIZE}", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in tile.headers and len(tile.data) == SIZE * 32


def test_checkpoint_is_the_cosigned_note_and_answers_head(reader: FlaskClient,
                                                          dalian_master: Dalian) -> None:
    response = reader.get("/checkpoint")
    text = response.data.decode()
    assert text.startswith(f"{ORIGIN}\n{SIZE}\n")
    assert f"\u2014 {WITNESS} " in text and f"\u2014 {ORIGIN} " in text
    head = reader.head("/checkpoint")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(response.data))
