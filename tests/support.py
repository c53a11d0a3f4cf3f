"""Helpers shared by tests: people, clients and a browser-like code flow over the Flask test client."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from flask import current_app

from idp.accounts import passwords
from idp.accounts.models import Account
from idp.centres.models import AccessGrant, Centre
from idp.extensions import db
from idp.mfa.models import MfaMethod
from idp.oidc import clients
from tests.webauthn_soft import SoftAuthenticator

PASSWORD = "correct horse battery staple"
#: each test account's software passkey, by lower-cased email (its second factor in flow tests)
AUTHENTICATORS: dict = {}


def spoiled(secret: str) -> str:
    """The secret with its first character replaced by a different one: wrong, always (a fixed
    replacement such as "x" would equal the secret one time in 64)."""
    return ("y" if secret[0] == "x" else "x") + secret[1:]


def make_centre(number: str = "12345", name: str = "Test Centre") -> Centre:
    centre = db.session.query(Centre).filter_by(number=number).one_or_none()
    if centre is None:
        centre = Centre(number=number, name=name)
        db.session.add(centre)
        db.session.commit()
    return centre


def make_account(email: str = "eo@centre.example", role: str = "eo", centre: str | None = "12345",
                 password: str = PASSWORD, profiles=None, mfa: bool = True, **fields) -> Account:
    """An active account with a password and (unless mfa=False) a software passkey as its second
    factor, so flow tests can sign in; the passkey is in AUTHENTICATORS[email]."""
    from idp import policy

    centre_row = make_centre(centre) if centre else None
    fields.setdefault("email_verified", True)  # as after an accepted invite
    account = Account(email=email, email_key=Account.key_for(email), role=role, status="active",
                      centre_id=centre_row.id if centre_row else None,
                      password_hash=passwords.hash_password(password),
                      given_name=fields.pop("given_name", "Ada"), family_name=fields.pop("family_name", "Lovelace"),
                      **fields)
    db.session.add(account)
    db.session.flush()
    chosen = policy.current().default_profiles(role) if profiles is None else profiles
    for profile in chosen:
        db.session.add(AccessGrant(account_id=account.id, profile=profile, granted_by="system"))
    if mfa:
        add_passkey(account)
    db.session.commit()
    return account


def add_passkey(account: Account, origin: str | None = None) -> SoftAuthenticator:
    """Register a software passkey for the account directly (as enrolment would) and remember it."""
    from urllib.parse import urlsplit

    issuer = current_app.config["IDP_SETTINGS"].server.issuer
    origin = origin or f"{urlsplit(issuer).scheme}://{urlsplit(issuer).netloc}"
    authenticator = SoftAuthenticator(origin=origin, rp_id=urlsplit(issuer).hostname)
    authenticator.user_handle = account.sub.encode()
    numbers = authenticator.key.public_key().public_numbers()
    import cbor2

    cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})
    db.session.add(MfaMethod(account_id=account.id, kind="webauthn", label="test passkey", preferred=True,
                             credential_id=authenticator.credential_id, public_key=cose, sign_count=0,
                             transports=["internal"], device_type="single_device"))
    AUTHENTICATORS[Account.key_for(account.email)] = authenticator
    return authenticator


def add_totp(account: Account, label: str = "test app") -> str:
    """Give the account a preferred authenticator-app (TOTP) method, as enrolment would leave it;
    returns the base32 secret so the test can compute codes. The caller commits."""
    import pyotp

    from idp import secrets as idp_secrets
    from idp.mfa import totp

    for method in db.session.query(MfaMethod).filter_by(account_id=account.id):
        method.preferred = False
    secret = pyotp.random_base32()
    method = MfaMethod(account_id=account.id, kind="totp", label=label, preferred=True)
    method.id = idp_secrets.token(16)
    method.secret = totp.seal(secret, method.id)
    db.session.add(method)
    return secret


@dataclass
class TestClient:
    client_id: str
    client_secret: str | None
    redirect_uri: str


def make_client(name="Results", redirect_uri="https://rp.example/cb", **meta) -> TestClient:
    meta.setdefault("redirect_uris", [redirect_uri])
    meta.setdefault("post_logout_redirect_uris", ["https://rp.example/bye"])
    created = clients.create({"client_name": name, **meta}, actor="test",
                             pepper=current_app.extensions["idp.pepper"])
    return TestClient(created.client.client_id, created.client_secret, redirect_uri)


#: what a console asks for to call the admin API as the signed-in person
ADMIN_API_SCOPE = "openid admin_api"


def make_admin_client(name="Centre administration", **meta) -> TestClient:
    """A client board staff have registered for the admin API (scope admin_api)."""
    meta.setdefault("scope", "openid profile email access admin_api")
    return make_client(name=name, redirect_uri="https://console.example/cb", **meta)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query(location: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def sign_in(http, email="eo@centre.example", password=PASSWORD, authreq=""):
    """The sign-in steps (email, password, and the passkey challenge when the account has a test
    passkey); returns the last step's response (a 303 onwards when it all worked)."""
    page = http.get("/signin" + (f"?authreq={authreq}" if authreq else ""))
    step = http.post("/signin", data={"email": email, "authreq": authreq,
                                      "csrf_token": _csrf(page.get_data(as_text=True))})
    assert step.status_code == 303, step.get_data(as_text=True)
    page = http.get(step.location)
    step = http.post(step.location, data={"password": password, "csrf_token": _csrf(page.get_data(as_text=True))})
    if step.status_code == 303 and step.location.endswith("/signin/mfa"):
        step = pass_passkey_challenge(http, email, step.location)
    return step


