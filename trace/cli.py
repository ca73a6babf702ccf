"""The ``suyuan`` command: a thin click layer over the ledger services.

Exit status: 0 success, 1 verification failed or input rejected, 2 usage error.
Errors are one line on stderr; ``SUYUAN_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from suyuan import __version__, crypto, lazy, note, prepare
from suyuan.canonical import loads
from suyuan.errors import (
    ConfigError,
    KeyStoreError,
    MalformedInput,
    NotFound,
    SuyuanError,
    VerificationError,
)
from suyuan.keystore import PASSPHRASE_ENV, KeyStore
from suyuan.model import (
    Statement,
    check_actor_name,
    format_time,
    new_nonce,
    sign_statement,
    utcnow,
)
from suyuan.registry import ROLES
from suyuan.storage import plain

if TYPE_CHECKING:
    from suyuan.storage.db import Database

# The database layer (SQLAlchemy, the ledger and its projections) is loaded by the commands
# that use it: `--help` does without, and `import` sets its workers going first.
importer = lazy.module("suyuan.importer")
ledger = lazy.module("suyuan.ledger")
witness = lazy.module("suyuan.witness")
repo = lazy.module("suyuan.storage.repo")
storage_db = lazy.module("suyuan.storage.db")

DEFAULT_DB_FILE = Path("data") / "suyuan.db"


class Failed(click.ClickException):
    """A clean failure: one line on stderr, exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"suyuan: error: {_one_line(self.format_message())}", err=True)


@dataclass
class Settings:
    db_url: str | None
    keys_dir: Path

    _db: Database | None = None

    @property
    def url(self) -> str:
        return self.db_url or f"sqlite:///{DEFAULT_DB_FILE.resolve()}"

    def database(self, *, create: bool = False) -> Database:
        if self._db is None:
            with _loading_code():
                self._db = storage_db.Database(self.url)
                ledger.size  # noqa: B018  (loads the ledger and its projections now)
            if not create and not self._db.is_current():
                raise ConfigError(
                    "no ledger here: run `suyuan init --origin ORIGIN` (or give --db / "
                    "SUYUAN_DATABASE_URL)"
                )
        return self._db

    def keystore(self) -> KeyStore:
        return KeyStore(self.keys_dir, _passphrase)


def _passphrase(creating: bool) -> str:
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    if not sys.stdin.isatty():
        raise KeyStoreError(f"no passphrase: set {PASSPHRASE_ENV} or run on a terminal")
    return click.prompt(
        "Passphrase for the new key" if creating else "Key passphrase",
        hide_input=True,
        confirmation_prompt=creating,
        err=True,
    )


pass_settings = click.make_pass_decorator(Settings)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--db", "db_url", envvar="SUYUAN_DATABASE_URL", metavar="URL",
              help="Database URL (sqlite:///path or postgresql://…). "
                   "Default: data/suyuan.db here. Env: SUYUAN_DATABASE_URL.")
@click.option("--keys", "keys_dir", envvar="SUYUAN_KEYS", default="keys", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Keystore folder. Env: SUYUAN_KEYS.")
@click.version_option(__version__, prog_name="suyuan")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, keys_dir: Path) -> None:
    """Suyuan (溯源): a verifiable, append-only traceability ledger.

    Every statement is signed by the actor who makes it and appended to an RFC 9162 Merkle
    log whose checkpoints are signed by the log and cosigned by witnesses. Anyone holding
    the policy (log and witness keys) can check a proof offline.

    Private keys are encrypted; the passphrase comes from SUYUAN_KEY_PASSPHRASE or a prompt.
    """
    ctx.obj = Settings(db_url, keys_dir)


# --- init and keys ---------------------------------------------------------------------------


@cli.command()
@click.option("--origin", required=True,
              help="The log's origin line, e.g. ledger.example.cn/dalian (no spaces or '+').")
@click.option("--registrar", default="registrar", show_default=True,
              help="Actor name of the registrar, who registers actors and keys.")
