"""Recalls and serials: a recalled lot sold, packed, transformed or shipped; a serial sold
twice or unknown."""

from __future__ import annotations

from typing import Any

from suyuan.errors import UnknownReference
from suyuan.model import Statement
from suyuan.supply import Alert, SupplyState


def check(state: SupplyState, st: Statement, body: dict[str, Any], index: int, role: str
          ) -> list[Alert]:
    if st.kind in ("packing", "transformation", "shipping"):
        items = body["inputs"] if st.kind != "shipping" else body["lots"]
        moved = [state.require_lot(item["lot"]) for item in items]
        return [Alert("recalled_lot_moved", "high",
                      f"recalled lot {lot.code} was used in {st.kind} (recall entry "
                      f"{lot.recalled_at})", lot.code)
                for lot in moved if lot.status == "recalled"]
    if st.kind != "sale":
        return []
    lot = state.require_lot(body["lot"])
    alerts = []
    if lot.status == "recalled":
        alerts.append(Alert("sale_after_recall", "high",
                            f"lot {lot.code} was sold after its recall (entry {lot.recalled_at})",
                            lot.code))
    serial = body.get("serial")
    if serial is not None:
        row = state.serial(lot.gtin, serial)
        if row is None or row.lot != lot.code:
            raise UnknownReference(f"serial {serial} is not a unit of lot {lot.code}")
        if row.sold_at is not None:
            alerts.append(Alert("serial_sold_twice", "high",
                                f"unit {serial} of lot {lot.code} was already sold at entry "
                                f"{row.sold_at}", lot.code))
    return alerts
