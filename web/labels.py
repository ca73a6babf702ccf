"""QR codes and printable A4 label sheets for lots and serialised units, each carrying the GS1
Digital Link URI that the resolver answers."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from suyuan.errors import MalformedInput, NotFound
from suyuan.interop.gs1 import DigitalLink, normalize_gtin
from suyuan.storage.schema import LotRow, ProductRow, SerialRow
from suyuan_web import qr
from suyuan_web.common import digital_link, public_base, reading

bp = Blueprint("labels", __name__)

DEFAULT_LABELS_MAX = 500
"""Most labels in one sheet request unless the ``LABELS_MAX`` setting says otherwise."""

QR_CACHE = "public, max-age=86400"
"""A lot's QR code only changes if the public address of the site does."""


@dataclass(frozen=True)
class Layout:
    """A grid of labels on an A4 sheet, sized like common A4 label stock."""

    per_page: int
    columns: int
    rows: int
    width_mm: str
    height_mm: str

    @property
    def css_class(self) -> str:
        return f"sheet-{self.per_page}"


LAYOUTS: dict[int, Layout] = {layout.per_page: layout for layout in (
    Layout(8, 2, 4, "99.1", "67.7"),
    Layout(14, 2, 7, "99.1", "38.1"),
    Layout(21, 3, 7, "63.5", "38.1"),
    Layout(24, 3, 8, "63.5", "33.9"),
)}
DEFAULT_PER_PAGE = 21


@dataclass(frozen=True)
class LotLabel:
    """What a lot's labels say: the lot, its GTIN and the product's names."""

    gtin: str
    code: str
    name_zh: str | None
    name_en: str | None


@dataclass(frozen=True)
class Label:
    uri: str
    serial: str | None
    symbol: int
    """Index of the label's QR code in the sheet's shared symbols."""


# --------------------------------------------------------------------------------------------
# QR images


@bp.get("/qr/01/<gtin>/10/<lot>.<any(svg, png):fmt>")
@bp.get("/qr/01/<gtin>/10/<lot>/21/<serial>.<any(svg, png):fmt>")
def qr_image(gtin: str, lot: str, fmt: str, serial: str | None = None) -> Response:
    """The QR code of a lot's or a serialised unit's Digital Link, as SVG or PNG."""
    with reading() as session:
        target = find_lot(session, gtin, lot)
        if serial is not None:
            require_serials(session, target, [serial])
    uri = label_uri(target, serial)
    if fmt == "svg":
        response = Response(qr.svg_document(uri), mimetype="image/svg+xml")
    else:
        response = Response(qr.png(uri), mimetype="image/png")
    name = "-".join(["01", target.gtin, "10", target.code] + (["21", serial] if serial else []))
    response.headers["Content-Disposition"] = f'inline; filename="{_file_name(name)}.{fmt}"'
    response.headers["Cache-Control"] = QR_CACHE
    return response


# --------------------------------------------------------------------------------------------
# Label sheets


@bp.get("/labels/01/<gtin>/10/<lot>")
def label_sheet(gtin: str, lot: str) -> str:
    """A4 sheets of labels: ``?copies=N`` of the lot's label, or one label per serialised unit
    with ``?serials=all`` or ``?serials=JZ00001-JZ00012,JZ00020``; ``?per_page=`` picks the
    grid (8, 14, 21 or 24 labels per sheet)."""
    layout = parse_layout(request.args.get("per_page"))
    limit = labels_max()
    selection = request.args.get("serials")
    copies_text = request.args.get("copies")
    if selection is not None and copies_text is not None:
        raise MalformedInput("give either copies or serials: each serialised unit gets "
                             "exactly one label")
    with reading() as session:
        target = find_lot(session, gtin, lot)
        if selection is None:
            copies = whole_number("copies", copies_text, min(layout.per_page, limit), 1, limit)
            serials: list[str | None] = [None] * copies
        else:
            serials = list(select_serials(selection, lot_serials(session, target),
                                          target.code, limit))
    symbols: list[qr.QrSymbol] = []
    by_uri: dict[str, int] = {}
    labels = []
    for serial in serials:
        uri = label_uri(target, serial)
        if uri not in by_uri:
            by_uri[uri] = len(symbols)
            symbols.append(qr.symbol(uri))
        labels.append(Label(uri, serial, by_uri[uri]))
    sheets = [labels[i : i + layout.per_page] for i in range(0, len(labels), layout.per_page)]
    kept = {k: v for k, v in request.args.items() if k in ("copies", "serials", "lang")}
    layout_links = [
        (other, url_for(".label_sheet", gtin=target.gtin, lot=target.code, per_page=other,
                        **kept))
        for other in LAYOUTS
    ]
    return render_template("labels.html", lot=target, layout=layout, sheets=sheets,
                           symbols=symbols, count=len(labels), layout_links=layout_links)


# --------------------------------------------------------------------------------------------
# Parsing and lookups


def labels_max() -> int:
    return int(current_app.config.get("LABELS_MAX") or DEFAULT_LABELS_MAX)


def find_lot(session: Session, gtin: str, code: str) -> LotLabel:
    """The lot ``code`` of GTIN ``gtin``: :class:`MalformedInput` for a bad GTIN (saying what is
    wrong with it), :class:`NotFound` when the log knows no such lot of that GTIN."""
    gtin14 = normalize_gtin(gtin)
    row = session.get(LotRow, code)
    if row is None or row.gtin != gtin14:
        raise NotFound(f"no lot {code!r} of GTIN {gtin14} in the log")
    product = session.get(ProductRow, gtin14)
    return LotLabel(gtin14, row.code, product.name_zh if product else None,
                    product.name_en if product else None)