@pass_settings
def init(settings: Settings, origin: str, registrar: str) -> None:
    """Create the ledger: schema, log key, registrar key and the genesis entry."""
    _valid(crypto.check_key_name, origin, "--origin")
    _valid(check_actor_name, registrar, "--registrar")
    # Whatever can be refused is checked before anything is made, so a refused init leaves
    # the database, its folder and the keystore as they were.
    db = settings.database(create=True)
    if db.is_current():
        with db.reader() as session, session.begin():
            _refuse_if_initialised(session)
    store = settings.keystore()
    log_key = _existing_key(store, "log", origin)
    registrar_key = _existing_key(store, "actors", registrar)
    if log_key is None:
        log_key = store.create("log", origin)[0]
    if registrar_key is None:
        registrar_key = store.create("actors", registrar)[0]
    db.upgrade()
    with db.writer() as session, session.begin():
        _refuse_if_initialised(session)
        ledger.initialise(session, origin=origin, log_key=log_key, registrar=registrar,
                          registrar_key=registrar_key)
    click.echo(f"Initialised ledger {origin}")
    click.echo(f"  log key:       {crypto.verifier_key(origin, log_key.public_key)}")
    click.echo(f"  registrar:     {crypto.verifier_key(registrar, registrar_key.public_key)}")
    click.echo(f"  keystore:      {store.root}")


def _refuse_if_initialised(session: Any) -> None:
    if repo.get_meta(session, ledger.META_ORIGIN) is not None:
        raise Failed(f"the ledger is already initialised (origin {ledger.origin(session)})")


def _existing_key(store: KeyStore, kind: str, name: str) -> crypto.SigningKey | None:
    """The keystore's key ``name`` of ``kind``, checked against its verifier key; ``None``
    if there is none."""
    if not store.exists(kind, name):
        return None
    vkey = store.vkey(kind, name)
    if kind == "log" and vkey.name != name:
        raise Failed(f"{store.key_path(kind, name)} is the key of the log {vkey.name}, not of "
                     f"{name}: use another --keys folder")
    key = store.load(kind, name)
    if vkey != crypto.verifier_key(name, key.public_key):
        raise Failed(f"{store.key_path(kind, name)} does not match its verifier key")
    return key


@cli.group("log")
def log_group() -> None:
    """Facts about this log."""


@log_group.command("vkey")
@pass_settings
def log_vkey(settings: Settings) -> None:
    """Print the log's C2SP verifier key."""
    with _reading(settings) as session:
        click.echo(str(ledger.log_vkey(session)))


@log_group.command("info")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_settings
def log_info(settings: Settings, as_json: bool) -> None:
    """Print the origin, size, latest checkpoint and witnesses."""
    with _reading(settings) as session:
        latest = repo.latest_checkpoint(session)
        info = {
            "origin": ledger.origin(session),
            "size": ledger.size(session),
            "vkey": str(ledger.log_vkey(session)),
            "checkpoint": None if latest is None else latest.size,
            "witnesses": [w.name for w in repo.witnesses(session)],
        }
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False))
    else:
        for key, value in info.items():
            click.echo(f"{key + ':':12} {value}")


@cli.group("keys")
def keys_group() -> None:
    """Actor keys in the keystore."""


@keys_group.command("new")
@click.argument("name")
@pass_settings
def keys_new(settings: Settings, name: str) -> None:
    """Create an actor key NAME (encrypted, 0600) and print its verifier key."""
    _valid(check_actor_name, name, "NAME")
    _, vkey = settings.keystore().create("actors", name)
    click.echo(str(vkey))


@keys_group.command("list")
@pass_settings
def keys_list(settings: Settings) -> None:
    """List the actor keys in the keystore with their verifier keys."""
    store = settings.keystore()
    for name in store.names("actors"):
        click.echo(str(store.vkey("actors", name)))


# --- actors ----------------------------------------------------------------------------------


@cli.group("actors")
def actors_group() -> None:
    """Register and revoke actors (statements signed by the registrar)."""


