"""`suyuan` commands for the supply chain: record hops, look at lots, trace, alerts, rebuild."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from suyuan import lazy
from suyuan.cli import (
    Failed,
    Settings,
    _progress,
    _reading,
    _signer,
    append_all_or_nothing,
    cli,
    pass_settings,
)
from suyuan.drafts import body_from_file, body_from_pairs, describe, rows_from_csv
from suyuan.errors import MalformedInput
from suyuan.events import KINDS

ledger = lazy.module("suyuan.ledger")
lineage = lazy.module("suyuan.lineage")
supply = lazy.module("suyuan.supply")


@cli.command("kinds")
@click.argument("kind", required=False)
def kinds(kind: str | None) -> None:
    """List what can be recorded, or the fields of one KIND."""
    if kind is not None:
        spec = KINDS.get(kind)
        if spec is None:
            raise click.BadParameter(f"unknown kind; choose from {', '.join(KINDS)}",
                                     param_hint="KIND")
        click.echo(describe(spec))
        return
    for spec in KINDS.values():
        click.echo(f"{spec.name:<20} {spec.title_zh}  {spec.title_en}")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--as", "name", required=True, help="Actor whose key signs.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("-f", "--file", "body_file", type=click.File("r", encoding="utf-8-sig"),
              help="The fields as a JSON or YAML object (key=value words override them).")
@click.argument("kind")
@click.argument("fields", nargs=-1)
@pass_settings
def record(settings: Settings, name: str, as_json: bool, body_file: Any, kind: str,
           fields: tuple[str, ...]) -> None:
    """Record one hop: KIND then its fields as key=value.

    \b
    Examples (see `suyuan kinds KIND` for every field):
      suyuan record --as jinzhou-coop harvest lot=JZ-0601 product=6900000000017 \\
          quantity="500 KGM" location=jz-orchard-1 event_time=2026-06-01T08:00+08:00
      suyuan record --as dl-packer shipping shipment=ZS-0001 lots="BOX-1:20 XBX" \\
          to=fresh-shop location=dl-packhouse
    Quantities are "amount UNIT" (KGM, XBX, H87 …); event_time defaults to now.
    """
    try:
        base = body_from_file(body_file.read()) if body_file is not None else None
        body = body_from_pairs(kind, list(fields), base=base)
    except MalformedInput as exc:
        raise Failed(str(exc)) from exc
    signed = _signer(settings, name)({"kind": kind, "body": body})
    db = settings.database()
    with db.writer() as session, session.begin():
        (result,) = ledger.append(session, [signed])
    if result.error is not None:
        raise Failed(f"{kind} refused: {result.error}")
    if as_json:
        click.echo(json.dumps({"index": result.index, "leaf_hash": result.leaf_hash.hex(),
                               "alerts": [vars(a) for a in result.alerts]}, ensure_ascii=False))
        return
    click.echo(f"recorded {kind} as entry {result.index}")
    for alert in result.alerts:
        click.echo(f"  ALERT [{alert.severity}] {alert.rule}: {alert.message}", err=True)


@cli.command("import-csv")
@click.option("--as", "name", required=True, help="Actor whose key signs every row.")
@click.argument("source", type=click.File("r", encoding="utf-8-sig"))
@pass_settings
def import_csv(settings: Settings, name: str, source: Any) -> None:
    """Record many hops from a CSV file, all or nothing.

    \b
    Columns: "kind" and the fields of each kind (see `suyuan kinds KIND`), written as in
    `suyuan record`; cells a row does not use stay empty. For example:
      kind,lot,product,quantity,location,event_time,shipment,lots,to
      harvest,JZ-0601,6900000000017,500 KGM,jz-orchard-1,2026-06-01T08:00+08:00,,,
      shipping,,,,jz-orchard-1,2026-06-01T12:00+08:00,ZS-01,JZ-0601:500 KGM,dl-packer
    Every row is checked first, and the rows are appended in one transaction: if any row
    is malformed or refused, each such row is reported and nothing is appended.
    """
    try:
        rows = rows_from_csv(source.read())
    except MalformedInput as exc:
        for line in str(exc).splitlines():
            click.echo(line, err=True)
        raise Failed("nothing imported: fix the rows above") from exc
    signer = _signer(settings, name)
    with _progress(len(rows), "Signing") as advance:
        signed = []
        for _, kind, body in rows:
            signed.append(signer({"kind": kind, "body": body}))
            advance(1)
    results = append_all_or_nothing(settings, signed, lambda n: f"line {rows[n - 1][0]}",
                                    report_each=True)
    alerts = [(line, alert) for (line, _, _), r in zip(rows, results, strict=True)
              for alert in r.alerts]
    for line, alert in alerts:
        click.echo(f"line {line}: ALERT [{alert.severity}] {alert.rule}: {alert.message}",
                   err=True)
    click.echo(f"imported {len(rows)} rows as entries {results[0].index}-{results[-1].index}"
               f" ({len(alerts)} alert(s))")


@cli.group("trace")
def trace_group() -> None:
    """Trace a lot back to its origins or forward to everything made from it."""


def _print_trace(result: lineage.Trace) -> None:
    click.echo(f"Trace {result.direction} from lot {result.lot}: {len(result.lots)} lot(s)")
    for info in result.lots:
        click.echo(f"  {'  ' * info.depth}{info.code}  ({info.created_kind} by {info.owner}, "
                   f"GTIN {info.gtin}{', RECALLED' if info.status == 'recalled' else ''})")
    if result.direction == "back":
        click.echo(f"Origins: {', '.join(result.origins)}")
        for item in result.inputs:
            click.echo(f"  input: {item['product_name']} ({item['input_type']}) at "
                       f"{item['location']} on {item['event_time']} [entry {item['entry']}]")
    else:
        for ship in result.shipments:
            state = "received" if ship["received"] else "in transit"
            click.echo(f"  shipment {ship['shipment']}: {ship['lot']} {ship['quantity']} "
                       f"{ship['sender']} → {ship['receiver']} ({state})")
        for holder in result.holders:
            click.echo(f"  held: {holder['actor']} holds {holder['quantity']} of {holder['lot']}")
        for sale in result.sales:
            click.echo(f"  sold: {sale['lot']} by {sale['actor']} at {sale['event_time']} "
                       f"[entry {sale['entry']}]")


def _trace(settings: Settings, lot: str, back: bool, as_json: bool) -> None:
    with _reading(settings) as session:
        result = (lineage.trace_back if back else lineage.trace_forward)(session, lot)
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        _print_trace(result)


@trace_group.command("back")
@click.argument("lot")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_settings
def trace_back(settings: Settings, lot: str, as_json: bool) -> None:
    """Every lot LOT was made from, to the origin farms and their inputs."""
    _trace(settings, lot, True, as_json)


@trace_group.command("forward")
@click.argument("lot")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_settings
def trace_forward(settings: Settings, lot: str, as_json: bool) -> None:
    """Recall scope: every lot, shipment, holder and sale downstream of LOT."""
    _trace(settings, lot, False, as_json)


@cli.command("lot")
@click.argument("code")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_settings
def lot_command(settings: Settings, code: str, as_json: bool) -> None:
    """Everything known about lot CODE: product, holders, history, alerts."""
    from suyuan import lots

    with _reading(settings) as session:
        info = lots.summary(session, code)
    holders = [(h["actor"], h["quantity"]) for h in info["holders"]]
    history, alerts = info["history"], info["alerts"]
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False))
        return
    name = " / ".join(x for x in (info["product"], info["product_en"]) if x)
    click.echo(f"Lot {code}: {name} (GTIN {info['gtin']})")
    click.echo(f"  made by {info['owner']} ({info['created_kind']}, entry {info['created_at']}) "
               f"at {info['location']}; {info['quantity']} {info['unit']}; "
               f"status {info['status'].upper()}")
    for actor, quantity in holders:
        click.echo(f"  held by {actor}: {quantity} {info['unit']}")
    click.echo("  history:")
    for item in history:
        click.echo(f"    [{item['entry']}] {item['event_time'] or '':<26} {item['kind']:<16} "
                   f"{item['actor']}")
    for alert in alerts:
        click.echo(f"  ALERT [{alert['severity']}] {alert['rule']}: {alert['message']}")


@cli.command("certificate")
@click.argument("number")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the printable "
              "HTML page here.")
@click.option("--json", "as_json", is_flag=True, help="The certificate as data.")
@pass_settings
def certificate_command(settings: Settings, number: str, output: str | None, as_json: bool
                        ) -> None:
    """Show or print the 承诺达标合格证 NUMBER (HTML page for printing with -o)."""
    from suyuan import certificate

    with _reading(settings) as session:
        cert = certificate.find(session, number)
    if as_json:
        click.echo(json.dumps(vars(cert), ensure_ascii=False))
    elif output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(certificate.to_html(cert))
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(f"承诺达标合格证 {cert.number}: {cert.product} {cert.quantity} {cert.unit}, "
                   f"lot {cert.lot}, by {cert.issuer_name} on {cert.issued} "
                   f"({certificate.BASIS_ZH[cert.basis]}), entry {cert.entry}")


@cli.group("export")
def export_group() -> None:
    """Records in the formats regulators and trading partners use."""


@export_group.command("fsma204")
@click.option("--product", help="Only this product (GTIN).")
@click.option("--lot", help="Only this lot, with its whole trace back and forward.")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First event date.")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last event date.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="FILE.csv or FILE.xlsx.")
@pass_settings
def export_fsma204(settings: Settings, product: str | None, lot: str | None, start: Any,
                   end: Any, output: str) -> None:
    """FDA FSMA 204 electronic sortable spreadsheet: one row per event and lot code."""
    from suyuan.interop import fsma204

    if not output.endswith((".csv", ".xlsx")):
        raise click.BadParameter("the file name must end in .csv or .xlsx",
                                 param_hint="--output")
    with _reading(settings) as session:
        found = fsma204.rows(session, product=product, lot=lot,
                             start=start.date() if start else None,
                             end=end.date() if end else None)
    if output.endswith(".csv"):
        with open(output, "wb") as handle:
            fsma204.write_csv(found, handle)
    else:
        fsma204.write_xlsx(found, output)
    click.echo(f"wrote {len(found)} rows to {output}")


@export_group.command("epcis")
@click.option("--lot", help="Only this lot's history.")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First event day (UTC).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Day after the last (UTC).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here, not stdout.")
@click.option("--no-validate", is_flag=True, help="Skip the EPCIS JSON schema check.")
@pass_settings
def export_epcis(settings: Settings, lot: str | None, start: Any, end: Any,
                 output: str | None, no_validate: bool) -> None:
    """GS1 EPCIS 2.0 JSON-LD document of a lot's history, a date range, or everything."""
    from datetime import UTC

    from suyuan.interop import epcis

    with _reading(settings) as session:
        if lot:
            doc = epcis.export_lot_history(session, lot)
        elif start or end:
            low = (start or datetime(1970, 1, 1)).replace(tzinfo=UTC)
            high = (end or datetime(9999, 1, 1)).replace(tzinfo=UTC)
            doc = epcis.export_range(session, low, high)
        else:
            doc = epcis.export_all(session)
    if not no_validate:
        epcis.validate_document(doc)
    text = json.dumps(doc, ensure_ascii=False, indent=1)
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        click.echo(f"wrote {len(doc['epcisBody']['eventList'])} events to {output}", err=True)
    else:
        click.echo(text)


