"""No event before what it depends on: the lot's creation, the shipment it receives; and no
event dated in the future of the statement that records it."""

from __future__ import annotations

from typing import Any

from suyuan.errors import ChronologyViolation
from suyuan.model import MAX_CLOCK_SKEW, Statement, parse_time
from suyuan.supply import Alert, SupplyState, parse_event_time

HOLDER_KINDS = frozenset({"cooling", "storing", "certificate", "sale", "packing",
                          "transformation", "shipping"})
"""Kinds that act on what the actor holds: they cannot be dated before it had the lot."""


def check(state: SupplyState, st: Statement, body: dict[str, Any], index: int, role: str
          ) -> list[Alert]:
    if "event_time" not in body:
        return []
    when = body["event_time"]
    if when > parse_time(st.time) + MAX_CLOCK_SKEW:
        raise ChronologyViolation(
            f"event time {when.isoformat()} is after the statement was signed ({st.time})"
        )
    kind = st.kind
    lots: list[str] = []
    if kind in ("cooling", "storing", "test", "certificate", "sale", "input_application"):
        lots = [body["lot"]] if "lot" in body else []
    elif kind in ("packing", "transformation"):
        lots = [item["lot"] for item in body["inputs"]]
    elif kind == "shipping":
        lots = [item["lot"] for item in body["lots"]]
    elif kind == "harvest" and state.lot(body["lot"]) is not None:
        lots = [body["lot"]]
    for code in lots:
        lot = state.require_lot(code)
        state.require_after(lot, when)
        if kind in HOLDER_KINDS:
            since = state.acquired(lot, st.actor)
            if since is not None and when < since:
                raise ChronologyViolation(
                    f"{kind} at {when.isoformat()} is before {st.actor} had lot {lot.code} "
                    f"(since {since.isoformat()})"
                )
    if kind == "receiving":
        shipment = state.shipment(body["shipment"])
        if shipment is not None and when < parse_event_time(shipment.shipped_time):
            raise ChronologyViolation(
                f"received at {when.isoformat()}, before shipment {shipment.id} was shipped "
                f"({shipment.shipped_time})"
            )
    return []
