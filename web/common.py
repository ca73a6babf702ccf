"""What every blueprint shares: the ledger database, read sessions, languages, the capture
rate limiter, security headers and Digital Link URIs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from flask import Flask, current_app, g, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from sqlalchemy.orm import Session

from suyuan.interop.gs1 import normalize_gtin
from suyuan.storage.db import Database

LANG_COOKIE = "lang"

limiter = Limiter(get_remote_address, default_limits=[])
"""Rate limits; capture endpoints use ``@limiter.limit(capture_limit)``."""

babel = Babel()

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def capture_limit() -> str:
    return str(current_app.config["CAPTURE_RATE_LIMIT"])


def database() -> Database:
    return current_app.extensions["suyuan.db"]  # type: ignore[no-any-return]


@contextmanager
def reading() -> Iterator[Session]:
    """A read-only session in one transaction (a consistent snapshot of the ledger)."""
    with database().reader() as session, session.begin():
        yield session


@contextmanager
def writing() -> Iterator[Session]:
    """A write transaction (takes the log's write lock)."""
    with database().writer() as session, session.begin():
        yield session


def languages() -> list[str]:
    return list(current_app.config["LANGUAGES"])


def select_locale() -> str:
    """``?lang=`` first, then the language cookie, then ``Accept-Language``, then 中文."""
    choices = languages()
    asked = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    if asked in choices:
        return asked
    best = request.accept_languages.best_match(choices)
    return best or choices[0]


def public_base() -> str:
    """The base of Digital Link URIs: PUBLIC_URL, else the address the request came in on."""
    configured = current_app.config.get("PUBLIC_URL")
    if configured:
        return str(configured).rstrip("/")
    return request.host_url.rstrip("/")


def digital_link(gtin: str, lot: str, serial: str | None = None, *, base: str | None = None
                 ) -> str:
    """The GS1 Digital Link URI of a lot (AI 10) or a serialised unit (AI 21) of a GTIN."""
    uri = f"{base or public_base()}/01/{normalize_gtin(gtin)}/10/{quote(lot, safe='')}"
    if serial is not None:
        uri += f"/21/{quote(serial, safe='')}"
    return uri


def _security_headers(response: Any) -> Any:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    lang = request.args.get("lang")
    if lang in languages() and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="Lax",
                            httponly=True, secure=request.is_secure)
    return response


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
    limiter.init_app(app)
    app.after_request(_security_headers)

    @app.context_processor
    def _globals() -> dict[str, Any]:
        from flask_babel import get_locale

        return {"current_lang": str(get_locale() or languages()[0]),
                "languages": languages()}

    @app.teardown_appcontext
    def _forget(_exc: BaseException | None) -> None:
        g.pop("suyuan_cache", None)
