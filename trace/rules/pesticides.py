"""Pesticide pre-harvest interval (安全间隔期) at harvest, and residue limits at test, using
the limits a regulator published in the log, by the edition in force on the event date."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from suyuan.model import Statement
from suyuan.supply import Alert, SupplyState, parse_event_time, substance


def check(state: SupplyState, st: Statement, body: dict[str, Any], index: int, role: str
          ) -> list[Alert]:
    if st.kind == "harvest":
        return _interval(state, body)
    if st.kind == "test":
        return _residues(state, body)
    if st.kind == "input_application" and body["input_type"] == "pesticide":
        return _late_application(state, body, index)
    return []


def _category(state: SupplyState, gtin: str) -> str | None:
    product = state.product(gtin)
    if product is None:
        return None
    return product.food_category or product.commodity


def _interval(state: SupplyState, body: dict[str, Any]) -> list[Alert]:
    category = _category(state, body["product"])
    if category is None:
        return []
    harvest = body["event_time"]
    alerts = []
    latest: dict[str, Any] = {}
    for app in state.applications(body["lot"], body["location"]):
        applied = parse_event_time(app.event_time)
        if applied <= harvest and app.active_ingredient and (
                app.active_ingredient not in latest
                or applied > parse_event_time(latest[app.active_ingredient].event_time)):
            latest[app.active_ingredient] = app
    for ingredient, app in sorted(latest.items()):
        applied = parse_event_time(app.event_time)
        limit = state.limit(ingredient, category, harvest.date())
        if limit is None or limit.phi_days is None:
            continue
        days = (harvest - applied).total_seconds() / 86400
        if days < limit.phi_days:
            alerts.append(Alert(
                "pesticide_interval", "high",
                f"harvested {days:.1f} days after {ingredient} ({app.product_name}, entry "
                f"{app.entry}); the interval for {category} is {limit.phi_days} days "
                f"({limit.standard})", body["lot"]))
    return alerts


def _late_application(state: SupplyState, body: dict[str, Any], index: int) -> list[Alert]:
    """An application recorded after a harvest it preceded: the log order must not hide an
    interval the harvest broke."""
    from sqlalchemy import select

    from suyuan.storage.schema import LotEventRow, LotRow

    applied = body["event_time"]
    ingredient = substance(body.get("active_ingredient"))
    query = select(LotEventRow, LotRow).join(LotRow, LotRow.code == LotEventRow.lot).where(
        LotEventRow.kind == "harvest", LotRow.location == body["location"])
    alerts = []
    for event, lot in state.session.execute(query):
        harvested = parse_event_time(event.event_time)
        category = _category(state, lot.gtin)
        if harvested < applied or category is None or ingredient is None:
            continue
        limit = state.limit(ingredient, category, harvested.date())
        days = (harvested - applied).total_seconds() / 86400
        if limit is not None and limit.phi_days is not None and days < limit.phi_days:
            alerts.append(Alert(
                "pesticide_interval", "high",
                f"lot {lot.code} was harvested {days:.1f} days after this {ingredient} "
                f"application (recorded later, at entry {index}; harvest entry {event.entry}); "
                f"the interval for {category} is {limit.phi_days} days ({limit.standard})",
                lot.code))
    return alerts


TO_MG_PER_KG = {"mg/kg": Decimal(1), "µg/kg": Decimal("0.001")}


def _residues(state: SupplyState, body: dict[str, Any]) -> list[Alert]:
    lot = state.require_lot(body["lot"])
    category = _category(state, lot.gtin)
    alerts = []
    for result in body["results"]:
        factor = TO_MG_PER_KG.get(result["unit"])
        stated: Decimal | None = result.get("limit")
        candidates = []
        if stated is not None:
            candidates.append((stated * factor if factor else stated, "the stated limit"))
        if factor is not None and category is not None:
            row = state.limit(result["analyte"], category, body["event_time"].date())
            if row is not None and row.mrl is not None:
                candidates.append((Decimal(row.mrl), row.standard))
        # The stricter of the stated and the published limit applies: a tester cannot
        # loosen the standard by writing its own limit.
        value = result["value"] * factor if factor else result["value"]
        over = [(limit, source) for limit, source in candidates if value > limit]
        if over or result.get("passed") is False:
            limit, source = min(over) if over else (None, "")
            shown = "mg/kg" if factor else result["unit"]
            alerts.append(Alert(
                "residue_limit", "high",
                f"{result['analyte']} {result['value']} {result['unit']} in lot {lot.code} "
                + (f"exceeds {limit} {shown} ({source})" if over else "failed the test"),
                lot.code))
    return alerts
