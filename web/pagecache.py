"""A cache of rendered consumer pages, so that a popular lot's page is built once per change
of the ledger rather than once per scan.

A page is the same for everyone who asks for the same address in the same language, until
the lot's records change. The key therefore holds the request (canonical path, query,
language, the site's public base) and the state the page depends on: the lot's latest event
and status (every event of the lot, including a recall reaching it from upstream and every
sale, is recorded against it), the latest checkpoint, the latest cosignature and the number
of witnesses (what the proofs and the policy depend on). That is one small statement of index
look-ups per request, and appends about other lots do not evict the page. What changes
without an event of the lot itself (a late test of an ancestor lot, an alert's handling
status) shows within :data:`TTL_SECONDS`.

A serialised unit's page is cached like any other, less its panel of scans, which is
rendered for every request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suyuan.storage.schema import (
    CheckpointRow,
    CosignatureRow,
    LotEventRow,
    LotRow,
    WitnessRow,
)

TTL_SECONDS = 30.0
MAX_BYTES = 32 * 1024 * 1024
"""Per process: a few thousand pages."""


def ledger_state(session: Session, lot: str) -> tuple[object, ...]:
    """What the page of ``lot`` depends on: its latest event and status, the latest
    checkpoint and cosignature, the witnesses. Five index look-ups in one statement."""
    row = session.execute(select(
        select(func.max(LotEventRow.entry)).where(LotEventRow.lot == lot).scalar_subquery(),
        select(LotRow.status).where(LotRow.code == lot).scalar_subquery(),
        select(func.max(CheckpointRow.size)).scalar_subquery(),
        select(func.max(CosignatureRow.id)).scalar_subquery(),
        select(func.count()).select_from(WitnessRow).scalar_subquery(),
    )).one()
    return tuple(row)


class PageCache:
    """A thread-safe LRU of rendered pages, bounded in bytes, entries expiring after a TTL."""

    def __init__(self, max_bytes: int = MAX_BYTES, ttl: float = TTL_SECONDS) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._items: OrderedDict[Hashable, tuple[float, Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """The value stored under ``key``, or None if absent or expired."""
        now = time.monotonic()
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            expires, value, _size = item
            if expires < now:
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any, size: int) -> None:
        """Keep ``value`` (about ``size`` bytes); values over an eighth of the cache are not
        kept, and the least recently used go first when it is full."""
        if size > self.max_bytes // 8:
            return
        with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (time.monotonic() + self.ttl, value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._items)))

    def _drop(self, key: Hashable) -> None:
        _expires, _value, size = self._items.pop(key)
        self._bytes -= size

    def __len__(self) -> int:
        return len(self._items)


def pages() -> PageCache:
    """This application's page cache."""
    cache = current_app.extensions.get("suyuan.page_cache")
    if cache is None:
        cache = current_app.extensions.setdefault("suyuan.page_cache", PageCache())
    return cache  # type: ignore[no-any-return]
