"""The GS1 Digital Link resolver: ``/01/<gtin>/10/<lot>[/21/<serial>]`` and the other GS1
primary keys, as the GS1-Conformant Resolver standard describes.

- The request target is parsed exactly as sent (``RAW_URI``), so percent-encoded ``/`` in a lot
  or serial survives, and checked by :func:`suyuan.interop.gs1.parse_digital_link`: bad syntax,
  a wrong check digit or a misplaced AI is a 400 whose message says what is wrong.
- GTIN-8, -12 and -13 are accepted and any non-canonical form (short GTIN, a path stem, odd
  percent-encoding) is redirected (301) to the canonical ``/01/<gtin14>/10/<lot>[/21/<serial>]``.
  A unit addressed without its lot (``/01/<gtin>/21/<serial>``) is redirected to its lot's URI.
- By default the consumer page is served. ``Accept: application/linkset+json`` (or
  ``application/json``), ``?linkType=linkset`` or ``?linkType=all`` give the RFC 9264 linkset.
  ``?linkType=gs1:pip`` is the page; ``gs1:traceability``, ``gs1:certificationInfo`` and
  ``gs1:recallStatus`` redirect (307) to their targets; a link type that the item does not
  have falls back to the default link (the page), as the standard asks.
- ``/.well-known/gs1resolver`` describes the resolver.
- Valid keys this ledger holds nothing for (an SSCC, a GLN …), unknown GTINs, lots and units:
  404 page (JSON for clients that want JSON).

Scans of a serialised unit's page are counted after the response (see :mod:`suyuan_web.scans`).
Lot pages are cached per ledger state (see :mod:`suyuan_web.pagecache`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, unquote

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
)
from flask_babel import format_datetime, get_locale, get_translations
from flask_babel import gettext as _
from flask_babel.speaklater import LazyString
from jinja2 import pass_context
from markupsafe import Markup
from werkzeug.routing import PathConverter

from suyuan.errors import MalformedInput, NotFound
from suyuan.interop.gs1 import (
    APPLICATION_IDENTIFIERS,
    CANONICAL_STEM,
    GS1_VOCABULARY,
    DigitalLink,
    normalize_link_type,
    parse_digital_link,
)
from suyuan.storage.schema import SerialRow
from suyuan_web import pagecache, provenance, scans, wording
from suyuan_web.common import database, languages, public_base, reading

bp = Blueprint("resolver", __name__)


class _AnyPath(PathConverter):
    """The rest of a Digital Link path, even empty or starting with '/': a malformed link
    must reach the parser and get its 400 saying what is wrong, not a bare 404."""

    regex = ".*"
    part_isolating = False


bp.record_once(lambda state: state.app.url_map.converters.setdefault("dlpath", _AnyPath))
bp.record_once(lambda state: setattr(state.app, "wsgi_app",
                                     pagecache.FastPages(state.app, state.app.wsgi_app)))

PRIMARY_KEYS = tuple(sorted(code for code, ai in APPLICATION_IDENTIFIERS.items()
                            if ai.is_dl_primary_key))
"""The first path segment of every GS1 Digital Link this resolver answers."""

LINKSET = "application/linkset+json"
LINK_TYPES = ("gs1:pip", "gs1:traceability", "gs1:certificationInfo", "gs1:recallStatus")
"""The GS1 link types an item may have here (gs1:defaultLink is the page)."""


def parse_link(uri: str) -> DigitalLink:
    """A Digital Link URI as this resolver reads it: numeric AIs only, GTIN-8/12/13 allowed
    (and made GTIN-14), unknown AIs refused. Raises ``MalformedInput`` saying what is wrong."""
    return parse_digital_link(uri, permit_zero_suppressed_gtin=True)


def _raw_target() -> tuple[str, str]:
    """The request path (after the application root) and query, as the client sent them."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        path, _, query = raw.partition("?")
        if "://" in path:  # absolute-form request target
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        path = path.split("#", 1)[0]
    else:
        path = quote(request.script_root + request.path, safe="/%!$&'()*+,;=:@-._~")
        query = request.query_string.decode("latin-1")
    root = request.script_root
    if root and path.startswith(root):
        path = path[len(root):]
    return path, query


def _to(path: str, query: str, status: int) -> Response:
    target = request.script_root + path + (f"?{query}" if query else "")
    response = redirect(target, code=status)
    response.headers["Vary"] = "Accept, Accept-Language"
    return response


RULE = f"/<any({', '.join(repr(k) for k in PRIMARY_KEYS)}):key>/<dlpath:rest>"
"""Every path that starts with a GS1 primary key's AI; the parser decides the rest."""


