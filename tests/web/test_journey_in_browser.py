"""What a consumer does, end to end, in real headless Chromium against a live server: scan the
QR code on a box (decoded with zxing-cpp), read the journey, switch language, watch the phone
check the proofs — and watch it refuse when the proof data served has been tampered with.

Screenshots are written to ``SUYUAN_TEST_SCREENSHOTS`` (default ``test-output/screenshots``)
and their paths printed, for people to look at.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import zxingcpp
from flask import Flask
from PIL import Image
from playwright.sync_api import Browser, Page, Route

from suyuan.demo import CHAIN_PAGES, chain_path
from tests.web.browser import WatchedPage, watched_page
from tests.web.conftest import PUBLIC_URL, Dalian, make_app

REPO = Path(__file__).resolve().parents[2]
PHONE = {"width": 390, "height": 844}
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/156.0.0.0 Mobile Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1")
CHERRY_BOX = CHAIN_PAGES[0]
BLUEBERRY = CHAIN_PAGES[4]


def screenshots() -> Path:
    folder = Path(os.environ.get("SUYUAN_TEST_SCREENSHOTS") or REPO / "test-output" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def snap(page: Page, name: str) -> Path:
    path = screenshots() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def decode_qr(png: bytes) -> str:
    codes = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)),
                                   formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(codes) == 1, f"expected one QR code, found {len(codes)}"
    return str(codes[0].text)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()  # type: ignore[no-any-return]


@pytest.fixture
def live_app(dalian: Dalian) -> Flask:
    """The site over a private copy of the ledger (scans are counted), with no PUBLIC_URL:
    QR codes then carry the live server's own address, so a decoded code can be followed."""
    return make_app(dalian.url, PUBLIC_URL=None)


def wait_for_verdict(page: Page) -> str:
    page.wait_for_selector('#verify-panel:not([aria-busy="true"])'
                           ':not([data-state="pending"])', timeout=20_000)
    return str(page.get_attribute("#verify-panel", "data-state"))


@pytest.mark.parametrize(("chain", "gtin", "lot", "serial"), CHAIN_PAGES,
                         ids=[lot + (f"-{s}" if s else "") for _, _, lot, s in CHAIN_PAGES])
