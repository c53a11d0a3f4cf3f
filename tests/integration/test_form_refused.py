"""A form that comes back without its CSRF token, or over HTTPS from another site's page, is
refused with a page a person can act on (in their language), and changes nothing."""

from __future__ import annotations

from tests.integration.accounts.conftest import csrf_of
from tests.support import make_account


def _text(response) -> str:
    return response.get_data(as_text=True)


def test_a_form_without_its_token_gets_a_page_saying_what_to_do(app, client):
    refused = client.post("/signin", data={"email": "eo@centre.example"})
    assert refused.status_code == 400 and refused.mimetype == "text/html"
    page = _text(refused)
    assert "Your form could not be sent" in page and "Go back, reload the page and try again." in page
    assert "Bad Request" not in page and "CSRF" not in page
    welsh = client.post("/signin", data={"email": "eo@centre.example"}, headers={"Accept-Language": "cy"})
    assert welsh.status_code == 400 and "Your form could not be sent" not in _text(welsh)
    assert 'lang="cy"' in _text(welsh)


def test_over_https_a_form_from_another_site_is_refused(make_settings):
    from idp import create_app

    app = create_app(make_settings(server={"issuer": "https://idp.example"}))
    with app.app_context():
        make_account("eo@centre.example")
    http = app.test_client()
    base = {"base_url": "https://idp.example"}
    token = csrf_of(_text(http.get("/signin", **base)))
    form = {"email": "eo@centre.example", "csrf_token": token}
    for headers in ({}, {"Referer": "https://evil.example/signin"}, {"Referer": "http://idp.example/signin"}):
        refused = http.post("/signin", data=form, headers=headers, **base)
        assert refused.status_code == 400 and "Your form could not be sent" in _text(refused), headers
    sent = http.post("/signin", data=form, headers={"Referer": "https://idp.example/signin"}, **base)
    assert sent.status_code == 303