@bp.route(RULE, methods=["GET"], merge_slashes=False, strict_slashes=False)
def resolve(key: str, rest: str) -> Response:
    """Resolve a Digital Link (see the module docstring); ``key`` and ``rest`` are the
    routing's view of the path, which is re-read as sent."""
    path, query = _raw_target()
    link = parse_link(CANONICAL_STEM + path + (f"?{query}" if query else ""))
    canonical = link.path()
    if unquote(path) != unquote(canonical):
        return _to(canonical, query, 301)
    if link.gtin is None:
        ai = APPLICATION_IDENTIFIERS[link.primary_key[0]]
        raise NotFound(f"this resolver holds no records for {ai.title} ({ai.ai}) "
                       f"{link.primary_key[1]}: it resolves products (GTIN, AI 01)")
    if link.cpv is not None or link.tpx is not None:
        raise NotFound("this resolver holds no records by consumer product variant (22) or "
                       "third-party controlled serial (235)")
    if link.lot is None:
        if link.serial is None:
            raise NotFound(f"GTIN {link.gtin}: scan the code on the package, which names the "
                           f"lot: /01/{link.gtin}/10/<lot>")
        return _to(_unit_path(link.gtin, link.serial), query, 301)

    wanted = _wanted()
    uri = public_base() + canonical
    if wanted != "page":
        with reading() as session:
            page = provenance.lot_page(session, link.gtin, link.lot, link.serial,
                                       with_proofs=False)
        if wanted == "linkset":
            return _linkset_response(page, uri)
        target = _targets(page, uri).get(wanted)
        if target is not None:
            return _with_links(redirect(target[0]["href"], code=307), uri)
    return _page(link, canonical, query, uri)


UNIT_SLOT = "<!--suyuan:unit-->"
"""Where a unit's page gets its per-request panel; ledger data cannot contain it (escaped)."""


UNIT_SLOT_BYTES = UNIT_SLOT.encode()

_WORDS: dict[str, SimpleNamespace] = {}


def _words(lang: str) -> SimpleNamespace:
    """:mod:`suyuan_web.wording` translated into ``lang`` once (per process), as safe markup
    as the lazy strings are, so that a page does not translate a word each time it shows it."""
    words = _WORDS.get(lang)
    if words is None:
        def resolved(value: Any) -> Any:
            if isinstance(value, LazyString):
                return Markup(str(value))
            if isinstance(value, dict):
                return {k: resolved(v) for k, v in value.items()}
            return value
        words = SimpleNamespace(**{name: resolved(value) for name, value in vars(wording).items()
                                   if name.isupper()})
        _WORDS[lang] = words
    return words


