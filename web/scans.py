"""Scan counting for serialised units (一物一码): how often a unit's code was looked at, when
first and where, so the consumer page can warn when a code has been copied.

What counts as a scan:

- only a ``GET`` of a serialised unit's consumer page (``/01/<gtin>/10/<lot>/21/<serial>``)
  that was answered with the page (status 200): not ``HEAD``, not the linkset or any JSON,
  not a redirect, not an error;
- not a request the browser itself says is speculative (``Sec-Purpose: prefetch`` or
  ``prerender``, ``Purpose: prefetch``, ``X-Purpose: preview``, ``X-Moz: prefetch``);
- not a known robot or link-preview fetcher (search engines, chat apps building a preview
  card, HTTP libraries, headless browsers), judged from the ``User-Agent``; a request without
  one is not counted either;
- one visitor counts at most once per :data:`DEDUP_SECONDS` (30 minutes) for a unit. A visitor
  is an HMAC-SHA256, keyed with the site's ``SECRET_KEY``, of the client address and the user
  agent: the address itself is never stored. (Configure ``SECRET_KEY`` when running several
  workers, or each worker counts a visitor once for itself.)

The region of a scan comes from a request header that a trusted reverse proxy sets (e.g. from
GeoIP), named by the ``SCAN_REGION_HEADER`` setting; by default no region is recorded.

Counting never slows or breaks the page: the page reads the counts in its own read
transaction, and the scan is written after the response has been sent
(``response.call_on_close``), in a short transaction that gives up after
:data:`WRITE_WAIT_MS` if the database is busy. A scan that cannot be written is logged and
dropped. Two concurrent requests of one visitor may, rarely, both be counted on PostgreSQL.

Scans live in the mutable ``scans`` table beside the log: they are not statements, nothing
signs them, and ``suyuan rebuild`` leaves them alone.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass

from flask import Request, Response, current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suyuan.storage.db import SQLITE_BUSY_TIMEOUT_MS, WRITE, Database
from suyuan.storage.schema import ScanRow
from suyuan_web.common import database

log = logging.getLogger("suyuan_web.scans")

DEDUP_SECONDS = 30 * 60
"""A visitor's scans of one unit within this many seconds count once."""

WRITE_WAIT_MS = 250
"""How long the scan write waits for the database (SQLite's write lock) before giving up."""

DEFAULT_WARN_THRESHOLD = 5
"""Warn on the page past this many counted scans unless ``SCAN_WARN_THRESHOLD`` says otherwise."""

REGION_MAX = 64
MAX_REGIONS = 100
"""Regions beyond this many are not counted one by one (the warning is clear long before)."""

BOT_USER_AGENT = re.compile(
    r"\bbot\b|bot/|bot-|robot|crawl|spider|slurp|preview|facebookexternalhit|facebookcatalog|"
    r"embedly|whatsapp|telegram|slack|discord|skype|linkedin|pinterest|vkshare|"
    r"bitlybot|quora link|outbrain|flipboard|tumblr|nuzzel|w3c_validator|"
    r"google-inspectiontool|google-read-aloud|lighthouse|pagespeed|headlesschrome|phantomjs|"
    r"python-requests|python-urllib|httpx|aiohttp|curl/|wget/|go-http-client|java/|okhttp|"
    r"libwww|apache-httpclient|node-fetch|axios|postman|insomnia|scrapy|"
    r"baiduspider|sogou|360spider|yisouspider|bytespider|petalbot|yandex|duckduckgo|"
    r"mediapartners|adsbot|feedfetcher|monitor|uptime|pingdom|statuscake",
    re.IGNORECASE,
)
"""User agents that are robots or link-preview fetchers, not people holding the product."""


@dataclass(frozen=True)
class ScanSummary:
    """What the page says about a unit's scans; ``count`` includes this visit if it counts."""

    count: int
    first_at: int | None
    first_region: str | None
    regions: int
    this_visit_counts: bool


def is_countable(request: Request) -> bool:
    """Whether this request, if answered with the unit's page, is a person's scan."""
    if request.method != "GET":
        return False
    purpose = " ".join(
        request.headers.get(name, "") for name in ("Sec-Purpose", "Purpose", "X-Purpose", "X-Moz")
    ).lower()
    if "prefetch" in purpose or "prerender" in purpose or "preview" in purpose:
        return False
    agent = request.headers.get("User-Agent", "").strip()
    return bool(agent) and BOT_USER_AGENT.search(agent) is None


