"""Shared fixtures: real SQLite files, real PostgreSQL databases, keys and ledgers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from suyuan.storage.db import Database
from tests.helpers import LedgerWorld, make_world

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
POSTGRES_URL_ENV = "SUYUAN_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def corpora() -> Path:
    """``../shared/corpora``; tests that need it skip cleanly when it is absent."""
    path = SHARED / "corpora"
    if not path.is_dir():
        pytest.skip("shared corpora not present")
    return path


def _postgres_server() -> str | None:
    return os.environ.get(POSTGRES_URL_ENV)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the test server, dropped afterwards."""
    server = _postgres_server()
    if not server:
        pytest.skip(f"{POSTGRES_URL_ENV} not set (CI always sets it)")
    name = f"suyuan_t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs on a real SQLite file and on a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def world(database: Database) -> LedgerWorld:
    """An initialised ledger with a registrar and two actors (a cooperative and a carrier)."""
    return make_world(database)


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    value = "test passphrase 测试"
    monkeypatch.setenv("SUYUAN_KEY_PASSPHRASE", value)
    return value