@actors_group.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(list(ROLES)), help="What the actor does.")
@click.option("--vkey", help="The actor's verifier key (default: from the keystore).")
@click.option("--display-name", help="Name shown to people, e.g. 金州大樱桃合作社.")
@click.option("--org-id", help="主体码 or 统一社会信用代码.")
@click.option("--as", "signer", help="Registrar signing the statement (default: the log's).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_settings
def actors_add(settings: Settings, name: str, role: str, vkey: str | None,
               display_name: str | None, org_id: str | None, signer: str | None,
               as_json: bool) -> None:
    """Register actor NAME with ROLE and key VKEY."""
    _valid(check_actor_name, name, "NAME")
    store = settings.keystore()
    if vkey is None:
        if not store.exists("actors", name):
            raise click.UsageError(f"give --vkey, or create the key first: suyuan keys new {name}")
        vkey = str(store.vkey("actors", name))
    parsed = _valid(crypto.parse_verifier_key, vkey, "--vkey")
    body: dict[str, Any] = {"name": name, "role": role, "vkey": str(parsed)}
    if display_name:
        body["display_name"] = display_name
    if org_id:
        body["org_id"] = org_id
    _append_one(settings, signer, "actor_registered", body, as_json,
                f"Registered {name} ({role})")


@actors_group.command("revoke")
@click.argument("name")
@click.option("--key-id", help="Key to revoke (default: the actor's only active key).")
@click.option("--reason", help="Why, for the record.")
@click.option("--as", "signer", help="Who signs: the registrar (default) or the actor itself.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_settings
def actors_revoke(settings: Settings, name: str, key_id: str | None, reason: str | None,
                  signer: str | None, as_json: bool) -> None:
    """Revoke a key of actor NAME; statements it signs after this are refused."""
    with _reading(settings) as session:
        registry = ledger.registry(session)
    if name not in registry.actors:
        raise Failed(f"unknown actor {name!r}")
    active = [k for k in registry.keys.values() if k.actor == name and k.revoked_at is None]
    if key_id is None:
        if not active:
            raise Failed(f"{name} has no active key: its keys are revoked already")
        if len(active) > 1:
            listed = ", ".join(k.key_id for k in active)
            raise click.UsageError(f"{name} has {len(active)} active keys ({listed}): "
                                   "choose one with --key-id")
        key_id = active[0].key_id
    body: dict[str, Any] = {"actor": name, "key_id": key_id}
    if reason:
        body["reason"] = reason
    _append_one(settings, signer, "key_revoked", body, as_json,
                f"Revoked key {key_id} of {name}")


@actors_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_settings
def actors_list(settings: Settings, as_json: bool) -> None:
    """List registered actors and their keys."""
    with _reading(settings) as session:
        registry = ledger.registry(session)
    rows = []
    for actor in sorted(registry.actors.values(), key=lambda a: a.registered_at):
        keys = [
            {"key_id": k.key_id, "added_at": k.added_at, "revoked_at": k.revoked_at}
            for k in registry.keys.values() if k.actor == actor.name
        ]
        rows.append({"name": actor.name, "role": actor.role,
                     "display_name": actor.display_name, "keys": keys})
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        keys_text = ", ".join(
            k["key_id"] + (f" (revoked at {k['revoked_at']})" if k["revoked_at"] is not None
                           else "")
            for k in row["keys"]
        )
        label = f" {row['display_name']}" if row["display_name"] else ""
        click.echo(f"{row['name']:<24} {row['role']:<12}{label}  keys: {keys_text}")


def _append_one(settings: Settings, signer: str | None, kind: str, body: dict[str, Any],
                as_json: bool, message: str) -> None:
    db = settings.database()
    if signer is None:
        with db.reader() as session, session.begin():
            signer = repo.require_meta(session, ledger.META_REGISTRAR)
    signed = _signer(settings, signer)({"kind": kind, "body": body})
    with db.writer() as session, session.begin():
        (result,) = ledger.append(session, [signed])
    if result.error is not None:
        raise Failed(str(result.error))
    if as_json:
        click.echo(json.dumps({"index": result.index, "leaf_hash": result.leaf_hash.hex()}))
    else:
        click.echo(f"{message}: entry {result.index}")


# --- statements ------------------------------------------------------------------------------


def append_all_or_nothing(settings: Settings, signed: list[Any], label: Any, *,
                          report_each: bool = False) -> list[ledger.AppendResult]:
    """Append in one transaction, or nothing if any statement is refused. ``label(n)`` names
    statement ``n`` (1-based) in messages; ``report_each`` lists every refusal on stderr."""
    db = settings.database()
    with db.writer() as session, session.begin():
        results = ledger.append(session, signed)
        refused = [(n, r) for n, r in enumerate(results, 1) if r.error is not None]
        if refused:
            session.rollback()
            if report_each:
                for number, result in refused:
                    click.echo(f"{label(number)}: {result.error}", err=True)
                raise Failed(f"nothing appended: {len(refused)} refused")
            number, result = refused[0]
            raise Failed(f"{label(number)}: {result.error}; nothing appended")
    return results


def _read_documents(source: click.File) -> list[tuple[int, dict[str, Any]]]:
    """One JSON document (object or array), or NDJSON: (line number, object) pairs."""
    text = source.read()
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not text.strip():
        raise Failed("no input: give a JSON statement or NDJSON lines")
    try:
        whole = loads(text)
    except MalformedInput:
        whole = None
    if isinstance(whole, dict):
        return [(1, whole)]
    if isinstance(whole, list):
        return [(i, doc) for i, doc in enumerate(whole, 1)]
    documents = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            documents.append((number, loads(line)))
        except MalformedInput as exc:
            raise Failed(f"line {number}: {exc}") from exc
    return documents


def _origin(settings: Settings) -> str:
    """The origin of the ledger at --db, which statements signed for it are bound to."""
    with settings.database().reader() as session, session.begin():
        return ledger.origin(session)


def _signer(settings: Settings, name: str, log: str | None = None, *, bind: bool = True) -> Any:
    """A function turning a draft ({kind, body[, time, nonce, log]}) into a signed statement
    bound to ``log`` (default: the origin of the ledger at --db) unless ``bind`` is false."""
    if bind and log is None:
        log = _origin(settings)
    store = settings.keystore()
    key = store.load("actors", name)
    key_id = crypto.key_id(name, key.public_key).hex()

    def sign(draft: Any) -> Any:
        if not isinstance(draft, dict):
            raise MalformedInput("each statement is a JSON object with kind and body")
        if "statement" in draft and "signature" in draft:
            raise MalformedInput("this statement is already signed: use `suyuan import`")
        unknown = set(draft) - {"kind", "body", "time", "nonce", "v", "actor", "key_id", "log"}
        if unknown:
            raise MalformedInput(f"unknown field(s) {', '.join(sorted(unknown))}")
        if draft.get("actor", name) != name:
            raise MalformedInput(f"statement is for actor {draft['actor']!r}, signing as {name!r}")
        if "kind" not in draft:
            raise MalformedInput("a statement needs a kind (e.g. \"note\")")
        document = {
            "v": draft.get("v", 1),
            "kind": draft["kind"],
            "actor": name,
            "key_id": draft.get("key_id", key_id),
            "time": draft.get("time", format_time(utcnow())),
            "nonce": draft.get("nonce", new_nonce()),
            "body": draft.get("body", {}),
        }
        if "log" in draft or log is not None:
            document["log"] = draft.get("log", log)
        return sign_statement(Statement.from_json(document), key)

    return sign


@cli.command()
@click.option("--as", "name", required=True, help="Actor whose key signs.")
@click.option("--log", "log", metavar="ORIGIN",
              help="Origin of the log the statements are for (default: the ledger at --db). "
                   "A log refuses statements bound to another.")
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@pass_settings
def sign(settings: Settings, name: str, log: str | None, source: click.File) -> None:
    """Sign statements and print them (NDJSON), appending nothing.

    SOURCE is one JSON statement draft such as {"kind": "note", "body": {"text": "…"}},
    or NDJSON with one draft per line; actor, key_id, time, nonce and log are filled in.
    The output is what `suyuan import` (or the API) accepts, e.g. from a device offline.
    Without --log and without a ledger at --db the statements are not bound to a log
    (any log that knows the key would accept them); a note on stderr says so.
    """
    bind = True
    if log is None:
        try:
            log = _origin(settings)
        except ConfigError:
            bind = False
            click.echo("note: no ledger at --db and no --log: the statements are not bound "
                       "to a log", err=True)
    signer = _signer(settings, name, log, bind=bind)
    for number, draft in _read_documents(source):
        try:
            click.echo(signer(draft).to_line())
        except SuyuanError as exc:
            raise Failed(f"statement {number}: {exc}") from exc


@cli.command()
@click.option("--as", "name", required=True, help="Actor whose key signs.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"index": …, "leaf_hash": …} per statement.')
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@pass_settings
def append(settings: Settings, name: str, as_json: bool, source: click.File) -> None:
    """Sign statements as NAME and append them (all or nothing)."""
    signer = _signer(settings, name)
    signed = []
    for number, draft in _read_documents(source):
        try:
            signed.append(signer(draft))
        except SuyuanError as exc:
            raise Failed(f"statement {number}: {exc}") from exc
    results = append_all_or_nothing(settings, signed, lambda n: f"statement {n}")
    for result in results:
        if as_json:
            click.echo(json.dumps({"index": result.index, "leaf_hash": result.leaf_hash.hex()}))
        else:
            click.echo(f"appended entry {result.index} {result.leaf_hash.hex()}")


@cli.command("import")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--batch-size", default=prepare.DEFAULT_BATCH, show_default=True,
              type=click.IntRange(1, 100_000), help="Statements per transaction.")
@click.option("--jobs", type=click.IntRange(1, 256), help="Worker processes (default: cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_settings
def import_(settings: Settings, source: Any, batch_size: int, jobs: int | None,
            as_json: bool) -> None:
    """Append pre-signed statements from NDJSON (one signed statement per line).

    Valid lines are appended; each refused line is reported with its number and reason.
    Re-running the same file appends nothing twice. Exit status 1 if any line was refused.
    """
    total = 0
    if source.seekable() and sys.stderr.isatty():
        total = sum(1 for line in source if line.strip())
        source.seek(0)
    started = time.perf_counter()
    lines = prepare.read_lines(source)
    jobs = jobs or os.cpu_count() or 1
    pipeline = None
    keys = prepare.sqlite_keys(settings.url) if jobs > 1 else None
    if keys is not None:
        # A ledger in a SQLite file: its key table is read without the database layer, and
        # the workers verify the first batches while this process loads it.
        pipeline = prepare.Pipeline(lines, keys, jobs=jobs, batch_size=batch_size)
    try:
        if pipeline is not None:
            pipeline.fill()
        db = settings.database()
    except BaseException:
        if pipeline is not None:
            pipeline.close(cancel=True)
        raise
    with _progress(total, "Importing") as advance:
        summary = importer.import_lines(db, lines, batch_size=batch_size, jobs=jobs,
                                        progress=advance, pipeline=pipeline)
    elapsed = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps({
            "appended": summary.appended, "duplicates": summary.duplicates,
            "rejected": len(summary.errors), "first_index": summary.first_index,
            "last_index": summary.last_index, "seconds": round(elapsed, 3),
            "errors": [e.__dict__ for e in summary.errors[:1000]],
        }, ensure_ascii=False))
    else:
        for error in summary.errors:
            click.echo(f"line {error.line}: {error.reason}: {error.message}", err=True)
        rate = summary.lines / elapsed if elapsed > 0 else 0.0
        click.echo(f"{summary.appended} appended, {summary.duplicates} already in the log, "
                   f"{len(summary.errors)} rejected ({summary.lines} lines, {elapsed:.1f} s, "
                   f"{rate:,.0f}/s)")
    if summary.errors:
        sys.exit(1)


# A negative INDEX is an index, not an option: it reaches the command's own check.
_INDEX_SETTINGS = {"ignore_unknown_options": True}


@cli.command(context_settings=_INDEX_SETTINGS)
@click.argument("index", type=int)
@click.option("--raw", is_flag=True, help="Write exactly the leaf bytes to stdout.")
@pass_settings
def entry(settings: Settings, index: int, raw: bool) -> None:
    """Show entry INDEX (pretty JSON), or its exact leaf bytes with --raw."""
    with _reading(settings) as session:
        _check_index(session, index)
        found = ledger.entry(session, index)
    if raw:
        sys.stdout.buffer.write(found.leaf)
        sys.stdout.buffer.flush()
        return
    doc = found.to_json()
    doc["leaf_hash"] = ledger.merkle.leaf_hash(found.leaf).hex()
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2))


