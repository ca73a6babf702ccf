"""Pages for people beside the consumer page (which the resolver serves): the start page and
its look-up form, the printable 承诺达标合格证, and the files the verification panel links to.

Downloads (each record's proof can be checked offline with ``suyuan verify-proof``):

- ``/proof/<index>.tlog-proof``: the C2SP tlog-proof of entry ``index`` against the latest
  cosigned checkpoint (404 while the entry is newer than that checkpoint);
- ``/proof/<index>.leaf``: the entry's leaf, the exact bytes hashed into the log;
- ``/policy.txt``: the log's C2SP tlog-policy (log key, witness keys, quorum).
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request

from suyuan import certificate, ledger
from suyuan.errors import MalformedInput
from suyuan.interop.gs1 import DigitalLink, normalize_gtin
from suyuan.storage import repo
from suyuan_web import provenance
from suyuan_web.common import reading

bp = Blueprint("pages", __name__)

CERTIFICATE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                   "base-uri 'none'; frame-ancestors 'none'; form-action 'none'")
"""The printable certificate carries its own print styles inline, and no script at all."""


@bp.get("/")
def home() -> str:
    return render_template("home.html")


@bp.get("/lookup")
def lookup() -> Response:
    """The start page's form: GTIN, lot and unit code typed in, to their Digital Link page."""
    gtin = request.args.get("gtin", "")
    lot = request.args.get("lot", "").strip()
    serial = request.args.get("serial", "").strip() or None
    if not lot:
        raise MalformedInput("the lot code is missing: it is printed next to the GTIN")
    path = DigitalLink(normalize_gtin(gtin), lot=lot, serial=serial).path()
    return redirect(request.script_root + path, code=303)  # type: ignore[return-value]


def _download(body: bytes | str, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.get("/proof/<int:index>.tlog-proof")
def proof_file(index: int) -> Response:
    """The tlog-proof of one entry (text, c2sp.org/tlog-proof@v1)."""
    with reading() as session:
        text = str(ledger.tlog_proof(session, index))
    return _download(text, "text/plain", f"suyuan-{index}.tlog-proof")


@bp.get("/proof/<int:index>.leaf")
def leaf_file(index: int) -> Response:
    """An entry exactly as hashed into the log."""
    with reading() as session:
        data = repo.leaf(session, index)
    response = _download(data, "application/octet-stream", f"suyuan-{index}.leaf")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@bp.get("/policy.txt")
def policy_file() -> Response:
    """The log's tlog-policy, as ``suyuan policy`` prints it."""
    with reading() as session:
        text = str(ledger.policy(session))
    return _download(text, "text/plain", "suyuan.tlog-policy")


@bp.get("/certificate/<int:index>")
def certificate_page(index: int) -> Response:
    """The 承诺达标合格证 recorded at entry ``index``, as a printable card."""
    with reading() as session:
        cert, lot, product = provenance.certificate_at(session, index)
    card = certificate.Certificate(
        number=cert.number, entry=cert.index, lot=cert.lot,
        product=product.name_zh if product else "",
        product_en=product.name_en if product else None,
        gtin=lot.gtin if lot else "", quantity=cert.quantity, unit=cert.unit,
        basis=cert.basis,
        issuer=cert.issuer.name, issuer_name=cert.issuer.display_name, origin=cert.origin,
        contact=cert.contact, issued=cert.issued)
    response = Response(certificate.to_html(card), mimetype="text/html")
    response.headers["Content-Security-Policy"] = CERTIFICATE_CSP
    return response
