"""Scan counting for serialised units (一物一码): what counts, what does not, the warnings on
the page, and that counting never breaks or slows the page. Also: the scans table is migrated
like every other table and a rebuild of the projections leaves it alone."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from suyuan import supply
from suyuan.storage.db import Database
from suyuan.storage.schema import PROJECTION_TABLES, SIDE_TABLES, ScanRow, metadata
from suyuan_web import scans
from tests.web.conftest import Dalian, make_app

BOX, LOT = "02000000001012", "JZ-MZ-260605-G"
UNIT = f"/01/{BOX}/10/{LOT}/21/JZ00002"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
WECHAT = ("Mozilla/5.0 (Linux; Android 13; V2148A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
          "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160065 "
          "MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 "
          "Weixin NetType/WIFI Language/zh_CN ABI/arm64")
ANDROID = ("Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/120.0.0.0 Mobile Safari/537.36")


@pytest.fixture
def scan_app(dalian: Dalian) -> Iterator[Flask]:
    application = make_app(dalian.url, SCAN_WARN_THRESHOLD=3, SCAN_REGION_HEADER="X-Region")
    yield application
    application.extensions["suyuan.db"].dispose()


def scan(client: FlaskClient, path: str = UNIT, *, agent: str = IPHONE, addr: str = "10.0.0.1",
         method: str = "GET", **headers: str) -> TestResponse:
    """One request as a phone would make it; the response is closed, as a server does after
    sending it (which is when the scan is written)."""
    headers = {"User-Agent": agent, "Accept-Language": "en", **headers}
    response = client.open(path, method=method, headers=headers,
                           environ_base={"REMOTE_ADDR": addr})
    response.close()
    return response


def stored(app: Flask, serial: str = "JZ00002") -> list[ScanRow]:
    with app.extensions["suyuan.db"].reader() as session, session.begin():
        return list(session.scalars(select(ScanRow).where(ScanRow.serial == serial)
                                    .order_by(ScanRow.id)))


def said(response: TestResponse) -> str:
    match = re.search(r'<section id="unit".*?</section>', response.text, flags=re.S)
    assert match
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0)))


# --- what counts ------------------------------------------------------------------------------


def test_a_phone_scan_counts_once_and_the_next_visitor_sees_it(scan_app: Flask) -> None:
    client = scan_app.test_client()
    first = scan(client, **{"X-Region": "辽宁省大连市"})
    assert first.status_code == 200
    assert "This code has been scanned 1 time" in said(first)
    assert [(r.gtin, r.serial, r.region) for r in stored(scan_app)] == [
        (BOX, "JZ00002", "辽宁省大连市")]
    assert "10.0.0.1" not in stored(scan_app)[0].visitor  # a keyed hash, not the address
    second = scan(client, addr="10.0.0.2", **{"X-Region": "北京市"})
    assert "scanned 2 times. First scan: " in said(second)
    assert ", in 辽宁省大连市." in said(second)
    assert len(stored(scan_app)) == 2


def test_the_same_visitor_within_half_an_hour_counts_once(scan_app: Flask,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    client = scan_app.test_client()
    clock = [1_780_000_000]
    monkeypatch.setattr(scans, "now_seconds", lambda: clock[0])
    for _ in range(3):
        assert "scanned 1 time" in said(scan(client))
    clock[0] += scans.DEDUP_SECONDS - 1
    assert "scanned 1 time" in said(scan(client))
    assert len(stored(scan_app)) == 1
    clock[0] += 2
    assert "scanned 2 times" in said(scan(client))
    assert len(stored(scan_app)) == 2
    # The same address with another browser is another visitor.
    scan(client, agent=WECHAT)
    assert len(stored(scan_app)) == 3


@pytest.mark.parametrize("agent", [IPHONE, WECHAT, ANDROID])
def test_people_on_phones_and_in_wechat_are_counted(agent: str) -> None:
    app = Flask(__name__)
    with app.test_request_context("/", headers={"User-Agent": agent}):
        from flask import request

        assert scans.is_countable(request)


@pytest.mark.parametrize(("agent", "headers"), [
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", {}),
    ("Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", {}),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", {}),
    ("WhatsApp/2.23.20.0", {}),
    ("TelegramBot (like TwitterBot)", {}),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", {}),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36", {}),
    ("curl/8.5.0", {}),
    ("python-requests/2.32", {}),
    ("", {}),
    (IPHONE, {"Sec-Purpose": "prefetch;prerender"}),
    (IPHONE, {"Purpose": "prefetch"}),
    (IPHONE, {"X-Purpose": "preview"}),
])
def test_robots_previews_and_prefetches_are_not_counted(scan_app: Flask, agent: str,
                                                        headers: dict[str, str]) -> None:
    response = scan(scan_app.test_client(), agent=agent, **headers)
    assert response.status_code == 200
    assert "No scans of this code have been counted yet" in said(response)
    assert stored(scan_app) == []


def test_head_linkset_lot_pages_and_errors_are_not_counted(scan_app: Flask) -> None:
    client = scan_app.test_client()
    assert scan(client, method="HEAD").status_code == 200
    assert scan(client, f"{UNIT}?linkType=linkset").status_code == 200
    assert scan(client, Accept="application/linkset+json").mimetype == "application/linkset+json"
    assert scan(client, f"{UNIT}?linkType=gs1:traceability").status_code == 307
    assert scan(client, f"/01/{BOX}/10/{LOT}").status_code == 200
    assert scan(client, f"/01/{BOX}/10/{LOT}/21/NOPE").status_code == 404
    assert scan(client, f"/01/{BOX}/21/JZ00002").status_code == 301
    assert stored(scan_app) == []
    assert len(stored(scan_app, "NOPE")) == 0


# --- what the page says -------------------------------------------------------------------------


def test_past_the_threshold_the_page_warns(scan_app: Flask) -> None:
    client = scan_app.test_client()
    for n in range(3):
        page = scan(client, addr=f"10.1.0.{n}", **{"X-Region": f"region {n % 2}"})
        assert "more often than a genuine one" not in said(page)
    page = scan(client, addr="10.1.0.9", **{"X-Region": "region 9"})
    text = said(page)
    assert "scanned 4 times" in text
    assert "Warning: this code has been scanned more often than a genuine one usually is" in text
    assert "It was scanned in 3 different regions" in text
    assert 'class="card unit warn"' in page.text


def test_a_unit_sold_twice_warns_of_copies(reader: FlaskClient) -> None:
    twice = reader.get(f"/01/{BOX}/10/{LOT}/21/JZ00003", headers={"Accept-Language": "en",
                                                                 "User-Agent": "curl/8"})
    text = said(twice)
    assert "Warning: this unit code was recorded as sold 2 times" in text
    assert "copies of this code exist" in text
    assert "Sold on 2026-06-06 by 大连鲜果电商仓（示例） (online)." in text
    assert twice.headers["Cache-Control"] == "no-store"
    once = said(reader.get(f"/01/{BOX}/10/{LOT}/21/JZ00001",
                           headers={"Accept-Language": "en", "User-Agent": "curl/8"}))
    assert "Sold on 2026-06-06" in once and "Warning" not in once
    unsold = said(reader.get(UNIT, headers={"Accept-Language": "en", "User-Agent": "curl/8"}))
    assert "No sale of this unit has been recorded yet" in unsold and "Warning" not in unsold


def test_scans_are_shown_in_chinese(scan_app: Flask) -> None:
    page = scan(scan_app.test_client(), **{"Accept-Language": "zh-CN"})
    assert "本码已被扫描 1 次" in page.text


# --- counting never hurts the page ------------------------------------------------------------


def test_a_busy_database_drops_the_scan_not_the_page(scan_app: Flask, dalian: Dalian,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    blocker = sqlite3.connect(dalian.path, timeout=1)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        response = scan(scan_app.test_client())
        assert response.status_code == 200
        assert "scanned 1 time" in said(response)
    finally:
        blocker.rollback()
        blocker.close()
    assert stored(scan_app) == []
    assert "not recorded" in caplog.text


def test_the_scan_is_written_only_after_the_response(scan_app: Flask) -> None:
    client = scan_app.test_client()
    response = client.get(UNIT, headers={"User-Agent": IPHONE})
    assert response.status_code == 200
    assert stored(scan_app) == []  # the page is out; nothing written yet
    response.close()
    assert len(stored(scan_app)) == 1


def test_recording_refuses_nothing_it_cannot_write(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'none' / 'missing.db'}")
    try:
        assert scans.record(db, BOX, "X", visitor="v", region=None, now=1) is False
    finally:
        db.dispose()


# --- the table ------------------------------------------------------------------------------


def test_scans_are_neither_log_nor_projection_and_survive_a_rebuild(scan_app: Flask) -> None:
    assert "scans" in SIDE_TABLES and "scans" not in PROJECTION_TABLES
    scan(scan_app.test_client())
    db = scan_app.extensions["suyuan.db"]
    with db.writer() as session, session.begin():
        supply.rebuild(session)
    with db.reader() as session, session.begin():
        assert session.scalar(select(func.count()).select_from(ScanRow)) == 1


def test_the_migrations_build_exactly_the_modelled_schema(db_url: str) -> None:
    db = Database(db_url)
    try:
        db.upgrade()
        assert db.is_current()
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        db.dispose()


def test_counting_works_on_sqlite_and_postgresql(dalian_any: Dalian) -> None:
    app = make_app(dalian_any.url)
    try:
        client = app.test_client()
        first = scan(client)
        assert "This code has been scanned 1 time." in said(first)
        assert "Mei Zao cherry gift box 2 kg" in first.text and 'id="recall"' in first.text
        assert "scanned 2 times" in said(scan(client, addr="10.9.9.9"))
        assert "scanned 2 times" in said(scan(client, addr="10.9.9.9"))
        assert len(stored(app)) == 2
    finally:
        app.extensions["suyuan.db"].dispose()
