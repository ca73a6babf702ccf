"""Recalls and serials: a recalled lot sold, packed, transformed or shipped; a serial sold
twice or unknown."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from suyuan.errors import UnknownReference
from suyuan.model import Statement
from suyuan.storage.schema import LotEventRow
from suyuan.supply import Alert, SupplyState, parse_event_time


def check(state: SupplyState, st: Statement, body: dict[str, Any], index: int, role: str
          ) -> list[Alert]:
    if st.kind in ("packing", "transformation", "shipping"):
        items = body["inputs"] if st.kind != "shipping" else body["lots"]
        moved = [state.require_lot(item["lot"]) for item in items]
        return [Alert("recalled_lot_moved", "high",
                      f"recalled lot {lot.code} was used in {st.kind} (recall entry "
                      f"{lot.recalled_at})", lot.code)
                for lot in moved if lot.status == "recalled"]
    if st.kind == "recall":
        return _sold_after(state, body)
    if st.kind != "sale":
        return []
    lot = state.require_lot(body["lot"])
    alerts = []
    recalled = _recall_time(state, lot)
    # Event time decides, not log order: a sale made before the recall but recorded after it
    # is no fault; one dated after it is, whenever it is recorded (see _sold_after).
    if recalled is not None and body["event_time"] >= recalled:
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


def _recall_time(state: SupplyState, lot: Any) -> Any:
    if lot.status != "recalled" or lot.recalled_at is None:
        return None
    event = state.session.get(LotEventRow, (lot.code, lot.recalled_at))
    if event is None or event.event_time is None:
        return None
    return parse_event_time(event.event_time)


def _sold_after(state: SupplyState, body: dict[str, Any]) -> list[Alert]:
    """Sales already recorded but dated at or after the recall being declared."""
    alerts = []
    for code in body["lots"]:
        for affected in state.downstream(code):
            for event in state.session.scalars(select(LotEventRow).where(
                    LotEventRow.lot == affected, LotEventRow.kind == "sale")):
                if event.event_time and parse_event_time(event.event_time) >= body["event_time"]:
                    alerts.append(Alert(
                        "sale_after_recall", "high",
                        f"lot {affected} was sold at {event.event_time} (entry {event.entry}), "
                        f"after the recall time, though recorded before the recall", affected))
    return alerts
