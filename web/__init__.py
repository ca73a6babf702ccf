"""The Suyuan website and JSON API (imported as ``suyuan_web``)."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask application; ``config`` overrides the defaults (used by tests)."""
    app = Flask(__name__)
    app.config.from_mapping(SUYUAN_DATABASE_URL=None)
    if config:
        app.config.update(config)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
