"""Everything known about one lot, as data: what `suyuan lot` prints and the API's
``/lots/<code>`` returns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from suyuan.errors import NotFound
from suyuan.model import Entry
from suyuan.storage.schema import (
    AlertRow,
    EntryRow,
    HoldingRow,
    LotEventRow,
    LotRow,
    ProductRow,
)

_CHUNK = 400


def entries(session: Session, indexes: Sequence[int]) -> dict[int, Entry]:
    """The entries at ``indexes``, read in a few batched queries."""
    found: dict[int, Entry] = {}
    wanted = sorted(set(indexes))
    for start in range(0, len(wanted), _CHUNK):
        for idx, leaf in session.execute(
            select(EntryRow.idx, EntryRow.leaf).where(EntryRow.idx.in_(wanted[start:start + _CHUNK]))
        ):
            found[int(idx)] = Entry.from_leaf(bytes(leaf))
    return found


def summary(session: Session, code: str) -> dict[str, Any]:
    """Product, quantity, owner, status, who holds it now, its history (with each statement's
    body) and its alerts. Raises NotFound for an unknown lot."""
    lot = session.get(LotRow, code)
    if lot is None:
        raise NotFound(f"unknown lot {code!r}")
    product = session.get(ProductRow, lot.gtin)
    holders = [{"actor": h.actor, "quantity": h.quantity} for h in session.scalars(
        select(HoldingRow).where(HoldingRow.lot == code).order_by(HoldingRow.actor))
        if h.quantity != "0"]
    rows = list(session.scalars(
        select(LotEventRow).where(LotEventRow.lot == code).order_by(LotEventRow.entry)))
    found = entries(session, [row.entry for row in rows])
    history = [{"entry": row.entry, "kind": row.kind, "actor": row.actor,
                "event_time": row.event_time,
                "body": found[row.entry].statement_json()["body"]} for row in rows]
    alerts = [{"entry": a.entry, "rule": a.rule, "severity": a.severity, "message": a.message,
               "status": a.status}
              for a in session.scalars(select(AlertRow).where(AlertRow.lot == code)
                                       .order_by(AlertRow.entry, AlertRow.id))]
    return {
        "lot": code, "gtin": lot.gtin, "product": product.name_zh if product else None,
        "product_en": product.name_en if product else None, "owner": lot.owner,
        "quantity": lot.quantity, "unit": lot.unit, "status": lot.status,
        "created_at": lot.created_at, "created_kind": lot.created_kind,
        "created_time": lot.created_time, "location": lot.location,
        "holders": holders, "history": history, "alerts": alerts,
    }
