"""The 简体中文 catalog: every message of the site is translated, placeholders are kept, and
the compiled catalog the site loads is the one the .po file says.

After changing a message in the code or templates, from the repository root:

    .venv/bin/pybabel extract -F babel.cfg --project=Suyuan --version=0.1.0 \\
        -c "Translators:" -o web/translations/messages.pot .
    .venv/bin/pybabel update -d web/translations -i web/translations/messages.pot -l zh
    (translate the new entries in web/translations/zh/LC_MESSAGES/messages.po)
    .venv/bin/pybabel compile -d web/translations
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

REPO = Path(__file__).resolve().parents[2]
TRANSLATIONS = REPO / "web" / "translations"
PO = TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po"
MO = TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.mo"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def _po() -> Catalog:
    with PO.open("rb") as handle:
        return read_po(handle, locale="zh")


def _mo() -> Catalog:
    with MO.open("rb") as handle:
        return read_mo(handle)


def _translations(catalog: Catalog) -> dict[Any, Any]:
    """id → translation; plural ids and forms as tuples (read_mo gives lists)."""
    def norm(value: Any) -> Any:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {norm(m.id): norm(m.string) for m in catalog if m.id}


def _source_messages() -> set[Any]:
    """Every message in web/ as babel.cfg extracts it."""
    with (REPO / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(REPO), method_map, options_map):
        found.add(message)
    return found


def test_every_message_in_the_code_is_in_the_catalog() -> None:
    catalog = _translations(_po())
    missing = sorted(map(str, _source_messages() - set(catalog)))
    assert missing == [], "run pybabel extract/update (see this module's docstring)"


def test_every_message_has_a_chinese_translation_and_none_is_fuzzy() -> None:
    catalog = _po()
    assert catalog.plural_forms == "nplurals=1; plural=0;"
    untranslated = []
    for message in catalog:
        if not message.id:
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(forms):
            untranslated.append(message.id)
    assert untranslated == []
    assert len(catalog) > 100


def test_translations_keep_the_placeholders() -> None:
    wrong = []
    for message in _po():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set().union(*(PLACEHOLDER.findall(text) for text in ids))
        for form in forms:
            if set(PLACEHOLDER.findall(form)) != wanted:
                wrong.append((message.id, form))
    assert wrong == []


def test_the_compiled_catalog_is_up_to_date_with_the_po_file() -> None:
    po, mo = _translations(_po()), _translations(_mo())
    assert mo == po, "run: pybabel compile -d web/translations"


def test_a_stale_compiled_catalog_would_be_noticed(tmp_path: Path) -> None:
    catalog = _po()
    message = next(m for m in catalog if m.id == "Recalled")
    message.string = "已下架"
    stale = tmp_path / "messages.mo"
    with stale.open("wb") as handle:
        write_mo(handle, catalog)
    with stale.open("rb") as handle:
        assert _translations(read_mo(handle)) != _translations(_po())


@pytest.mark.parametrize(("path", "chinese", "english"), [
    ("/", "扫描产品上的二维码", "Scan the QR code on a product"),
    ("/01/02000000001012/10/NO-SUCH-LOT", "未找到", "Not found"),
    ("/01/02000000001013/10/X", "无法识别此码", "This code cannot be read"),
])
def test_pages_are_chinese_by_default_and_english_when_asked(
        reader: FlaskClient, path: str, chinese: str, english: str) -> None:
    zh = reader.get(path)
    assert chinese in zh.text and english not in zh.text
    assert "返回首页" in zh.text or path == "/"
    assert "本页每条记录均由记录方签名" in zh.text
    en = reader.get(path, headers={"Accept-Language": "en"})
    assert english in en.text and chinese not in en.text
