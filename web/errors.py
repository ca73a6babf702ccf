"""One error table: core errors and HTTP errors become JSON for the API (and other machine
clients) and a friendly page for people. Nothing ever shows a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from suyuan.errors import (
    BadSignature,
    ConfigError,
    KeyStoreError,
    MalformedInput,
    NotFound,
    Rejected,
    SuyuanError,
    VerificationError,
)

log = logging.getLogger("suyuan_web")

ERROR_TABLE: list[tuple[type[BaseException], int, str]] = [
    # (core error, HTTP status, machine-readable code); the first matching row wins.
    (ValidationError, 400, "invalid_request"),
    (MalformedInput, 400, "malformed"),
    (NotFound, 404, "not_found"),
    (Rejected, 422, "rejected"),
    (BadSignature, 422, "bad_signature"),
    (VerificationError, 422, "verification_failed"),
    (ConfigError, 503, "not_configured"),
    (KeyStoreError, 503, "not_configured"),
    (SuyuanError, 400, "error"),
]


def classify(exc: BaseException) -> tuple[int, str]:
    for kind, status, code in ERROR_TABLE:
        if isinstance(exc, kind):
            if isinstance(exc, Rejected):
                return status, exc.reason
            return status, code
    return 500, "internal_error"


def wants_json() -> bool:
    """API paths always; elsewhere when the client prefers JSON to HTML."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(
        ["text/html", "application/json", "application/linkset+json", "application/ld+json"])
    return best is not None and best != "text/html"


def error_response(status: int, code: str, message: str,
                   fields: dict[str, Any] | None = None, **extra: Any) -> Response:
    if wants_json():
        body: dict[str, Any] = {"code": code, "message": message}
        if fields:
            body["fields"] = fields
        body.update(extra)
        response = jsonify({"error": body})
    else:
        response = Response(render_template("error.html", status=status, message=message,
                                            title=_page_title(status)),
                            mimetype="text/html")
    response.status_code = status
    return response


def _page_title(status: int) -> str:
    if status == 404:
        return _("Not found")
    if status == 400 or status == 422:
        return _("This code cannot be read")
    if status == 429:
        return _("Too many requests")
    if status >= 500:
        return _("Something went wrong")
    return _("Request refused")


def _handle_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    response = error_response(status, code, exc.description or exc.name or "error")
    for header in ("Allow", "Retry-After", "Location"):
        if exc.get_response().headers.get(header):
            response.headers[header] = exc.get_response().headers[header]
    return response


def _handle_error(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _handle_http(exc)
    status, code = classify(exc)
    if status == 500:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, code, _("An internal error occurred; it has been logged."))
    if isinstance(exc, ValidationError):
        messages = exc.messages if isinstance(exc.messages, dict) else {"_": exc.messages}
        return error_response(status, code, "the request has invalid fields",
                              fields=messages)
    extra: dict[str, Any] = {}
    index = getattr(exc, "index", None)
    if index is not None:
        extra["index"] = index
    return error_response(status, code, str(exc), **extra)


def init_app(app: Flask) -> None:
    app.register_error_handler(Exception, _handle_error)
