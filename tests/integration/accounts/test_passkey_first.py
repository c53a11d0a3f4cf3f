"""Passkey-first sign-in: "Sign in with a passkey" on the email page (and the browser's passkey
autofill, which posts the same form). The passkey names its account (a discoverable credential)
and, with user verification, stands for both factors: amr [hwk, mfa] (no pwd), acr phr. Its
ceremony is single use; an unknown, tampered or unverified passkey, or one whose user handle names
someone else, is refused without a 500; an account that could not sign in with its password now
cannot with a passkey either."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import protocol
from idp.accounts.models import Account, SsoSession
from idp.audit import AuditEvent
from idp.extensions import db
from tests.support import AUTHENTICATORS, _csrf, exchange, make_account, make_client, pkce_pair, query
from tests.webauthn_soft import SoftAuthenticator

EMAIL = "eo@centre.example"


@pytest.fixture
def person(app):
    with app.app_context():
        return make_account().sub


def email_page(http, authreq=""):
    html = http.get("/signin" + (f"?authreq={authreq}" if authreq else "")).get_data(as_text=True)
    options = json.loads(html.split('<script type="application/json" id="webauthn-options">', 1)[1]
                         .split("</script>", 1)[0])
    ceremony = html.split('name="ceremony" type="hidden" value="', 1)[1].split('"', 1)[0]
    return html, options, ceremony


def use_passkey(http, authenticator=None, *, authreq="", **get_kwargs):
    html, options, ceremony = email_page(http, authreq)
    authenticator = authenticator or AUTHENTICATORS[EMAIL]
    credential = authenticator.get(options, **get_kwargs)
    data = {"ceremony": ceremony, "credential": credential, "authreq": authreq,
            "csrf_token": html.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]}
    return http.post("/signin/passkey", data=data), data


def latest_session(app) -> SsoSession:
    with app.app_context():
        return db.session.query(SsoSession).order_by(SsoSession.created_at.desc()).first()


def test_the_email_page_offers_a_passkey(client, person):
    html, options, ceremony = email_page(client)
    assert "Sign in with a passkey" in html and 'autocomplete="username webauthn"' in html
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    assert ceremony and 'data-webauthn-conditional' in html


def test_a_passkey_alone_signs_in(app, client, person):
    answer, _ = use_passkey(client)
    assert answer.status_code == 303 and answer.location.endswith("/account"), answer.get_data(as_text=True)
    session = latest_session(app)
    assert session.amr == ["hwk", "mfa"] and session.acr == protocol.ACR_PHISHING_RESISTANT
    assert session.mfa_at  # a second factor was passed now
    assert "My account" in client.get("/account").get_data(as_text=True)


def test_for_a_relying_party_asking_for_phishing_resistance(app, client, person):
    with app.app_context():
        rp = make_client()
    verifier, challenge = pkce_pair()
    start = client.get("/authorize?" + urlencode({
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": "openid",
        "state": "s", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256",
        "acr_values": protocol.ACR_PHISHING_RESISTANT}))
    answer, _ = use_passkey(client, authreq=query(start.location)["authreq"])
    code = query(client.get(answer.location).location)["code"]
    tokens = exchange(client, rp, code, verifier).get_json()
    claims = jwt.decode(tokens["id_token"], KeySet.import_key_set(client.get("/jwks.json").get_json())).claims
    assert claims["amr"] == ["hwk", "mfa"] and claims["acr"] == protocol.ACR_PHISHING_RESISTANT


def test_an_answer_is_used_once(app, client, person):
    answer, data = use_passkey(client)
    assert answer.status_code == 303
    other = app.test_client()
    page = other.get("/signin").get_data(as_text=True)
    replay = other.post("/signin/passkey", data={**data, "csrf_token": _csrf(page)})
    assert replay.status_code == 400 and "could not be used" in replay.get_data(as_text=True)


def test_a_ceremony_expires(app, client, person):
    import time

    import time_machine

    with time_machine.travel(time.time(), tick=False) as traveller:
        html, options, ceremony = email_page(client)
        traveller.shift(301)
        answer = client.post("/signin/passkey", data={"ceremony": ceremony, "csrf_token": _csrf(html),
                                                      "credential": AUTHENTICATORS[EMAIL].get(options)})
    assert answer.status_code == 400 and latest_session(app) is None


def test_the_email_page_writes_nothing_to_the_store(app, client, monkeypatch):
    """(Anonymous page views cost the store nothing, and the page is served while it is away.)"""
    writes = []
    real = app.extensions["idp.store"]
    for name in ("put", "add", "swap", "incr"):
        monkeypatch.setattr(real, name, lambda *a, _name=name, **k: writes.append(_name))
    assert client.get("/signin").status_code == 200
    assert writes == []


@pytest.mark.parametrize("how", ["tampered", "unknown", "someone_else", "unverified", "wrong_origin"])
def test_bad_passkeys_are_refused(app, client, person, how):
    authenticator, kwargs = AUTHENTICATORS[EMAIL], {}
    if how == "tampered":
        kwargs["tamper"] = True
    elif how == "unknown":
        authenticator = SoftAuthenticator(origin="http://localhost", rp_id="localhost")
    elif how == "someone_else":
        with app.app_context():
            other = make_account(email="other@centre.example")
            authenticator = AUTHENTICATORS[EMAIL]
            authenticator.user_handle = other.sub.encode()
    elif how == "unverified":
        authenticator._flags = lambda attested: 0x01  # user present, not verified (no PIN or biometric)
    elif how == "wrong_origin":
        kwargs["origin"] = "https://evil.example"
    answer, _ = use_passkey(client, authenticator, **kwargs)
    assert answer.status_code == 400, answer.location
    assert "could not be used to sign in" in answer.get_data(as_text=True)
    assert latest_session(app) is None
    if how in ("tampered", "unverified", "wrong_origin"):  # a known passkey: its account's budget
        with app.app_context():
            assert db.session.query(AuditEvent).filter_by(event="signin.mfa", outcome="failure").count() == 1


@pytest.mark.parametrize("field, value", [
    ("credential", "not json"), ("credential", "{}"), ("credential", "[" * 5000), ("ceremony", ""),
    ("ceremony", "x" * 100), ("credential", json.dumps({"id": "AA", "rawId": "AA", "type": "public-key",
                                                       "response": {}})),
])
def test_garbage_is_refused_without_an_error(client, person, field, value):
    html, _, ceremony = email_page(client)
    data = {"ceremony": ceremony, "credential": "{}", "csrf_token": _csrf(html), field: value}
    answer = client.post("/signin/passkey", data=data)
    assert answer.status_code == 400


@pytest.mark.parametrize("state", ["suspended_centre", "locked", "invited", "disabled"])
def test_an_account_that_may_not_sign_in_is_refused(app, client, person, state):
    from idp.accounts import lockout
    from idp.centres.models import Centre

    with app.app_context():
        account = db.session.query(Account).one()
        if state == "suspended_centre":
            db.session.query(Centre).one().suspended = True
        elif state == "locked":
            for _ in range(5):
                slot = lockout.reserve_password(account.email)
                if slot is None:
                    break
                lockout.password_failed(account.email, slot, reason="test")
        elif state == "invited":
            account.status, account.password_is_temporary = "invited", True
        else:
            account.status = "disabled"
        db.session.commit()
    answer, _ = use_passkey(client)
    assert answer.status_code == 400
    assert latest_session(app) is None


def test_deeply_nested_answers_at_the_challenge_are_refused_too(app, client, person):
    """(py_webauthn's own JSON parsing recurses: the answer's depth is bounded before it.)"""
    page = client.get("/signin").get_data(as_text=True)
    step = client.post("/signin", data={"email": EMAIL, "csrf_token": _csrf(page)})
    page = client.get(step.location).get_data(as_text=True)
    from tests.support import PASSWORD

    step = client.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page)})
    page = client.get("/signin/mfa").get_data(as_text=True)
    ceremony = page.split('name="ceremony" value="', 1)[1].split('"', 1)[0]
    answer = client.post("/signin/mfa", data={"kind": "webauthn", "method": "webauthn", "ceremony": ceremony,
                                              "credential": "[" * 10_000, "csrf_token": _csrf(page)})
    assert answer.status_code == 400
