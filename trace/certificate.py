"""承诺达标合格证 (compliance commitment certificate): as data, and as a printable page.

The fields follow the certificate's published layout (农业农村部令 2025 年第 4 号, in force
2026-02-01): product, quantity, producer and contact, origin, date, the basis of the
commitment and the commitment statement; the ledger adds the entry index and lot so the paper
can be checked against the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from sqlalchemy import select
from sqlalchemy.orm import Session

from suyuan import ledger
from suyuan.errors import NotFound
from suyuan.storage import repo
from suyuan.storage.schema import LotEventRow, LotRow, ProductRow

BASIS_ZH = {
    "quality_control": "内部质量控制",
    "self_test": "自我检测合格",
    "commissioned_test": "委托检测合格",
}
BASIS_EN = {
    "quality_control": "internal quality control",
    "self_test": "self-test passed",
    "commissioned_test": "commissioned test passed",
}
COMMITMENT = ("我承诺对产品质量安全以及合格证真实性负责：不使用禁用农药兽药、停用兽药和非法添加物，"
              "常规农药兽药残留不超标，对承诺的真实性负责。")


@dataclass(frozen=True)
class Certificate:
    number: str
    entry: int
    lot: str
    product: str
    product_en: str | None
    gtin: str
    quantity: str
    unit: str
    basis: str
    issuer: str
    issuer_name: str
    origin: str | None
    contact: str | None
    issued: str


def find(session: Session, number: str) -> Certificate:
    """The certificate with this number, read from its entry in the log."""
    rows = session.scalars(select(LotEventRow).where(LotEventRow.kind == "certificate")
                           .order_by(LotEventRow.entry))
    for row in rows:
        statement = ledger.entry(session, row.entry).statement_json()
        body = statement["body"]
        if body.get("certificate_no") != number:
            continue
        lot = session.get(LotRow, body["lot"])
        product = session.get(ProductRow, lot.gtin) if lot else None
        actor = repo.load_registry(session).actors.get(statement["actor"])
        return Certificate(
            number=number, entry=row.entry, lot=body["lot"],
            product=product.name_zh if product else "", product_en=product.name_en
            if product else None, gtin=lot.gtin if lot else "",
            quantity=body["quantity"]["value"], unit=body["quantity"]["unit"],
            basis=body["basis"], issuer=statement["actor"],
            issuer_name=(actor.display_name or actor.name) if actor else statement["actor"],
            origin=body.get("origin"), contact=body.get("contact"),
            issued=body["event_time"][:10],
        )
    raise NotFound(f"no certificate {number!r}")


def to_html(cert: Certificate) -> str:
    """A printable page (A6 card); every value is escaped (names are user input)."""
    e = escape
    rows = [
        ("产品名称 Product", f"{e(cert.product)}" + (f"<br><small>{e(cert.product_en)}</small>"
                                                     if cert.product_en else "")),
        ("数量（重量） Quantity", f"{e(cert.quantity)} {e(cert.unit)}"),
        ("生产者 Producer", e(cert.issuer_name)),
        ("联系方式 Contact", e(cert.contact or "")),
        ("产地 Origin", e(cert.origin or "")),
        ("开具日期 Date", e(cert.issued)),
        ("承诺依据 Basis", f"{e(BASIS_ZH[cert.basis])} / {e(BASIS_EN[cert.basis])}"),
        ("批次 Lot · GTIN", f"{e(cert.lot)} · {e(cert.gtin)}"),
        ("溯源记录 Ledger entry", str(cert.entry)),
    ]
    body = "\n".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>承诺达标合格证 {e(cert.number)}</title>
<style>
@page {{ size: A6; margin: 6mm; }}
body {{ font-family: "Noto Sans CJK SC", "Source Han Sans SC", sans-serif; margin: 0; }}
.card {{ border: 2px solid #1a5e20; padding: 4mm; max-width: 100mm; }}
h1 {{ font-size: 15pt; text-align: center; margin: 0 0 2mm; color: #1a5e20; }}
.no {{ text-align: center; font-size: 8pt; margin-bottom: 2mm; }}
table {{ width: 100%; border-collapse: collapse; font-size: 9pt; }}
th {{ text-align: left; width: 38%; font-weight: normal; color: #555; }}
th, td {{ border-bottom: 1px solid #ccc; padding: 1mm; vertical-align: top; }}
.pledge {{ font-size: 8pt; margin-top: 2mm; }}
.sign {{ margin-top: 4mm; font-size: 9pt; }}
</style></head>
<body><div class="card">
<h1>承诺达标合格证</h1>
<div class="no">编号 No. {e(cert.number)}</div>
<table>
{body}
</table>
<p class="pledge">{e(COMMITMENT)}</p>
<p class="sign">生产者盖章或签名：＿＿＿＿＿＿＿</p>
</div></body></html>
"""