# --- checkpoints, witnesses, proofs ----------------------------------------------------------


@cli.command()
@pass_settings
def checkpoint(settings: Settings) -> None:
    """Sign a new checkpoint if the log grew, and print the latest signed checkpoint."""
    db = settings.database()
    with db.reader() as session, session.begin():
        origin = ledger.origin(session)
    key = settings.keystore().load("log", origin)
    with db.writer() as session, session.begin():
        result = ledger.checkpoint(session, key)
    if not result.is_new:
        click.echo(f"The log has not grown since checkpoint {result.checkpoint.size}.",
                   err=True)
    click.echo(result.note, nl=False)


@cli.group("witness")
def witness_group() -> None:
    """Witnesses cosign checkpoints that extend what they cosigned before."""


@witness_group.command("new")
@click.argument("name")
@pass_settings
def witness_new(settings: Settings, name: str) -> None:
    """Create witness key NAME, add the witness to this log, print its verifier key."""
    _valid(crypto.check_key_name, name, "NAME")
    db = settings.database()
    with db.reader() as session, session.begin():
        if repo.witness(session, name) is not None:
            raise Failed(f"witness {name!r} is already known to this log")
    _, vkey = settings.keystore().create("witnesses", name, alg=crypto.ALG_COSIGNATURE)
    with db.writer() as session, session.begin():
        repo.add_witness(session, name, str(vkey), format_time(utcnow()))
    click.echo(str(vkey))


