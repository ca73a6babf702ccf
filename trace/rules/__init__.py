"""Rules checked on every append, one module per rule family.

Each family is a function of (state, statement, checked body, index, role): it raises a
:class:`~suyuan.errors.Rejected` subclass for what cannot be true, and returns
:class:`~suyuan.supply.Alert` values for what is true but wrong (a farm that harvested inside
the pesticide interval did harvest — the regulator must see it).
"""

from __future__ import annotations

from typing import Any

from suyuan.model import Statement
from suyuan.rules import chronology, coldchain, custody, pesticides, references, retail, yields
from suyuan.supply import Alert, SupplyState

FAMILIES = (references, chronology, custody, yields, pesticides, coldchain, retail)
"""In order: rejections first (references, time, custody and quantities), then alerts."""


def check(state: SupplyState, statement: Statement, body: dict[str, Any], index: int,
          role: str) -> list[Alert]:
    alerts: list[Alert] = []
    for family in FAMILIES:
        alerts.extend(family.check(state, statement, body, index, role))
    return alerts


def apply(state: SupplyState, statement: Statement, body: dict[str, Any], index: int) -> None:
    from suyuan import projector

    projector.apply(state, statement, body, index)