def _i18n() -> dict[str, Any]:
    """``gettext`` and ``ngettext`` for one rendering, bound to this request's translations
    (they behave as the ones Flask-Babel installs: new-style, formatted, safe when escaping),
    so that each message does not look its translations up again."""
    translations = get_translations()
    plain, plural = translations.ugettext, translations.ungettext

    @pass_context
    def gettext(context: Any, string: str, **variables: Any) -> str:
        text = plain(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables  # type: ignore[no-any-return]

    @pass_context
    def ngettext(context: Any, singular: str, plural_: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        text = plural(singular, plural_, num)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables  # type: ignore[no-any-return]

    return {"gettext": gettext, "ngettext": ngettext}


def _page(link: DigitalLink, canonical: str, query: str, uri: str) -> Response:
    """The consumer page: from the page cache while the ledger is unchanged (a lot's page as
    the stored bytes, after one small query on a pooled connection); a unit's panel (its
    scans) rendered for every request."""
    assert link.gtin is not None and link.lot is not None
    lang = str(get_locale() or "zh")
    cache = pagecache.pages()
    key = (canonical, query, lang, uri)
    cached = cache.get(key)
    if cached is not None and link.serial is None:
        state = pagecache.current_state(database().engine, link.lot)
        if state == cached[0]:
            request.environ[pagecache.WHOLE] = (link.lot, state)
            return _with_links(make_response(cached[1]), uri)
        cached = None
    summary = visitor = None
    now = scans.now_seconds()
    with reading() as session:
        state = pagecache.ledger_state(session, link.lot)
        if cached is not None and cached[0] != state:
            cached = None
        if cached is None:
            page = provenance.lot_page(session, link.gtin, link.lot, link.serial)
            unit = page.unit_info
        else:
            _state, body, unit = cached
        if link.serial is not None:
            if scans.is_countable(request):
                visitor = scans.visitor_id(request, _secret())
            region = scans.region_of(request, current_app.config.get("SCAN_REGION_HEADER"))
            summary = scans.summary(session, link.gtin, link.serial, visitor=visitor, now=now,
                                    region=region)
    if cached is None:
        body = render_template("lot.html", page=page, words=_words(lang), uri=uri, lang=lang,
                               linkset_url=f"{uri}?linkType=linkset", **_i18n()).encode()
        cache.put(key, (state, body, unit), len(body))
    if link.serial is not None:
        scan_first = None
        if summary is not None and summary.first_at is not None:
            scan_first = format_datetime(datetime.fromtimestamp(summary.first_at, UTC),
                                         "yyyy-MM-dd HH:mm")
        panel = render_template("_unit.html", unit=unit, scan=summary, scan_first=scan_first,
                                words=_words(lang), warn_threshold=scans.warn_threshold(),
                                **_i18n())
        body = body.replace(UNIT_SLOT_BYTES, panel.encode(), 1)
    response = make_response(body)
    if link.serial is None:
        request.environ[pagecache.WHOLE] = (link.lot, state)
    else:
        response.headers["Cache-Control"] = "no-store"
        if visitor is not None and summary is not None and summary.this_visit_counts:
            scans.count_after_response(response, request, link.gtin, link.serial, visitor, now)
    return _with_links(response, uri)


def _unit_path(gtin: str, serial: str) -> str:
    with reading() as session:
        row = session.get(SerialRow, (gtin, serial))
        if row is None:
            raise NotFound(f"no unit {serial!r} of product GTIN {gtin}")
        return DigitalLink(gtin, lot=row.lot, serial=serial).path()


def _secret() -> str:
    return str(current_app.config["SECRET_KEY"])


def _wanted() -> str:
    """``page``, ``linkset`` or a GS1 link type to redirect to."""
    asked = request.args.get("linkType")
    if asked is None:
        best = request.accept_mimetypes.best_match(["text/html", LINKSET, "application/json"])
        return "linkset" if best in (LINKSET, "application/json") else "page"
    if asked in ("linkset", "all"):
        return "linkset"
    try:
        link_type = normalize_link_type(asked)
    except MalformedInput:
        return "page"  # not a link type this resolver knows: the default link
    if link_type in ("gs1:pip", "gs1:defaultLink", "gs1:defaultLinkMulti"):
        return "page"
    return link_type


def _targets(page: provenance.LotPage, uri: str) -> dict[str, list[dict[str, Any]]]:
    """The links of an item, by compact link type, for the linkset and linkType redirects."""
    name = page.product_name("zh")
    hreflang = list(languages())
    page_link = {"href": uri, "title": name, "type": "text/html", "hreflang": hreflang}
    links: dict[str, list[dict[str, Any]]] = {
        "gs1:defaultLink": [page_link],
        "gs1:pip": [page_link],
        "gs1:traceability": [{"href": f"{uri}#journey", "title": _("Journey and records"),
                              "type": "text/html", "hreflang": hreflang}],
    }
    certificates = [{"href": f"{public_base()}/certificate/{cert.index}",
                     "title": f"承诺达标合格证 {cert.number}", "type": "text/html",
                     "hreflang": ["zh"]} for cert in page.certificates]
    if certificates:
        links["gs1:certificationInfo"] = certificates
    if page.is_recalled:
        links["gs1:recallStatus"] = [{"href": f"{uri}#recall", "title": _("Recalled"),
                                      "type": "text/html", "hreflang": hreflang}]
    return links


def linkset(page: provenance.LotPage, uri: str) -> dict[str, Any]:
    """The item's RFC 9264 linkset (JSON), link relations as GS1 Web Vocabulary IRIs."""
    context: dict[str, Any] = {"anchor": uri, "itemDescription": page.product_name("zh")}
    for link_type, targets in _targets(page, uri).items():
        context[GS1_VOCABULARY + link_type.removeprefix("gs1:")] = targets
    return {"linkset": [context]}


def _linkset_response(page: provenance.LotPage, uri: str) -> Response:
    response = jsonify(linkset(page, uri))
    asked_plain_json = request.accept_mimetypes.best_match([LINKSET, "application/json"]) == \
        "application/json" and request.args.get("linkType") is None
    response.mimetype = "application/json" if asked_plain_json else LINKSET
    return _with_links(response, uri)


def _with_links(response: Response, uri: str) -> Response:
    response.headers["Link"] = (f'<{uri}?linkType=linkset>; rel="linkset"; '
                                f'type="{LINKSET}"')
    response.vary.update(("Accept", "Accept-Language", "Cookie"))
    return response


@bp.get("/.well-known/gs1resolver")
def description() -> Response:
    """The resolver description file (GS1-Conformant Resolver standard)."""
    return jsonify({
        "name": "Suyuan 溯源 traceability resolver",
        "resolverRoot": public_base(),
        "supportedPrimaryKeys": ["01"],
        "supportedLinkType": [{"namespace": GS1_VOCABULARY, "prefix": "gs1:"}],
        "linkTypeDefaultCanBeLinkset": False,
        "supportedContextValuesEnumerated": [],
    })
