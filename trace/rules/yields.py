"""Yield of transformations and packing: mass out against mass in.

A yield is judged against the tolerance the processor declared (``yield_min``/``yield_max``;
packing declares none: it cannot make mass) and, where a regulator has published one for the
commodity and process (``limits_published`` → ``yields``), against that too, so a processor
cannot excuse itself with a wide tolerance of its own. Quantities counted in boxes or pieces
are weighed by their product's ``net_content``; without it the yield is not judged.
"""

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
    in_products = [_product_of(state, item["lot"]) for item in body["inputs"]]
    total_in = _mass(state, [(item["quantity"], gtin)
                             for item, gtin in zip(body["inputs"], in_products, strict=True)])
    total_out = _mass(state, [(out["quantity"], out["product"]) for out in outputs])
    if total_in is None or total_out is None or total_in == 0:
        return []  # no mass to compare (counted units of a product without net content)
    ratio = total_out / total_in
    process = body["process"] if st.kind == "transformation" else "packing"
    breaches = []
    low = body.get("yield_min", Decimal(0))
    high = body.get("yield_max", Decimal(1))
    if not low <= ratio <= high:
        breaches.append(f"the declared {low}-{high}")
    commodities = {state.product(gtin).commodity for gtin in in_products
                   if gtin is not None and state.product(gtin) is not None}
    if len(commodities) == 1:
        (commodity,) = commodities
        published = state.yield_limit(commodity, process)
        if published is not None and not (
                Decimal(published.min_ratio) <= ratio <= Decimal(published.max_ratio)):
            breaches.append(f"the published {published.min_ratio}-{published.max_ratio} for "
                            f"{process} of {commodity} (entry {published.entry})")
    if not breaches:
        return []
    return [Alert("yield", "medium",
                  f"yield {ratio:.3f} ({_kg(total_out)} kg from {_kg(total_in)} kg) is outside "
                  + " and ".join(breaches), outputs[0]["lot"])]


def _product_of(state: SupplyState, lot: str) -> str | None:
    row = state.lot(lot)
    return row.gtin if row is not None else None


def _mass(state: SupplyState, items: list[tuple[tuple[Decimal, str], str | None]]
          ) -> Decimal | None:
    """Total kg of (quantity, product) items, or None when one of them cannot be weighed."""
    total = Decimal(0)
    for (amount, unit), gtin in items:
        if unit in MASS_IN_KG:
            total += amount * MASS_IN_KG[unit]
            continue
        product = state.product(gtin) if gtin is not None else None
        if product is None or product.net_kg is None or product.unit != unit:
            return None
        total += amount * Decimal(product.net_kg)
    return total


def _kg(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
