"""Real-browser helpers for page tests: a WSGI app served over HTTP from a background thread,
headless Chromium through Playwright, and pages that record what the browser complained about.

Fixtures, defined as ``<name>_fixture`` so that importing them into a conftest or test module
(``from tests.web.browser import browser_fixture``) does not clash with the parameter names:

- ``browser`` (session): one headless Chromium for the whole run;
- ``live_server``: a factory, ``live_server(app) -> base URL``, stopping every server it started
  when the test ends;
- ``browser_page``: a :class:`WatchedPage` in a fresh browser context (no shared cookies).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def serve(app: Callable[..., Any]) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 at a free port (threaded); yields the base URL.

    127.0.0.1 is a secure context for browsers, so WebCrypto is available to the page as it is
    on the HTTPS site.
    """
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def chromium_executable() -> str | None:
    """``SUYUAN_TEST_CHROMIUM``, else Debian's Chromium, else one on PATH; None lets Playwright
    use its own download."""
    configured = os.environ.get("SUYUAN_TEST_CHROMIUM")
    if configured:
        return configured
    if DEBIAN_CHROMIUM.exists():
        return str(DEBIAN_CHROMIUM)
    return shutil.which("chromium")


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium (see :func:`chromium_executable`)."""
    executable = chromium_executable()
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@dataclass
class WatchedPage:
    """A browser page with what it logged: console errors, uncaught exceptions, requests."""

    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def attach(self) -> WatchedPage:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        self.page.on("request", self._request)
        return self

    def _console(self, message: ConsoleMessage) -> None:
        # CSP violations are reported as console errors too. The favicon is fetched by the
        # browser on its own, whether or not the page links one: not the page's error.
        if message.type == "error" and not message.location.get("url", "").endswith(
                "/favicon.ico"):
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def assert_clean(self, base_url: str) -> None:
        """No console error or uncaught exception, and no request outside ``base_url``."""
        assert self.errors == []
        foreign = [url for url in self.requests
                   if not url.startswith((base_url + "/", "data:"))]
        assert foreign == []


@contextmanager
def watched_page(browser: Browser, **context_options: Any) -> Iterator[WatchedPage]:
    """A fresh context and page (``context_options`` as for ``browser.new_context``)."""
    context = browser.new_context(**context_options)
    try:
        yield WatchedPage(context.new_page()).attach()
    finally:
        context.close()


@pytest.fixture(scope="session", name="browser")
def browser_fixture() -> Iterator[Browser]:
    """One headless Chromium for the test run."""
    with chromium() as instance:
        yield instance


@pytest.fixture(name="browser_page")
def browser_page_fixture(browser: Browser) -> Iterator[WatchedPage]:
    """A page in its own browser context."""
    with watched_page(browser) as watched:
        yield watched


@pytest.fixture(name="live_server")
def live_server_fixture() -> Iterator[Callable[[Callable[..., Any]], str]]:
    """``live_server(app)`` serves a WSGI app until the test ends and returns its base URL."""
    with ExitStack() as servers:
        yield lambda app: servers.enter_context(serve(app))
