"""Tests for suyuan.tiles: C2SP tlog-tiles paths, tile counts and the tree nodes in each tile."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suyuan import merkle, tiles
from suyuan.errors import MalformedInput
from suyuan.merkle import HASH_SIZE, CompactRange, NodeId
from suyuan.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    entries_path,
    parse_tile_path,
    tile_index_path,
    tile_node_ids,
    tile_path,
    tiles_for_size,
)

VECTORS_FILE = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "corpora"
    / "merkle"
    / "merkle_vectors.json"
)


@pytest.fixture
def tile_vectors() -> dict[str, Any]:
    """The corpus' c2sp_tlog_tiles_examples block, or a clean skip when the corpus is absent."""
    if not VECTORS_FILE.is_file():
        pytest.skip(f"no corpus at {VECTORS_FILE}")
    return json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["c2sp_tlog_tiles_examples"]


PROPERTY = settings(max_examples=200, deadline=None)

# --------------------------------------------------------------------------------------------
# Corpus: the examples in the tlog-tiles spec


def test_tile_index_path_matches_the_spec_example(tile_vectors: dict[str, Any]) -> None:
    example = tile_vectors["tile_index_path"]
    assert tile_index_path(example["index"]) == example["path"]


def test_tile_paths_have_the_spec_url_form(tile_vectors: dict[str, Any]) -> None:
    assert tile_vectors["tile_index_path"]["url_form"] == "<prefix>/tile/<L>/<N>[.p/<W>]"
    index = tile_vectors["tile_index_path"]["index"]
    assert tile_path(3, index) == f"tile/3/{tile_vectors['tile_index_path']['path']}"
    assert tile_path(3, index, 17) == f"tile/3/{tile_vectors['tile_index_path']['path']}.p/17"


@pytest.mark.parametrize("size", [70000, 256])
def test_tiles_for_size_matches_the_spec_examples(tile_vectors: dict[str, Any], size: int) -> None:
    expected = [
        (t["level"], t["full_tiles"], t["partial_width"]) for t in tile_vectors[f"tree_size_{size}"]
    ]
    assert tiles_for_size(size) == expected


def test_a_full_tile_is_256_hashes_of_32_bytes(tile_vectors: dict[str, Any]) -> None:
    assert TILE_WIDTH == tile_vectors["hashes_per_full_tile"] == 1 << TILE_HEIGHT
    assert TILE_WIDTH * HASH_SIZE == tile_vectors["full_tile_bytes"]
    assert len(tile_node_ids(0, 0, TILE_WIDTH)) * HASH_SIZE == tile_vectors["full_tile_bytes"]


# --------------------------------------------------------------------------------------------
# Paths


@pytest.mark.parametrize(
    ("n", "path"),
    [
        (0, "000"),
        (7, "007"),
        (999, "999"),
        (1000, "x001/000"),
        (67000, "x067/000"),
        (1_000_000, "x001/x000/000"),
        (1234067, "x001/x234/067"),
        (2**56 - 1, "x072/x057/x594/x037/x927/935"),
    ],
)
def test_tile_index_is_written_in_x_prefixed_groups_of_three_digits(n: int, path: str) -> None:
    assert tile_index_path(n) == path


def test_a_full_tile_path_has_no_width_and_a_partial_one_has_p_and_its_width() -> None:
    assert tile_path(0, 0) == "tile/0/000"
    assert tile_path(0, 0, TILE_WIDTH) == "tile/0/000"
    assert tile_path(1, 1000, 1) == "tile/1/x001/000.p/1"
    assert tile_path(63, 5, 255) == "tile/63/005.p/255"
    assert entries_path(1234067) == "tile/entries/x001/x234/067"
    assert entries_path(0, 112) == "tile/entries/000.p/112"
    assert entries_path(0, TILE_WIDTH) == "tile/entries/000"


@pytest.mark.parametrize(
    ("level", "n", "width"),
    [
        (64, 0, None),
        (-1, 0, None),
        (0, -1, None),
        (0, 0, 0),
        (0, 0, 257),
        (True, 0, None),
        (0, 0, 1.0),
    ],
)
def test_tile_path_refuses_levels_indexes_and_widths_outside_the_spec(
    level: Any, n: Any, width: Any
) -> None:
    with pytest.raises(MalformedInput):
        tile_path(level, n, width)


def test_entries_path_refuses_negative_index_and_bad_width() -> None:
    for n, width in [(-1, None), (0, 0), (0, 300)]:
        with pytest.raises(MalformedInput):
            entries_path(n, width)