def test_each_demo_chain_has_a_qr_that_resolves_to_its_page(
        dalian: Dalian, chain: str, gtin: str, lot: str, serial: str | None) -> None:
    client = make_app(dalian.url).test_client()
    path = chain_path(gtin, lot, serial)
    png = client.get(f"/qr{path}.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    uri = decode_qr(png.data)
    assert uri == PUBLIC_URL + path
    page = client.get(urlsplit(uri).path, headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200, (chain, page.status_code)
    html = page.get_data(as_text=True)
    assert lot in html and 'id="journey"' in html and 'id="verify-panel"' in html
    assert ('id="recall"' in html) == lot.startswith("JZ-MZ-")  # only the cherries are recalled


def test_scan_read_switch_language_and_see_the_proof_checked(
        browser: Browser, live_server: Callable[[Any], str], live_app: Flask) -> None:
    base = live_server(live_app)
    _, gtin, lot, serial = CHERRY_BOX
    uri = decode_qr(fetch(f"{base}/qr{chain_path(gtin, lot, serial)}.png"))
    assert uri == base + chain_path(gtin, lot, serial)

    with watched_page(browser, locale="zh-CN", viewport=PHONE, user_agent=ANDROID) as watched:
        page = watched.page
        page.goto(uri)
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert "本码已被扫描 1 次" in page.locator("#unit").inner_text()  # this scan, the first
        # The recall banner comes first and says so in Chinese.
        banner = page.locator("#recall")
        assert banner.is_visible() and "召回" in banner.inner_text()
        assert "美早" in page.locator("h1").inner_text()
        # The journey: every hop in time order, from the orchard to the shop.
        steps = page.locator("#journey .timeline li")
        assert steps.count() >= 10
        journey = page.locator("#journey .timeline").inner_text()
        assert journey.index("采收") < journey.index("包装") < journey.index("销售")
        assert wait_for_verdict(page) == "verified"
        assert page.locator("#verify-status").inner_text().startswith("已在本机验证")
        snap(page, "consumer-zh-verified")

        page.click("#lang-en")
        page.wait_for_load_state()
        assert page.get_attribute("html", "lang") == "en"
        assert "Recalled" in page.locator("#recall").inner_text()
        assert page.locator("#journey h2").inner_text() == "Journey"
        assert wait_for_verdict(page) == "verified"
        assert page.locator("#verify-status").inner_text().startswith("Verified on this device")
        # The same phone looking again is the same scan.
        assert "This code has been scanned 1 time." in page.locator("#unit").inner_text()
        snap(page, "consumer-en-verified")
        watched.assert_clean(base)

    # A second phone is a second scan; a headless robot is not counted at all.
    with watched_page(browser, locale="en-US", viewport=PHONE, user_agent=IPHONE) as other:
        other.page.goto(uri)
        assert wait_for_verdict(other.page) == "verified"  # (the scan is written meanwhile)
        assert "This code has been scanned 2 times." in other.page.locator("#unit").inner_text()
    with watched_page(browser, locale="en-US", viewport=PHONE) as robot:
        robot.page.goto(uri)
        assert "This code has been scanned 2 times." in robot.page.locator("#unit").inner_text()
    with watched_page(browser, locale="en-US", viewport=PHONE, user_agent=IPHONE) as last:
        last.page.goto(uri)
        assert "This code has been scanned 2 times." in last.page.locator("#unit").inner_text()


def _tamper_leaf(html: str) -> str:
    """The same page with one character of the first record changed inside its leaf."""
    match = re.search(r'(<script type="application/json" id="suyuan-proofs">)(.*?)(</script>)',
                      html, flags=re.S)
    assert match
    data = json.loads(match.group(2))
    leaf = base64.b64decode(data["entries"][0]["leaf"])
    forged = leaf.replace(b'"value":"', b'"value":"1', 1)
    assert forged != leaf
    data["entries"][0]["leaf"] = base64.b64encode(forged).decode()
    return html[:match.start(2)] + json.dumps(data) + html[match.end(2):]


def _tamper_cosignature(html: str) -> str:
    """The same page with the witness's cosignature line cut from every proof."""
    match = re.search(r'(<script type="application/json" id="suyuan-proofs">)(.*?)(</script>)',
                      html, flags=re.S)
    assert match
    data = json.loads(match.group(2))
    for entry in data["entries"]:
        if entry.get("proof"):
            entry["proof"] = re.sub(r"— witness\.[^\n]*\n", "", entry["proof"])
    return html[:match.start(2)] + json.dumps(data) + html[match.end(2):]


@pytest.mark.parametrize(("tamper", "expected"), [
    (_tamper_leaf, "record #"),
    (_tamper_cosignature, "quorum"),
], ids=["leaf", "cosignature"])
def test_tampered_proof_data_turns_the_panel_red(
        browser: Browser, live_server: Callable[[Any], str], live_app: Flask,
        tamper: Callable[[str], str], expected: str) -> None:
    base = live_server(live_app)
    _, gtin, lot, _ = BLUEBERRY
    url = base + chain_path(gtin, lot, None)

    def forge(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=tamper(response.text()))

    with watched_page(browser, locale="en-US", viewport=PHONE) as watched:
        page = watched.page
        page.goto(url)
        assert wait_for_verdict(page) == "verified"
        page.route(url, forge)
        page.reload()
        assert wait_for_verdict(page) == "failed"
        status = page.locator("#verify-status").inner_text()
        assert status.startswith("Verification failed") and expected in status, status
        failed = page.locator('#verify-steps li[data-result="failed"]')
        assert failed.count() >= 1
        snap(page, f"consumer-tampered-{tamper.__name__.removeprefix('_tamper_')}")
        assert_no_errors(watched)


def assert_no_errors(watched: WatchedPage) -> None:
    assert watched.errors == []


def test_a_lot_that_is_not_recalled_shows_no_banner(
        browser: Browser, live_server: Callable[[Any], str], live_app: Flask) -> None:
    base = live_server(live_app)
    _, gtin, lot, _ = BLUEBERRY
    with watched_page(browser, locale="zh-CN", viewport=PHONE) as watched:
        watched.page.goto(base + chain_path(gtin, lot, None))
        assert watched.page.locator("#recall").count() == 0
        assert "蓝莓" in watched.page.locator("h1").inner_text()
        assert wait_for_verdict(watched.page) == "verified"
        snap(watched.page, "consumer-zh-blueberry")
        watched.assert_clean(base)
