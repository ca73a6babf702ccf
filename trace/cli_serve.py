"""`suyuan serve`: the website and JSON API on this machine, for local use.

Production runs the same application under gunicorn (see README, "Running the website"):

    SUYUAN_DATABASE_URL=sqlite:////srv/suyuan/data/suyuan.db \\
        gunicorn -w 2 -k gthread --threads 4 -b 127.0.0.1:8000 'suyuan_web:create_app()'
"""

from __future__ import annotations

import click

from suyuan.cli import Failed, Settings, cli, pass_settings


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--public-url", metavar="URL", envvar="SUYUAN_PUBLIC_URL",
              help="Base of the Digital Link URIs printed in QR codes and labels "
                   "(default: the address the page is requested on). Env: SUYUAN_PUBLIC_URL.")
@pass_settings
def serve(settings: Settings, host: str, port: int, public_url: str | None) -> None:
    """Serve the consumer pages, QR labels, tlog tiles and the JSON API (local use).

    For production use gunicorn with `suyuan_web:create_app()` (see README).
    """
    import socket

    from werkzeug.serving import run_simple  # the core does not import the site up front

    from suyuan_web import create_app

    db = settings.database()  # refuses clearly when there is no ledger here
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise Failed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    config: dict[str, object] = {"DATABASE_URL": db.url}
    if public_url:
        config["PUBLIC_URL"] = public_url.rstrip("/")
    db.dispose()
    app = create_app(config)
    base = public_url or f"http://{host}:{port}"
    click.echo(f"Suyuan serving {base}/  (API docs: {base}/api/v1/docs; Ctrl-C stops)",
               err=True)
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
