"""What a clerk types becomes a checked statement body."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from suyuan.drafts import body_from_pairs, describe, rows_from_csv
from suyuan.errors import MalformedInput
from suyuan.events import KINDS

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))


def test_harvest_words_become_a_body_with_a_14_digit_gtin_and_now_as_time() -> None:
    body = body_from_pairs("harvest", ["lot=JZ-1", "product=2000000001005",
                                       "quantity=500.5KGM", "location=orch"], now=NOW)
    assert body == {"lot": "JZ-1", "product": "02000000001005",
                    "quantity": {"value": "500.5", "unit": "KGM"}, "location": "orch",
                    "event_time": "2026-06-01T08:00:00+08:00"}


def test_lists_readings_outputs_and_booleans() -> None:
    body = body_from_pairs("transformation", [
        "inputs=A:10 KGM, B:5 KGM", "outputs=C:2000000001005:1 KGM", "process=merge",
        "location=plant", "event_time=2026-06-01T08:00+08:00"])
    assert body["inputs"] == [{"lot": "A", "quantity": {"value": "10", "unit": "KGM"}},
                              {"lot": "B", "quantity": {"value": "5", "unit": "KGM"}}]
    assert body["outputs"][0]["product"] == "02000000001005"
    cooling = body_from_pairs("cooling", ["lot=A", "location=x", "readings="
                                          "2026-06-01T09:00+08:00=3.5;2026-06-01T09:30+08:00=2"])
    assert [r["celsius"] for r in cooling["readings"]] == ["3.5", "2"]
    receiving = body_from_pairs("receiving", ["shipment=S", "lots=A:1 KGM", "location=x",
                                              "first_land_based=是"])
    assert receiving["first_land_based"] is True
    recall = body_from_pairs("recall", ["lots=A, B", "reason=residue"])
    assert recall["lots"] == ["A", "B"]
    box = body_from_pairs("product_registered", [
        "gtin=2000000001012", "name_zh=礼盒", "commodity=cherry", "unit=XBX",
        "net_content=2 KGM"])
    assert box["net_content"] == {"value": "2", "unit": "KGM"}


@pytest.mark.parametrize("kind, pairs, words", [
    ("teleport", [], "unknown kind"),
    ("harvest", ["colour=red"], "no field 'colour'"),
    ("harvest", ["lot"], "key=value"),
    ("harvest", ["lot=A", "product=123", "quantity=1 KGM", "location=x"], "GTIN"),
    ("harvest", ["lot=A", "product=2000000001005", "quantity=lots", "location=x"], "quantity"),
    ("harvest", ["lot=A", "product=2000000001005", "quantity=1 KGM"], "location is required"),
    ("shipping", ["lots=A 1 KGM"], "LOT:500 KGM"),
    ("receiving", ["first_land_based=maybe"], "true or false"),
])
def test_bad_words_say_what_is_wrong(kind: str, pairs: list[str], words: str) -> None:
    with pytest.raises(MalformedInput, match=words):
        body_from_pairs(kind, pairs, now=NOW)


def test_csv_rows_are_read_whole_or_refused_with_every_bad_line() -> None:
    good = ("\ufeffkind,lot,product,quantity,location,event_time\n"
            "harvest,A,2000000001005,1 KGM,x,2026-06-01T08:00+08:00\n"
            "harvest,B,2000000001005,2 KGM,x,2026-06-01T09:00+08:00\n")
    rows = rows_from_csv(good)
    assert [(line, kind, body["lot"]) for line, kind, body in rows] == [
        (2, "harvest", "A"), (3, "harvest", "B")]
    bad = good + "harvest,C,123,1 KGM,x,\nharvest,D,2000000001005,x,x,\n"
    with pytest.raises(MalformedInput) as err:
        rows_from_csv(bad)
    assert str(err.value).splitlines()[0].startswith("line 4:")
    assert str(err.value).splitlines()[1].startswith("line 5:")
    with pytest.raises(MalformedInput, match="kind"):
        rows_from_csv("lot,product\nA,B\n")
    with pytest.raises(MalformedInput, match="no rows"):
        rows_from_csv("kind,lot\n")


def test_every_kind_has_help_naming_its_fields() -> None:
    for kind in KINDS.values():
        text = describe(kind)
        assert kind.title_zh in text and all(name in text for name in kind.spec)


def test_a_body_file_may_be_yaml_or_json_and_words_override_it() -> None:
    from suyuan.drafts import body_from_file

    base = body_from_file("# 采收\nlot: A\nproduct: '2000000001005'\n"
                          "quantity: {value: '5', unit: KGM}\nlocation: x\n"
                          "event_time: 2026-06-01T08:00:00+08:00\n")
    assert base["event_time"] == "2026-06-01T08:00:00+08:00"
    body = body_from_pairs("harvest", ["lot=B", "product=2000000001005"], base=base)
    assert body["lot"] == "B" and body["quantity"] == {"value": "5", "unit": "KGM"}
    assert body_from_file('{"lot": "A"}') == {"lot": "A"}
    with pytest.raises(MalformedInput, match="in quotes"):
        body_from_file("quantity: {value: 1.5, unit: KGM}\n")
    with pytest.raises(MalformedInput, match="one object"):
        body_from_file("- a\n- b\n")
    with pytest.raises(MalformedInput, match="not valid JSON or YAML"):
        body_from_file("a: [\n")
