"""The application factory: configuration layers, the error table, security headers."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from suyuan.errors import (
    BadSignature,
    ConfigError,
    Duplicate,
    MalformedInput,
    NotFound,
    NotPermitted,
    RootMismatch,
)
from suyuan_web import create_app
from suyuan_web.errors import classify
from tests.web.conftest import Dalian


def test_configuration_layers_defaults_instance_file_environment_argument(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "suyuan.cfg").write_text(
        "SCAN_WARN_THRESHOLD = 7\nPUBLIC_URL = 'https://file.example'\n"
        "CAPTURE_RATE_LIMIT = '5 per minute'\n")
    monkeypatch.setenv("SUYUAN_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SUYUAN_PUBLIC_URL", "https://env.example")
    monkeypatch.setenv("SUYUAN_SCAN_WARN_THRESHOLD", "9")
    app = create_app({"SCAN_WARN_THRESHOLD": 11})
    assert app.config["BULK_MAX_LINES"] == 10_000            # default
    assert app.config["CAPTURE_RATE_LIMIT"] == "5 per minute"  # instance file
    assert app.config["PUBLIC_URL"] == "https://env.example"  # environment over the file
    assert app.config["SCAN_WARN_THRESHOLD"] == 11            # argument over everything
    monkeypatch.delenv("SUYUAN_SCAN_WARN_THRESHOLD")
    assert create_app().config["SCAN_WARN_THRESHOLD"] == 7


@pytest.mark.parametrize(("error", "status", "code"), [
    (MalformedInput("x"), 400, "malformed"),
    (NotFound("x"), 404, "not_found"),
    (NotPermitted("x"), 422, "not_permitted"),
    (Duplicate("x", index=3), 422, "duplicate"),
    (RootMismatch("x"), 422, "verification_failed"),
    (BadSignature("x"), 422, "bad_signature"),
    (ConfigError("x"), 503, "not_configured"),
    (RuntimeError("x"), 500, "internal_error"),
])
def test_error_table(error: Exception, status: int, code: str) -> None:
    assert classify(error) == (status, code)


def _boom_app(tmp_path: Path) -> Flask:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"})

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals /etc/passwd")

    @app.get("/api/v1/boom")
    def api_boom() -> str:
        raise NotFound("unknown lot 'X'")

    return app


def test_no_stack_trace_reaches_people_or_programs(tmp_path: Path) -> None:
    client = _boom_app(tmp_path).test_client()
    page = client.get("/boom")
    assert page.status_code == 500 and page.mimetype == "text/html"
    assert b"secret internals" not in page.data and b"Traceback" not in page.data
    api = client.get("/api/v1/boom")
    assert api.status_code == 404
    assert api.json == {"error": {"code": "not_found", "message": "unknown lot 'X'"}}
    missing = client.get("/no/such/page", headers={"Accept-Language": "en"})
    assert missing.status_code == 404 and b"Not found" in missing.data


def test_security_headers_and_language_cookie(shared_app: Flask) -> None:
    reader = shared_app.test_client()
    response = reader.get("/?lang=en")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "lang=en" in response.headers["Set-Cookie"]
    assert '<html lang="en">' in response.get_data(as_text=True)
    remembered = reader.get("/", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in remembered.get_data(as_text=True)  # the cookie wins
    fresh = shared_app.test_client()
    assert '<html lang="zh-CN">' in fresh.get("/", headers={"Accept-Language": "fr"}).text
    assert '<html lang="en">' in fresh.get("/", headers={"Accept-Language": "en-GB,en"}).text
    assert '<html lang="zh-CN">' in shared_app.test_client().get(
        "/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}).text


def test_the_dalian_ledger_fixture_is_sealed(dalian_master: Dalian) -> None:
    from suyuan import ledger
    from suyuan.storage.db import Database

    db = Database(dalian_master.url)
    with db.reader() as session, session.begin():
        assert ledger.cosigned_note(session).count("\n— ") == 2
    db.dispose()


def test_without_a_configured_secret_every_worker_shares_one_kept_in_the_instance(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import stat

    monkeypatch.setenv("SUYUAN_INSTANCE_PATH", str(tmp_path / "instance"))
    first = create_app().config["SECRET_KEY"]
    second = create_app().config["SECRET_KEY"]
    assert first == second and len(first) == 64
    secret = tmp_path / "instance" / "secret_key"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert sorted(p.name for p in secret.parent.iterdir()) == ["secret_key"]
    assert create_app({"SECRET_KEY": "configured"}).config["SECRET_KEY"] == "configured"