@cli.command("import-epcis")
@click.option("--as", "name", required=True, help="Actor recording the foreign events.")
@click.argument("source", type=click.File("r", encoding="utf-8-sig"))
@pass_settings
def import_epcis(settings: Settings, name: str, source: Any) -> None:
    """Record the events of an EPCIS 2.0 JSON(-LD) document, all or nothing.

    The document is checked against the EPCIS JSON schema first; each event becomes an
    epcis_event statement signed by NAME and keeps its own eventID.
    """
    from suyuan.canonical import loads
    from suyuan.interop import epcis

    try:
        bodies = epcis.statements_for_import(loads(source.read()), source=source.name)
    except MalformedInput as exc:
        raise Failed(f"not imported: {exc}") from exc
    signer = _signer(settings, name)
    signed = [signer({"kind": "epcis_event", "body": body}) for body in bodies]
    results = append_all_or_nothing(settings, signed, lambda n: f"event {n}")
    click.echo(f"imported {len(signed)} EPCIS events as entries "
               f"{results[0].index}-{results[-1].index}")


@cli.command("event-hash")
@click.argument("source", type=click.File("rb"))
@click.option("--prehash", is_flag=True, help="Also print each event's pre-hash string.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def event_hash_command(source: Any, prehash: bool, as_json: bool) -> None:
    """CBV 2.0 event hash IDs of the events in an EPCIS document (JSON-LD or XML).

    The same event hashes alike in either syntax and however it is written, so a trading
    partner's event can be matched to ours by its hash. No database is needed.
    """
    from suyuan.canonical import loads
    from suyuan.interop import epcis_xml
    from suyuan.interop.event_hash import document_events, event_hash_id, prehash_string

    data = source.read()
    try:
        if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"<":
            events = epcis_xml.parse_document(data)
        else:
            events = document_events(loads(data.decode("utf-8-sig")))
        rows = [(event, event_hash_id(event, context), prehash_string(event, context))
                for event, context in events]
    except (MalformedInput, UnicodeDecodeError) as exc:
        raise Failed(f"{source.name}: {exc}") from exc
    except RecursionError:
        raise Failed(f"{source.name}: the document nests too deeply") from None
    if as_json:
        click.echo(json.dumps([
            {"type": event.get("type"), "eventTime": event.get("eventTime"), "hash": digest,
             **({"prehash": text} if prehash else {})}
            for event, digest, text in rows], ensure_ascii=False))
        return
    for event, digest, text in rows:
        click.echo(f"{digest}  {event.get('type')} {event.get('eventTime')}")
        if prehash:
            click.echo(f"  {text}")


@cli.command("alerts")
@click.option("--lot", help="Only alerts about this lot.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_settings
def alerts_command(settings: Settings, lot: str | None, as_json: bool) -> None:
    """Rules broken by accepted statements, for the regulator."""
    with _reading(settings) as session:
        from sqlalchemy import select

        from suyuan.storage.schema import AlertRow

        query = select(AlertRow).order_by(AlertRow.entry, AlertRow.id)
        if lot:
            query = query.where(AlertRow.lot == lot)
        rows = [{"entry": a.entry, "lot": a.lot, "rule": a.rule, "severity": a.severity,
                 "message": a.message, "status": a.status} for a in session.scalars(query)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        click.echo(f"[{row['entry']}] {row['severity']:<6} {row['rule']:<18} "
                   f"{row['lot'] or '-':<14} {row['message']}")
    click.echo(f"{len(rows)} alert(s)")


@cli.command()
@pass_settings
def rebuild(settings: Settings) -> None:
    """Rebuild every projection (lots, custody, lineage, alerts…) from the log."""
    db = settings.database()
    with db.reader() as session, session.begin():
        total = ledger.size(session)
    with _progress(total, "Rebuilding") as advance, db.writer() as session, session.begin():
        done = 0

        def report(count: int) -> None:
            nonlocal done
            advance(count - done)
            done = count

        result = supply.rebuild(session, report)
    click.echo(f"rebuilt from {result.entries} entries: {result.alerts} alert(s)"
               + (f", {result.replay_rejections} entries the rules now refuse"
                  if result.replay_rejections else ""))
