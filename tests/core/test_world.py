"""The Dalian demo world loads cleanly, raises exactly its deliberate faults, traces, rebuilds
and audits — on SQLite and on PostgreSQL."""

from __future__ import annotations

import json

import pytest

from suyuan import audit, crypto, ledger, lineage, supply, world
from suyuan.storage.db import Database
from tests.core.test_supply import _snapshot

WORLD = world.FIXTURES / "dalian" / "world.json"


@pytest.fixture
def loaded(database: Database) -> world.WorldReport:
    registrar = crypto.SigningKey.generate()
    with database.writer() as session, session.begin():
        ledger.initialise(session, origin="ledger.suyuan.example/dalian",
                          log_key=crypto.SigningKey.generate(), registrar="registrar",
                          registrar_key=registrar)
    return world.load_world(database, "registrar", registrar)


def test_the_world_raises_exactly_its_deliberate_faults(loaded: world.WorldReport) -> None:
    expected = json.loads(WORLD.read_text())["expected_alerts"]
    assert sorted((a["rule"], a["lot"]) for a in loaded.alerts) == sorted(
        (a["rule"], a["lot"]) for a in expected)
    assert loaded.actors == 18


def test_the_recall_scope_reaches_every_gift_box_and_sale(database: Database,
                                                          loaded: world.WorldReport) -> None:
    with database.reader() as session, session.begin():
        forward = lineage.trace_forward(session, "JZ-MZ-260605")
        back = lineage.trace_back(session, "MKT-BB-260701-M")
        scallop = lineage.trace_back(session, "CHP-FZ-260421")
    assert [lot.code for lot in forward.lots] == ["JZ-MZ-260605", "JZ-MZ-260605-G"]
    assert all(lot.status == "recalled" for lot in forward.lots)
    assert [s["receiver"] for s in forward.shipments] == ["dalian-fresh-ecom"]
    assert len(forward.sales) == 4
    assert back.origins == ["ZH-BB-A-260701", "ZH-BB-B-260701"]
    assert scallop.origins == ["CH-YS-260420"]


def test_the_world_rebuilds_to_the_same_state_and_audits(database: Database,
                                                         loaded: world.WorldReport) -> None:
    before = _snapshot(database)
    with database.writer() as session, session.begin():
        report = supply.rebuild(session)
    assert report.replay_rejections == 0 and report.alerts == len(loaded.alerts)
    assert _snapshot(database) == before
    assert audit.audit(database, jobs=2).size == loaded.entries + 1


def test_certificates_are_found_by_number_and_print_escaped(database: Database,
                                                            loaded: world.WorldReport) -> None:
    from dataclasses import replace

    from suyuan import certificate
    from suyuan.errors import NotFound

    with database.reader() as session, session.begin():
        cert = certificate.find(session, "HGZ-210283-260701-B")
        with pytest.raises(NotFound):
            certificate.find(session, "HGZ-NOPE")
    assert (cert.lot, cert.quantity, cert.unit, cert.basis, cert.issued) == (
        "ZH-BB-B-260701", "200", "KGM", "commissioned_test", "2026-07-01")
    page = certificate.to_html(replace(cert, issuer_name="<script>alert(1)</script>农场"))
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "委托检测合格" in page and "承诺达标合格证" in page
