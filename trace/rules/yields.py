"""Yield of transformations and packing: mass out against mass in, within the declared
tolerance (packing declares none: it cannot make mass)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from suyuan.model import Statement
from suyuan.supply import MASS_IN_KG, Alert, SupplyState


def check(state: SupplyState, st: Statement, body: dict[str, Any], index: int, role: str
          ) -> list[Alert]:
    if st.kind not in ("transformation", "packing"):
        return []
    outputs = body["outputs"] if st.kind == "transformation" else [body["output"]]
    total_in = _mass([item["quantity"] for item in body["inputs"]])
    total_out = _mass([out["quantity"] for out in outputs])
    if total_in is None or total_out is None or total_in == 0:
        return []  # counted in pieces or boxes: no mass to compare
    ratio = total_out / total_in
    low = body.get("yield_min", Decimal(0))
    high = body.get("yield_max", Decimal(1))
    if low <= ratio <= high:
        return []
    first = outputs[0]["lot"]
    return [Alert("yield", "medium",
                  f"yield {ratio:.3f} ({total_out} kg from {total_in} kg) is outside the "
                  f"declared {low}-{high}", first)]


def _mass(quantities: list[tuple[Decimal, str]]) -> Decimal | None:
    total = Decimal(0)
    for amount, unit in quantities:
        if unit not in MASS_IN_KG:
            return None
        total += amount * MASS_IN_KG[unit]
    return total
