"""Tests for suyuan.interop.gs1: GS1 keys, the USCC, the AI table, element strings, Digital Link.

The GS1 Barcode Syntax Engine's own Digital Link test cases (``dl.c``) are read in place from
``shared/corpora/digital-link/``; every one of them runs, none is skipped.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from suyuan.errors import MalformedInput
from suyuan.interop import gs1
from suyuan.interop.gs1 import (
    APPLICATION_IDENTIFIERS,
    CANONICAL_STEM,
    CSET82,
    DigitalLink,
    application_identifier,
    element_string,
    gs1_check_digit,
    is_valid_gln,
    is_valid_gtin,
    normalize_gln,
    normalize_gtin,
    normalize_link_type,
    parse_digital_link,
    parse_element_string,
    unbracketed_element_string,
    validate_uscc,
)

# --------------------------------------------------------------------------------------------
# The shared corpus (read in place, never copied into the project)

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpora"
DL_VECTORS = CORPUS / "digital-link" / "gs1_syntax_engine_dl_vectors.json"


def _load_vectors() -> dict[str, Any] | None:
    if not DL_VECTORS.is_file():
        return None
    return json.loads(DL_VECTORS.read_text(encoding="utf-8"))


VECTORS = _load_vectors()
ABSENT = pytest.mark.skip(reason=f"shared corpus not present: {DL_VECTORS}")


def _cases(kind: str) -> list[Any]:
    if VECTORS is None:
        return [pytest.param(None, marks=ABSENT, id=f"{kind}-absent")]
    return [pytest.param(case, id=f"{kind}-{i:03d}") for i, case in enumerate(VECTORS[kind])]


def _parse_options(flags: dict[str, bool]) -> dict[str, bool]:
    """The syntax engine's flags as parse_digital_link options.

    Unknown AIs can only ever be Digital Link *attributes* (they are never keys or qualifiers),
    so the engine's pair (permitUnknownAIs, validateUnknownAINotDLAttr) has one meaningful
    setting for Digital Link parsing: unknown attributes are accepted only when the first is on
    and the second off. That is ``permit_unknown_ais``.
    """
    return {
        "permit_zero_suppressed_gtin": flags["permitZeroSuppressedGTIN"],
        "permit_convenience_alphas": flags["permitConvenienceAlphas"],
        "permit_unknown_ais": flags["permitUnknownAIs"] and not flags["validateUnknownAINotDLAttr"],
    }


def test_corpus_has_every_case() -> None:
    if VECTORS is None:
        pytest.skip(f"shared corpus not present: {DL_VECTORS}")
    assert len(VECTORS["parse_cases"]) == 118
    assert len(VECTORS["generate_cases"]) == 22
    assert sum(case["valid"] for case in VECTORS["parse_cases"]) == 73
    assert sum(case["valid"] for case in VECTORS["generate_cases"]) == 16


@pytest.mark.parametrize("case", _cases("parse_cases"))
def test_corpus_parse_case(case: dict[str, Any]) -> None:
    options = _parse_options(case["flags"])
    if not case["valid"]:
        with pytest.raises(MalformedInput):
            parse_digital_link(case["uri"], **options)
        return
    link = parse_digital_link(case["uri"], **options)
    unknown = options["permit_unknown_ais"]
    got = unbracketed_element_string(link.elements, permit_unknown_ais=unknown)
    assert got == case["expect_ai_string"]
    # The canonical URI of what was parsed parses back to the same link.
    assert parse_digital_link(link.uri(CANONICAL_STEM), permit_unknown_ais=unknown) == link


@pytest.mark.parametrize("case", _cases("generate_cases"))
def test_corpus_generate_case(case: dict[str, Any]) -> None:
    stem = case["stem"] or CANONICAL_STEM

    def generate(*, permit_unknown_ais: bool) -> str:
        pairs = parse_element_string(case["ai_data"], permit_unknown_ais=permit_unknown_ais)
        link = DigitalLink.from_elements(pairs, permit_unknown_ais=permit_unknown_ais)
        return link.uri(stem)

    # The generate cases carry no flags. Per the corpus note, the (89) cases are those dl.c
    # runs with unknown AIs allowed: the invalid one with "unknown AIs are not DL attributes"
    # on (the default here), the valid one with it off (permit_unknown_ais=True here).
    unknown_ai_case = "(89)" in case["ai_data"]
    if unknown_ai_case:
        with pytest.raises(MalformedInput):
            generate(permit_unknown_ais=False)
    if not case["valid"]:
        with pytest.raises(MalformedInput):
            generate(permit_unknown_ais=False)
        return
    uri = generate(permit_unknown_ais=unknown_ai_case)
    assert uri == case["expect_uri"]
    parsed = parse_digital_link(uri, permit_unknown_ais=unknown_ai_case)
    assert parsed.uri(stem) == uri


# --------------------------------------------------------------------------------------------
# Check digits and GTINs


@pytest.mark.parametrize(
    ("digits", "check"),
    [
        ("950600013435", "2"),  # GTIN-13 9506000134352, GS1's own example
        ("0950600013435", "2"),  # the same as GTIN-14: leading zeros change nothing
        ("952012345678", "8"),  # GLN 9520123456788 (GS1 Digital Link standard examples)
        ("10614141123456789", "7"),  # SSCC 106141411234567897
        ("03600029145", "2"),  # UPC-A (GTIN-12) 036000291452
        ("9638507", "4"),  # GTIN-8 96385074
        ("1231231231233", "3"),  # GTIN-14 12312312312333 (syntax engine tests)
        ("0", "0"),
        ("1", "7"),
    ],
)
def test_check_digit_known_answers(digits: str, check: str) -> None:
    assert gs1_check_digit(digits) == check


@pytest.mark.parametrize("digits", ["", "95060001343A", "９５", " 123", "12-3"])
def test_check_digit_refuses_anything_but_digits(digits: str) -> None:
    with pytest.raises(MalformedInput):
        gs1_check_digit(digits)


@pytest.mark.parametrize(
    ("given", "gtin14"),
    [
        ("96385074", "00000096385074"),  # GTIN-8
        ("036000291452", "00036000291452"),  # GTIN-12 (UPC-A)
        ("9506000134352", "09506000134352"),  # GTIN-13 (EAN-13)
        ("09506000134352", "09506000134352"),  # GTIN-14
        ("12312312312333", "12312312312333"),
        ("  9506000134352\n", "09506000134352"),  # stray whitespace from a form
        ("９５０６０００１３４３５２", "09506000134352"),  # full-width digits from an IME
    ],
)
def test_normalize_gtin_gives_gtin14(given: str, gtin14: str) -> None:
    assert normalize_gtin(given) == gtin14
    assert is_valid_gtin(given)


@pytest.mark.parametrize("length", [n for n in range(1, 20) if n not in (8, 12, 13, 14)])
def test_gtin_of_wrong_length_is_rejected_saying_so(length: int) -> None:
    value = ("9506000134352" * 2)[:length]
    with pytest.raises(MalformedInput, match=rf"has {length} digits; a GTIN has 8, 12, 13 or 14"):
        normalize_gtin(value)
    assert not is_valid_gtin(value)


@pytest.mark.parametrize(
    ("position", "intruder"),
    [
        (position, intruder)
        for position in range(13)
        for intruder in ["A", "o", "-", " ", "/", "中"]
        # A space at either end is trimmed like any stray whitespace (the length check then
        # speaks), so spaces are only tried inside.
        if not (intruder == " " and position in (0, 12))
    ],
)
def test_gtin_with_a_non_digit_is_rejected_naming_it(position: int, intruder: str) -> None:
    value = "9506000134352"[:position] + intruder + "9506000134352"[position + 1 :]
    with pytest.raises(MalformedInput, match=rf"at position {position + 1}; a GTIN has digits"):
        normalize_gtin(value)


@pytest.mark.parametrize("wrong", [d for d in "0123456789" if d != "2"])
def test_gtin_with_wrong_check_digit_says_which_is_right(wrong: str) -> None:
    with pytest.raises(MalformedInput, match=rf"check digit should be 2, not {wrong}"):
        normalize_gtin("950600013435" + wrong)
    assert not is_valid_gtin("950600013435" + wrong)


@pytest.mark.parametrize("value", ["", "   ", None, 9506000134352, b"9506000134352"])
def test_gtin_that_is_not_text_or_empty_is_rejected(value: Any) -> None:
    with pytest.raises(MalformedInput, match="GTIN"):
        normalize_gtin(value)


@settings(max_examples=200, deadline=None)
@given(
    body=st.sampled_from([7, 11, 12, 13]).flatmap(
        lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)
    ),
    data=st.data(),
)
def test_every_single_digit_mistake_in_a_gtin_is_caught(body: str, data: st.DataObject) -> None:
    gtin = body + gs1_check_digit(body)
    assert normalize_gtin(gtin) == gtin.zfill(14)
    position = data.draw(st.integers(0, len(gtin) - 1))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != gtin[position]]))
    mistyped = gtin[:position] + digit + gtin[position + 1 :]
    with pytest.raises(MalformedInput, match="check digit should be"):
        normalize_gtin(mistyped)


def test_gln_known_answer_and_normalisation() -> None:
    assert is_valid_gln("9520123456788")
    assert normalize_gln(" 9520123456788 ") == "9520123456788"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9520123456789", "check digit should be 8, not 9"),
        ("952012345678", "has 12 digits; a GLN has exactly 13"),
        ("09520123456788", "has 14 digits"),
        ("95201234567B8", "contains 'B' at position 12"),
        ("", "GLN is empty"),
        (9520123456788, "GLN must be text"),
    ],
)
def test_broken_gln_is_rejected_saying_why(value: Any, message: str) -> None:
    with pytest.raises(MalformedInput, match=message):
        normalize_gln(value)
    assert not is_valid_gln(value)


# --------------------------------------------------------------------------------------------
# 统一社会信用代码 (GB 32100-2015)

# Written out from the standard, independently of the module: character values (table 1)
# and the weights W_i = 3^(i-1) mod 31 (table 2).
USCC_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def uscc_with_check(first17: str) -> str:
    total = sum(USCC_CHARACTERS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return first17 + USCC_CHARACTERS[(31 - total % 31) % 31]


def test_uscc_worked_example_of_the_standard() -> None:
    # GB 32100-2015's worked example: the sum for 91350100M000100Y4 is 1640, 1640 mod 31 = 28,
    # so the check character is 31 - 28 = 3; the example's "…Y4Z" is therefore wrong.
    assert uscc_with_check("91350100M000100Y4") == "91350100M000100Y43"
    assert validate_uscc("91350100M000100Y43") == "91350100M000100Y43"
    with pytest.raises(MalformedInput, match="'Z' at position 18"):
        validate_uscc("91350100M000100Y4Z")


@pytest.mark.parametrize(
    "first17",
    [
        "93210211MA0XYW123",  # 农民专业合作社 (9 3), 大连市金州区 210211
        "91210200241281627",  # 企业法人, 大连市 210200
        "12100000400000000",  # 机构编制 (1 2), 中央
        "Y1210281MA1B2C3D4",  # 其他 (Y), 瓦房店市 210281
        "52210283MJ0000000",  # 民政 社会团体, 庄河市 210283
    ],
)
def test_uscc_computed_examples_validate(first17: str) -> None:
    code = uscc_with_check(first17)
    assert validate_uscc(code) == code
    assert validate_uscc(f"  {code.lower()} ") == code  # trimmed and upper-cased


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("91350100M000100Y4", "has 17 characters; it must have exactly 18"),
        ("91350100M000100Y433", "has 19 characters"),
        ("91350100M000100Y44", "check character should be 3, not 4"),
        ("9135O100M000100Y43", r"'O' at position 5 \(I, O, S, V and Z are never used\)"),
        ("91350100M000100I43", "'I' at position 16"),
        ("91350100M0001-0Y43", "'-' at position 14"),
        ("913501A0M000100Y43", "characters 3-8 are an administrative division code"),
        ("", "has 0 characters"),
        (913501, "must be text"),
    ],
)
def test_broken_uscc_is_rejected_saying_why(value: Any, message: str) -> None:
    with pytest.raises(MalformedInput, match=message):
        validate_uscc(value)


USCC_BODY = st.tuples(
    st.text(alphabet=USCC_CHARACTERS, min_size=2, max_size=2),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.text(alphabet=USCC_CHARACTERS, min_size=9, max_size=9),
).map("".join)


@settings(max_examples=200, deadline=None)
@given(first17=USCC_BODY, data=st.data())
def test_every_single_character_mistake_in_a_uscc_is_caught(
    first17: str, data: st.DataObject
) -> None:
    code = uscc_with_check(first17)
    assert validate_uscc(code) == code
    position = data.draw(st.integers(0, 17))
    other = data.draw(st.sampled_from([c for c in USCC_CHARACTERS if c != code[position]]))
    with pytest.raises(MalformedInput):
        validate_uscc(code[:position] + other + code[position + 1 :])


# --------------------------------------------------------------------------------------------
# The AI table


def test_dl_primary_keys_and_key_qualifiers_are_those_of_the_standard() -> None:
    keys = {ai for ai, e in APPLICATION_IDENTIFIERS.items() if e.is_dl_primary_key}
    assert keys == {
        "00", "01", "253", "255", "401", "402", "414", "415", "417",
        "8003", "8004", "8006", "8010", "8013", "8017", "8018",
    }  # fmt: skip
    qualifiers = {ai for ai, e in APPLICATION_IDENTIFIERS.items() if e.is_dl_key_qualifier}
    assert qualifiers == {"22", "10", "21", "235", "254", "7040", "8011", "8019", "8020"}
    assert APPLICATION_IDENTIFIERS["01"].dl_qualifier_paths == (("22", "10", "21"), ("235",))
    assert APPLICATION_IDENTIFIERS["414"].dl_qualifier_paths == (("254",), ("7040",))


@pytest.mark.parametrize(
    ("ai", "spec", "fnc1", "attribute"),
    [
        ("00", [("N", 18, 18)], False, True),
        ("01", [("N", 14, 14)], False, True),
        ("10", [("X", 1, 20)], True, True),
        ("11", [("N", 6, 6)], False, True),
        ("13", [("N", 6, 6)], False, True),
        ("15", [("N", 6, 6)], False, True),
        ("17", [("N", 6, 6)], False, True),
        ("21", [("X", 1, 20)], True, False),
        ("22", [("X", 1, 20)], True, False),
        ("235", [("X", 1, 28)], True, False),
        ("250", [("X", 1, 30)], True, True),
        ("254", [("X", 1, 20)], True, False),
        ("30", [("N", 1, 8)], True, True),
        ("3103", [("N", 6, 6)], False, True),
        ("3203", [("N", 6, 6)], False, True),
        ("37", [("N", 1, 8)], True, True),
        ("400", [("X", 1, 30)], True, True),
        ("401", [("X", 1, 30)], True, True),
        ("402", [("N", 17, 17)], True, True),
        ("410", [("N", 13, 13)], False, True),
        ("414", [("N", 13, 13)], False, True),
        ("417", [("N", 13, 13)], False, True),
        ("7003", [("N", 6, 6), ("N", 4, 4)], True, True),
        ("7240", [("X", 1, 20)], True, True),
        ("8003", [("N", 1, 1), ("N", 13, 13), ("X", 1, 16)], True, True),
        ("8004", [("X", 1, 30)], True, True),
        ("8006", [("N", 14, 14), ("N", 4, 4)], True, True),
        ("8010", [("Y", 1, 30)], True, True),
        ("8013", [("X", 1, 25)], True, True),
        ("8017", [("N", 18, 18)], True, True),
        ("8018", [("N", 18, 18)], True, True),
        ("8200", [("X", 1, 70)], True, False),
    ],
)
def test_ai_formats(ai: str, spec: list[tuple[str, int, int]], fnc1: bool, attribute: bool) -> None:
    entry = application_identifier(ai)
    assert [(c.cset, c.min_length, c.max_length) for c in entry.components] == spec
    assert entry.fnc1 is fnc1
    assert entry.is_dl_data_attribute is attribute


def test_ai_table_covers_the_net_weight_ranges() -> None:
    for ai in [f"310{n}" for n in range(6)] + [f"320{n}" for n in range(6)]:
        assert APPLICATION_IDENTIFIERS[ai].max_length == 6
    assert "3106" not in APPLICATION_IDENTIFIERS
    assert [f"41{n}" for n in range(8)] == [ai for ai in APPLICATION_IDENTIFIERS if ai[:2] == "41"]


def test_ai_table_is_consistent_with_the_prefix_rules() -> None:
    # Splitting an unbracketed element string relies on these two rules of the General
    # Specifications; a mistyped table line breaks them.
    lengths: dict[str, int] = {}
    for ai, entry in APPLICATION_IDENTIFIERS.items():
        assert lengths.setdefault(ai[:2], len(ai)) == len(ai), ai
        predefined = gs1._PREDEFINED_LENGTH.get(ai[:2])
        assert entry.fnc1 is (predefined is None), ai
        if predefined is not None:
            assert entry.min_length == entry.max_length == predefined, ai


def test_unknown_ai_is_refused() -> None:
    for ai in ["89", "999", "1", "12345", "0A", ""]:
        with pytest.raises(MalformedInput, match="is not a GS1 Application Identifier"):
            application_identifier(ai)


# --------------------------------------------------------------------------------------------
# Element strings


@pytest.mark.parametrize(
    ("text", "pairs", "unbracketed"),
    [
        ("(01)09506000134352", [("01", "09506000134352")], "^0109506000134352"),
        (
            "(01)09506000134352(17)261231(10)ABC123(21)7",
            [("01", "09506000134352"), ("17", "261231"), ("10", "ABC123"), ("21", "7")],
            "^010950600013435217261231" + "10ABC123^217",
        ),
        (
            "(01)09506000134352(3103)000195(10)L\\(x)",  # "(" in a value is escaped
            [("01", "09506000134352"), ("3103", "000195"), ("10", "L(x)")],
            "^01095060001343523103000195" + "10L(x)",
        ),
        (
            "(414)9520123456788(254)32a/b",
            [("414", "9520123456788"), ("254", "32a/b")],
            "^414952012345678825432a/b",
        ),
    ],
)
def test_element_string_forms(text: str, pairs: list[tuple[str, str]], unbracketed: str) -> None:
    assert parse_element_string(text) == pairs
    assert element_string(pairs) == text
    assert unbracketed_element_string(pairs) == unbracketed
    assert unbracketed_element_string(pairs, fnc1="\x1d") == unbracketed.replace("^", "\x1d")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the element string is empty"),
        ("01)09506000134352", "expected '\\(' and an AI at position 1"),
        ("(01", "has no closing"),
        ("(89)ABC", r"\(89\) is not a GS1 Application Identifier"),
        ("(01)", "GTIN \\(AI 01\\) is empty"),
        ("(01)0950600013435", "must have exactly 14 digits; '0950600013435' has 13"),
        ("(01)09506000134353", "check digit should be 2, not 3"),
        ("(01)09506000134352(10)ABCDEFGHIJKLMNOPQRSTU", "lot \\(AI 10\\) must have 1 to 20"),
        ("(01)09506000134352(17)260230", "is not a date"),
        ("(01)09506000134352(10)a b", "contains a space at position 2"),
        ("(10)ABC", r"lot \(AI 10\) needs \(01\), \(02\), \(03\), \(8006\) or \(8026\)"),
        ("(01)09506000134352(37)12", "cannot be used together with AI \\(37\\) COUNT"),
        (
            "(01)09506000134352(3103)000195(3102)000100",
            "cannot be used together with AI \\(3102\\)",
        ),
        ("(01)09506000134352(10)A(10)B", "appears twice with different values: 'A' and 'B'"),
        ("(8013)1987654Ad4X4bL5ttr2310cXK", "check characters should be 2K, not XK"),
        ("(8006)095060001343520301", "part '0301' must be a piece number then a total"),
    ],
)
def test_broken_element_string_is_rejected_saying_why(text: str, message: str) -> None:
    with pytest.raises(MalformedInput, match=message):
        parse_element_string(text)


def test_element_string_pair_rules_can_be_left_to_the_caller() -> None:
    assert parse_element_string("(10)ABC", check_pairs=False) == [("10", "ABC")]
    assert parse_element_string("(8013)1987654Ad4X4bL5ttr2310c2K") == [
        ("8013", "1987654Ad4X4bL5ttr2310c2K")
    ]
    assert parse_element_string("(17)260200", check_pairs=False) == [("17", "260200")]  # DD=00


# --------------------------------------------------------------------------------------------
# Digital Link: building

GTIN = "09506000134352"
BASE = "https://id.suyuan.example"


def test_canonical_path_and_uri_of_a_lot() -> None:
    link = DigitalLink("9506000134352", lot="DL-2026-0601")
    assert link.gtin == GTIN
    assert link.path() == f"/01/{GTIN}/10/DL-2026-0601"
    assert link.uri(BASE) == f"{BASE}/01/{GTIN}/10/DL-2026-0601"
    assert link.uri(BASE + "/") == link.uri(BASE)
    assert link.element_string() == f"(01){GTIN}(10)DL-2026-0601"


def test_path_orders_qualifiers_as_the_standard_does() -> None:
    link = DigitalLink(GTIN, serial="S1", lot="L1", cpv="V1", attributes=(("17", "261231"),))
    assert link.path() == f"/01/{GTIN}/22/V1/10/L1/21/S1"
    assert link.uri("https://example.com/dl") == f"https://example.com/dl{link.path()}?17=261231"
    assert link.element_string() == f"(01){GTIN}(22)V1(10)L1(21)S1(17)261231"


def test_values_are_percent_encoded_in_path_and_query() -> None:
    link = DigitalLink(GTIN, lot="A/B+C%D", serial="x&y=z?", attributes=(("99", "p+q"),))
    assert link.path() == f"/01/{GTIN}/10/A%2FB%2BC%25D/21/x%26y%3Dz%3F"
    assert link.query() == "99=p%2Bq"
    assert parse_digital_link(link.uri(BASE)) == link


def test_other_primary_keys() -> None:
    gln = DigitalLink(None, key=("414", "9520123456788"), qualifiers=(("254", "32a/b"),))
    assert gln.path() == "/414/9520123456788/254/32a%2Fb"
    assert gln.primary_key == ("414", "9520123456788")
    sscc = DigitalLink(None, key=("00", "106141411234567897"), attributes={"02": GTIN, "37": "25"})
    assert sscc.uri(CANONICAL_STEM) == f"https://id.gs1.org/00/106141411234567897?02={GTIN}&37=25"
    assert parse_digital_link(sscc.uri(BASE)) == sscc


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: DigitalLink(GTIN, lot="大连樱桃"),
            "lot \\(AI 10\\) '大连樱桃' contains '大' at position 1",
        ),
        (lambda: DigitalLink(GTIN, lot="L" * 21), "lot \\(AI 10\\) must have 1 to 20 characters"),
        (lambda: DigitalLink(GTIN, lot=""), "lot \\(AI 10\\) is empty"),
        (lambda: DigitalLink(GTIN, serial="a b"), "serial \\(AI 21\\) 'a b' contains a space"),
        (lambda: DigitalLink(GTIN, serial=7), "serial \\(AI 21\\) must be text"),  # type: ignore[arg-type]
        (lambda: DigitalLink("9506000134353"), "check digit should be 2, not 3"),
        (lambda: DigitalLink(GTIN, lot="L", tpx="T"), "cannot go together"),
        (lambda: DigitalLink(GTIN, attributes=(("10", "L"),)), "belongs in the path.*use lot="),
        (lambda: DigitalLink(GTIN, attributes=(("21", "S"),)), "belongs in the path.*use serial="),
        (
            lambda: DigitalLink(GTIN, attributes=(("8200", "x"),)),
            "cannot be a Digital Link data attribute",
        ),
        (lambda: DigitalLink(GTIN, attributes=(("37", "5"),)), "cannot be used together"),
        (lambda: DigitalLink(GTIN, attributes=(("89", "x"),)), "\\(89\\) is not a GS1 Application"),
        (lambda: DigitalLink(GTIN, attributes=(("17", "261231"),) * 2), "appears more than once"),
        (lambda: DigitalLink(GTIN, attributes="17=261231"), "pairs, not a string"),
        (lambda: DigitalLink(None), "exactly one primary key"),
        (lambda: DigitalLink(GTIN, key=("00", "106141411234567897")), "exactly one primary key"),
        (lambda: DigitalLink(None, key=("01", GTIN)), "give a GTIN as gtin="),
        (
            lambda: DigitalLink(None, key=("10", "L")),
            "\\(10\\) is not a GS1 Digital Link primary key",
        ),
        (lambda: DigitalLink(None, key=("00", "1"), lot="L"), "with key= use qualifiers="),
        (lambda: DigitalLink(GTIN, qualifiers=(("10", "L"),)), "not qualifiers="),
    ],
)
def test_broken_digital_link_cannot_be_built(build: Any, message: str) -> None:
    with pytest.raises(MalformedInput, match=message):
        build()


def test_unknown_attributes_only_when_permitted() -> None:
    link = DigitalLink(GTIN, attributes=(("89", "x"),), permit_unknown_ais=True)
    assert link.query() == "89=x"
    with pytest.raises(MalformedInput):
        parse_digital_link(link.uri(BASE))
    assert parse_digital_link(link.uri(BASE), permit_unknown_ais=True) == link


@pytest.mark.parametrize(
    "base",
    ["id.suyuan.example", "ftp://a", "https://", "https:///x", "https://a?b", "https://a/#", 7],
)
def test_bad_uri_base_is_refused(base: Any) -> None:
    with pytest.raises(MalformedInput, match="URI base"):
        DigitalLink(GTIN, lot="L").uri(base)


def test_from_elements_builds_what_gs1_builds() -> None:
    pairs = parse_element_string("(21)S(01)09506000134352(17)261231(10)L(99)note(3103)000195")
    link = DigitalLink.from_elements(pairs)
    assert link == DigitalLink(
        GTIN, lot="L", serial="S", attributes=(("17", "261231"), ("3103", "000195"), ("99", "note"))
    )
    with pytest.raises(MalformedInput, match="no GS1 Digital Link primary key"):
        DigitalLink.from_elements([("99", "x")])
    with pytest.raises(MalformedInput, match="appears twice with different values"):
        DigitalLink.from_elements([("01", GTIN), ("01", "09520123456788")])


# --------------------------------------------------------------------------------------------
# Digital Link: parsing


def test_parse_a_lot_uri() -> None:
    link = parse_digital_link(f"{BASE}/01/{GTIN}/10/DL-2026-0601?17=261231&linkType=gs1:pip#x")
    assert link == DigitalLink(GTIN, lot="DL-2026-0601", attributes=(("17", "261231"),))
    assert link.serial is None


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (f"{BASE}/01/09506000134353/10/L", "check digit should be 2, not 3"),
        (f"{BASE}/01/9506000134352/10/L", "must be a 14-digit GTIN.*write it as 09506000134352"),
        (f"{BASE}/01/{GTIN}/10/{'L' * 21}", "lot \\(AI 10\\) must have 1 to 20 characters"),
        (f"{BASE}/01/{GTIN}/10/%E5%A4%A7", "lot \\(AI 10\\) .* contains '大'"),
        (f"{BASE}/01/{GTIN}/10/大", "'大' at position 48 is not allowed in a URI; .*%E5%A4%A7"),
        (f"{BASE}/01/{GTIN}/10/a b", "a space at position 49 is not allowed in a URI"),
        (f"{BASE}/01/{GTIN}/21/S/10/L", "not a valid key-qualifier sequence.*in this order"),
        (f"{BASE}/01/{GTIN}/235/T/10/L", "not a valid key-qualifier sequence.*not a mix"),
        (f"{BASE}/10/L", "no GS1 primary key found in the path"),
        (f"{BASE}/lots/L", "no GS1 primary key found in the path"),
        (f"{BASE}/01/{GTIN}/89/X", "\\(89\\) is not a GS1 Application Identifier"),
        (f"{BASE}/01/{GTIN}/10/L/", "must not end with '/'"),
        (f"{BASE}/01/{GTIN}/10/L?10=L", "appears more than once"),
        (f"{BASE}/01/{GTIN}?10=L", "belongs in the path, not the query string \\(use lot=\\)"),
        (f"{BASE}/01/{GTIN}?17=", "value of expiry date \\(AI 17\\) in the query string is empty"),
        (f"{BASE}/01/{GTIN}?17=261232", "is not a date"),
        (f"{BASE}/01/{GTIN}?123=x", "query parameter '123' is all digits but not a GS1"),
        (f"{BASE}/01/{GTIN}/10/L%00", "encoded NUL"),
        (f"{BASE}/01/{GTIN}?99=a+b", "'\\+' means a space; write a plus sign as %2B"),
        (f"ftp://id.suyuan.example/01/{GTIN}", "starts with https:// or http://"),
        (f"Https://id.suyuan.example/01/{GTIN}", "starts with https:// or http://"),
        (f"https://id_suyuan.example/01/{GTIN}", "host name 'id_suyuan.example' contains '_'"),
        ("https://", "no host name"),
        ("", "empty"),
    ],
)
def test_broken_digital_link_is_rejected_saying_why(uri: str, message: str) -> None:
    with pytest.raises(MalformedInput, match=message):
        parse_digital_link(uri)


def test_parse_refuses_non_text() -> None:
    with pytest.raises(MalformedInput, match="must be text"):
        parse_digital_link(b"https://a/01/09506000134352")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Round trips

CSET82_TEXT = st.text(alphabet=sorted(CSET82), min_size=1, max_size=20)
GTINS = st.text(alphabet="0123456789", min_size=13, max_size=13).map(
    lambda body: body + gs1_check_digit(body)
)
EXPIRY = st.dates(min_value=date(2000, 1, 1), max_value=date(2049, 12, 31)).map(
    lambda d: d.strftime("%y%m%d")
)


@st.composite
def digital_links(draw: st.DrawFn) -> DigitalLink:
    attributes: list[tuple[str, str]] = []
    # Fixed-length attributes first, so that from_elements (which orders them so) agrees.
    if draw(st.booleans()):
        attributes.append(("17", draw(EXPIRY)))
    if draw(st.booleans()):
        attributes.append(("3103", draw(st.text(alphabet="0123456789", min_size=6, max_size=6))))
    if draw(st.booleans()):
        attributes.append(("99", draw(st.text(alphabet=sorted(CSET82), min_size=1, max_size=90))))
    return DigitalLink(
        draw(GTINS),
        lot=draw(st.none() | CSET82_TEXT),
        serial=draw(st.none() | CSET82_TEXT),
        cpv=draw(st.none() | CSET82_TEXT),
        attributes=tuple(attributes),
    )


@settings(max_examples=300, deadline=None)
@given(link=digital_links())
def test_digital_link_round_trips(link: DigitalLink) -> None:
    uri = link.uri(BASE)
    assert parse_digital_link(uri) == link
    assert parse_digital_link(link.uri(CANONICAL_STEM)) == link
    assert parse_element_string(link.element_string()) == list(link.elements)
    assert DigitalLink.from_elements(link.elements) == link


ANY_FORM_GTINS = (
    st.sampled_from([7, 11, 12, 13])
    .flatmap(lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n))
    .map(lambda body: body + gs1_check_digit(body))
)


@settings(max_examples=200, deadline=None)
@given(gtin=ANY_FORM_GTINS, lot=CSET82_TEXT, serial=st.none() | CSET82_TEXT)
def test_any_gtin_form_gives_the_same_link(gtin: str, lot: str, serial: str | None) -> None:
    link = DigitalLink(gtin, lot=lot, serial=serial)
    assert link == DigitalLink(gtin.zfill(14), lot=lot, serial=serial)
    assert link.gtin == gtin.zfill(14)
    assert link.path().startswith(f"/01/{gtin.zfill(14)}/10/")
    assert parse_digital_link(link.uri(BASE)) == link


# --------------------------------------------------------------------------------------------
# Link types


@pytest.mark.parametrize(
    "value",
    ["gs1:pip", "https://ref.gs1.org/voc/pip", "https://gs1.org/voc/pip", "http://gs1.org/voc/pip"],
)
def test_link_type_forms(value: str) -> None:
    assert normalize_link_type(value) == "gs1:pip"
    assert normalize_link_type("gs1:certificationInfo") == "gs1:certificationInfo"


@pytest.mark.parametrize("value", ["pip", "gs1:", "gs1:Pip x", "https://example.com/pip", None])
def test_bad_link_type_is_refused(value: Any) -> None:
    with pytest.raises(MalformedInput):
        normalize_link_type(value)
