"""The GS1 Digital Link resolver: the syntax engine's corpus, canonical redirects, the linkset,
link types, the resolver description, and 400/404 for bad or unknown codes.

The corpus is read in place from ``shared/corpora/digital-link/``. Its cases carry the syntax
engine's flags; this resolver reads links with one fixed set of options (GTIN-8/12/13 allowed,
then redirected; no convenience alphas such as ``/gtin/``; unknown AIs refused), so each case's
expectation *for this resolver* is taken from the case run with those options, or with the
default options when GTIN zero-suppression makes no difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask.testing import FlaskClient

from suyuan.errors import MalformedInput
from suyuan.interop.gs1 import APPLICATION_IDENTIFIERS, parse_digital_link
from suyuan_web.common import digital_link
from suyuan_web.resolver import parse_link
from tests.web.conftest import PUBLIC_URL

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "digital-link"
VECTORS = CORPUS / "gs1_syntax_engine_dl_vectors.json"
DEFAULT_FLAGS = {"permitConvenienceAlphas": False, "permitZeroSuppressedGTIN": False,
                 "permitUnknownAIs": False, "validateUnknownAINotDLAttr": True}
RESOLVER_FLAGS = {**DEFAULT_FLAGS, "permitZeroSuppressedGTIN": True}
KEYS = {code for code, ai in APPLICATION_IDENTIFIERS.items() if ai.is_dl_primary_key}

BOX = "02000000001012"          # 美早大樱桃礼盒 2kg (GTIN-14)
BOX_LOT = "JZ-MZ-260605-G"
APPLE = "02000000001098"
APPLE_LOT = "WFD-FJ-251020"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def _expectations() -> list[Any]:
    """(uri, valid for this resolver) for every distinct corpus URI."""
    if not VECTORS.is_file():
        return [pytest.param(None, None, marks=pytest.mark.skip(
            reason=f"shared corpus not present: {VECTORS}"), id="corpus-absent")]
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))["parse_cases"]
    by_uri: dict[str, dict[str, bool]] = {}
    for case in cases:
        flags = case["flags"]
        kind = ("resolver" if flags == RESOLVER_FLAGS else
                "default" if flags == DEFAULT_FLAGS else "other")
        by_uri.setdefault(case["uri"], {})[kind] = case["valid"]
    params = []
    for n, (uri, seen) in enumerate(by_uri.items()):
        if "resolver" in seen:
            valid = seen["resolver"]
        elif "default" in seen:
            # Zero-suppression only ever admits more; every default-invalid URI it would
            # admit has its own case with the flag in the corpus.
            valid = seen["default"]
        else:
            # Valid only with convenience alphas (/gtin/, /ser/, /sscc/) or unknown AIs,
            # which this resolver does not accept; invalid even with them stays invalid.
            valid = False
        params.append(pytest.param(uri, valid, id=f"dl-{n:03d}"))
    return params


EXPECTATIONS = _expectations()


def test_the_corpus_is_all_there() -> None:
    if not VECTORS.is_file():
        pytest.skip(f"shared corpus not present: {VECTORS}")
    assert len(EXPECTATIONS) > 100
    assert sum(1 for p in EXPECTATIONS if p.values[1]) > 60


@pytest.mark.parametrize(("uri", "valid"), EXPECTATIONS)
def test_corpus_case_parses_as_the_resolver_reads_links(uri: str, valid: bool) -> None:
    if valid:
        link = parse_link(uri)
        assert parse_digital_link(link.uri("https://id.gs1.org")) == link
    else:
        with pytest.raises(MalformedInput):
            parse_link(uri)


def _request_target(uri: str) -> tuple[str, str] | None:
    """(base URL, path and query) of a corpus URI that can be sent to this resolver: its
    path begins with a GS1 primary key and its host can be a Host header."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return None
    host, slash, tail = rest.partition("/")
    first = tail.split("/", 1)[0]
    if not slash or first not in KEYS or not host or any(c in host for c in "%$[]"):
        return None
    return f"{scheme.lower()}://{host}", "/" + tail.split("#", 1)[0]


HTTP_EXPECTATIONS = [p for p in EXPECTATIONS if p.values[0] is None or
                     _request_target(p.values[0]) is not None]


@pytest.mark.parametrize(("uri", "valid"), HTTP_EXPECTATIONS)
def test_corpus_case_over_http_is_400_when_invalid_else_redirect_or_404(
        reader: FlaskClient, uri: str, valid: bool) -> None:
    target = _request_target(uri)
    assert target is not None
    base, path = target
    response = reader.get(path, base_url=base)
    if not valid:
        assert response.status_code == 400, response.data
        assert b"This code cannot be read" in reader.get(
            path, base_url=base, headers={"Accept-Language": "en"}).data
    else:
        # Nothing in the Dalian ledger has these codes: a redirect to the canonical form, or
        # a 404 page; never a 400, never a stack trace.
        assert response.status_code in (301, 404), response.data
        if response.status_code == 301:
            followed = reader.get(response.location, base_url=base)
            assert followed.status_code == 404


