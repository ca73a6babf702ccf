"""QR codes and A4 label sheets: the codes are decoded by a real decoder (zxing-cpp) from the PNG
and from what headless Chromium draws of the SVG and of the printed sheet; every decoded URI is
the lot's or the unit's GS1 Digital Link; bad GTINs, unknown lots and serials, and oversized or
malformed requests are refused with the right status and message."""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import zxingcpp
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from playwright.sync_api import Browser, Page

from suyuan.errors import MalformedInput, NotFound
from suyuan.interop.gs1 import parse_digital_link
from suyuan_web import qr
from suyuan_web.labels import (
    DEFAULT_LABELS_MAX,
    LAYOUTS,
    natural_key,
    parse_layout,
    select_serials,
    whole_number,
)
from tests.web.browser import serve, watched_page
from tests.web.conftest import PUBLIC_URL, Dalian, make_app

CHERRY = "02000000001005"        # 大连大樱桃 美早, lot JZ-MZ-260605 (no serials)
GIFT_BOX = "02000000001012"      # 美早大樱桃礼盒 2kg, lot JZ-MZ-260605-G, serials JZ00001…JZ00012
BOX_LOT = "JZ-MZ-260605-G"
SERIALS = [f"JZ{n:05d}" for n in range(1, 13)]
JSON = {"Accept": "application/json"}

def link(gtin: str, lot: str, serial: str | None = None, base: str = PUBLIC_URL) -> str:
    return f"{base}/01/{gtin}/10/{lot}" + (f"/21/{serial}" if serial else "")


def check_link(client: FlaskClient, uri: str, gtin: str, lot: str,
               serial: str | None = None) -> None:
    """A decoded URI is the expected Digital Link and resolves to the lot's page.

    ``client`` must be over a private copy of the ledger: opening a unit's page counts a scan.
    """
    assert uri == link(gtin, lot, serial)
    parsed = parse_digital_link(uri)
    assert (parsed.gtin, parsed.lot, parsed.serial) == (gtin, lot, serial)
    page = client.get(urlsplit(uri).path, headers={"Accept": "text/html"})
    assert page.status_code == 200, (uri, page.status_code)
    assert lot in page.get_data(as_text=True)


def decode(image: Image.Image) -> list[str]:
    """Every QR code zxing-cpp finds in the image, as text."""
    codes = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return [code.text for code in codes]


# --------------------------------------------------------------------------------------------
# PNG: decoded straight from the response


@pytest.mark.parametrize("serial", [None, "JZ00007"])
def test_png_qr_code_decodes_to_the_digital_link(client: FlaskClient, serial: str | None) -> None:
    path = f"/qr/01/{GIFT_BOX}/10/{BOX_LOT}" + (f"/21/{serial}" if serial else "") + ".png"
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert f'filename="01-{GIFT_BOX}-10-{BOX_LOT}' in response.headers["Content-Disposition"]
    image = Image.open(io.BytesIO(response.data))
    assert decode(image) == [link(GIFT_BOX, BOX_LOT, serial)]
    check_link(client, decode(image)[0], GIFT_BOX, BOX_LOT, serial)


def test_without_public_url_the_qr_code_points_at_the_host_asked(dalian: Dalian) -> None:
    app = make_app(dalian.url, PUBLIC_URL=None)
    response = app.test_client().get(f"/qr/01/{CHERRY}/10/JZ-MZ-260605.png",
                                     base_url="http://trace.example.cn:8080")
    image = Image.open(io.BytesIO(response.data))
    assert decode(image) == [link(CHERRY, "JZ-MZ-260605", base="http://trace.example.cn:8080")]
    app.extensions["suyuan.db"].dispose()


def test_a_short_gtin_is_accepted_and_printed_as_gtin_14(reader: FlaskClient) -> None:
    response = reader.get(f"/qr/01/{GIFT_BOX[1:]}/10/{BOX_LOT}.png")   # GTIN-13 form
    assert decode(Image.open(io.BytesIO(response.data))) == [link(GIFT_BOX, BOX_LOT)]


