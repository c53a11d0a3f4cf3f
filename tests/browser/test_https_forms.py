"""Forms over HTTPS in a real browser. Flask-WTF checks, on HTTPS only, that a form was posted from
this site's own pages (the Referer header), on top of its CSRF token; so the pages' referrer policy
must let Chromium send the Referer to this site, and no further."""

from __future__ import annotations

import pyotp
import pytest
from werkzeug.serving import make_server

from idp.extensions import db
from tests.background import Served
from tests.browser.journey import password_steps
from tests.live_provider import write_tls_files
from tests.support import add_totp, make_account


@pytest.fixture
def live_https(make_settings, tmp_path):
    """The provider on https://localhost:<port>, behind a throwaway certificate."""
    import ssl

    from idp import create_app

    tls = write_tls_files(tmp_path / "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls["cert"], tls["key"])
    server = make_server("127.0.0.1", 0, None, threaded=True, ssl_context=context)
    issuer = f"https://localhost:{server.server_port}"
    app = create_app(make_settings(server={"issuer": issuer}))
    server.app = app
    served = Served(server)
    yield app, issuer
    served.stop()
    app.extensions["idp.db"].dispose()
    app.extensions["idp.store"].close()


def test_signing_in_and_changing_details_over_https(live_https, browser):
    app, issuer = live_https
    with app.app_context():
        account = make_account("eo@centre.example", mfa=False, given_name="Siân", family_name="Jones")
        secret = add_totp(account)
        db.session.commit()
    context = browser.new_context(ignore_https_errors=True)  # (the certificate is a throwaway one)
    page = context.new_page()
    referrers = []
    page.on("request", lambda r: r.method == "POST" and referrers.append(r.headers.get("referer")))
    leaks = []
    page.on("request", lambda r: not r.url.startswith(issuer) and leaks.append(r.url))
    page.goto(issuer + "/signin")
    password_steps(page, "eo@centre.example")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("main button[type=submit]")
    page.wait_for_url("**/account")
    page.goto(issuer + "/account/profile")
    page.fill("#given_name", "Siani")
    page.click("main button[type=submit]")
    page.wait_for_url("**/account")
    assert "Siani" in page.locator("main").inner_text()
    assert referrers and all(r and r.startswith(issuer + "/") for r in referrers)
    assert response_policy(page, issuer) == "same-origin"  # and never sent to another site
    assert not leaks
    context.close()


def response_policy(page, issuer: str) -> str:
    return page.request.get(issuer + "/signin").headers["referrer-policy"]

