"""A cache of rendered consumer pages, so that a popular lot's page is built once per change
of the ledger rather than once per scan.

A page is the same for everyone who asks for the same address in the same language, until
the lot's records change. The key is the request (canonical path, query, language, the
site's public base); stored with the page is the state it was built from: the lot's latest
event and status (every event of the lot, including a recall reaching it from upstream and
every sale, is recorded against it), the latest checkpoint, the latest cosignature and the
number of witnesses (what the proofs and the policy depend on). A page is served only while
that state is unchanged: one small statement of index look-ups per request, sent as plain
SQL on a pooled connection, and appends about other lots do not evict the page. A page built
again replaces the old one under the same key. What changes without an event of the lot
itself (a late test of an ancestor lot, an alert's handling status) shows within
:data:`TTL_SECONDS`.

A serialised unit's page is cached like any other, less its panel of scans, which is
rendered for every request.

A lot's page served to a GET without a query is also kept as the whole response (status,
headers, body) under everything in the request that could change it (the path, the host and
scheme, and the request headers, less those no page depends on). :class:`FastPages`, in front
of the application, answers the same request with it again while the lot's state is the same,
checked with the same one statement on a pooled database connection: no routing, locale or
template work for a popular page.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header, parse_cookie

from suyuan_web.common import LANG_COOKIE

TTL_SECONDS = 30.0
MAX_BYTES = 128 * 1024 * 1024
"""Per process, unless the ``PAGE_CACHE_BYTES`` setting says otherwise. Pages are 10-150 kB
(about 45 kB on average) and a lot's page is counted twice, as the page and as the whole
response (they share the bytes): 600 lots in both languages fit, with room to spare."""

_STATE_SQL = (
    "SELECT (SELECT max(entry) FROM lot_events WHERE lot = {p}),"
    " (SELECT status FROM lots WHERE code = {p}),"
    " (SELECT max(size) FROM checkpoints),"
    " (SELECT max(id) FROM cosignatures),"
    " (SELECT count(*) FROM witnesses)"
)
"""Written directly: it runs for every page served, and compiling an expression costs more
than the five index look-ups."""


def ledger_state(connection: Connection | Session, lot: str) -> tuple[object, ...]:
    """What the page of ``lot`` depends on: its latest event and status, the latest
    checkpoint and cosignature, the witnesses. Five index look-ups in one statement, on a
    connection or in a session's transaction."""
    if isinstance(connection, Session):
        connection = connection.connection()
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    row = connection.exec_driver_sql(_STATE_SQL.format(p=marker), (lot, lot)).one()
    return tuple(row)


def current_state(engine: Engine, lot: str) -> tuple[object, ...]:
    """:func:`ledger_state` on a pooled database connection, outside any transaction (the one
    statement reads one consistent state)."""
    marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(_STATE_SQL.format(p=marker), (lot, lot))
            row = cursor.fetchone()
        finally:
            cursor.close()
    finally:
        connection.close()
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


CACHE = "suyuan.page_cache"


def pages() -> PageCache:
    """This application's page cache."""
    cache = current_app.extensions.get(CACHE)
    if cache is None:
        size = int(current_app.config.get("PAGE_CACHE_BYTES", MAX_BYTES))
        cache = current_app.extensions.setdefault(CACHE, PageCache(size))
    return cache  # type: ignore[no-any-return]


# --- whole responses -------------------------------------------------------------------------

WHOLE = "suyuan.whole_page"
"""The WSGI environ key by which the resolver marks a response as a lot's page that may be
kept whole: its value is ``(lot, state)``."""

def request_key(environ: dict[str, Any], languages: Sequence[str]) -> Hashable:
    """What a lot's page asked for by a GET without a query depends on, and nothing else:
    the address (path, scheme, host: Digital Links fall back to the request's host), the
    ``Accept`` header (page, linkset or JSON) and the language the site would choose (its
    cookie, else ``Accept-Language`` negotiated exactly as :func:`select_locale` does).

    Per-visitor headers (user agent, proxies' ``X-Forwarded-For``, request ids, other
    cookies) are left out, so every phone asking for the same page in the same language
    shares one kept response."""
    cookie = parse_cookie(environ.get("HTTP_COOKIE", "")).get(LANG_COOKIE)
    if cookie in languages:
        language = cookie
    else:
        accepted = parse_accept_header(environ.get("HTTP_ACCEPT_LANGUAGE"), LanguageAccept)
        language = accepted.best_match(languages) or languages[0]
    return ("whole", environ.get("SCRIPT_NAME"), environ.get("PATH_INFO"),
            environ.get("RAW_URI") or environ.get("REQUEST_URI"), environ.get("wsgi.url_scheme"),
            environ.get("HTTP_HOST"), environ.get("SERVER_NAME"), environ.get("SERVER_PORT"),
            environ.get("HTTP_ACCEPT"), language)


class FastPages:
    """WSGI middleware: a lot's page asked for again exactly as before, while the lot's state
    is unchanged, is answered with the response kept the first time (see the module
    docstring); everything else goes to the application."""

    def __init__(self, app: Flask, wsgi_app: Any) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING"):
            return self.wsgi_app(environ, start_response)
        key = request_key(environ, self.app.config["LANGUAGES"])
        cache: PageCache | None = self.app.extensions.get(CACHE)
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            lot, state, status, headers, body = hit
            if current_state(self.app.extensions["suyuan.db"].engine, lot) == state:
                start_response(status, list(headers))
                return [body]
        sent: list[Any] = []

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            sent[:] = [status, headers]
            return start_response(status, headers, exc_info)

        result = self.wsgi_app(environ, keep)
        mark = environ.get(WHOLE)
        cache = self.app.extensions.get(CACHE)
        if (mark is None or cache is None or not sent or not sent[0].startswith("200 ")
                or any(name.lower() == "set-cookie" for name, _ in sent[1])):
            return result
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        lot, state = mark
        cache.put(key, (lot, state, sent[0], tuple(sent[1]), body), len(body))
        return [body]