@PROPERTY
@given(
    level=st.integers(0, tiles.MAX_LEVEL),
    n=st.one_of(st.integers(0, 2**56), st.sampled_from([0, 999, 1000, 999_999, 1_000_000])),
    width=st.one_of(st.none(), st.integers(1, TILE_WIDTH)),
)
def test_parsing_a_tile_path_returns_what_made_it(level: int, n: int, width: int | None) -> None:
    expected_width = None if width == TILE_WIDTH else width
    assert parse_tile_path(tile_path(level, n, width)) == (level, n, expected_width)
    assert parse_tile_path(entries_path(n, width)) == (None, n, expected_width)


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/x000/067",  # leading zero group: 67 has one spelling, "067"
        "tile/0/x000/000",
        "tile/0/67",  # groups are exactly three digits
        "tile/0/0067",
        "tile/0/x001",  # the last group has no x
        "tile/0/001/000",  # every group but the last has one
        "tile/0/xx01/000",
        "tile/00/000",  # level without leading zeros
        "tile/01/000",
        "tile/64/000",  # level at most 63
        "tile/100/000",
        "tile/-1/000",
        "tile/0/000.p/0",  # partial width 1..255, no leading zeros
        "tile/0/000.p/256",
        "tile/0/000.p/017",
        "tile/0/000.p/",
        "tile/0/000.p/1/",
        "tile/0/000.p",
        "tile/entries/000.p/256",
        "tile/entries/x000/001",
        "tile/entries/",
        "tile/0/",
        "tile/0/000/",
        "/tile/0/000",  # relative to the prefix: no leading slash
        "tile/0/000\n",
        " tile/0/000",
        "tiles/0/000",
        "tile/0/\u0660\u0660\u0660",  # Arabic-Indic digits: int() would take them
        "tile/0/0_0",
        "tile/0/x001/x002/x003/x004/x005/x006/x007/000",  # beyond any uint64 tree
        "",
    ],
)
def test_parse_tile_path_refuses_non_canonical_paths(path: str) -> None:
    with pytest.raises(MalformedInput):
        parse_tile_path(path)


def test_parse_tile_path_refuses_what_is_not_a_string() -> None:
    with pytest.raises(MalformedInput):
        parse_tile_path(b"tile/0/000")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Which tiles a tree has, and what is in them


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, []),
        (1, [(0, 0, 1)]),
        (255, [(0, 0, 255)]),
        (257, [(0, 1, 1), (1, 0, 1)]),
        (65536, [(0, 256, 0), (1, 1, 0), (2, 0, 1)]),
    ],
)
def test_tiles_for_size_lists_full_tiles_and_partial_width_per_level(
    size: int, expected: list[tuple[int, int, int]]
) -> None:
    assert tiles_for_size(size) == expected


@PROPERTY
@given(size=st.integers(1, 2**64 - 1))
def test_tiles_for_size_follows_the_spec_formula_at_every_level(size: int) -> None:
    levels = tiles_for_size(size)
    assert [level for level, _, _ in levels] == list(range(len(levels)))
    for level, full, partial in levels:
        assert full == size // TILE_WIDTH ** (level + 1)
        assert partial == size // TILE_WIDTH**level % TILE_WIDTH
        assert full or partial, f"level {level} has no tile"
    assert size // TILE_WIDTH ** len(levels) == 0, "a level with tiles is missing"


def test_tiles_for_size_refuses_a_negative_size() -> None:
    with pytest.raises(MalformedInput):
        tiles_for_size(-1)


def test_tile_node_ids_are_consecutive_nodes_eight_merkle_levels_per_tile_level() -> None:
    assert tile_node_ids(0, 0, 3) == [(0, 0), (0, 1), (0, 2)]
    assert tile_node_ids(1, 2, 2) == [(8, 512), (8, 513)]
    assert tile_node_ids(2, 0, 1) == [(16, 0)]
    assert tile_node_ids(0, 1, TILE_WIDTH) == [(0, i) for i in range(256, 512)]
    for level, n, width in [(0, 0, 0), (0, 0, 257), (64, 0, 1), (0, -1, 1)]:
        with pytest.raises(MalformedInput):
            tile_node_ids(level, n, width)


def test_tiles_of_a_70000_leaf_tree_are_stored_nodes_that_hash_the_level_below() -> None:
    size = 70000
    nodes: dict[NodeId, bytes] = {}
    compact = CompactRange()
    for i in range(size):
        nodes.update(compact.append(hashlib.sha256(b"\x00" + i.to_bytes(4, "big")).digest()))

    def tile(level: int, n: int, width: int) -> list[bytes]:
        return [nodes[node] for node in tile_node_ids(level, n, width)]

    served = 0
    for level, full, partial in tiles_for_size(size):
        for n in range(full + (1 if partial else 0)):
            width = TILE_WIDTH if n < full else partial
            hashes = tile(level, n, width)  # every tile hash is a stored complete node
            served += 1
            if level:
                # Spec: each hash at level l >= 1 is the MTH of a full tile at level l - 1.
                for i, h in enumerate(hashes):
                    assert h == merkle.root(tile(level - 1, n * TILE_WIDTH + i, TILE_WIDTH))
    # 273 + 1 level-0 tiles, 1 + 1 at level 1, 1 at level 2 (the spec's example).
    assert served == 277
    # The partial tiles alone give the root, as a mirror holding only tiles computes it.
    assert _root_from_tiles(size, nodes) == compact.root()


def _root_from_tiles(size: int, nodes: dict[NodeId, bytes]) -> bytes:
    """Rebuild the root of a ``size`` tree from partial-tile hashes, top level first."""
    parts: list[bytes] = []
    for level, full, partial in reversed(tiles_for_size(size)):
        if partial:
            hashes = [nodes[node] for node in tile_node_ids(level, full, partial)]
            # A partial tile's hashes are a tree of `partial` subtrees of 256**level leaves:
            # its compact range, folded like any other.
            edge = CompactRange.node_ids(partial)
            parts.extend(merkle.root(hashes[i << lvl : (i + 1) << lvl]) for lvl, i in edge)
    acc = parts[-1]
    for h in reversed(parts[:-1]):
        acc = merkle.node_hash(h, acc)
    return acc
