"""The Suyuan website and JSON API (imported as ``suyuan_web``).

``create_app(config=None)`` builds the Flask application. Configuration is layered, each layer
overriding the one before:

1. the defaults in :data:`DEFAULTS`;
2. the instance file ``suyuan.cfg`` in the instance folder (``SUYUAN_INSTANCE_PATH`` or
   ``./instance``), a Python file of ``NAME = value`` lines;
3. ``SUYUAN_*`` environment variables (``SUYUAN_DATABASE_URL`` sets ``DATABASE_URL``; values
   that parse as JSON, such as numbers, are taken as such);
4. the ``config`` mapping given to ``create_app`` (tests use it).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from suyuan.storage.db import Database, sqlite_url

DEFAULT_DB_FILE = Path("data") / "suyuan.db"

DEFAULTS: dict[str, Any] = {
    # Where the ledger is: a SQLAlchemy URL; default data/suyuan.db in the working directory,
    # the same default as the `suyuan` command.
    "DATABASE_URL": None,
    # Base of the Digital Link URIs printed in QR codes and labels (e.g. https://id.example.cn).
    # Default: the address the request came in on.
    "PUBLIC_URL": None,
    # Signs sessions and keys the visitor hash of scan counting. Unset: a random key made once
    # and kept in the instance folder (instance/secret_key, 0600), shared by every worker.
    "SECRET_KEY": None,
    # Largest request body accepted (bulk capture included), in bytes.
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    # Largest number of lines in one NDJSON bulk capture.
    "BULK_MAX_LINES": 10_000,
    # Rate limit on capture endpoints, per client address (Flask-Limiter syntax).
    "CAPTURE_RATE_LIMIT": "120 per minute",
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_HEADERS_ENABLED": True,
    # Serialised units: warn on the consumer page past this many counted scans.
    "SCAN_WARN_THRESHOLD": 5,
    # A request header set by the reverse proxy with the visitor's region (e.g. from GeoIP);
    # None: regions are not recorded.
    "SCAN_REGION_HEADER": None,
    # Rendered consumer pages kept per worker process, in bytes (each worker has its own).
    "PAGE_CACHE_BYTES": 128 * 1024 * 1024,
    # Folder of the page store shared by the workers of this machine (pages built by one are
    # served by all, across restarts, while the ledger state they show is current). None:
    # instance/pages; "": no store.
    "PAGE_STORE": None,
    # Bound of the page store, in bytes.
    "PAGE_STORE_BYTES": 1024 * 1024 * 1024,
    # Most labels in one label-sheet request.
    "LABELS_MAX": 500,
    # Languages of the pages; the first is the default.
    "LANGUAGES": ["zh", "en"],
    "BABEL_DEFAULT_LOCALE": "zh",
    "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
}


def _instance_secret(folder: Path) -> str:
    """The instance's own random secret, created once (atomically, so concurrent workers
    starting together agree on one) and read by every later process."""
    path = folder / "secret_key"
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    try:
        os.link(temporary, path)  # fails if another process got there first: use theirs
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return path.read_text(encoding="ascii").strip()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask application (see the module docstring for the configuration layers)."""
    instance_path = os.environ.get("SUYUAN_INSTANCE_PATH") or str(Path("instance").resolve())
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("suyuan.cfg", silent=True)
    app.config.from_prefixed_env("SUYUAN")
    if config:
        app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    url = app.config.get("DATABASE_URL") or sqlite_url(DEFAULT_DB_FILE.resolve())
    app.extensions["suyuan.db"] = Database(url)

    from suyuan_web import common, errors

    common.init_app(app)
    errors.init_app(app)

    from suyuan_web import api, labels, pages, resolver, tlog

    app.register_blueprint(resolver.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(labels.bp)
    app.register_blueprint(tlog.bp)
    app.register_blueprint(api.bp, url_prefix="/api/v1")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
