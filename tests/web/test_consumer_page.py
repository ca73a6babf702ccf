"""The consumer page: what it shows about a lot and where it came from, in 中文 and English,
without JavaScript, escaped; and the verification panel's proofs, which must verify offline
and in a real browser."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser

from suyuan import crypto, ledger, note
from suyuan.errors import VerificationError
from suyuan.model import Statement, new_nonce, sign_statement
from suyuan.storage import repo
from suyuan.storage.db import Database
from suyuan_web import pagecache, provenance, resolver
from tests.web.browser import watched_page
from tests.web.conftest import Dalian, make_app, seal

BOX, BOX_LOT = "02000000001012", "JZ-MZ-260605-G"
CHERRY, CHERRY_LOT = "02000000001005", "JZ-MZ-260605"
DRIED, DRIED_LOT = "02000000001036", "HZ-DSC-260512"
SEA_CUCUMBER, SEA_CUCUMBER_LOT = "02000000001029", "WFD-SC-260510"
BLUEBERRY, BLUEBERRY_LOT = "02000000001081", "MKT-BB-260701-M"
APPLE, APPLE_LOT = "02000000001098", "WFD-FJ-251020"
ABALONE, ABALONE_LOT = "02000000001067", "DL-AB-2025A"
SCALLOP, SCALLOP_LOT = "02000000001050", "CHP-FZ-260421"
PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Mobile Safari/537.36"


def get(client: FlaskClient, path: str, lang: str = "en") -> str:
    response = client.get(path, headers={"Accept-Language": lang, "User-Agent": "curl/8.5"})
    assert response.status_code == 200, response.data
    return response.text


def text_of(html: str) -> str:
    """The page's visible text, tags dropped, whitespace folded."""
    html = re.sub(r"<script\b.*?</script>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def section(html: str, ident: str) -> str:
    match = re.search(rf'<section id="{ident}".*?</section>', html, flags=re.S)
    assert match, ident
    return text_of(match.group(0))


def proofs_json(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="suyuan-proofs">(.*?)</script>',
                      html, flags=re.S)
    assert match
    return json.loads(match.group(1))  # type: ignore[no-any-return]


# --- what the page says ----------------------------------------------------------------------


def test_the_box_page_shows_product_origin_harvest_and_recall(reader: FlaskClient) -> None:
    html = get(reader, f"/01/{BOX}/10/{BOX_LOT}")
    text = text_of(html)
    assert "Mei Zao cherry gift box 2 kg" in text and "Variety: 美早" in text
    assert "大连金州区大樱桃专业合作社（示例）" in text       # the farm
    assert "金州区大李家街道 3号樱桃园" in text                # the orchard
    assert "Jinzhou District, Dalian, Liaoning" in text         # its region
    assert "Harvested 2026-06-05" in text
    recall = section(html, "recall")
    assert "Recalled: do not eat this product" in recall
    assert "吡虫啉残留 0.45 mg/kg" in recall and "大连市市场监督管理局（示例）" in recall
    assert html.index('id="recall"') < html.index('class="card product"')  # prominent: first


def test_the_journey_covers_the_lot_and_its_origin_in_time_order(reader: FlaskClient) -> None:
    journey = section(get(reader, f"/01/{BOX}/10/{BOX_LOT}"), "journey")
    order = ["Harvest", "Pre-cooling", "Test", "Compliance certificate", "Packing", "Shipped",
             "Transport temperatures", "Received", "Sales", "Recall"]
    positions = [journey.index(word) for word in order]
    assert positions == sorted(positions)
    assert "300 boxes → 大连鲜果电商仓（示例）" in journey
    assert "carrier: 大连冷链物流有限公司（示例）" in journey
    assert "4 sales recorded: 大连鲜果电商仓（示例）" in journey  # counted, not listed
    # The places as a route: orchard → packhouse → e-commerce warehouse.
    route = re.search(r'<figure class="route-figure">.*?</figure>', get(reader, f"/01/{BOX}/10/{BOX_LOT}"),
                      flags=re.S)
    assert route
    stops = re.findall(r'<span class="stop">(.*?)</span>', route.group(0))
    assert stops == ["金州区大李家街道 3号樱桃园", "金州合作社预冷包装车间", "大连鲜果电商仓（甘井子）"]


def test_a_merged_lot_shows_both_farms_as_branches_of_its_route(reader: FlaskClient) -> None:
    html = get(reader, f"/01/{BLUEBERRY}/10/{BLUEBERRY_LOT}")
    route = re.search(r'<figure class="route-figure">.*?</figure>', html, flags=re.S)
    assert route
    branches = re.search(r'<div class="branch-row">(.*?)</div>', route.group(0), flags=re.S)
    assert branches
    assert re.findall(r'<span class="stop">(.*?)</span>', branches.group(1)) == [
        "庄河 蓝莓园甲", "庄河 蓝莓园乙"]
    assert re.findall(r'<span class="stop">(.*?)</span>', route.group(0))[2:] == [
        "大连农产品批发市场 交易大厅", "连锁超市 中山店"]
    text = text_of(html)
    assert "庄河蓝莓家庭农场甲（示例）" in text and "庄河蓝莓家庭农场乙（示例）" in text
    certificates = section(html, "certificates")
    for number in ("HGZ-210283-260701-A", "HGZ-210283-260701-B", "HGZ-210211-260701-M"):
        assert number in certificates
    assert 'id="recall"' not in html and "No recall" in text


def test_a_relay_culture_route_returns_to_where_it_started(reader: FlaskClient) -> None:
    html = get(reader, f"/01/{ABALONE}/10/{ABALONE_LOT}")
    stops = re.findall(r'<span class="stop">(.*?)</span>', html)
    assert stops == ["大连鲍鱼育苗场", "霞浦 5号鲍鱼筏", "大连鲍鱼育苗场", "大连农产品批发市场 交易大厅"]


def test_tests_show_result_against_the_limit(reader: FlaskClient) -> None:
    tests = section(get(reader, f"/01/{BOX}/10/{BOX_LOT}"), "tests")
    assert re.search(r"吡虫啉 .*0\.45 mg/kg ≤ 0\.\d+ mg/kg GB 2763-\d+ above limit", tests)
    assert re.search(r"多菌灵 .*0\.05 mg/kg ≤ [\d.]+ mg/kg GB 2763-\d+ within limit", tests)
    assert "大连农产品质量检测中心（示例）" in tests
    untested = section(get(reader, f"/01/{APPLE}/10/{APPLE_LOT}"), "tests")
    assert "No test results have been recorded" in untested


def test_the_certificate_comes_from_the_lots_own_certificate_event(reader: FlaskClient) -> None:
    certificates = section(get(reader, f"/01/{BOX}/10/{BOX_LOT}"), "certificates")
    assert "HGZ-210213-260605-001" in certificates
    assert "self-test passed" in certificates and "800 kg" in certificates
    assert "大连市金州区" in certificates and "0411-0000000（示例）" in certificates


def test_cold_chain_summary_and_excursions(reader: FlaskClient) -> None:
    box = section(get(reader, f"/01/{BOX}/10/{BOX_LOT}"), "cold-chain")
    assert "Pre-cooled from 9.5 °C to 1.5 °C." in box
    assert "Every reading was within the 4 °C limit." in box
    dried = section(get(reader, f"/01/{DRIED}/10/{DRIED_LOT}"), "cold-chain")
    assert re.search(r"\d readings? (was|were) above the 10 °C limit", dried)
    assert "12.4 °C" in dried
    apple = section(get(reader, f"/01/{APPLE}/10/{APPLE_LOT}"), "cold-chain")
    assert "12 temperature readings in storage and transport" in apple


def test_alerts_a_consumer_should_know_are_phrased_for_consumers(reader: FlaskClient) -> None:
    html = get(reader, f"/01/{BOX}/10/{BOX_LOT}")
    alerts = re.search(r'<section class="card alerts">.*?</section>', html, flags=re.S)
    assert alerts
    said = text_of(alerts.group(0))
    assert "sooner after a pesticide application than the safety interval allows" in said
    assert "residue test result was above the legal limit" in said
    assert "sold more than once" in said and "sold after the recall" in said
    assert said.count("sold after the recall") == 1  # two such sales, said once
    dried = get(reader, f"/01/{DRIED}/10/{DRIED_LOT}")
    assert "declared yield was outside the expected range" in dried
    assert "temperature went above the limit" in dried
    assert 'class="card alerts"' not in get(reader, f"/01/{APPLE}/10/{APPLE_LOT}")


def test_an_export_lot_shows_the_first_landing_and_the_importer(reader: FlaskClient) -> None:
    journey = section(get(reader, f"/01/{SCALLOP}/10/{SCALLOP_LOT}"), "journey")
    assert "first landing" in journey
    assert "Example Seafood Importer, Seattle (fictitious)" in journey
    assert "2026-05-12 09:00" in journey  # as recorded, in Seattle's own time


def test_the_page_is_chinese_by_default_and_english_on_request(reader: FlaskClient) -> None:
    path = f"/01/{BOX}/10/{BOX_LOT}"
    chinese = reader.get(path)
    assert '<html lang="zh-CN">' in chinese.text
    assert "美早大樱桃礼盒 2kg" in chinese.text and "已召回" in chinese.text
    assert "Recalled" not in text_of(chinese.text)
    english = reader.get(path, headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in english.text and "Recalled" in english.text
    switched = reader.get(f"{path}?lang=en")
    assert "Mei Zao cherry gift box 2 kg" in switched.text
    assert "lang=en" in switched.headers["Set-Cookie"]


def test_the_page_is_small_and_needs_no_framework(reader: FlaskClient) -> None:
    html = get(reader, f"/01/{BOX}/10/{BOX_LOT}")
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == ['<script type="application/json" id="suyuan-proofs">',
                       '<script src="/static/verify.js" defer>']
    assert len(html.encode()) < 120_000
    assert 'name="viewport"' in html


def test_unknown_lots_and_units_are_404(reader: FlaskClient) -> None:
    assert reader.get(f"/01/{BOX}/10/NOPE").status_code == 404
    assert reader.get(f"/01/{BOX}/10/{BOX_LOT}/21/NOPE").status_code == 404
    assert reader.get(f"/01/{CHERRY}/10/{CHERRY_LOT}/21/JZ00001").status_code == 404


# --- the verification panel ------------------------------------------------------------------


def test_the_panel_follows_the_contract_and_works_without_javascript(reader: FlaskClient) -> None:
    html = get(reader, f"/01/{BOX}/10/{BOX_LOT}")
    panel = re.search(r'<section id="verify-panel" class="card verify" data-state="pending">'
                      r'\s*<h2>.*?</h2>\s*<p id="verify-status">(.*?)</p>\s*'
                      r'<ol id="verify-steps"></ol>', html, flags=re.S)
    assert panel, "the verify.js contract"
    assert "Proof that these records are in the public, append-only log is available" in panel.group(1)
    assert 'href="/policy.txt"' in panel.group(1)
    assert '<script src="/static/verify.js" defer></script>' in html
    downloads = re.findall(r'href="(/proof/\d+\.(?:tlog-proof|leaf))"', html)
    assert downloads
    for link in downloads[:6] + ["/policy.txt"]:
        response = reader.get(link)
        assert response.status_code == 200
        assert response.headers["Content-Disposition"].startswith("attachment")


def test_the_proofs_are_those_of_the_ledger_and_verify_offline(
        reader: FlaskClient, dalian_master: Dalian) -> None:
    data = proofs_json(get(reader, f"/01/{BOX}/10/{BOX_LOT}"))
    db = Database(dalian_master.url)
    try:
        with db.reader() as session, session.begin():
            assert data["policy"] == str(ledger.policy(session))
            events = {e["entry"]: e["kind"] for e in
                      ledger_events(session, [BOX_LOT, CHERRY_LOT])}
            for entry in data["entries"]:
                index = entry["index"]
                assert base64.b64decode(entry["leaf"]) == repo.leaf(session, index)
                assert entry["proof"] == str(ledger.tlog_proof(session, index))
                assert entry["kind"] == events[index]
    finally:
        db.dispose()
    kinds = {e["kind"] for e in data["entries"]}
    assert {"harvest", "test", "certificate", "packing", "shipping", "recall"} <= kinds
    policy = note.parse_policy(data["policy"])
    for entry in data["entries"]:
        verified = note.verify_tlog_proof(entry["proof"], base64.b64decode(entry["leaf"]), policy)
        assert verified.index == entry["index"]


def ledger_events(session: Any, lots: list[str]) -> list[dict[str, object]]:
    from suyuan import lineage

    return [e for e in lineage.trace_back(session, lots[0]).events if e["lot"] in lots]


def test_a_tampered_proof_does_not_verify(reader: FlaskClient) -> None:
    data = proofs_json(get(reader, f"/01/{BOX}/10/{BOX_LOT}"))
    policy = note.parse_policy(data["policy"])
    entry = data["entries"][0]
    leaf = bytearray(base64.b64decode(entry["leaf"]))
    leaf[-3] ^= 1
    with pytest.raises(VerificationError):
        note.verify_tlog_proof(entry["proof"], bytes(leaf), policy)


def test_proofs_are_capped_keeping_the_most_telling_records(dalian_master: Dalian) -> None:
    db = Database(dalian_master.url)
    try:
        with db.reader() as session, session.begin():
            page = provenance.lot_page(session, BOX, BOX_LOT, max_proofs=4)
    finally:
        db.dispose()
    kinds = [e.kind for e in page.proofs.entries]
    assert len(kinds) == 4 and page.proofs.more > 0
    assert set(kinds) <= set(provenance.KEY_KINDS)
    assert [e.index for e in page.proofs.entries] == sorted(e.index for e in page.proofs.entries)


# --- user input, new records -----------------------------------------------------------------

EVIL = '</script><script>alert("x")</script><b onmouseover=alert(1)>农场'


def _append(dalian: Dalian, actor: str, kind: str, body: dict[str, Any]) -> int:
    key = dalian.keys[actor]
    statement = Statement(kind=kind, actor=actor, key_id=crypto.key_id(actor, key.public_key).hex(),
                          time="2026-07-10T00:00:00.000Z", nonce=new_nonce(), body=body)
    db = Database(dalian.url)
    try:
        with db.writer() as session, session.begin():
            (result,) = ledger.append(session, [sign_statement(statement, key)])
    finally:
        db.dispose()
    assert result.error is None, result.error
    assert result.index is not None
    return result.index


@pytest.fixture
def evil_lot(dalian: Dalian) -> Iterator[tuple[Flask, int]]:
    """A location whose name is an attack, a lot harvested there after the last checkpoint."""
    _append(dalian, "jinzhou-cherry-coop", "location_registered",
            {"id": "evil-field", "name": EVIL, "kind": "orchard", "address": EVIL})
    index = _append(dalian, "jinzhou-cherry-coop", "harvest", {
        "lot": "EVIL-1", "product": CHERRY, "quantity": {"value": "5", "unit": "KGM"},
        "location": "evil-field", "event_time": "2026-07-09T08:00:00+08:00"})
    app = make_app(dalian.url)
    yield app, index
    app.extensions["suyuan.db"].dispose()


def test_farm_names_are_escaped_everywhere(evil_lot: tuple[Flask, int]) -> None:
    app, _ = evil_lot
    html = get(app.test_client(), f"/01/{CHERRY}/10/EVIL-1")
    assert "<script>alert" not in html and "<b onmouseover" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(&#34;x&#34;)" in html
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert len(scripts) == 2
    block = re.search(r'id="suyuan-proofs">(.*?)</script>', html, flags=re.S)
    assert block and "<" not in block.group(1)


def test_records_newer_than_the_checkpoint_have_no_proof_yet(evil_lot: tuple[Flask, int]) -> None:
    app, index = evil_lot
    html = get(app.test_client(), f"/01/{CHERRY}/10/EVIL-1")
    (entry,) = [e for e in proofs_json(html)["entries"] if e["index"] == index]
    assert entry["proof"] is None and entry["kind"] == "harvest"
    downloads = re.search(r'<details class="downloads">.*?</details>', html, flags=re.S)
    assert downloads
    assert f"#{index} Harvest: not yet in a signed checkpoint" in text_of(downloads.group(0))
    assert app.test_client().get(f"/proof/{index}.tlog-proof").status_code == 404
    assert app.test_client().get(f"/proof/{index}.leaf").status_code == 200


# --- in a real browser -----------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "verified"), [("zh-CN", "已在本机验证"),
                                                ("en-US", "Verified on this device")])
def test_the_page_verifies_its_proofs_in_a_browser(
        browser: Browser, live_server: Callable[[Any], str], shared_app: Flask,
        lang: str, verified: str) -> None:
    base = live_server(shared_app)
    with watched_page(browser, locale=lang, viewport={"width": 390, "height": 844}) as watched:
        watched.page.goto(f"{base}/01/{BOX}/10/{BOX_LOT}")
        watched.page.wait_for_selector('#verify-panel[data-state="verified"]', timeout=15_000)
        assert verified in watched.page.inner_text("#verify-status")
        assert watched.page.is_visible("#recall")
        # Mobile first: nothing is wider than the phone's screen.
        width = watched.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        watched.assert_clean(base)


def test_without_javascript_the_page_reads_and_links_the_proofs(
        browser: Browser, live_server: Callable[[Any], str], shared_app: Flask) -> None:
    base = live_server(shared_app)
    with watched_page(browser, java_script_enabled=False, locale="en-US") as watched:
        watched.page.goto(f"{base}/01/{BOX}/10/{BOX_LOT}")
        assert watched.page.get_attribute("#verify-panel", "data-state") == "pending"
        status = watched.page.inner_text("#verify-status")
        assert "Proof that these records are in the public, append-only log is available" in status
        assert watched.page.is_visible("#journey") and watched.page.is_visible("#tests")


# --- the start page's look-up form -----------------------------------------------------------


def test_the_start_page_looks_up_a_typed_code(reader: FlaskClient) -> None:
    home = reader.get("/", headers={"Accept-Language": "en"})
    assert 'action="/lookup"' in home.text and "No scanner at hand?" in home.text
    found = reader.get("/lookup?gtin=2000000001012&lot=JZ-MZ-260605-G&serial=JZ00001")
    assert found.status_code == 303
    assert found.location == f"/01/{BOX}/10/{BOX_LOT}/21/JZ00001"
    assert reader.get("/lookup?gtin=2000000001012&lot=JZ-MZ-260605-G&serial=").location == \
        f"/01/{BOX}/10/{BOX_LOT}"


@pytest.mark.parametrize(("query", "phrase"), [
    ("gtin=2000000001013&lot=X", "check digit should be 2"),
    ("gtin=20000000010&lot=X", "has 11 digits"),
    ("gtin=2000000001012&lot=", "lot code is missing"),
    ("gtin=2000000001012&lot=A%20B", "space"),
])
def test_a_mistyped_code_is_explained(reader: FlaskClient, query: str, phrase: str) -> None:
    response = reader.get(f"/lookup?{query}", headers={"Accept-Language": "en"})
    assert response.status_code == 400 and phrase in response.text


def test_long_histories_are_capped_and_say_so(dalian_master: Dalian,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provenance, "MAX_BRANCHES", 1)
    monkeypatch.setattr(provenance, "MAX_ORIGINS", 1)
    monkeypatch.setattr(provenance, "MAX_STEPS", 5)
    app = make_app(dalian_master.url)  # its own page cache
    try:
        html = get(app.test_client(), f"/01/{BLUEBERRY}/10/{BLUEBERRY_LOT}")
    finally:
        app.extensions["suyuan.db"].dispose()
    text = text_of(html)
    assert "and 1 more lot merged in" in text and "and 1 more origin lot" in text
    steps = re.findall(r'<li class="step kind-(\w+)"', html)
    assert len([kind for kind in steps if kind != "sales"]) == 5  # and the sales, counted
    assert re.search(r"\d+ more records are not shown", text)
    # The lot's own records come first: its transformation and certificate are kept.
    journey = section(html, "journey")
    assert "Processing" in journey and "HGZ-210211-260701-M" in journey


# --- the page cache --------------------------------------------------------------------------


def test_a_cached_page_changes_when_the_ledger_does(dalian: Dalian) -> None:
    app = make_app(dalian.url)
    try:
        client = app.test_client()
        path = f"/01/{CHERRY}/10/{CHERRY_LOT}"
        first = get(client, path)
        assert get(client, path) == first                 # served again, unchanged
        assert get(client, path, lang="zh") != first      # per language
        _append(dalian, "jinzhou-cherry-coop", "storing", {
            "lot": CHERRY_LOT, "location": "jz-packhouse",
            "event_time": "2026-06-07T08:00:00+08:00",
            "readings": [{"time": "2026-06-07T07:00:00+08:00", "celsius": "1.0"}]})
        after = get(client, path)
        assert after != first and "Storage" in section(after, "journey")
        assert "not yet in a signed checkpoint" in after
        db = Database(dalian.url)
        try:
            seal(db, dalian.log_key, dalian.witness_key, dalian.witness_state)
        finally:
            db.dispose()
        proven = get(client, path)
        assert "not yet in a signed checkpoint" not in proven
        assert all(e["proof"] for e in proofs_json(proven)["entries"])
    finally:
        app.extensions["suyuan.db"].dispose()


def test_a_page_asked_again_is_answered_whole_until_the_lot_changes(
        dalian: Dalian, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(dalian.url)
    try:
        client = app.test_client()
        path = f"/01/{CHERRY}/10/{CHERRY_LOT}"
        asked = {"Accept-Language": "en", "User-Agent": "curl/8.5"}
        first = client.get(path, headers=asked)
        views: list[str] = []
        page = resolver._page
        monkeypatch.setattr(resolver, "_page", lambda *a: views.append(a[1]) or page(*a))
        again = client.get(path, headers={**asked, "User-Agent": "another browser"})
        assert views == []                                # answered in front of the app
        # Another phone behind the proxy, whose languages also negotiate to English: the same
        # kept response (per-visitor headers and other cookies are not part of the key).
        other = client.get(path, headers={
            "Accept-Language": "en-GB,en;q=0.9,fr;q=0.5", "User-Agent": "phone",
            "X-Forwarded-For": "203.0.113.9", "X-Request-Id": "abc"})
        assert views == [] and other.data == first.data
        assert again.data == first.data and again.headers == first.headers
        assert "Content-Security-Policy" in again.headers and "Link" in again.headers
        zh = client.get(path, headers={**asked, "Accept-Language": "zh"})
        assert views == [path] and zh.data != first.data  # another language: the app
        chooser = app.test_client()
        chooser.set_cookie("lang", "en")
        chosen = chooser.get(path, headers={"Accept-Language": "zh"})
        assert len(views) == 1 and chosen.data == first.data  # the language cookie wins
        views.clear()
        client.get(path, headers={**asked, "Accept-Language": "zh"})
        assert views == []                                # zh is now kept too
        client.get(f"{path}?lang=en", headers=asked)      # a query: the app
        assert len(views) == 1
        _append(dalian, "jinzhou-cherry-coop", "storing", {
            "lot": CHERRY_LOT, "location": "jz-packhouse",
            "event_time": "2026-06-07T08:00:00+08:00",
            "readings": [{"time": "2026-06-07T07:00:00+08:00", "celsius": "1.0"}]})
        after = client.get(path, headers=asked)
        assert len(views) == 2 and after.data != first.data and b"Storage" in after.data
        assert client.get(path, headers=asked).data == after.data and len(views) == 2
    finally:
        app.extensions["suyuan.db"].dispose()


def test_the_page_cache_size_is_a_setting(dalian: Dalian) -> None:
    app = make_app(dalian.url)
    app.config["PAGE_CACHE_BYTES"] = 12345
    try:
        with app.app_context():
            assert pagecache.pages().max_bytes == 12345
    finally:
        app.extensions["suyuan.db"].dispose()


def test_the_page_cache_is_bounded_and_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = pagecache.PageCache(max_bytes=100, ttl=10)
    cache.put("a", "x", 10)
    cache.put("b", "y", 10)
    assert cache.get("a") == "x"
    cache.put("big", "z", 50)                             # more than an eighth: not kept
    assert cache.get("big") is None
    for n in range(12):
        cache.put(n, "w", 10)
    assert len(cache) == 10 and cache.get("b") is None    # least recently used went first
    clock = [1000.0]
    monkeypatch.setattr(pagecache.time, "monotonic", lambda: clock[0])
    cache.put("t", "t", 1)
    clock[0] += 11
    assert cache.get("t") is None


# --- the page store shared by a machine's workers ------------------------------------------------


def _counting_views(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    views: list[str] = []
    page = resolver._page
    monkeypatch.setattr(resolver, "_page", lambda *a: views.append(a[1]) or page(*a))
    return views


def test_workers_share_built_pages_through_the_store_until_the_lot_changes(
        dalian: Dalian, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = str(tmp_path / "pages")
    first, second = make_app(dalian.url, PAGE_STORE=store), make_app(dalian.url, PAGE_STORE=store)
    try:
        path = f"/01/{BOX}/10/{BOX_LOT}"
        unit = f"/01/{BOX}/10/{BOX_LOT}/21/JZ00007"
        built = first.test_client().get(path, headers={"Accept-Language": "en"})
        unit_built = get(first.test_client(), unit)
        views = _counting_views(monkeypatch)
        other = second.test_client()
        again = other.get(path, headers={"Accept-Language": "en"})
        assert views == [] and again.data == built.data  # the other worker built nothing
        assert again.headers["Content-Security-Policy"] == built.headers["Content-Security-Policy"]
        # A unit's page comes from the store too; its panel of scans is drawn for the request.
        assert _without_scans(get(other, unit)) == _without_scans(unit_built)
        assert views == [unit]
        # A late test of the harvest lot, upstream of the boxes: the box's page changes at once.
        _append(dalian, "dalian-agri-lab", "test", {
            "lot": CHERRY_LOT, "event_time": "2026-06-08T09:00:00+08:00",
            "results": [{"analyte": "多菌灵", "value": "0.01", "unit": "mg/kg", "limit": "0.5"}]})
        after = other.get(path, headers={"Accept-Language": "en"})
        assert views == [unit, path] and after.data != built.data
        assert b"0.01" in after.data
        # ... and the first worker, whose memory still holds the old page, sees it too.
        assert first.test_client().get(path, headers={"Accept-Language": "en"}).data == after.data
    finally:
        for app in (first, second):
            app.extensions["suyuan.db"].dispose()


def _without_scans(html: str) -> str:
    return re.sub(r'<section id="unit".*?</section>', "", html, flags=re.S)


def test_a_damaged_or_unwritable_page_store_never_fails_a_page(
        dalian: Dalian, tmp_path: Path) -> None:
    store = tmp_path / "pages"
    path = f"/01/{CHERRY}/10/{CHERRY_LOT}"
    app = make_app(dalian.url, PAGE_STORE=str(store))
    try:
        good = get(app.test_client(), path)
    finally:
        app.extensions["suyuan.db"].dispose()
    files = [f for f in store.rglob("*") if f.is_file()]
    assert files
    for f in files:
        f.write_bytes(f.read_bytes()[:40])  # cut short, as by a full disk
    app = make_app(dalian.url, PAGE_STORE=str(store))
    try:
        assert get(app.test_client(), path) == good
    finally:
        app.extensions["suyuan.db"].dispose()
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    app = make_app(dalian.url, PAGE_STORE=str(blocked))
    try:
        client = app.test_client()
        assert get(client, path) == good and get(client, path) == good
    finally:
        app.extensions["suyuan.db"].dispose()


def test_the_page_store_is_bounded_and_namespaced(dalian: Dalian, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = pagecache.PageStore(tmp_path, "ns", max_bytes=200_000)
    monkeypatch.setattr(pagecache, "_SWEEP_EVERY", 50)
    for n in range(120):
        store.put(("page", n), b"x" * 4000)
    assert store.bytes_used() <= 200_000
    assert store.get(("page", 119)) == b"x" * 4000      # the newest stay
    assert store.get(("page", 0)) is None               # the oldest went
    assert store.get(("never", "stored")) is None
    old = pagecache.PageStore(tmp_path, "old-build", max_bytes=200_000, max_age=60)
    old.put("k", b"v")
    os.utime(tmp_path / "old-build", (0, 0))
    store.sweep()
    assert not (tmp_path / "old-build").exists()        # an old deploy's pages are removed
    names = set()
    for config in ({}, {"SCAN_WARN_THRESHOLD": 9}, {"DATABASE_URL": "sqlite:///elsewhere.db"}):
        app = make_app(dalian.url, **config)
        names.add(pagecache.namespace(app))
        app.extensions["suyuan.db"].dispose()
    assert len(names) == 3


def test_a_kept_page_travels_compressed_to_clients_that_take_gzip(dalian: Dalian) -> None:
    app = make_app(dalian.url)
    try:
        client = app.test_client()
        path = f"/01/{CHERRY}/10/{CHERRY_LOT}"
        phone = {"Accept-Language": "en", "Accept-Encoding": "gzip, deflate, br"}
        first = client.get(path, headers=phone)  # built: sent as it is
        assert first.status_code == 200 and "Content-Encoding" not in first.headers
        again = client.get(path, headers=phone)
        assert again.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in again.headers["Vary"]
        assert int(again.headers["Content-Length"]) == len(again.data) < len(first.data) / 3
        assert gzip.decompress(again.data) == first.data
        assert again.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]
        for refuses in ({}, {"Accept-Encoding": "br"}, {"Accept-Encoding": "gzip;q=0"}):
            plain = client.get(path, headers={"Accept-Language": "en", **refuses})
            assert "Content-Encoding" not in plain.headers and plain.data == first.data
    finally:
        app.extensions["suyuan.db"].dispose()