def test_http_corpus_covers_both_outcomes() -> None:
    if not VECTORS.is_file():
        pytest.skip(f"shared corpus not present: {VECTORS}")
    outcomes = [p.values[1] for p in HTTP_EXPECTATIONS]
    assert outcomes.count(True) > 30 and outcomes.count(False) > 20


# --- the page and its canonical address --------------------------------------------------------


def test_a_lot_uri_serves_the_consumer_page(reader: FlaskClient) -> None:
    response = reader.get(f"/01/{BOX}/10/{BOX_LOT}", headers={"User-Agent": PHONE})
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "美早大樱桃礼盒 2kg" in response.text and BOX_LOT in response.text
    link = response.headers["Link"]
    assert f"<{PUBLIC_URL}/01/{BOX}/10/{BOX_LOT}?linkType=linkset>" in link
    assert 'rel="linkset"' in link
    assert "Accept" in response.headers["Vary"]


def test_a_gtin13_is_redirected_to_the_gtin14_uri(reader: FlaskClient) -> None:
    response = reader.get(f"/01/2000000001012/10/{BOX_LOT}?lang=en&linkType=gs1:pip")
    assert response.status_code == 301
    assert response.location == f"/01/{BOX}/10/{BOX_LOT}?lang=en&linkType=gs1:pip"
    assert reader.get(response.location).status_code == 200


@pytest.mark.parametrize(("gtin", "gtin14"), [("96385074", "00000096385074"),
                                              ("036000291452", "00036000291452")])
def test_gtin8_and_gtin12_are_canonicalised_too(reader: FlaskClient, gtin: str,
                                                gtin14: str) -> None:
    response = reader.get(f"/01/{gtin}/10/L1/21/S1")
    assert response.status_code == 301
    assert response.location == f"/01/{gtin14}/10/L1/21/S1"
    assert reader.get(response.location).status_code == 404


def test_a_stem_and_needless_percent_encoding_redirect_to_the_canonical_path(
        reader: FlaskClient) -> None:
    assert reader.get(f"/01/faux/01/{BOX}/10/{BOX_LOT}").location == f"/01/{BOX}/10/{BOX_LOT}"
    same = reader.get(f"/01/{BOX}/10/JZ%2DMZ-260605-G")
    assert same.status_code == 200  # %2D is '-': the same path, no redirect loop


def test_a_unit_without_its_lot_is_redirected_to_the_lot(reader: FlaskClient) -> None:
    response = reader.get(f"/01/{BOX}/21/JZ00002", headers={"User-Agent": "curl/8"})
    assert response.status_code == 301
    assert response.location == f"/01/{BOX}/10/{BOX_LOT}/21/JZ00002"
    assert reader.get(f"/01/{BOX}/21/NOPE").status_code == 404


def test_head_of_the_page_has_no_body(reader: FlaskClient) -> None:
    response = reader.head(f"/01/{APPLE}/10/{APPLE_LOT}")
    assert response.status_code == 200 and response.data == b""


# --- linkset and link types ------------------------------------------------------------------


def _linkset(response: Any) -> dict[str, Any]:
    body = json.loads(response.data)
    (item,) = body["linkset"]
    return item


@pytest.mark.parametrize("how", ["accept", "linkType", "all", "json"])
def test_the_linkset_is_rfc9264_json_with_gs1_link_relations(reader: FlaskClient,
                                                             how: str) -> None:
    path = f"/01/{BOX}/10/{BOX_LOT}"
    if how == "accept":
        response = reader.get(path, headers={"Accept": "application/linkset+json"})
    elif how == "json":
        response = reader.get(path, headers={"Accept": "application/json"})
    else:
        response = reader.get(f"{path}?linkType={'linkset' if how == 'linkType' else 'all'}")
    assert response.status_code == 200
    assert response.mimetype == ("application/json" if how == "json"
                                 else "application/linkset+json")
    item = _linkset(response)
    uri = f"{PUBLIC_URL}{path}"
    assert item["anchor"] == uri
    voc = "https://ref.gs1.org/voc/"
    assert item[voc + "defaultLink"][0]["href"] == uri
    assert item[voc + "pip"][0] == {"href": uri, "title": "美早大樱桃礼盒 2kg",
                                    "type": "text/html", "hreflang": ["zh", "en"]}
    assert item[voc + "traceability"][0]["href"] == f"{uri}#journey"
    (cert,) = item[voc + "certificationInfo"]  # the harvest lot's certificate
    assert "HGZ-210213-260605-001" in cert["title"]
    assert item[voc + "recallStatus"][0]["href"] == f"{uri}#recall"
    for key, links in item.items():
        if key.startswith("http"):
            assert all(urlsplit(link["href"]).scheme == "https" for link in links)


def test_a_lot_without_certificate_or_recall_has_no_such_links(reader: FlaskClient) -> None:
    item = _linkset(reader.get(f"/01/{APPLE}/10/{APPLE_LOT}?linkType=linkset"))
    assert "https://ref.gs1.org/voc/certificationInfo" not in item
    assert "https://ref.gs1.org/voc/recallStatus" not in item
    page = reader.get(f"/01/{APPLE}/10/{APPLE_LOT}?linkType=gs1:certificationInfo")
    assert page.status_code == 200 and page.mimetype == "text/html"  # the default link


