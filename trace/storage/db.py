"""Engines, sessions and migrations for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from suyuan import __version__
from suyuan.errors import ConfigError
from suyuan.storage.plain import SCHEMA_REVISION

WRITE = "suyuan_write"
"""Execution option: on SQLite, begin the transaction with ``BEGIN IMMEDIATE``."""

SQLITE_BUSY_TIMEOUT_MS = 120_000

SQLITE_WRITER_CACHE_KIB = 16 * 1024
"""Page cache of a SQLite connection while it writes (SQLite's default, kept for reading, is
2 MB). The unique indexes on ``entries.leaf_hash`` and ``entries.prev`` take random keys, so
each append touches a random page of each; past some 100,000 entries their pages no longer
fit 2 MB and every batch of a bulk import read them from the file again. Filled only as
pages are read; given back when the connection next reads."""

SQLITE_READER_CACHE_KIB = 2 * 1024
"""Page cache of a SQLite connection while it reads (about SQLite's default)."""

SQLITE_WAL_CHECKPOINT_PAGES = 16 * 1024
"""WAL pages after which a commit copies the WAL back into the database (SQLite's default is
1,000: 4 MB). A batch of appends dirties a page of those indexes per entry; checkpointed
after every batch, each such page was written twice per batch, now once per several. (Every
commit is still synced to the WAL: ``synchronous=FULL``.)"""

SQLITE_WAL_LIMIT_BYTES = 64 * 1024 * 1024
"""What the WAL file is cut back to after a checkpoint, if a large transaction grew it."""


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and route them to psycopg 3."""
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018  (a non-numeric port fails here, not deep in a driver)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"not a database URL: {url!r}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise ConfigError(f"unsupported database {parsed.drivername!r}: use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine set up for the ledger: WAL and queued writers on SQLite."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                               **kwargs)
        _setup_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _setup_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_CHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_LIMIT_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front so concurrent appenders queue instead of
        # failing later with "database is locked" on lock upgrade.
        writes = bool(conn.get_execution_options().get(WRITE))
        cache = SQLITE_WRITER_CACHE_KIB if writes else SQLITE_READER_CACHE_KIB
        if conn.info.get("suyuan_cache_kib") != cache:  # (the pooled connection's own)
            conn.exec_driver_sql(f"PRAGMA cache_size=-{cache}")
            conn.info["suyuan_cache_kib"] = cache
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


class Database:
    """An engine plus session factories for readers and writers."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            self.engine.execution_options(**{WRITE: True}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def reader(self) -> Session:
        """A session for queries; begin it with ``with db.reader() as s, s.begin():``."""
        return self._reader()

    def writer(self) -> Session:
        """A session whose transaction takes the write lock at BEGIN on SQLite."""
        return self._writer()

    def _sqlite_file(self) -> Path | None:
        database = make_url(self.url).database if self.is_sqlite else None
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database)

    def upgrade(self) -> None:
        """Create or migrate the schema to the newest revision (and a SQLite file's folder)."""
        from alembic import command  # imported here: only init and migrations need it

        path = self._sqlite_file()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

        with self.engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def is_current(self) -> bool:
        """Whether the schema exists and is at the newest revision; ``ConfigError`` if it is
        at a revision this version does not know (a newer one made it, say)."""
        path = self._sqlite_file()
        if path is not None and not path.exists():
            return False  # do not leave an empty database file behind
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return False
                current = set(conn.execute(text("SELECT version_num FROM alembic_version"))
                              .scalars())
        except OperationalError as exc:
            raise ConfigError(f"cannot open the database: {exc.orig}") from exc
        if current == {SCHEMA_REVISION}:
            return True
        unknown = sorted(current - known_revisions())
        if unknown:
            raise ConfigError(
                f"the database's schema is at revision {', '.join(unknown)}, which suyuan "
                f"{__version__} does not know: a newer version probably made it"
            )
        return False

    def dispose(self) -> None:
        self.engine.dispose()


def known_revisions() -> set[str]:
    """Every schema revision this version's migrations know."""
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(alembic_config())
            .walk_revisions()}


def alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "suyuan.storage:migrations")
    return config
