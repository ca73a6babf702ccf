"""Cold chain: readings above the commodity's limit, and gaps between readings.

Gaps are measured within a statement's readings and, for a shipment, across its transport
statements: from shipping to the first reading, from one statement's last reading to the next
one's first, and from the last reading (or shipping, if none) to the first receipt."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from suyuan.model import Statement
from suyuan.supply import Alert, SupplyState, parse_event_time


def check(state: SupplyState, st: Statement, body: dict[str, Any], index: int, role: str
          ) -> list[Alert]:
    if st.kind == "receiving":
        return _unrecorded_arrival(state, body)
    readings = body.get("readings")
    if not readings:
        return []
    since = None
    if st.kind == "transport":
        shipment = state.shipment(body["shipment"])
        lots = [row.lot for row in state.shipment_lots(body["shipment"])]
        if shipment is not None:
            since = _last_record(shipment)
    else:
        lots = [body["lot"]]
    alerts: list[Alert] = []
    for code, product, limit in _limits(state, lots):
        alerts.extend(_excursions(st.kind, readings, Decimal(limit.max_celsius),
                                  limit.max_gap_minutes, code, product.commodity, since))
    return alerts


def _limits(state: SupplyState, lots: list[str]) -> list[tuple[str, Any, Any]]:
    found = []
    for code in lots:
        lot = state.lot(code)
        product = state.product(lot.gtin) if lot is not None else None
        limit = state.cold_chain(product.commodity) if product is not None else None
        if limit is not None:
            found.append((code, product, limit))
    return found


def _last_record(shipment: Any) -> tuple[Any, str]:
    """When the shipment's temperature was last known (its latest transit reading) or, with
    none yet, when it left; and which of the two that is."""
    if shipment.last_reading_time is not None:
        return parse_event_time(shipment.last_reading_time), "the previous reading"
    return parse_event_time(shipment.shipped_time), "shipping"


def _unrecorded_arrival(state: SupplyState, body: dict[str, Any]) -> list[Alert]:
    shipment = state.shipment(body["shipment"])
    if shipment is None or shipment.received_at is not None:
        return []  # unknown (refused elsewhere) or already received: judged at the first receipt
    since, what = _last_record(shipment)
    minutes = (body["event_time"] - since).total_seconds() / 60
    alerts = []
    for code, product, limit in _limits(state, [item["lot"] for item in body["lots"]]):
        if minutes > limit.max_gap_minutes:
            alerts.append(Alert(
                "cold_chain_gap", "low",
                f"shipment {shipment.id} arrived {minutes:.0f} minutes after "
                + ("it left with no temperature reading in transit"
                   if what == "shipping" else f"its last reading ({since.isoformat()})")
                + f" (limit {limit.max_gap_minutes} for {product.commodity})", code))
    return alerts


def _excursions(kind: str, readings: list[dict[str, Any]], max_celsius: Decimal, max_gap: int,
                lot: str, commodity: str, since: tuple[Any, str] | None = None) -> list[Alert]:
    alerts = []
    ordered = sorted(readings, key=lambda r: r["time"])
    if since is not None:
        moment, what = since
        later = [r for r in ordered if r["time"] > moment]
        if later:
            gap = (later[0]["time"] - moment).total_seconds() / 60
            if gap > max_gap:
                alerts.append(Alert(
                    "cold_chain_gap", "low",
                    f"no temperature reading for {gap:.0f} minutes after {what} "
                    f"({moment.isoformat()}; limit {max_gap})", lot))
    if kind == "cooling":
        # Pre-cooling starts warm by design: what matters is the temperature reached.
        final = ordered[-1]
        if final["celsius"] > max_celsius:
            alerts.append(Alert("cold_chain", "medium",
                                f"pre-cooling ended at {final['celsius']} °C, above {max_celsius} °C "
                                f"for {commodity}", lot))
        return alerts
    hot = [r for r in ordered if r["celsius"] > max_celsius]
    if hot:
        peak = max(r["celsius"] for r in hot)
        alerts.append(Alert(
            "cold_chain", "medium",
            f"{len(hot)} reading(s) above {max_celsius} °C for {commodity} (peak {peak} °C at "
            f"{max(hot, key=lambda r: r['celsius'])['time'].isoformat()})", lot))
    for before, after in zip(ordered, ordered[1:], strict=False):
        gap = (after["time"] - before["time"]).total_seconds() / 60
        if gap > max_gap and not any(a.rule == "cold_chain_gap" for a in alerts):
            alerts.append(Alert(
                "cold_chain_gap", "low",
                f"no temperature reading for {gap:.0f} minutes after "
                f"{before['time'].isoformat()} (limit {max_gap})", lot))
            break
    return alerts
