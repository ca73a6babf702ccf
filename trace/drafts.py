"""Turn what a clerk types (``lot=JZ-0601 quantity="500 KGM"``) into a statement body.

Values are read by the field they go into: quantities as ``500 KGM`` (or ``500KGM``), lists
of lot quantities as ``LOT:500 KGM,LOT2:20 XBX``, products as any GTIN-8/12/13/14 (stored as
14 digits), booleans as true/false, readings as ``TIME=CELSIUS;TIME=CELSIUS``; anything that
starts with ``{`` or ``[`` is JSON. A missing event_time means now, in local time.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

from suyuan import canonical
from suyuan import fields as f
from suyuan.errors import MalformedInput
from suyuan.events import KINDS, Kind, gtin
from suyuan.interop.gs1_keys import normalize_gtin

_QTY = re.compile(r"\s*(-?[0-9]+(?:\.[0-9]+)?)\s*([A-Z0-9]{2,3})\s*\Z")
LOT_LISTS = {"lots", "inputs"}
OUTPUT_LISTS = {"outputs"}


def quantity(text: str, where: str) -> dict[str, str]:
    match = _QTY.match(text)
    if not match:
        raise MalformedInput(f'{where}: write a quantity as "500 KGM" (amount, then unit code)')
    return {"value": match.group(1), "unit": match.group(2)}


def _lot_quantities(text: str, where: str) -> list[dict[str, Any]]:
    items = []
    for part in text.split(","):
        lot, sep, qty = part.partition(":")
        if not sep:
            raise MalformedInput(f'{where}: write lots as "LOT:500 KGM,LOT2:20 XBX"')
        items.append({"lot": lot.strip(), "quantity": quantity(qty, where)})
    return items


def _outputs(text: str, where: str) -> list[dict[str, Any]]:
    items = []
    for part in text.split(","):
        bits = part.split(":")
        if len(bits) != 3:
            raise MalformedInput(f'{where}: write outputs as "LOT:GTIN:500 KGM,…"')
        items.append({"lot": bits[0].strip(), "product": normalize_gtin(bits[1].strip()),
                      "quantity": quantity(bits[2], where)})
    return items


def _readings(text: str, where: str) -> list[dict[str, str]]:
    out = []
    for part in text.split(";"):
        when, sep, celsius = part.rpartition("=")
        if not sep:
            raise MalformedInput(f'{where}: write readings as "2026-06-01T09:00+08:00=3.5;…"')
        out.append({"time": when.strip(), "celsius": celsius.strip()})
    return out


def value_for(kind: Kind, key: str, text: str) -> Any:
    """The JSON value of ``key=text`` for a statement of ``kind``."""
    where = f"{key}="
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        return canonical.loads(stripped)
    checker = kind.spec.get(key, (None, False))[0]
    if checker is f.quantity or key in ("quantity", "dose", "net_content"):
        return quantity(text, where)
    if key in LOT_LISTS:
        return _lot_quantities(text, where)
    if key in OUTPUT_LISTS:
        return _outputs(text, where)
    if key == "readings":
        return _readings(text, where)
    if checker is gtin or key in ("product", "gtin"):
        return normalize_gtin(stripped)
    if checker is f.boolean:
        if stripped.lower() not in ("true", "false", "yes", "no", "是", "否"):
            raise MalformedInput(f"{where} must be true or false")
        return stripped.lower() in ("true", "yes", "是")
    if key == "corrects":
        try:
            return int(stripped)
        except ValueError as exc:
            raise MalformedInput(f"{where} must be a whole number") from exc
    return text


def body_from_file(text: str) -> dict[str, Any]:
    """A body written as JSON or YAML (quantities still as strings: "500", not 500)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MalformedInput(f"not valid JSON or YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise MalformedInput("the file must hold one object of fields")
    # YAML reads 2026-06-01T08:00:00+08:00 as a datetime and 500.5 as a float: keep the
    # signed data exact by refusing what is not text, a whole number, a list or an object.
    return canonical.loads(canonical.jcs(_plain(data, "body")))


def _plain(value: Any, where: str) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        raise MalformedInput(f'{where}: write {value} in quotes ("{value}"): numbers with '
                             "decimals are kept as text")
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def body_from_pairs(kind_name: str, pairs: list[str], *, now: datetime | None = None,
                    base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build (and check) a body from ``key=value`` words, over ``base`` (from a file)."""
    kind = KINDS.get(kind_name)
    if kind is None:
        raise MalformedInput(f"unknown kind {kind_name!r}: see `suyuan kinds`")
    body: dict[str, Any] = dict(base or {})
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise MalformedInput(f"{pair!r}: write fields as key=value")
        if key not in kind.spec:
            raise MalformedInput(f"{kind_name} has no field {key!r}; fields: "
                                 f"{', '.join(kind.spec)}")
        if kind_name == "recall" and key == "lots" and not text.strip().startswith("["):
            body[key] = [lot.strip() for lot in text.split(",") if lot.strip()]
        else:
            body[key] = value_for(kind, key, text)
    if "event_time" in kind.spec and "event_time" not in body:
        moment = (now or datetime.now().astimezone()).replace(microsecond=0)
        body["event_time"] = moment.isoformat()
    kind.validate(body)
    return body


def describe(kind: Kind) -> str:
    """Help text for one kind: its fields, required first."""
    lines = [f"{kind.name} — {kind.title_zh} / {kind.title_en}"]
    if kind.roles:
        lines.append(f"  who may record it: {', '.join(sorted(kind.roles))}")
    for required in (True, False):
        for name, (_checker, is_required) in kind.spec.items():
            if is_required == required:
                lines.append(f"  {name}{'' if required else ' (optional)'}")
    return "\n".join(lines)


def rows_from_csv(text: str) -> list[tuple[int, str, dict[str, Any]]]:
    """Read hop rows from CSV: a ``kind`` column plus one column per field (empty cells are
    left out). Returns (line number, kind, body); raises :class:`MalformedInput` listing every
    bad row, so a file is either wholly readable or refused whole."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames is None or "kind" not in reader.fieldnames:
        raise MalformedInput('the first row must name the columns, including "kind"')
    rows, problems = [], []
    for row in reader:
        line = reader.line_num
        kind = (row.get("kind") or "").strip()
        pairs = [f"{key}={value}" for key, value in row.items()
                 if key not in ("kind", None) and value is not None and value.strip()]
        if None in row:
            problems.append(f"line {line}: more cells than columns")
            continue
        try:
            rows.append((line, kind, body_from_pairs(kind, pairs)))
        except MalformedInput as exc:
            problems.append(f"line {line}: {exc}")
    if problems:
        raise MalformedInput("\n".join(problems))
    if not rows:
        raise MalformedInput("the file has no rows")
    return rows
