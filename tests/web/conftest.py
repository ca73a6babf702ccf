"""The Dalian world as the website serves it: a real SQLite ledger, checkpointed and cosigned
by a witness, built once per test process; tests that write get their own copy."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from suyuan import crypto, ledger, witness, world
from suyuan.storage import repo
from suyuan.storage.db import Database, sqlite_url
from suyuan_web import create_app
from tests.web.browser import (  # noqa: F401  (fixtures for the browser tests)
    browser_fixture,
    browser_page_fixture,
    live_server_fixture,
)

ORIGIN = "ledger.suyuan.example/dalian"
WITNESS = "witness.dalian-amr.example"
PUBLIC_URL = "https://id.suyuan.example"


@pytest.fixture(scope="session", autouse=True)
def _instance_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Apps built by tests keep their instance files (the secret key) in a temporary folder,
    never in the working directory."""
    before = os.environ.get("SUYUAN_INSTANCE_PATH")
    os.environ["SUYUAN_INSTANCE_PATH"] = str(tmp_path_factory.mktemp("instance"))
    yield
    if before is None:
        del os.environ["SUYUAN_INSTANCE_PATH"]
    else:
        os.environ["SUYUAN_INSTANCE_PATH"] = before


@dataclass
class Dalian:
    """A loaded Dalian ledger: its file, keys and what the world reported."""

    path: Path
    log_key: crypto.SigningKey
    registrar_key: crypto.SigningKey
    witness_key: crypto.SigningKey
    witness_state: Path
    keys: dict[str, crypto.SigningKey] = field(default_factory=dict)
    alerts: list[dict[str, object]] = field(default_factory=list)
    url_override: str | None = None

    @property
    def url(self) -> str:
        return self.url_override or sqlite_url(self.path)

    def copy_to(self, folder: Path) -> Dalian:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "suyuan.db"
        shutil.copyfile(self.path, target)
        state = folder / "witness.state"
        shutil.copyfile(self.witness_state, state)
        return Dalian(target, self.log_key, self.registrar_key, self.witness_key, state,
                      self.keys, self.alerts)


def seal(db: Database, log_key: crypto.SigningKey, witness_key: crypto.SigningKey,
         state: Path, name: str = WITNESS) -> int:
    """Sign a checkpoint of the whole log and have the witness cosign it; returns its size."""
    with db.writer() as session, session.begin():
        result = ledger.checkpoint(session, log_key)
        if repo.witness(session, name) is None:
            vkey = crypto.verifier_key(name, witness_key.public_key, crypto.ALG_COSIGNATURE)
            repo.add_witness(session, name, str(vkey), "2026-07-01T00:00:00Z")
    stamp = int(time.time())
    with db.reader() as session, session.begin():
        cp, signature = witness.cosign(
            checkpoint_note=result.note, log_key=ledger.log_vkey(session),
            origin=ledger.origin(session), name=name, key=witness_key, state_path=state,
            proof_for=lambda a, b: ledger.consistency_proof(session, a, b), timestamp=stamp)
    with db.writer() as session, session.begin():
        if not any(c.witness == name for c in repo.cosignatures(session, cp.size)):
            repo.add_cosignature(session, cp.size, name, stamp, signature.line())
    return cp.size


def build_dalian(folder: Path, url: str | None = None) -> Dalian:
    """Load the Dalian world into a new ledger (a SQLite file in ``folder`` unless ``url``
    names another database), checkpoint it and have the witness cosign."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "suyuan.db"
    log_key, registrar_key = crypto.SigningKey.generate(), crypto.SigningKey.generate()
    witness_key = crypto.SigningKey.generate()
    db = Database(url or sqlite_url(path))
    db.upgrade()
    with db.writer() as session, session.begin():
        ledger.initialise(session, origin=ORIGIN, log_key=log_key, registrar="registrar",
                          registrar_key=registrar_key)
    report = world.load_world(db, "registrar", registrar_key)
    state = folder / "witness.state"
    seal(db, log_key, witness_key, state)
    db.dispose()
    return Dalian(path, log_key, registrar_key, witness_key, state, report.keys, report.alerts,
                  url_override=url)


@pytest.fixture(scope="session")
def dalian_master(tmp_path_factory: pytest.TempPathFactory) -> Dalian:
    """Built once per test process; never written to (use ``dalian`` to write)."""
    return build_dalian(tmp_path_factory.mktemp("dalian-master"))


@pytest.fixture
def dalian(dalian_master: Dalian, tmp_path: Path) -> Dalian:
    """A private copy of the Dalian ledger (SQLite) that a test may write to."""
    return dalian_master.copy_to(tmp_path / "ledger")


@pytest.fixture(params=["sqlite", "postgresql"])
def dalian_any(request: pytest.FixtureRequest, tmp_path: Path) -> Dalian:
    """A private Dalian ledger on a real SQLite file, then on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return request.getfixturevalue("dalian_master").copy_to(tmp_path / "ledger")
    return build_dalian(tmp_path / "pg", request.getfixturevalue("postgres_url"))


def make_app(url: str, **config: object) -> Flask:
    """An app over ``url`` with its own page store (as every app has its own memory), unless
    ``PAGE_STORE`` is given: tests that patch how pages are built must not meet pages another
    test's app stored for the same ledger."""
    settings: dict[str, object] = {
        "DATABASE_URL": url, "PUBLIC_URL": PUBLIC_URL, "TESTING": True,
        "PAGE_STORE": tempfile.mkdtemp(prefix="pages-", dir=os.environ.get("SUYUAN_INSTANCE_PATH")),
    }
    settings.update(config)
    return create_app(settings)


@pytest.fixture
def app(dalian: Dalian) -> Iterator[Flask]:
    application = make_app(dalian.url)
    yield application
    application.extensions["suyuan.db"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def shared_app(dalian_master: Dalian) -> Iterator[Flask]:
    """An app over the shared ledger, for tests that only read."""
    application = make_app(dalian_master.url)
    yield application
    application.extensions["suyuan.db"].dispose()


@pytest.fixture
def reader(shared_app: Flask) -> FlaskClient:
    return shared_app.test_client()
