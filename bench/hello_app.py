"""A bare Flask "hello" application: the limit the consumer page is measured against.

``bench/web_bench.py`` serves it with gunicorn under the same worker settings as the website:

    gunicorn --chdir bench -w 2 -k gthread --threads 4 'hello_app:create_app()'
"""

from __future__ import annotations

from flask import Flask


def create_app() -> Flask:
    """One route, no database, no templates, no extensions."""
    app = Flask(__name__)

    @app.get("/")
    def hello() -> str:
        return "hello"

    return app