@witness_group.command("add")
@click.argument("vkey")
@pass_settings
def witness_add(settings: Settings, vkey: str) -> None:
    """Add an outside witness to this log by its cosignature verifier key."""
    parsed = _valid(crypto.parse_verifier_key, vkey, "VKEY")
    if parsed.alg != crypto.ALG_COSIGNATURE:
        raise click.BadParameter("a witness key has type 0x04 (tlog-cosignature)",
                                 param_hint="VKEY")
    db = settings.database()
    with db.writer() as session, session.begin():
        if repo.witness(session, parsed.name) is not None:
            raise Failed(f"witness {parsed.name!r} is already known to this log")
        repo.add_witness(session, parsed.name, str(parsed), format_time(utcnow()))
    click.echo(f"Added witness {parsed.name}")


@witness_group.command("cosign")
@click.option("--as", "name", required=True, help="Witness whose key cosigns.")
@pass_settings
def witness_cosign(settings: Settings, name: str) -> None:
    """Cosign the latest checkpoint after checking it extends this witness's last one."""
    db = settings.database()
    store = settings.keystore()
    key = store.load("witnesses", name)
    with db.reader() as session, session.begin():
        known = repo.witness(session, name)
        if known is None:
            raise Failed(f"witness {name!r} is not known to this log: suyuan witness add VKEY")
        if crypto.parse_verifier_key(known.vkey) != crypto.verifier_key(
                name, key.public_key, crypto.ALG_COSIGNATURE):
            raise Failed(f"the keystore key of {name!r} is not the key this log knows")
        latest = repo.latest_checkpoint(session)
        if latest is None:
            raise Failed("no checkpoint to cosign: run `suyuan checkpoint`")
        stamp = int(time.time())
        cp, signature = witness.cosign(
            checkpoint_note=latest.note,
            log_key=ledger.log_vkey(session),
            origin=ledger.origin(session),
            name=name,
            key=key,
            state_path=store.state_path(name),
            proof_for=lambda a, b: ledger.consistency_proof(session, a, b),
            timestamp=stamp,
        )
    with db.writer() as session, session.begin():
        if not any(c.witness == name for c in repo.cosignatures(session, cp.size)):
            repo.add_cosignature(session, cp.size, name, stamp, signature.line())
    click.echo(f"{name} cosigned checkpoint {cp.size} ({cp.origin})")


