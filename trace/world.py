"""Load a demo world (``fixtures/dalian/world.json``) into a ledger: actors with keys made at
load time, their places and products, the published limits, then every hop, each signed by
the actor who makes it."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from suyuan import crypto, ledger
from suyuan.errors import ConfigError, Rejected
from suyuan.model import Statement, format_time, new_nonce, sign_statement
from suyuan.storage.db import Database

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@dataclass
class WorldReport:
    entries: int = 0
    actors: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, crypto.SigningKey] = field(default_factory=dict)


def fixtures_dir() -> Path:
    if not (FIXTURES / "dalian" / "world.json").exists():
        raise ConfigError(f"the demo world is not at {FIXTURES}: run from a source checkout")
    return FIXTURES


def limits_body(folder: Path) -> list[dict[str, Any]]:
    """``limits_published`` bodies from the CSV tables, one per standard edition."""
    editions: dict[str, dict[str, Any]] = {}
    with open(folder / "pesticide_limits.csv", encoding="utf-8") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        for row in rows:
            edition = editions.setdefault(row["standard"], {
                "standard": row["standard"], "effective_from": row["effective_from"],
                "source": "fixtures/pesticide_limits.csv — DEMO VALUES, verify against the "
                          "published GB 2763 and pesticide labels",
                "demo_values": True, "limits": [],
            })
            if row["effective_to"]:
                edition["effective_to"] = row["effective_to"]
            edition["limits"].append({
                "active_ingredient": row["active_ingredient"],
                "food_category": row["food_category"], "phi_days": int(row["phi_days"]),
                "mrl": row["mrl_mg_kg"],
            })
    bodies = list(editions.values())
    with open(folder / "cold_chain_limits.csv", encoding="utf-8") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        bodies[-1]["cold_chain"] = [
            {"commodity": r["commodity"], "max_celsius": r["max_celsius"],
             "max_gap_minutes": int(r["max_gap_minutes"])} for r in rows
        ]
    with open(folder / "yield_limits.csv", encoding="utf-8") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        bodies[-1]["yields"] = [
            {"commodity": r["commodity"], "process": r["process"], "min": r["min"],
             "max": r["max"]} for r in rows
        ]
    return bodies


def load_world(
    db: Database,
    registrar: str,
    registrar_key: crypto.SigningKey,
    *,
    folder: Path | None = None,
    keys: dict[str, crypto.SigningKey] | None = None,
    progress: Callable[[str], None] | None = None,
) -> WorldReport:
    """Register the world's actors and append its statements; raises on any refusal (the
    world is meant to load cleanly: its faults are alerts, not rejections)."""
    folder = folder or fixtures_dir()
    world = json.loads((folder / "dalian" / "world.json").read_text(encoding="utf-8"))
    report = WorldReport()
    keys = dict(keys or {})
    clock = _Clock()

    with db.reader() as session, session.begin():
        origin = ledger.origin(session)

    def sign(actor: str, key: crypto.SigningKey, kind: str, body: dict[str, Any]) -> Any:
        statement = Statement(kind=kind, actor=actor, key_id=crypto.key_id(actor, key.public_key)
                              .hex(), time=clock.next(body), nonce=new_nonce(), body=body,
                              log=origin)
        return sign_statement(statement, key)

    def append(batch: list[Any], what: str) -> None:
        with db.writer() as session, session.begin():
            results = ledger.append(session, batch, now=clock.latest)
        for signed, result in zip(batch, results, strict=True):
            if result.error is not None:
                raise Rejected(f"{what}: {signed.statement.kind} by {signed.statement.actor} "
                               f"refused: {result.error}")
            report.entries += 1
            for alert in result.alerts:
                report.alerts.append({"entry": result.index, **vars(alert)})
        if progress:
            progress(what)

    registrations = []
    for actor in world["actors"]:
        key = keys.setdefault(actor["name"], crypto.SigningKey.generate())
        body = {"name": actor["name"], "role": actor["role"],
                "vkey": str(crypto.verifier_key(actor["name"], key.public_key)),
                "display_name": actor["display_name"]}
        if actor.get("org_id"):
            body["org_id"] = actor["org_id"]
        registrations.append(sign(registrar, registrar_key, "actor_registered", body))
    append(registrations, "actors")
    report.actors = len(registrations)
    regulator = next(a["name"] for a in world["actors"] if a["role"] == "regulator")
    append([sign(regulator, keys[regulator], "limits_published", body)
            for body in limits_body(folder)], "limits")
    append([sign(item["as"], keys[item["as"]], "location_registered", item["body"])
            for item in world["locations"]], "locations")
    append([sign(item["as"], keys[item["as"]], "product_registered", item["body"])
            for item in world["products"]], "products")
    for item in world["statements"]:
        append([sign(item["as"], keys[item["as"]], item["kind"], item["body"])],
               f"chain {item['chain']}")
    report.keys = keys
    return report


class _Clock:
    """Statement times: just after each event's own time, so a world dated in the past
    loads with believable signing times (and never in the future of the log's clock)."""

    def __init__(self) -> None:
        self.latest = datetime.now().astimezone()

    def next(self, body: dict[str, Any]) -> str:
        when = body.get("event_time")
        if when is None:
            return format_time(self.latest)
        moment = datetime.fromisoformat(when) + timedelta(minutes=5)
        return format_time(min(moment, self.latest))
