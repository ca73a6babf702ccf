"""Recording and reading the supply chain through the real `suyuan` command."""

from __future__ import annotations

import json

import pytest

from tests.core.test_cli import Cli, cli  # noqa: F401  (fixture)

CHERRY = "2000000001005"


@pytest.fixture
def farm(cli: Cli) -> Cli:  # noqa: F811
    cli("init", "--origin", "ledger.test/supply")
    for name, role in (("coop", "cooperative"), ("shop", "retailer")):
        cli("keys", "new", name)
        cli("actors", "add", name, "--role", role)
    cli("record", "--as", "coop", "location_registered", "id=orchard", "name=金州果园",
        "kind=orchard")
    cli("record", "--as", "shop", "location_registered", "id=store", "name=门店", "kind=shop")
    cli("record", "--as", "coop", "product_registered", f"gtin={CHERRY}", "name_zh=美早",
        "commodity=cherry", "unit=KGM")
    return cli


def test_record_lot_trace_and_alerts(farm: Cli) -> None:
    out, _ = farm("record", "--as", "coop", "--json", "harvest", "lot=JZ-1",
                  f"product={CHERRY}", "quantity=500 KGM", "location=orchard",
                  "event_time=2026-06-01T08:00+08:00")
    assert json.loads(out)["alerts"] == []
    farm("record", "--as", "coop", "shipping", "shipment=ZS-1", "lots=JZ-1:200 KGM", "to=shop",
         "location=orchard", "event_time=2026-06-01T12:00+08:00")
    farm("record", "--as", "shop", "receiving", "shipment=ZS-1", "lots=JZ-1:200 KGM",
         "location=store", "event_time=2026-06-01T15:00+08:00")
    _, err = farm("record", "--as", "shop", "shipping", "shipment=ZS-2", "lots=JZ-1:300 KGM",
                  "to=coop", "location=store", code=1)
    assert "holds 200 KGM" in err
    _, err = farm("record", "--as", "shop", "harvest", "lot=X", f"product={CHERRY}",
                  "quantity=1 KGM", "location=store", code=1)
    assert "a retailer cannot record harvest" in err
    lot = json.loads(farm("lot", "JZ-1", "--json")[0])
    assert [h["kind"] for h in lot["history"]] == ["harvest", "shipping", "receiving"]
    assert {(h["actor"], h["quantity"]) for h in lot["holders"]} == {("coop", "300"),
                                                                    ("shop", "200")}
    forward = json.loads(farm("trace", "forward", "JZ-1", "--json")[0])
    assert [s["receiver"] for s in forward["shipments"]] == ["shop"]
    text, _ = farm("trace", "back", "JZ-1")
    assert "Origins: JZ-1" in text
    _, err = farm("lot", "NOPE", code=1)
    assert "unknown lot" in err
    assert json.loads(farm("alerts", "--json")[0]) == []
    out, _ = farm("export", "fsma204", "--lot", "JZ-1", "-o", "kde.csv")
    assert out.startswith("wrote 1 rows")  # moves before initial packing are exempt
    exported = (farm.workdir / "kde.csv").read_text(encoding="utf-8-sig").splitlines()
    assert exported[0].startswith("Critical Tracking Event") and exported[1].startswith("Harvest")
    farm("export", "fsma204", "-o", "kde.txt", code=2)
    out, _ = farm("rebuild")
    assert out.startswith("rebuilt from ")
    assert json.loads(farm("lot", "JZ-1", "--json")[0]) == lot


def test_import_csv_is_all_or_nothing(farm: Cli) -> None:
    header = "kind,lot,product,quantity,location,event_time\n"
    good = f"harvest,A,{CHERRY},10 KGM,orchard,2026-06-01T08:00+08:00\n"
    (farm.workdir / "bad-rows.csv").write_text(header + good + "harvest,B,123,x,orchard,\n")
    _, err = farm("import-csv", "--as", "coop", "bad-rows.csv", code=1)
    assert "line 3:" in err and "nothing imported" in err
    (farm.workdir / "refused.csv").write_text(
        header + good + f"harvest,C,{CHERRY},1 KGM,nowhere,2026-06-01T09:00+08:00\n")
    _, err = farm("import-csv", "--as", "coop", "refused.csv", code=1)
    assert "line 3: unknown location" in err
    size = json.loads(farm("log", "info", "--json")[0])["size"]
    (farm.workdir / "good.csv").write_text("\ufeff" + header + good)
    out, _ = farm("import-csv", "--as", "coop", "good.csv")
    assert out.startswith(f"imported 1 rows as entries {size}-{size}")
    assert json.loads(farm("log", "info", "--json")[0])["size"] == size + 1


def test_kinds_lists_every_hop_in_both_languages(cli: Cli) -> None:  # noqa: F811
    out, _ = cli("kinds")
    assert "harvest" in out and "采收" in out and "承诺达标合格证" in out
    out, _ = cli("kinds", "shipping")
    assert "shipment" in out and "to_location (optional)" in out
    cli("kinds", "teleport", code=2)


def test_epcis_export_validates_and_import_is_all_or_nothing(farm: Cli, corpora) -> None:
    farm("record", "--as", "coop", "harvest", "lot=JZ-1", f"product={CHERRY}",
         "quantity=500 KGM", "location=orchard", "event_time=2026-06-01T08:00+08:00")
    out, _ = farm("export", "epcis", "--lot", "JZ-1")
    doc = json.loads(out)
    assert [e["type"] for e in doc["epcisBody"]["eventList"]] == ["ObjectEvent"]
    example = corpora / "gs1-epcis" / "JSON" / "Example_9.6.1-ObjectEvent.jsonld"
    size = json.loads(farm("log", "info", "--json")[0])["size"]
    out, _ = farm("import-epcis", "--as", "shop", str(example))
    assert out.startswith("imported ")
    (farm.workdir / "bad.jsonld").write_text('{"type": "EPCISDocument"}')
    _, err = farm("import-epcis", "--as", "shop", "bad.jsonld", code=1)
    assert "@context" in err
    grown = json.loads(farm("log", "info", "--json")[0])["size"]
    assert grown > size
    farm("import-epcis", "--as", "shop", "bad.jsonld", code=1)
    assert json.loads(farm("log", "info", "--json")[0])["size"] == grown
