"""Cold chain: readings above the commodity's limit, and gaps between readings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from suyuan.model import Statement
from suyuan.supply import Alert, SupplyState


def check(state: SupplyState, st: Statement, body: dict[str, Any], index: int, role: str
          ) -> list[Alert]:
    readings = body.get("readings")
    if not readings:
        return []
    if st.kind == "transport":
        lots = [row.lot for row in state.shipment_lots(body["shipment"])]
    else:
        lots = [body["lot"]]
    alerts: list[Alert] = []
    for code in lots:
        lot = state.lot(code)
        product = state.product(lot.gtin) if lot is not None else None
        limit = state.cold_chain(product.commodity) if product is not None else None
        if limit is None:
            continue
        alerts.extend(_excursions(st.kind, readings, Decimal(limit.max_celsius),
                                  limit.max_gap_minutes, code, product.commodity))
    return alerts


def _excursions(kind: str, readings: list[dict[str, Any]], max_celsius: Decimal, max_gap: int,
                lot: str, commodity: str) -> list[Alert]:
    alerts = []
    ordered = sorted(readings, key=lambda r: r["time"])
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
        if gap > max_gap:
            alerts.append(Alert(
                "cold_chain_gap", "low",
                f"no temperature reading for {gap:.0f} minutes after "
                f"{before['time'].isoformat()} (limit {max_gap})", lot))
            break
    return alerts