def visitor_id(request: Request, secret: str | bytes) -> str:
    """A keyed hash of client address and user agent (32 hex digits); not reversible
    without the site's secret key."""
    key = secret.encode() if isinstance(secret, str) else secret
    data = f"{request.remote_addr or ''}\n{request.headers.get('User-Agent', '')}".encode()
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:32]


def region_of(request: Request, header: str | None) -> str | None:
    """The visitor's region from the trusted proxy header named in the configuration."""
    if not header:
        return None
    value = request.headers.get(header, "").strip()
    value = "".join(ch for ch in value if ch.isprintable())[:REGION_MAX]
    return value or None


def summary(session: Session, gtin: str, serial: str, *, visitor: str | None,
            now: int, region: str | None = None) -> ScanSummary:
    """Counted scans of a unit, and whether this visit (``visitor`` None: not countable; from
    ``region``) will be counted too. Index range reads only (gtin, serial, scanned_at)."""
    unit = (ScanRow.gtin == gtin, ScanRow.serial == serial)
    count, first_at = session.execute(
        select(func.count(), func.min(ScanRow.scanned_at)).where(*unit)
    ).one()
    first_region = None
    regions: set[str] = set()
    if count:
        first_region = session.scalar(
            select(ScanRow.region).where(*unit).order_by(ScanRow.scanned_at, ScanRow.id).limit(1)
        )
        regions.update(session.scalars(
            select(ScanRow.region).where(*unit, ScanRow.region.is_not(None)).distinct()
            .limit(MAX_REGIONS)))
    counts = visitor is not None and not _seen_recently(session, gtin, serial, visitor, now)
    total = int(count) + (1 if counts else 0)
    if counts and region is not None:
        regions.add(region)
    if counts and not count:
        first_at, first_region = now, region
    return ScanSummary(total, None if first_at is None else int(first_at), first_region,
                       len(regions), counts)


def _seen_recently(session: Session, gtin: str, serial: str, visitor: str, now: int) -> bool:
    return session.scalar(
        select(ScanRow.id).where(
            ScanRow.gtin == gtin, ScanRow.serial == serial,
            ScanRow.scanned_at > now - DEDUP_SECONDS, ScanRow.visitor == visitor,
        ).limit(1)
    ) is not None


def record(db: Database, gtin: str, serial: str, *, visitor: str, region: str | None,
           now: int) -> bool:
    """Write one scan unless the visitor was counted in the last half hour; True if written.

    Never raises: a busy or failing database drops the scan (and logs it).
    """
    try:
        with db.engine.connect() as conn:
            restore = None
            if db.is_sqlite:
                # Wait briefly for the write lock, not the log writers' two minutes.
                raw = conn.connection.driver_connection
                raw.execute(f"PRAGMA busy_timeout={WRITE_WAIT_MS}")
                restore = raw
            try:
                writer = conn.execution_options(**{WRITE: True})
                with Session(bind=writer) as session, session.begin():
                    if _seen_recently(session, gtin, serial, visitor, now):
                        return False
                    session.add(ScanRow(gtin=gtin, serial=serial, scanned_at=now,
                                        visitor=visitor, region=region))
            finally:
                if restore is not None:
                    restore.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        return True
    except Exception:  # noqa: BLE001 - a lost scan must never become an error page
        log.warning("scan of %s/%s not recorded", gtin, serial, exc_info=True)
        return False


def count_after_response(response: Response, request: Request, gtin: str, serial: str,
                         visitor: str, now: int) -> None:
    """Record the scan once the response has been sent (if it is the page, status 200)."""
    if response.status_code != 200:
        return
    db = database()
    region = region_of(request, current_app.config.get("SCAN_REGION_HEADER"))
    response.call_on_close(
        lambda: record(db, gtin, serial, visitor=visitor, region=region, now=now))


def warn_threshold() -> int:
    value = current_app.config.get("SCAN_WARN_THRESHOLD", DEFAULT_WARN_THRESHOLD)
    try:
        return int(value)
    except (TypeError, ValueError):
        return DEFAULT_WARN_THRESHOLD


def now_seconds() -> int:
    return int(time.time())