@pytest.mark.parametrize("link_type", ["gs1:pip", "https://ref.gs1.org/voc/pip", "gs1:epil",
                                       "nonsense", ""])
def test_pip_and_unavailable_link_types_give_the_page(reader: FlaskClient,
                                                      link_type: str) -> None:
    response = reader.get(f"/01/{BOX}/10/{BOX_LOT}?linkType={quote(link_type, safe='')}")
    assert response.status_code == 200 and response.mimetype == "text/html"


def test_traceability_and_certification_link_types_redirect(reader: FlaskClient) -> None:
    path = f"/01/{BOX}/10/{BOX_LOT}"
    trace = reader.get(f"{path}?linkType=gs1:traceability")
    assert trace.status_code == 307 and trace.location == f"{PUBLIC_URL}{path}#journey"
    cert = reader.get(f"{path}?linkType=https%3A%2F%2Fref.gs1.org%2Fvoc%2FcertificationInfo")
    assert cert.status_code == 307
    certificate = reader.get(urlsplit(cert.location).path)
    assert certificate.status_code == 200
    assert "HGZ-210213-260605-001" in certificate.text and "承诺达标合格证" in certificate.text
    assert "script-src" not in certificate.headers["Content-Security-Policy"]


def test_the_certificate_page_escapes_and_refuses_other_entries(reader: FlaskClient) -> None:
    assert reader.get("/certificate/0").status_code == 404       # actor registration
    assert reader.get("/certificate/999999").status_code == 404  # no such entry


def test_the_resolver_description_file(reader: FlaskClient) -> None:
    response = reader.get("/.well-known/gs1resolver")
    assert response.status_code == 200
    assert response.json == {
        "name": "Suyuan 溯源 traceability resolver", "resolverRoot": PUBLIC_URL,
        "supportedPrimaryKeys": ["01"],
        "supportedLinkType": [{"namespace": "https://ref.gs1.org/voc/", "prefix": "gs1:"}],
        "linkTypeDefaultCanBeLinkset": False, "supportedContextValuesEnumerated": [],
    }


# --- what is wrong, and what is not there ----------------------------------------------------


def test_a_wrong_check_digit_is_400_saying_which_digit_is_right(reader: FlaskClient) -> None:
    response = reader.get(f"/01/02000000001013/10/{BOX_LOT}",
                          headers={"Accept-Language": "en"})
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "check digit should be 2, not 3" in response.text
    api = reader.get(f"/01/02000000001013/10/{BOX_LOT}",
                     headers={"Accept": "application/linkset+json"})
    assert api.status_code == 400
    assert api.json["error"]["code"] == "malformed"


@pytest.mark.parametrize(("path", "phrase"), [
    (f"/01/{BOX}/10/", "must not end with"),
    (f"/01//{BOX}", "empty segment"),
    (f"/01/{BOX}/21/A/10/B", "not a valid key-qualifier sequence"),
    (f"/01/{BOX}/10/{'L' * 21}", "1 to 20 characters"),
    (f"/01/{BOX}/10/A%20B", "space"),
    (f"/01/{BOX}?10=X", "path"),
])
def test_bad_syntax_is_400_saying_what_is_wrong(reader: FlaskClient, path: str,
                                                phrase: str) -> None:
    response = reader.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 400, response.data
    assert phrase in response.json["error"]["message"]


def test_an_unknown_lot_is_a_404_page_not_a_stack_trace(reader: FlaskClient) -> None:
    page = reader.get(f"/01/{BOX}/10/NO-SUCH-LOT", headers={"Accept-Language": "en"})
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Not found" in page.text and "NO-SUCH-LOT" in page.text
    assert "Traceback" not in page.text
    linkset = reader.get(f"/01/{BOX}/10/NO-SUCH-LOT?linkType=linkset",
                         headers={"Accept": "application/linkset+json"})
    assert linkset.status_code == 404 and linkset.json["error"]["code"] == "not_found"


def test_a_lot_under_another_gtin_is_not_found(reader: FlaskClient) -> None:
    assert reader.get(f"/01/{APPLE}/10/{BOX_LOT}").status_code == 404
    assert reader.get(f"/01/{BOX}/10/{BOX_LOT}/21/JZ99999").status_code == 404


def test_a_percent_encoded_slash_stays_inside_the_lot_code(reader: FlaskClient) -> None:
    uri = digital_link(BOX, "DL/2026/01", base=PUBLIC_URL)
    assert uri.endswith("/10/DL%2F2026%2F01")
    response = reader.get(urlsplit(uri).path, headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert "'DL/2026/01'" in response.json["error"]["message"]


@pytest.mark.parametrize("path", ["/00/006141411234567890", "/414/9520123456788",
                                  f"/01/{BOX}", f"/01/{BOX}/22/V1/10/{BOX_LOT}"])
def test_valid_links_this_ledger_holds_nothing_for_are_404(reader: FlaskClient,
                                                           path: str) -> None:
    response = reader.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