# --------------------------------------------------------------------------------------------
# Refusals of the QR routes


@pytest.mark.parametrize(("gtin", "reason"), [
    ("02000000001013", "check digit should be 2, not 3"),
    ("0200000000101X", "a GTIN has digits only"),
    ("123", "has 3 digits"),
    ("020000000010125", "has 15 digits"),
])
def test_a_bad_gtin_is_a_400_saying_why(reader: FlaskClient, gtin: str, reason: str) -> None:
    for fmt in ("svg", "png"):
        response = reader.get(f"/qr/01/{gtin}/10/{BOX_LOT}.{fmt}", headers=JSON)
        assert response.status_code == 400, gtin
        assert response.json["error"]["code"] == "malformed"
        assert reason in response.json["error"]["message"]
    page = reader.get(f"/labels/01/{gtin}/10/{BOX_LOT}", headers={"Accept-Language": "en"})
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert reason in page.get_data(as_text=True)


@pytest.mark.parametrize(("path", "message"), [
    (f"/qr/01/{GIFT_BOX}/10/NO-SUCH-LOT.png", "no lot 'NO-SUCH-LOT' of GTIN"),
    (f"/qr/01/{CHERRY}/10/{BOX_LOT}.svg", f"no lot '{BOX_LOT}' of GTIN {CHERRY}"),
    (f"/qr/01/{GIFT_BOX}/10/{BOX_LOT}/21/JZ00013.png", "'JZ00013' is not a serial of lot"),
    (f"/qr/01/{CHERRY}/10/JZ-MZ-260605/21/JZ00001.svg", "'JZ00001' is not a serial of lot"),
    (f"/labels/01/{GIFT_BOX}/10/NO-SUCH-LOT", "no lot 'NO-SUCH-LOT'"),
])
def test_unknown_lots_and_serials_are_404(reader: FlaskClient, path: str, message: str) -> None:
    response = reader.get(path, headers=JSON)
    assert response.status_code == 404
    assert message in response.json["error"]["message"]


def test_only_svg_and_png_are_offered(reader: FlaskClient) -> None:
    assert reader.get(f"/qr/01/{GIFT_BOX}/10/{BOX_LOT}.gif").status_code == 404
    assert reader.get(f"/qr/01/{GIFT_BOX}/10/{BOX_LOT}.svg").mimetype == "image/svg+xml"


# --------------------------------------------------------------------------------------------
# The sheet as HTML


