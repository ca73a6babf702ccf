"""C2SP tlog-tiles arithmetic: tile and entry-bundle paths, and the tree nodes each tile holds."""

from __future__ import annotations

import re

from suyuan.errors import MalformedInput
from suyuan.merkle import NodeId

__all__ = [
    "MAX_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "entries_path",
    "parse_tile_path",
    "tile_index_path",
    "tile_node_ids",
    "tile_path",
    "tiles_for_size",
]

TILE_HEIGHT = 8
"""Merkle levels spanned by one tile."""

TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes in a full tile (256), or entries in a full entry bundle."""

MAX_LEVEL = 63
"""Highest tile level a path may name."""

# Only ASCII digits: str.isdigit() and int() also take other scripts' digits and "1_0".
# At most 21 digits of index: enough past 2**64, and int() never sees a huge string.
_TILE_PATH = re.compile(
    r"tile/(?:(?P<entries>entries)|(?P<level>0|[1-9][0-9]?))"
    r"/(?P<index>(?:x[0-9]{3}/){0,6}[0-9]{3})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
)


def tile_index_path(n: int) -> str:
    """Encode a tile index as zero-padded 3-digit path elements, all but the last ``x``-prefixed.

    ``1234067`` becomes ``"x001/x234/067"`` and ``0`` becomes ``"000"``.
    """
    _require_non_negative(n, "tile index")
    digits = str(n)
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def tile_path(level: int, n: int, width: int | None = None) -> str:
    """Return ``tile/<L>/<N>`` for a full tile, or ``tile/<L>/<N>.p/<W>`` for a partial one.

    ``width`` None or :data:`TILE_WIDTH` means a full tile; 1 to 255 a partial one.
    """
    _require_level(level)
    return f"tile/{level}/{tile_index_path(n)}{_width_suffix(width)}"


def entries_path(n: int, width: int | None = None) -> str:
    """Return ``tile/entries/<N>`` for a full entry bundle, or with ``.p/<W>`` for a partial one."""
    return f"tile/entries/{tile_index_path(n)}{_width_suffix(width)}"


def parse_tile_path(path: str) -> tuple[int | None, int, int | None]:
    """Parse a path made by :func:`tile_path` or :func:`entries_path` (no leading slash).

    Returns ``(level, n, width)``: ``level`` is None for an entry bundle, ``width`` None for a
    full tile. Only the canonical form is accepted (no extra leading zeros, no ``.p/256``,
    level at most 63), so each tile has exactly one path. Raises :class:`MalformedInput`.
    """
    if not isinstance(path, str):
        raise MalformedInput(f"tile path must be a string, got {type(path).__name__}")
    match = _TILE_PATH.fullmatch(path)
    if match is None:
        raise MalformedInput(f"not a tile path: {path!r}")
    level = None if match["entries"] else int(match["level"])
    if level is not None and level > MAX_LEVEL:
        raise MalformedInput(f"tile level {level} is above {MAX_LEVEL}: {path!r}")
    index_text = match["index"]
    n = int(index_text.replace("x", "").replace("/", ""))
    # "x000/067" spells 67 too; only the shortest spelling names the tile.
    if tile_index_path(n) != index_text:
        raise MalformedInput(f"tile index is not in canonical form: {path!r}")
    width = None if match["width"] is None else int(match["width"])
    if width is not None and width >= TILE_WIDTH:
        raise MalformedInput(f"partial tile width {width} is not below {TILE_WIDTH}: {path!r}")
    return level, n, width


def tiles_for_size(size: int) -> list[tuple[int, int, int]]:
    """Return ``(level, full_tiles, partial_width)`` for every level with a tile at ``size``.

    Level ``l`` has ``size // 256**(l+1)`` full tiles and a partial tile of width
    ``size // 256**l % 256`` (0: none). A tree of size 256 has a full level-0 tile and a
    level-1 partial tile of width 1; an empty tree has no tiles.
    """
    _require_non_negative(size, "tree size")
    levels: list[tuple[int, int, int]] = []
    level = 0
    count = size  # hashes at this tile level: complete subtrees of 256**level leaves
    while count:
        levels.append((level, count >> TILE_HEIGHT, count & (TILE_WIDTH - 1)))
        level += 1
        count >>= TILE_HEIGHT
    return levels


def tile_node_ids(level: int, n: int, width: int) -> list[NodeId]:
    """Return the Merkle node ids whose hashes, concatenated in order, make up a tile.

    Tile ``n`` at tile level ``level`` holds nodes at Merkle level ``8 * level``, indexes
    ``n * 256`` to ``n * 256 + width - 1``.
    """
    _require_level(level)
    _require_non_negative(n, "tile index")
    _require_width(width)
    first = n << TILE_HEIGHT
    merkle_level = level * TILE_HEIGHT
    return [(merkle_level, first + i) for i in range(width)]


def _width_suffix(width: int | None) -> str:
    if width is None or width == TILE_WIDTH:
        return ""
    _require_width(width)
    return f".p/{width}"


def _require_width(width: object) -> None:
    if not isinstance(width, int) or isinstance(width, bool):
        raise MalformedInput(f"tile width must be an integer, got {type(width).__name__}")
    if not 1 <= width <= TILE_WIDTH:
        raise MalformedInput(f"tile width {width} is not between 1 and {TILE_WIDTH}")


def _require_level(level: object) -> None:
    if not isinstance(level, int) or isinstance(level, bool):
        raise MalformedInput(f"tile level must be an integer, got {type(level).__name__}")
    if not 0 <= level <= MAX_LEVEL:
        raise MalformedInput(f"tile level {level} is not between 0 and {MAX_LEVEL}")


def _require_non_negative(value: object, what: str) -> None:
    # bool is an int subclass; True as an index is a bug, not an index.
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedInput(f"{what} must be an integer, got {type(value).__name__}")
    if value < 0:
        raise MalformedInput(f"{what} {value} must not be negative")
