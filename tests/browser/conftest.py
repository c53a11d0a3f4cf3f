"""Fixtures for tests in real Chromium (Debian's package, driven by Playwright): the provider served
on localhost, and a headless browser. Never a downloaded browser build."""

from __future__ import annotations

import os
import shutil

import pytest
from werkzeug.serving import make_server

from tests.background import Served
from tests.conftest import BACKENDS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def backend() -> str:
    """Pages in a browser are about what people see and do, not about storage (the integration tests
    run every page's services on both backends): one backend here, PostgreSQL + Redis when they are
    configured (as in CI and production), else the embedded one. Halves the browser tests' time."""
    return BACKENDS[-1]


@pytest.fixture
def live(make_settings):
    """The provider on http://localhost:<port> (a secure context, and a valid WebAuthn RP id)."""
    from idp import create_app

    server = make_server("127.0.0.1", 0, None, threaded=True)
    port = server.server_port
    app = create_app(make_settings(server={"issuer": f"http://localhost:{port}"}))
    server.app = app
    served = Served(server)
    yield app, f"http://localhost:{port}"
    served.stop()
    app.extensions["idp.db"].dispose()
    app.extensions["idp.store"].close()


@pytest.fixture(scope="session")
def chromium():
    """One Chromium for all of a test process's browser tests (starting it costs about a second);
    every test works in browser contexts of its own (``browser``)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is not installed: .ci/run installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def browser(chromium):
    """Chromium for one test: the contexts (cookies, storage, pages) it opens are closed after it."""
    yield chromium
    for context in chromium.contexts:
        context.close()
