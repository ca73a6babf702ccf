"""A cache of rendered consumer pages, so that a popular lot's page is built once per change
of the ledger rather than once per scan.

A page is the same for everyone who asks for the same address in the same language, until
the lot's history changes. The key is the request (canonical path, query, language, the
site's public base); stored with the page is the state it was built from: when the lot's
history last changed (``lots.changed_at``, see below) and its status, the latest checkpoint,
the latest cosignature and the number of witnesses (what the proofs and the policy depend
on). A page is served only while that state is unchanged: one small statement of index
look-ups per request, sent as plain SQL on a pooled connection, and appends about other lots
do not evict the page. A page built again replaces the old one under the same key.

A serialised unit's page is cached like any other, less its panel of scans, which is
rendered for every request.

A lot's page served to a GET without a query is also kept as the whole response (status,
headers, body) under everything in the request that could change it (the path, the host and
scheme, and the request headers, less those no page depends on). :class:`FastPages`, in front
of the application, answers the same request with it again while the lot's state is the same,
checked with the same one statement on a pooled database connection: no routing, locale or
template work for a popular page. The kept response is also compressed once (gzip), for the
clients that accept it — every phone's browser —, so a 32 kB page travels as about 7 kB.

The lot's state is exact: ``lots.changed_at`` is stamped, on append, on every lot whose history
a statement changed — the lot itself and every lot made from it, since a page shows its
ancestors' events — so a late test or a recall upstream is seen by the next request.

Behind each worker's memory sits a :class:`PageStore` shared by the workers of the machine
(files in the instance folder, ``PAGE_STORE``): a page built by one worker is served by the
others and survives a restart, while its state still matches. Its files are namespaced by
everything a page is made from besides the ledger state (the code, templates, translations
and static files, the settings, the database), so a deploy or another ledger never sees
another's pages.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import os
import pickle
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header, parse_cookie

from suyuan_web.common import LANG_COOKIE

TTL_SECONDS = 300.0
"""How long a worker keeps a page in memory: a safety net only, the state check is exact."""
MAX_BYTES = 128 * 1024 * 1024
"""Per process, unless the ``PAGE_CACHE_BYTES`` setting says otherwise. Pages are 10-150 kB
(about 45 kB on average) and a lot's page is counted twice, as the page and as the whole
response (they share the bytes): 600 lots in both languages fit, with room to spare."""

_STATE_SQL = (
    "SELECT (SELECT changed_at FROM lots WHERE code = {p}),"
    " (SELECT status FROM lots WHERE code = {p}),"
    " (SELECT max(size) FROM checkpoints),"
    " (SELECT max(id) FROM cosignatures),"
    " (SELECT count(*) FROM witnesses)"
)
"""Written directly: it runs for every page served, and compiling an expression costs more
than the five index look-ups."""


def ledger_state(connection: Connection | Session, lot: str) -> tuple[object, ...]:
    """What the page of ``lot`` depends on: when its history last changed, its status, the latest
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


STORE_BYTES = 1024 * 1024 * 1024
STORE_MAX_AGE = 7 * 24 * 3600
"""A page file older than this is not served (a safety net) and other namespaces' folders
untouched for this long are removed."""
_SWEEP_EVERY = 500