def _sheet(client: FlaskClient, query: str = "", lot: str = BOX_LOT, gtin: str = GIFT_BOX,
           **kwargs: object) -> str:
    response = client.get(f"/labels/01/{gtin}/10/{lot}{query}", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.data[:500]
    return response.get_data(as_text=True)


def test_a_lot_sheet_repeats_one_shared_qr_symbol(reader: FlaskClient) -> None:
    html = _sheet(reader, "?copies=25")
    assert html.count('<article class="label">') == 25
    assert html.count('<section class="sheet sheet-21">') == 2          # 21 + 4
    assert html.count("<symbol ") == 1 and html.count('<use href="#qr-0"/>') == 25
    assert "美早大樱桃礼盒 2kg" in html and "Mei Zao cherry gift box 2 kg" in html
    assert html.count(link(GIFT_BOX, BOX_LOT)) == 50                    # aria-label and text
    # The CSP allows no inline styles: everything is in labels.css.
    assert " style=" not in html and "<style" not in html and "<script" not in html


def test_a_lot_sheet_defaults_to_one_full_sheet(reader: FlaskClient) -> None:
    assert _sheet(reader).count('<article class="label">') == 21
    assert _sheet(reader, "?per_page=8").count('<article class="label">') == 8


def test_a_serial_sheet_has_one_label_and_symbol_per_unit(reader: FlaskClient) -> None:
    html = _sheet(reader, "?serials=all&per_page=24")
    assert html.count('<article class="label">') == 12 and html.count("<symbol ") == 12
    assert '<section class="sheet sheet-24">' in html
    for serial in SERIALS:
        assert f">{link(GIFT_BOX, BOX_LOT, serial)}</p>" in html
    picked = _sheet(reader, "?serials=JZ00010-JZ00012,JZ00003")
    found = re.findall(r'<p class="serial">\S+ <span class="code">(JZ\d+)</span></p>', picked)
    assert found == ["JZ00010", "JZ00011", "JZ00012", "JZ00003"]


def test_the_sheet_offers_the_other_layouts(reader: FlaskClient) -> None:
    html = _sheet(reader, "?serials=JZ00001-JZ00002&per_page=14")
    for per_page in (8, 21, 24):
        assert f"per_page={per_page}&amp;serials=JZ00001-JZ00002" in html
    assert "<strong>14</strong>" in html
    # Other query parameters are not carried over (nor can they break the links).
    html = _sheet(reader, "?copies=2&gtin=1&lot=X&_external=1&_scheme=javascript")
    assert "per_page=8&amp;copies=2" in html and "javascript" not in html


@pytest.mark.parametrize(("query", "message"), [
    ("?copies=0", "copies must be a whole number from 1 to 500, not '0'"),
    ("?copies=501", "from 1 to 500, not '501'"),
    ("?copies=-3", "not '-3'"),
    ("?copies=2.5", "not '2.5'"),
    ("?copies=", "not ''"),
    ("?copies=%EF%BC%93", "not '３'"),                     # full-width 3
    ("?copies=99999999999999999999", "from 1 to 500"),
    ("?per_page=7", "per_page must be one of 8, 14, 21, 24"),
    ("?per_page=021", "not '021'"),
    ("?per_page=", "per_page must be one of"),
    ("?copies=2&serials=all", "give either copies or serials"),
    ("?serials=", "serials is empty"),
    ("?serials=JZ00001,,JZ00002", "empty item"),
    ("?serials=JZ00005-JZ00001", "runs backwards"),
    ("?serials=JZ00001-KZ00002", "same serial prefix"),
    ("?serials=JZ0000A-JZ0000B", "same serial prefix"),
    ("?serials=JZ00001-JZ99999", "has 99999 serials; at most 500"),
])
def test_malformed_or_oversized_sheet_requests_are_400(reader: FlaskClient, query: str,
                                                       message: str) -> None:
    response = reader.get(f"/labels/01/{GIFT_BOX}/10/{BOX_LOT}{query}", headers=JSON)
    assert response.status_code == 400, query
    assert message in response.json["error"]["message"]


@pytest.mark.parametrize(("lot", "gtin", "query", "message"), [
    (BOX_LOT, GIFT_BOX, "?serials=JZ00001-JZ00013", "1 of the range JZ00001-JZ00013 is not"),
    (BOX_LOT, GIFT_BOX, "?serials=JZ00099", "'JZ00099' is not a serial of lot"),
    (BOX_LOT, GIFT_BOX, "?serials=JZ1-JZ00002", "a range is FIRST-LAST"),
    ("JZ-MZ-260605", CHERRY, "?serials=all", "lot 'JZ-MZ-260605' has no serialised units"),
    ("JZ-MZ-260605", CHERRY, "?serials=JZ00001", "'JZ00001' is not a serial of lot"),
])
def test_serials_outside_the_lot_are_404(reader: FlaskClient, lot: str, gtin: str, query: str,
                                         message: str) -> None:
    response = reader.get(f"/labels/01/{gtin}/10/{lot}{query}", headers=JSON)
    assert response.status_code == 404
    assert message in response.json["error"]["message"]


def test_labels_max_setting_bounds_every_request(dalian: Dalian) -> None:
    app = make_app(dalian.url, LABELS_MAX=10)
    client = app.test_client()
    base = f"/labels/01/{GIFT_BOX}/10/{BOX_LOT}"
    assert client.get(f"{base}?copies=10").status_code == 200
    too_many = client.get(f"{base}?copies=11", headers=JSON)
    assert too_many.status_code == 400 and "from 1 to 10" in too_many.json["error"]["message"]
    # The default (one full sheet) is cut to the limit.
    assert client.get(base).get_data(as_text=True).count('<article class="label">') == 10
    for query in ("?serials=all", "?serials=JZ00001-JZ00011",
                  "?serials=JZ00001-JZ00006,JZ00007-JZ00012"):
        refused = client.get(base + query, headers=JSON)
        assert refused.status_code == 400, query
        assert "at most 10 labels" in refused.json["error"]["message"]
    assert client.get(f"{base}?serials=JZ00001-JZ00010").status_code == 200
    app.extensions["suyuan.db"].dispose()


# --------------------------------------------------------------------------------------------
# The pure parts


def test_serial_selection_expands_ranges_in_the_order_given_each_once() -> None:
    known = set(SERIALS)
    assert select_serials("all", known, "L", 500) == SERIALS
    assert select_serials(" ALL ", known, "L", 500) == SERIALS
    assert select_serials("JZ00003-JZ00005", known, "L", 500) == ["JZ00003", "JZ00004", "JZ00005"]
    assert select_serials("JZ00012, JZ00001-JZ00002,JZ00012", known, "L", 500) == [
        "JZ00012", "JZ00001", "JZ00002"]
    assert select_serials("JZ00004-JZ00004", known, "L", 500) == ["JZ00004"]
    # A serial that itself contains a hyphen is taken as a serial, not a range.
    assert select_serials("A-2,A-1-A-3", {"A-1", "A-2", "A-3"}, "L", 5) == ["A-2", "A-1", "A-3"]


def test_serial_selection_refusals() -> None:
    known = set(SERIALS)
    with pytest.raises(MalformedInput, match="at most 3 labels"):
        select_serials("all", known, "L", 3)
    with pytest.raises(MalformedInput, match="at most 5 labels"):
        select_serials("JZ00001-JZ00004,JZ00005-JZ00006", known, "L", 5)
    with pytest.raises(NotFound, match="2 of the range JZ00011-JZ00014 are not"):
        select_serials("JZ00011-JZ00014", known, "L", 500)
    with pytest.raises(NotFound, match="has no serialised units"):
        select_serials("all", set(), "L", 500)


def test_whole_numbers_layouts_and_natural_order() -> None:
    assert whole_number("copies", None, 21, 1, 500) == 21
    assert whole_number("copies", "500", 21, 1, 500) == 500
    for bad in ("0", "501", "1e3", " 5", "٣"):
        with pytest.raises(MalformedInput):
            whole_number("copies", bad, 21, 1, 500)
    assert parse_layout(None) is LAYOUTS[21] and parse_layout("8") is LAYOUTS[8]
    assert {(lay.columns * lay.rows) for lay in LAYOUTS.values()} == set(LAYOUTS)
    assert sorted(["JZ10", "JZ9", "JZ011"], key=natural_key) == ["JZ9", "JZ10", "JZ011"]
    assert DEFAULT_LABELS_MAX == 500


def test_qr_symbol_is_a_square_with_a_quiet_zone() -> None:
    symbol = qr.symbol(link(GIFT_BOX, BOX_LOT, "JZ00001"))
    assert symbol.modules == 33 + 2 * qr.QUIET_ZONE      # version 4 (17 + 4 * 4 modules)
    assert symbol.path.startswith("M4,4") and set(symbol.path) <= set("MHVz0123456789,")
    with pytest.raises(ValueError):
        qr.symbol("")


# --------------------------------------------------------------------------------------------
# In a real browser: the SVG and the printed sheet, screenshotted and decoded


@pytest.fixture(scope="module")
def live_url(shared_app: Flask) -> Iterator[str]:
    """The shared Dalian site over real HTTP on a free local port."""
    with serve(shared_app) as url:
        yield url


@pytest.fixture
def page(browser: Browser, live_url: str) -> Iterator[Page]:
    """A page whose console must stay clean: a CSP violation (an inline style, say) is
    reported there as an error."""
    with watched_page(browser, device_scale_factor=2,
                      viewport={"width": 900, "height": 1000}) as watched:
        yield watched.page
        watched.assert_clean(live_url)


def _screenshot(page: Page, path: Path, *, full_page: bool = True) -> Image.Image:
    # full_page measures an HTML document; for an SVG document it never returns: use the view.
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return Image.open(path)


def test_svg_qr_code_renders_and_decodes_in_chromium(page: Page, live_url: str,
                                                     client: FlaskClient, tmp_path: Path) -> None:
    response = page.goto(f"{live_url}/qr/01/{GIFT_BOX}/10/{BOX_LOT}/21/JZ00012.svg")
    assert response is not None and response.status == 200
    assert response.headers["content-type"] == "image/svg+xml; charset=utf-8"
    image = _screenshot(page, tmp_path / "qr-JZ00012-svg.png", full_page=False)
    assert decode(image) == [link(GIFT_BOX, BOX_LOT, "JZ00012")]
    check_link(client, decode(image)[0], GIFT_BOX, BOX_LOT, "JZ00012")


def _pdf_pages(page: Page) -> int:
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def _sheet_geometry(page: Page) -> dict[str, object]:
    return page.evaluate("""() => {
        const mm = 96 / 25.4;
        const sheets = [...document.querySelectorAll('.sheet')].map(s => {
            const r = s.getBoundingClientRect();
            return [Math.round(r.width / mm * 10) / 10, Math.round(r.height / mm * 10) / 10];
        });
        const clipped = [...document.querySelectorAll('.label')].filter(
            l => l.scrollHeight > l.clientHeight + 1 || l.scrollWidth > l.clientWidth + 1).length;
        return {sheets, clipped};
    }""")


def test_serial_label_sheet_prints_and_every_code_decodes(page: Page, live_url: str,
                                                          client: FlaskClient,
                                                          tmp_path: Path) -> None:
    page.emulate_media(media="print")
    response = page.goto(f"{live_url}/labels/01/{GIFT_BOX}/10/{BOX_LOT}?serials=all&lang=en")
    assert response is not None and response.status == 200
    geometry = _sheet_geometry(page)
    assert geometry == {"sheets": [[210.0, 297.0]], "clipped": 0}
    image = _screenshot(page, tmp_path / "labels-serials-21.png")
    decoded = decode(image)
    assert sorted(decoded) == sorted(link(GIFT_BOX, BOX_LOT, s) for s in SERIALS)
    for uri in decoded:
        check_link(client, uri, GIFT_BOX, BOX_LOT, uri.rsplit("/", 1)[1])
    assert _pdf_pages(page) == 1


@pytest.mark.parametrize("per_page", sorted(LAYOUTS))
def test_lot_label_sheets_of_every_layout_print_on_a4(page: Page, live_url: str,
                                                      client: FlaskClient, tmp_path: Path,
                                                      per_page: int) -> None:
    copies = per_page + 2       # one full sheet and two labels on a second
    page.emulate_media(media="print")
    response = page.goto(f"{live_url}/labels/01/{CHERRY}/10/JZ-MZ-260605"
                         f"?copies={copies}&per_page={per_page}")
    assert response is not None and response.status == 200
    geometry = _sheet_geometry(page)
    assert geometry == {"sheets": [[210.0, 297.0]] * 2, "clipped": 0}
    image = _screenshot(page, tmp_path / f"labels-lot-{per_page}.png")
    decoded = decode(image)
    assert Counter(decoded) == Counter({link(CHERRY, "JZ-MZ-260605"): copies})
    check_link(client, decoded[0], CHERRY, "JZ-MZ-260605")
    assert _pdf_pages(page) == 2


def test_on_screen_the_sheet_shows_instructions_that_do_not_print(page: Page, live_url: str,
                                                                  tmp_path: Path) -> None:
    page.goto(f"{live_url}/labels/01/{GIFT_BOX}/10/{BOX_LOT}?serials=JZ00001-JZ00003&lang=en")
    assert page.locator(".toolbar h1").inner_text() == f"Labels for lot {BOX_LOT}"
    assert page.locator(".toolbar").is_visible()
    assert len(decode(_screenshot(page, tmp_path / "labels-screen.png"))) == 3
    page.emulate_media(media="print")
    assert not page.locator(".toolbar").is_visible()