def pass_passkey_challenge(http, email: str, location: str = "/signin/mfa", **get_kwargs):
    """Answer the WebAuthn challenge page with the account's software passkey."""
    page = http.get(location).get_data(as_text=True)
    options = page.split('<script type="application/json" id="webauthn-options">', 1)[1].split("</script>", 1)[0]
    ceremony = page.split('name="ceremony" value="', 1)[1].split('"', 1)[0]
    credential = AUTHENTICATORS[Account.key_for(email)].get(options, **get_kwargs)
    return http.post(location, data={"kind": "webauthn", "method": "webauthn", "ceremony": ceremony,
                                     "credential": credential, "csrf_token": _csrf(page)})


def _csrf(html: str) -> str:
    marker = 'name="csrf_token" type="hidden" value="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


def authorize(http, client: TestClient, *, scope="openid", state="st", nonce="n-0S6_WzA2Mj", extra=None,
              email="eo@centre.example", password=PASSWORD, pkce=True, follow_signin=True):
    """Run the authorization request like a browser would; returns (final response, verifier)."""
    params = {"response_type": "code", "client_id": client.client_id, "redirect_uri": client.redirect_uri,
              "scope": scope, "state": state}
    if nonce:
        params["nonce"] = nonce
    verifier = None
    if pkce:
        verifier, challenge = pkce_pair()
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra or {})
    response = http.get("/authorize?" + urlencode(params))
    if follow_signin and response.status_code == 302 and response.location.startswith("/signin"):
        authreq = query(response.location)["authreq"]
        signed = sign_in(http, email, password, authreq)
        assert signed.status_code == 303, signed.get_data(as_text=True)
        response = http.get(signed.location)
    return response, verifier


def exchange(http, client: TestClient, code: str, verifier: str | None, auth="basic", **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    if verifier:
        data["code_verifier"] = verifier
    data.update(extra)
    return token_request(http, client, data, auth)


def token_request(http, client: TestClient, data: dict, auth="basic", headers: dict | None = None):
    headers = dict(headers or {})
    if auth == "basic":
        raw = f"{client.client_id}:{client.client_secret}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    elif auth == "post":
        data = {**data, "client_id": client.client_id, "client_secret": client.client_secret}
    elif auth == "none":
        data = {**data, "client_id": client.client_id}
    return http.post("/token", data=data, headers=headers)


def code_flow(http, client: TestClient, **kwargs):
    """Authorize + exchange; returns the token response JSON."""
    response, verifier = authorize(http, client, **kwargs)
    assert response.status_code == 302, response.get_data(as_text=True)
    params = query(response.location)
    assert "code" in params, params
    tokens = exchange(http, client, params["code"], verifier)
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    return tokens.get_json()


def second_factor_long_ago(app, email: str) -> None:
    """The person's sessions passed their second factor long ago (a browser left signed in): what
    asks for a recent one asks again."""
    from idp.accounts.models import SsoSession

    with app.app_context():
        account = db.session.query(Account).filter_by(email_key=Account.key_for(email)).one()
        for session in db.session.query(SsoSession).filter_by(account_id=account.id):
            session.mfa_at = 0
        db.session.commit()


def wait_for_lock_waiters(conn, query_like: str, count: int = 1, timeout: float = 3.0) -> None:
    """Until ``count`` PostgreSQL sessions wait on a lock in a statement matching ``query_like``
    (ILIKE), or ``timeout`` seconds: the race tests hold a row from a third connection, and let go
    once the requests they race are queued behind it (the wait is usually seen at once)."""
    import time as _time

    from sqlalchemy import text

    deadline = _time.monotonic() + timeout
    while _time.monotonic() < deadline and conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE :q"),
            {"q": query_like}).scalar() < count:
        _time.sleep(0.05)