def lot_serials(session: Session, lot: LotLabel) -> list[str]:
    """The serial numbers packed into a lot, in natural order."""
    rows = session.scalars(
        select(SerialRow.serial).where(SerialRow.lot == lot.code, SerialRow.gtin == lot.gtin)
    )
    return sorted(rows, key=natural_key)


def require_serials(session: Session, lot: LotLabel, serials: Sequence[str]) -> None:
    found = set(session.scalars(
        select(SerialRow.serial).where(SerialRow.lot == lot.code, SerialRow.gtin == lot.gtin,
                                       SerialRow.serial.in_(list(serials)))
    ))
    missing = [s for s in serials if s not in found]
    if missing:
        raise NotFound(f"{_quote_list(missing)} {'is' if len(missing) == 1 else 'are'} not a "
                       f"serial of lot {lot.code!r}")


def label_uri(lot: LotLabel, serial: str | None = None) -> str:
    """The Digital Link URI printed on a label, after checking the lot code and serial fit
    GS1 AIs (10) and (21)."""
    DigitalLink(lot.gtin, lot=lot.code, serial=serial)
    return digital_link(lot.gtin, lot.code, serial, base=public_base())


def parse_layout(text: str | None) -> Layout:
    choices = ", ".join(str(n) for n in LAYOUTS)
    if text is None:
        return LAYOUTS[DEFAULT_PER_PAGE]
    if text not in {str(n) for n in LAYOUTS}:
        raise MalformedInput(f"per_page must be one of {choices} (labels per A4 sheet), "
                             f"not {text!r}")
    return LAYOUTS[int(text)]


def whole_number(name: str, text: str | None, default: int, low: int, high: int) -> int:
    """``text`` as an integer from ``low`` to ``high`` (ASCII digits only), or ``default``."""
    if text is None:
        return default
    if re.fullmatch(r"[0-9]{1,9}", text) and low <= int(text) <= high:
        return int(text)
    raise MalformedInput(f"{name} must be a whole number from {low} to {high}, not {text!r}")


_RANGE_END = re.compile(r"(.*?)([0-9]+)")


def select_serials(selection: str, known: Collection[str], lot: str, limit: int
                   ) -> list[str]:
    """The serials a ``serials=`` parameter names, in the order given, each once.

    ``all`` is every serial of the lot; otherwise a comma-separated list of serials and ranges
    ``FIRST-LAST`` whose ends are the same length and differ only in their trailing digits
    (``JZ00001-JZ00012``). :class:`MalformedInput` for a malformed or too large selection,
    :class:`NotFound` for serials that are not in ``known`` (the lot's).
    """
    text = selection.strip()
    known = frozenset(known)
    if not text:
        raise MalformedInput("serials is empty: give all, serial numbers, or ranges such as "
                             "JZ00001-JZ00012")
    if text.lower() == "all":
        if not known:
            raise NotFound(f"lot {lot!r} has no serialised units")
        chosen = sorted(known, key=natural_key)
    else:
        chosen = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                raise MalformedInput(f"serials has an empty item: {selection!r}")
            if item in known:
                chosen.append(item)
                continue
            half = len(item) // 2
            if len(item) % 2 == 0 or item[half] != "-":
                hint = ("; a range is FIRST-LAST with both ends the same length, "
                        "e.g. JZ00001-JZ00012") if "-" in item else ""
                raise NotFound(f"{item!r} is not a serial of lot {lot!r}{hint}")
            chosen.extend(_expand_range(item[:half], item[half + 1 :], known, lot, limit))
            if len(chosen) > limit:
                break  # no need to expand the rest: the selection is too large anyway
    unique = list(dict.fromkeys(chosen))
    if len(unique) > limit:
        raise MalformedInput(f"the selection names more than {limit} serials; at most "
                             f"{limit} labels at a time")
    return unique


def _expand_range(first: str, last: str, known: Collection[str], lot: str, limit: int
                  ) -> list[str]:
    start, end = _RANGE_END.fullmatch(first), _RANGE_END.fullmatch(last)
    if start is None or end is None or start[1] != end[1]:
        raise MalformedInput(f"range {first}-{last}: both ends must be the same serial "
                             "prefix followed by a number of the same width")
    low, high, width = int(start[2]), int(end[2]), len(start[2])
    if low > high:
        raise MalformedInput(f"range {first}-{last} runs backwards")
    if high - low + 1 > limit:
        raise MalformedInput(f"range {first}-{last} has {high - low + 1} serials; at most "
                             f"{limit} labels at a time")
    serials = [f"{start[1]}{n:0{width}d}" for n in range(low, high + 1)]
    missing = [s for s in serials if s not in known]
    if missing:
        raise NotFound(f"{len(missing)} of the range {first}-{last} "
                       f"{'is' if len(missing) == 1 else 'are'} not serials of lot {lot!r}: "
                       f"{_quote_list(missing)}")
    return serials


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting JZ9 before JZ10."""
    # re.split keeps the digit runs at odd positions; only those are compared as numbers.
    return tuple((0, int(part)) if i % 2 else (1, part)
                 for i, part in enumerate(re.split(r"([0-9]+)", text)))


def _quote_list(items: Sequence[str], shown: int = 5) -> str:
    text = ", ".join(repr(s) for s in items[:shown])
    return text + (f" and {len(items) - shown} more" if len(items) > shown else "")


def _file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)