@cli.command()
@click.option("--quorum", type=click.IntRange(0), help="Witness cosignatures a proof needs "
              "(default: 1 when there are witnesses).")
@pass_settings
def policy(settings: Settings, quorum: int | None) -> None:
    """Print the tlog-policy: log key, origin, witnesses and quorum."""
    with _reading(settings) as session:
        click.echo(str(ledger.policy(session, quorum)), nl=False)


@cli.command(context_settings=_INDEX_SETTINGS)
@click.argument("index", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the proof to this file (.tlog-proof) instead of stdout.")
@pass_settings
def proof(settings: Settings, index: int, output: Path | None) -> None:
    """Print the C2SP tlog-proof of entry INDEX against the latest cosigned checkpoint."""
    with _reading(settings) as session:
        _check_index(session, index)
        text = str(ledger.tlog_proof(session, index))
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)


@cli.command("verify-proof")
@click.argument("proof_file", type=click.File("rb"))
@click.option("--policy", "policy_file", required=True, type=click.File("r", encoding="utf-8"),
              help="The tlog-policy file (log and witness keys, quorum).")
@click.option("--leaf", "leaf_file", required=True, type=click.File("rb"),
              help="The entry's exact bytes (from `suyuan entry N --raw`).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify_proof(proof_file: Any, policy_file: Any, leaf_file: Any, as_json: bool) -> None:
    """Check a tlog-proof offline: no database, only the policy and the leaf."""
    parsed_policy = _read_policy(policy_file)
    leaf = leaf_file.read()
    try:
        result = note.verify_tlog_proof(proof_file.read(), leaf, parsed_policy)
    except VerificationError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "error": str(exc)}, ensure_ascii=False))
        raise Failed(f"proof does not verify: {exc}") from exc
    if as_json:
        click.echo(json.dumps({"ok": True, "index": result.index,
                               "size": result.checkpoint.size,
                               "witnesses": list(result.witnesses)}))
    else:
        witnesses = ", ".join(result.witnesses) or "none"
        click.echo(f"OK: entry {result.index} is in {result.checkpoint.origin} at size "
                   f"{result.checkpoint.size}; cosigned by {witnesses}")