class PageStore:
    """Pages kept as files shared by the processes of one machine, bounded in bytes.

    A value is pickled with its key under ``folder/<namespace>/<2 hex>/<62 hex>``, written to
    a temporary file and renamed into place, so a reader sees a whole file or none. A file
    that cannot be read back (cut short, foreign, another key) is a miss; a store that cannot
    be written (disk full, read-only) is skipped: the store never fails a page. Every
    :data:`_SWEEP_EVERY` writes of a process, or a tenth of ``max_bytes`` written, the oldest
    files go until the namespace is under 90 % of ``max_bytes``. The folder is the instance folder's, trusted as the secret
    key beside it is."""

    def __init__(self, folder: Path, namespace: str, max_bytes: int = STORE_BYTES,
                 max_age: float = STORE_MAX_AGE) -> None:
        self.root = folder
        self.folder = folder / namespace
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._writes = 0
        self._pending = 0
        self._lock = threading.Lock()

    def _path(self, key: Hashable) -> Path:
        digest = hashlib.sha256(repr(key).encode()).hexdigest()
        return self.folder / digest[:2] / digest[2:]

    def get(self, key: Hashable) -> Any:
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                if time.time() - os.fstat(handle.fileno()).st_mtime > self.max_age:
                    return None
                stored_key, value = pickle.load(handle)
        except FileNotFoundError:
            return None
        except Exception:  # cut short or damaged: a miss, and gone
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return value if stored_key == key else None

    def put(self, key: Hashable, value: Any) -> None:
        path = self._path(key)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            data = pickle.dumps((key, value), protocol=pickle.HIGHEST_PROTOCOL)
            size = len(data)
            with open(temporary, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            return
        with self._lock:
            self._writes += 1
            self._pending += size
            due = self._writes % _SWEEP_EVERY == 0 or self._pending > self.max_bytes // 10
            if due:
                self._pending = 0
        if due:
            self.sweep()

    def sweep(self) -> None:
        """Trim this namespace to 90 % of its bound, oldest files first; remove other
        namespaces nobody has written to for ``max_age``."""
        files = []
        for sub in _scandir(self.folder):
            for entry in _scandir(Path(sub.path)):
                with contextlib.suppress(OSError):
                    stat = entry.stat()
                    files.append((stat.st_mtime, stat.st_size, entry.path))
        total = sum(size for _, size, _ in files)
        for _mtime, size, path in sorted(files):
            if total <= self.max_bytes * 0.9:
                break
            with contextlib.suppress(OSError):
                os.unlink(path)
                total -= size
        with contextlib.suppress(OSError):
            os.utime(self.folder)
        now = time.time()
        for other in _scandir(self.root):
            if other.name != self.folder.name and other.is_dir():
                with contextlib.suppress(OSError):
                    if now - other.stat().st_mtime > self.max_age:
                        shutil.rmtree(other.path, ignore_errors=True)

    def bytes_used(self) -> int:
        return sum(entry.stat().st_size for sub in _scandir(self.folder)
                   for entry in _scandir(Path(sub.path)))


def _scandir(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []


class Tiered:
    """A worker's memory in front of the machine's shared :class:`PageStore`."""

    def __init__(self, memory: PageCache, store: PageStore | None) -> None:
        self.memory = memory
        self.store = store

    @property
    def max_bytes(self) -> int:
        return self.memory.max_bytes

    def get(self, key: Hashable) -> Any:
        value = self.memory.get(key)
        if value is None and self.store is not None:
            value = self.store.get(key)
            if value is not None:
                self.memory.put(key, value, _size(value))
        return value

    def put(self, key: Hashable, value: Any, size: int) -> None:
        self.memory.put(key, value, size)
        if self.store is not None:
            self.store.put(key, value)


def _size(value: Any) -> int:
    return sum(len(part) for part in value if isinstance(part, bytes | str))


CACHE = "suyuan.page_cache"


def namespace(app: Flask) -> str:
    """What every page of ``app`` is made from besides the ledger's state: the code of
    ``suyuan`` and ``suyuan_web``, the templates, translations and static files, and the
    settings (the secret key aside)."""
    import suyuan

    digest = hashlib.sha256(suyuan.__version__.encode())
    for package in (Path(suyuan.__file__).parent, Path(__file__).parent):
        for path in sorted(package.rglob("*")):
            if path.is_file() and path.suffix not in (".po", ".pyc") and (
                    path.suffix == ".py" or path.parts[len(package.parts)] in
                    ("templates", "translations", "static")):
                digest.update(str(path.relative_to(package)).encode() + b"\0")
                digest.update(path.read_bytes())
    from suyuan_web import DEFAULTS

    for name in sorted(DEFAULTS):  # the site's own settings (extensions add and change others)
        if name != "SECRET_KEY":
            digest.update(f"{name}={app.config.get(name)!r}\0".encode())
    digest.update(str(app.extensions["suyuan.db"].url).encode())
    return digest.hexdigest()[:24]


def pages() -> Tiered:
    """This application's page cache: the worker's memory, then the machine's page store."""
    return cache_of(current_app._get_current_object())  # type: ignore[attr-defined]


def cache_of(app: Flask) -> Tiered:
    cache = app.extensions.get(CACHE)
    if cache is None:
        size = int(app.config.get("PAGE_CACHE_BYTES", MAX_BYTES))
        folder = app.config.get("PAGE_STORE")
        if folder is None:
            folder = Path(app.instance_path) / "pages"
        store = None
        if folder:
            store = PageStore(Path(folder), namespace(app),
                              int(app.config.get("PAGE_STORE_BYTES", STORE_BYTES)))
        cache = app.extensions.setdefault(CACHE, Tiered(PageCache(size), store))
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
    cookies = environ.get("HTTP_COOKIE")
    cookie = parse_cookie(cookies).get(LANG_COOKIE) if cookies else None
    if cookie in languages:
        language = cookie
    else:
        language = _negotiate(environ.get("HTTP_ACCEPT_LANGUAGE"), tuple(languages))
    return ("whole", environ.get("SCRIPT_NAME"), environ.get("PATH_INFO"),
            environ.get("RAW_URI") or environ.get("REQUEST_URI"), environ.get("wsgi.url_scheme"),
            environ.get("HTTP_HOST"), environ.get("SERVER_NAME"), environ.get("SERVER_PORT"),
            environ.get("HTTP_ACCEPT"), language)


@functools.lru_cache(maxsize=512)
def _negotiate(header: str | None, languages: tuple[str, ...]) -> str:
    """The page language for an ``Accept-Language`` value (phones send a handful of
    distinct values: each is parsed once)."""
    accepted = parse_accept_header(header, LanguageAccept)
    return accepted.best_match(languages) or languages[0]


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
        cache = cache_of(self.app)
        hit = cache.get(key)
        if hit is not None:
            lot, state, status, headers, body, gz_headers, gz_body = hit
            if current_state(self.app.extensions["suyuan.db"].engine, lot) == state:
                if gz_body is not None and _takes_gzip(environ.get("HTTP_ACCEPT_ENCODING")):
                    headers, body = gz_headers, gz_body
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
        headers = tuple(sent[1])
        gz_headers, gz_body = _gzipped(headers, body)
        cache.put(key, (lot, state, sent[0], headers, body, gz_headers, gz_body),
                  len(body) + len(gz_body or b""))
        return [body]


GZIP_MIN_BYTES = 1024


def _gzipped(headers: tuple[tuple[str, str], ...], body: bytes
             ) -> tuple[tuple[tuple[str, str], ...] | None, bytes | None]:
    """The response compressed once, when it is kept, for the clients that take gzip (every
    phone's browser): a 32 kB page travels as about 7 kB."""
    names = {name.lower() for name, _ in headers}
    if len(body) < GZIP_MIN_BYTES or "content-encoding" in names:
        return None, None
    compressed = gzip.compress(body, compresslevel=6, mtime=0)
    out, vary = [], False
    for name, value in headers:
        lower = name.lower()
        if lower == "content-length":
            value = str(len(compressed))
        elif lower == "vary":
            vary = True
            if "accept-encoding" not in value.lower():
                value = f"{value}, Accept-Encoding"
        out.append((name, value))
    out.append(("Content-Encoding", "gzip"))
    if not vary:
        out.append(("Vary", "Accept-Encoding"))
    return tuple(out), compressed


@functools.lru_cache(maxsize=256)
def _takes_gzip(header: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value admits gzip (``gzip`` or ``*`` with q > 0)."""
    return bool(header) and parse_accept_header(header).quality("gzip") > 0
