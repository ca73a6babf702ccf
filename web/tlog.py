"""The C2SP tlog-tiles read API (https://c2sp.org/tlog-tiles): the cosigned checkpoint, the
Merkle tree as tiles of hashes, and the entries as bundles, so that anyone can mirror the log
and recompute everything from it.

Tiles are served for the tree of the latest checkpoint only: the log may have grown since,
but nothing past a signed tree head is published. A full tile or entry bundle never changes
once it exists. A partial one exists exactly when a checkpoint's tree ends inside it (the set
of files a static tile writer would have written), and then never changes either: the hashes
of complete subtrees are fixed forever, so every tile is served as immutable.
"""

from __future__ import annotations

import gzip

from flask import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from suyuan import ledger, tiles
from suyuan.errors import NotFound
from suyuan.merkle import HASH_SIZE
from suyuan.storage import repo
from suyuan.storage.schema import CheckpointRow
from suyuan_web.common import reading

bp = Blueprint("tlog", __name__)

IMMUTABLE = "public, max-age=31536000, immutable"
"""Cache-Control of tiles and entry bundles (the spec: immutable, long-lived caching)."""

CHECKPOINT_CACHE = "public, max-age=5"
"""Cache-Control of /checkpoint: it changes, so caches may keep it only a few seconds."""

ENTRY_LENGTH_LIMIT = 0xFFFF
"""Largest entry an entry bundle can carry (big-endian uint16 length prefix)."""

_OCTETS = "application/octet-stream"


@bp.get("/checkpoint")
def checkpoint() -> Response:
    """The latest checkpoint with the log's signature and every witness cosignature."""
    with reading() as session:
        text = ledger.cosigned_note(session)
    response = Response(text.encode("utf-8"), content_type="text/plain; charset=utf-8")
    response.headers["Cache-Control"] = CHECKPOINT_CACHE
    return response


@bp.get("/tile/", defaults={"rest": ""})
@bp.get("/tile/<path:rest>")
def tile(rest: str) -> Response:
    """A hash tile ``/tile/<L>/<N>[.p/<W>]`` or an entry bundle ``/tile/entries/<N>[.p/<W>]``."""
    level, n, width = tiles.parse_tile_path(f"tile/{rest}")
    with reading() as session:
        _require_published(session, level, n, width)
        if level is None:
            body = entry_bundle(session, n, width or tiles.TILE_WIDTH)
        else:
            body = hash_tile(session, level, n, width or tiles.TILE_WIDTH)
    response = Response(body, content_type=_OCTETS)
    response.headers["Cache-Control"] = IMMUTABLE
    if level is None:
        # Entry bundles SHOULD be compressed at the HTTP layer; gzip when the client takes it.
        response.vary.add("Accept-Encoding")
        if request.accept_encodings["gzip"]:
            response.set_data(gzip.compress(body, mtime=0))
            response.headers["Content-Encoding"] = "gzip"
    return response


@bp.after_request
def _never_cache_errors(response: Response) -> Response:
    # A tile that is missing now appears with the next checkpoint: a cached 404 would hide it.
    if response.status_code >= 400:
        response.headers["Cache-Control"] = "no-store"
    return response


def published_size(session: Session) -> int:
    """The tree size of the latest checkpoint: tiles beyond it are not published."""
    row = repo.latest_checkpoint(session)
    if row is None:
        raise NotFound("the log has no checkpoint yet, so no tiles are published")
    return int(row.size)


def hash_tile(session: Session, level: int, n: int, width: int) -> bytes:
    """The ``width`` concatenated node hashes of tile ``n`` at tile level ``level``."""
    ids = tiles.tile_node_ids(level, n, width)
    found = repo.fetch_nodes(session, ids)
    missing = [node for node in ids if node not in found]
    if missing:
        # Every node under a checkpoint is stored when its subtree completes: this is damage.
        raise RuntimeError(f"the node store lacks {len(missing)} hashes of tile {level}/{n}, "
                           f"first {missing[0]}; run `suyuan verify`")
    body = b"".join(found[node] for node in ids)
    if len(body) != width * HASH_SIZE:
        raise RuntimeError(f"tile {level}/{n} has a stored hash that is not {HASH_SIZE} bytes")
    return body


def entry_bundle(session: Session, n: int, width: int) -> bytes:
    """Entries ``n * 256`` to ``n * 256 + width - 1``, each as a big-endian uint16 length and
    the leaf bytes exactly as hashed into the tree."""
    start = n * tiles.TILE_WIDTH
    parts: list[bytes] = []
    expected = start
    for index, leaf, *_ in repo.iter_entries(session, start, start + width, chunk=width):
        if index != expected:
            raise RuntimeError(f"entry {expected} is missing from the store; run `suyuan verify`")
        if len(leaf) > ENTRY_LENGTH_LIMIT:
            raise RuntimeError(f"entry {index} is {len(leaf)} bytes, too long for a bundle")
        parts.append(len(leaf).to_bytes(2, "big"))
        parts.append(leaf)
        expected += 1
    if expected != start + width:
        raise RuntimeError(f"entry {expected} is missing from the store; run `suyuan verify`")
    return b"".join(parts)


def _require_published(session: Session, tile_level: int | None, n: int, width: int | None
                       ) -> None:
    """Raise :class:`NotFound` unless the tile (``tile_level`` None: the entry bundle) exists
    for the latest checkpoint's tree.

    Tile ``n`` at level ``level`` covers ``256**level`` leaves per hash. A full tile needs its
    whole span in the tree; a partial tile of width ``W`` needs a checkpoint whose tree size
    ``s`` has ``s // 256**level == n * 256 + W`` (its tree ends inside this tile).
    """
    level = tile_level or 0
    size = published_size(session)
    span = 1 << (tiles.TILE_HEIGHT * level)  # leaves under one hash of this level
    name = (tiles.entries_path(n, width) if tile_level is None
            else tiles.tile_path(level, n, width))
    if width is None:
        if (n + 1) * tiles.TILE_WIDTH * span > size:
            raise NotFound(f"{name} is not full in the tree of the latest checkpoint "
                           f"(size {size})")
        return
    low = (n * tiles.TILE_WIDTH + width) * span
    if low > size:
        raise NotFound(f"{name} is beyond the tree of the latest checkpoint (size {size})")
    high = min(low + span, size + 1)
    found = session.scalar(
        select(CheckpointRow.size)
        .where(CheckpointRow.size >= low, CheckpointRow.size < high)
        .limit(1)
    )
    if found is None:
        raise NotFound(f"{name} does not exist: no checkpoint's tree ends inside it "
                       f"(the latest has size {size})")