@cli.command()
@click.option("--jobs", type=click.IntRange(1, 256),
              help="Processes that check entries, this one included (default: cores).")
@click.option("--policy", "policy_file", type=click.File("r", encoding="utf-8"),
              help="A tlog-policy you trust: the database's log and witness keys must be its.")
@click.option("--json", "as_json", is_flag=True, help='Print {"ok": …, "size": …, …}.')
@pass_settings
def verify(settings: Settings, jobs: int | None, policy_file: Any, as_json: bool) -> None:
    """Audit everything: signatures and key state, hash chain, Merkle nodes, checkpoints
    and cosignatures. On failure, name the first bad entry (or checkpoint) and why.

    Without --policy the keys recorded in the database are used; give the policy you hold
    (from `suyuan policy`, kept apart from the server) so a swapped key is caught too."""
    trusted = None if policy_file is None else _read_policy(policy_file)
    from suyuan import audit  # (its worker processes and friends: only for verify)

    started = time.perf_counter()
    path = plain.sqlite_path(settings.url)
    total = _file_ledger_size(path) if path is not None else None
    result = None
    fast = True
    done = 0

    def report(count: int, _total: int) -> None:
        nonlocal done
        if count > done:
            advance(count - done)
            done = count

    try:
        if path is not None and total is not None:
            # A ledger in a SQLite file: its fast pass reads it with the standard library,
            # so the workers are checking entries before (and without) the database layer.
            with _progress(total, "Verifying") as advance:
                try:
                    result = audit.audit_file(path, jobs=jobs, progress=report, policy=trusted)
                except audit.Undecided:
                    fast = False  # the reference pass names what is wrong
        if result is None:
            db = settings.database()
            with _reading(settings) as session:
                total = ledger.size(session)
            label = "Verifying" if fast else "Finding the first failure"
            done = 0  # a new bar
            with _progress(total, label) as advance:
                result = audit.audit(db, jobs=jobs, progress=report, policy=trusted, fast=fast)
    except VerificationError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "size": total or 0, "index": exc.index,
                                   "checkpoint": exc.checkpoint, "error": str(exc),
                                   "kind": type(exc).__name__}, ensure_ascii=False))
        if exc.index is not None:
            where = f" at entry {exc.index}"
        elif exc.checkpoint is not None:
            where = f" at checkpoint {exc.checkpoint}"
        else:
            where = ""
        raise Failed(f"verification FAILED{where}: {exc}") from exc
    elapsed = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps({"ok": True, "size": result.size, "root": result.root.hex(),
                               "checkpoints": result.checkpoints,
                               "cosignatures": result.cosignatures, "nodes": result.nodes,
                               "seconds": round(elapsed, 3)}))
    else:
        click.echo(f"OK: {result.size} entries, {result.nodes} tree nodes, "
                   f"{result.checkpoints} checkpoints, {result.cosignatures} cosignatures "
                   f"verified in {elapsed:.1f} s; root {result.root.hex()}")


# --- helpers ---------------------------------------------------------------------------------


def _check_index(session: Any, index: int) -> None:
    """Refuse (``NotFound``) an index that names no entry of the log."""
    size = ledger.size(session)
    if not 0 <= index < size:
        raise NotFound(f"no entry {index}: the log has {size} "
                       f"{'entry' if size == 1 else 'entries'}")


def _read_policy(source: Any) -> note.Policy:
    try:
        return note.parse_policy(source.read())
    except UnicodeDecodeError as exc:
        raise Failed(f"policy: {_not_utf8(exc)}") from exc
    except (SuyuanError, ValueError) as exc:
        raise Failed(f"policy: {exc}") from exc


def _not_utf8(error: UnicodeDecodeError) -> str:
    return f"not UTF-8 text (byte {error.object[error.start]:#04x} at position {error.start})"


def _one_line(message: str) -> str:
    """A message as one line: its lines stripped and joined with "; "."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


@contextmanager
def _reading(settings: Settings) -> Iterator[Any]:
    """A read session; text that is not UTF-8 (a database changed by hand) reaches the code
    that says what is wrong instead of failing its query."""
    db = settings.database()
    with db.reader() as session, session.begin(), repo.lenient_text(session):
        yield session


def _file_ledger_size(path: Path) -> int | None:
    """The size of the ledger in a SQLite file, read with the standard library; ``None``
    if the file does not hold one (the database layer then says what is wrong)."""
    file = plain.SqliteFile(path)
    try:
        with file.reading() as query:
            found = plain.head(query)
        return None if found is None else found[0]
    except Exception:  # not a ledger, not readable: settings.database() gives the reason
        return None
    finally:
        file.close()


@contextmanager
def _progress(total: int, label: str) -> Iterator[Any]:
    """A progress bar on a terminal (stderr); silent otherwise."""
    if total >= 1000 and sys.stderr.isatty():
        with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
            yield bar.update
    else:
        yield lambda _n: None


def _valid(check: Any, value: str, hint: str) -> Any:
    try:
        return check(value)
    except MalformedInput as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from exc


def _fail(message: str, status: int = 1) -> NoReturn:
    click.echo(f"suyuan: error: {_one_line(message)}", err=True)
    sys.exit(status)


@contextmanager
def _loading_code() -> Iterator[None]:
    """Load the database layer without cyclic garbage collection, then keep what was loaded
    out of every later collection (``gc.freeze``). The objects it creates (modules, classes,
    the ORM's tables) live as long as the process: collecting while they are made costs a
    short command a good part of its time, and scanning them again in every later
    collection slows a long one (import, verify, serve)."""
    _quiet_interrupted_database_logs()
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _quiet_interrupted_database_logs() -> None:
    """Keep out of the terminal an error that SQLAlchemy logs while a Ctrl-C unwinds a query
    ("Error closing cursor" and a traceback: the connection under it is gone). With logging
    not set up, as in a command, the logging module prints such records through its handler
    of last resort; this filters that handler, and nothing else, on the exception's chain.
    The command says "interrupted"."""
    import logging  # (loaded with the database layer in any case)

    if logging.lastResort is not None:
        logging.lastResort.addFilter(_not_interrupted)  # (added once: it is the same function)


def _not_interrupted(record: Any) -> bool:
    """Whether a log record's exception, or one it happened while handling, is no Ctrl-C."""
    error = record.exc_info[1] if record.exc_info else None
    for _ in range(100):  # (a chain is short; never loop on a cycle)
        if error is None:
            return True
        if isinstance(error, KeyboardInterrupt):
            return False
        error = error.__context__
    return True


# Click 8.2+ shows a group's help this way when it is run without a command (exit status 2).
_HELP_INSTEAD = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: every error is one line, never a traceback."""
    debug = bool(os.environ.get("SUYUAN_DEBUG"))
    try:
        cli.main(args=argv, prog_name="suyuan", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        if isinstance(exc, _HELP_INSTEAD):  # a group run without a command shows its help
            exc.show()
            sys.exit(exc.exit_code)
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see: {exc.ctx.command_path} --help)"
        _fail(exc.format_message() + hint, exc.exit_code)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):  # Ctrl-C
            click.echo("interrupted", err=True)
            sys.exit(130)
        _fail("aborted")
    except NotFound as exc:
        _fail(str(exc))
    except (ConfigError, KeyStoreError) as exc:
        _fail(str(exc))
    except SuyuanError as exc:
        if debug:
            raise
        _fail(str(exc))
    except BrokenPipeError:
        sys.exit(1)
    except UnicodeDecodeError as exc:
        _fail(f"input is {_not_utf8(exc)}")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        if debug:
            raise
        _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    except Exception as exc:
        # Errors of the database layer (loaded only if a command used it)
        errors = sys.modules.get("sqlalchemy.exc")
        if debug or errors is None or not isinstance(exc, errors.SQLAlchemyError):
            raise
        if isinstance(exc, errors.DBAPIError):
            _fail(f"database error: {exc.orig}")
        _fail(f"database error: {exc}")


from suyuan import cli_serve as _cli_serve  # noqa: E402,F401  (registers its commands)
from suyuan import cli_supply as _cli_supply  # noqa: E402,F401  (registers its commands)

if __name__ == "__main__":
    main()

