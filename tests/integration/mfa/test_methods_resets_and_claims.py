"""MFA: amr/acr in the ID token for every method, the Twilio adapter at its HTTP boundary, resets by
the roles the policy allows, and a TOTP code refused when replayed from another process."""

from __future__ import annotations

import base64
import json
import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pyotp
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.accounts.models import Account, SsoSession
from idp.extensions import db
from idp.mfa import recovery, totp
from idp.mfa.models import MfaMethod
from tests.background import Served
from tests.support import (
    PASSWORD,
    _csrf,
    add_totp,
    exchange,
    make_account,
    make_client,
    pass_passkey_challenge,
    query,
)


def _to_challenge(http, email, rp):
    """Start an authorization request and sign in up to the second-factor challenge."""
    params = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
              "scope": "openid", "state": "s", "nonce": "n"}
    from tests.support import pkce_pair
    verifier, challenge = pkce_pair()
    params.update(code_challenge=challenge, code_challenge_method="S256")
    from urllib.parse import urlencode
    start = http.get("/authorize?" + urlencode(params))
    authreq = query(start.location)["authreq"]
    page = http.get(f"/signin?authreq={authreq}")
    step = http.post("/signin", data={"email": email, "authreq": authreq, "csrf_token": _csrf(page.get_data(as_text=True))})
    page = http.get(step.location)
    step = http.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})
    assert step.location.endswith("/signin/mfa")
    return verifier


def _finish(http, rp, verifier, response):
    assert response.status_code == 303, response.get_data(as_text=True)
    final = http.get(response.location)
    code = query(final.location)["code"]
    tokens = exchange(http, rp, code, verifier).get_json()
    return jwt.decode(tokens["id_token"], KeySet.import_key_set(http.get("/jwks.json").get_json())).claims


def _latest(folder, pattern, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        files = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime) if folder.exists() else []
        if files:
            return files[-1]
        time.sleep(0.05)
    raise AssertionError(f"nothing in {folder}")


@pytest.mark.parametrize("kind,amr,acr", [
    ("totp", ["mfa", "otp", "pwd"], "urn:idp:acr:mfa"),
    ("email", ["mfa", "otp", "pwd"], "urn:idp:acr:mfa"),
    ("sms", ["mfa", "pwd", "sms"], "urn:idp:acr:mfa"),
    ("recovery", ["mfa", "otp", "pwd"], "urn:idp:acr:mfa"),
    ("webauthn", ["hwk", "mfa", "pwd"], "urn:idp:acr:phr"),
])
def test_id_token_amr_and_acr_for_each_method(app, client, kind, amr, acr):
    settings = app.config["IDP_SETTINGS"]
    email = f"{kind}@centre.example"
    with app.app_context():
        account = make_account(email=email, mfa=kind == "webauthn")
        rp = make_client()
        secret, codes = None, None
        if kind == "totp":
            secret = pyotp.random_base32()
            method = MfaMethod(account_id=account.id, kind="totp", preferred=True)
            method.id = "m-" + kind
            method.secret = totp.seal(secret, method.id)
            db.session.add(method)
        elif kind in ("email", "sms"):
            db.session.add(MfaMethod(id="m-" + kind, account_id=account.id, kind=kind, preferred=True,
                                     phone="+447700900123" if kind == "sms" else None))
        elif kind == "recovery":
            db.session.add(MfaMethod(id="m-email", account_id=account.id, kind="email", preferred=True))
            codes = recovery.regenerate(account.id)
        db.session.commit()
    verifier = _to_challenge(client, email, rp)
    if kind == "webauthn":
        response = pass_passkey_challenge(client, email)
    else:
        page = client.get("/signin/mfa" + ("?method=recovery" if kind == "recovery" else "")).get_data(as_text=True)
        data = {"csrf_token": _csrf(page), "kind": kind, "method_id": "recovery" if kind == "recovery" else "m-" + kind}
        if kind == "totp":
            data["code"] = pyotp.TOTP(secret).now()
        elif kind == "recovery":
            data["code"] = codes[0]
        else:
            sent = client.post("/signin/mfa", data={**data, "action": "send"})
            assert sent.status_code == 200
            if kind == "email":
                import email as email_lib
                import email.policy
                message = email_lib.message_from_bytes(_latest(settings.mail_outbox_dir, "*.eml").read_bytes(),
                                                       policy=email.policy.default)
                data["code"] = message.get_body(("plain",)).get_content().split("code is: ")[1].split()[0]
            else:
                data["code"] = json.loads(_latest(settings.sms_outbox_dir, "*.json").read_text())["text"] \
                    .split("code is ")[1].split(".")[0]
        response = client.post("/signin/mfa", data=data)
    claims = _finish(client, rp, verifier, response)
    assert claims["amr"] == amr and claims["acr"] == acr


class FakeTwilio:
    """Twilio's Messages endpoint on loopback: records what the adapter sends, answers like Twilio."""

    def __init__(self, status=201):
        self.requests, self.status = [], status
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                fake.requests.append({"path": self.path, "auth": self.headers["Authorization"],
                                      "content_type": self.headers["Content-Type"], "form": parse_qs(body)})
                payload = {"sid": "SM123", "status": "queued"} if fake.status < 400 else \
                    {"code": 21211, "message": "The 'To' number is not a valid phone number."}
                raw = json.dumps(payload).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.served = Served(self.server)


@pytest.fixture
def twilio():
    fake = FakeTwilio()
    yield fake
    fake.served.stop()


def test_sms_enrolment_through_the_twilio_adapter(make_settings, twilio):
    from idp import create_app

    app = create_app(make_settings(sms={"backend": "twilio", "twilio_account_sid": "AC123",
                                        "twilio_auth_token": "tok", "twilio_base_url": twilio.url,
                                        "sender": "+447700900000"}))
    http = app.test_client()
    with app.app_context():
        make_account(email="sms@centre.example", mfa=False)
    page = http.get("/signin")
    step = http.post("/signin", data={"email": "sms@centre.example", "csrf_token": _csrf(page.get_data(as_text=True))})
    page = http.get(step.location)
    http.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})
    page = http.get("/signin/mfa/setup/sms").get_data(as_text=True)
    sent = http.post("/signin/mfa/setup/sms", data={"action": "send", "phone": "+447700900123", "csrf_token": _csrf(page)})
    assert sent.status_code == 200
    request = twilio.requests[0]
    assert request["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request["auth"] == "Basic " + base64.b64encode(b"AC123:tok").decode()
    assert request["content_type"] == "application/x-www-form-urlencoded"
    assert request["form"]["To"] == ["+447700900123"] and request["form"]["From"] == ["+447700900000"]
    code = request["form"]["Body"][0].split("code is ")[1].split(".")[0]
    done = http.post("/signin/mfa/setup/sms", data={"action": "confirm", "code": code, "csrf_token": _csrf(page)})
    assert done.location.endswith("/signin/mfa/recovery-codes")

    # the provider refusing the number is a message the person can act on, not a 500
    twilio.status = 400
    with app.app_context():
        make_account(email="sms2@centre.example", mfa=False)
    other = app.test_client()
    page = other.get("/signin")
    step = other.post("/signin", data={"email": "sms2@centre.example", "csrf_token": _csrf(page.get_data(as_text=True))})
    page = other.get(step.location)
    other.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})
    page = other.get("/signin/mfa/setup/sms").get_data(as_text=True)
    refused = other.post("/signin/mfa/setup/sms", data={"action": "send", "phone": "+447700900999", "csrf_token": _csrf(page)})
    assert refused.status_code == 400 and "could not send a text message" in refused.get_data(as_text=True)


@pytest.mark.parametrize("actor_role,actor_profiles,target_role,allowed", [
    ("board", None, "eo", True),
    ("board", None, "admin", True),
    ("eo", None, "admin", True),
    ("eo", None, "user", True),
    ("admin", None, "user", True),
    ("admin", None, "eo", False),
    ("admin", ["resources"], "user", False),   # an admin without users.manage
    ("user", None, "user", False),
])
def test_mfa_reset_by_role(app, client, actor_role, actor_profiles, target_role, allowed):
    from idp.admin import errors as admin_errors
    from idp.admin import people

    with app.app_context():
        actor = make_account(email="actor@centre.example", role=actor_role,
                             centre=None if actor_role == "board" else "12345", profiles=actor_profiles)
        target = make_account(email="target@centre.example", role=target_role)
        target_sub = target.sub
        party = people.party_of(actor)
    # the target is signed in somewhere
    from tests.support import sign_in
    assert sign_in(client, "target@centre.example").status_code == 303
    with app.app_context():
        # board staff say why (kept in the audit trail); others may give a reason too
        if not allowed:
            with pytest.raises(admin_errors.Denied):
                people.reset_mfa(party, target_sub, reason="Lost phone")
            return
        if actor_role == "board":
            with pytest.raises(admin_errors.Invalid):
                people.reset_mfa(party, target_sub)
        people.reset_mfa(party, target_sub, reason="Lost phone")
        account = db.session.query(Account).filter_by(sub=target_sub).one()
        assert db.session.query(MfaMethod).filter_by(account_id=account.id).count() == 0
        assert db.session.query(SsoSession).filter_by(account_id=account.id, ended_at=None).count() == 0
    assert client.get("/account").status_code == 302  # signed out
    again = app.test_client()
    page = again.get("/signin")
    step = again.post("/signin", data={"email": "target@centre.example", "csrf_token": _csrf(page.get_data(as_text=True))})
    page = again.get(step.location)
    step = again.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})
    assert step.location.endswith("/signin/mfa/setup")  # enrolment forced


def _verify_in_process(settings_json, email, code, results):
    from idp import config, create_app
    from idp.mfa import services as mfa_services

    app = create_app(config.load(None, env={}, **json.loads(settings_json)))
    with app.app_context():
        account = db.session.query(Account).filter_by(email=email).one()
        method = db.session.query(MfaMethod).filter_by(account_id=account.id, kind="totp").one()
        try:
            mfa_services.verify_answer(account, kind="totp", method_id=method.id, code=code)
            results.put(True)
        except mfa_services.MfaError:
            results.put(False)


def _person_with_an_app(app, email: str) -> str:
    with app.app_context():
        account = make_account(email, mfa=False)
        secret = add_totp(account)
        db.session.commit()
    return secret


def test_totp_code_accepted_once_across_processes(app, settings):
    """Two processes answer with the same code at once: one sign-in passes (the step is spent on
    the method's row, so this holds on SQLite too, where the store is each process's own)."""
    secret = _person_with_an_app(app, "twice@centre.example")
    code = pyotp.TOTP(secret).now()
    raw = {"server": {"issuer": settings.server.issuer, "data_dir": str(settings.data_dir),
                      "secret_key": "test-secret-key"},
           "database": {"url": settings.database_url}, "keys": {"dir": str(settings.keys_dir)},
           "store": {"redis_url": settings.store.redis_url, "prefix": settings.store.prefix},
           "policies": {"dir": settings.policies.dir}, "logging": {"level": "WARNING", "format": "text"}}
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    workers = [ctx.Process(target=_verify_in_process, args=(json.dumps(raw), "twice@centre.example", code, results))
               for _ in range(2)]
    for w in workers:
        w.start()
    outcomes = sorted(results.get(timeout=60) for _ in workers)
    for w in workers:
        w.join(timeout=30)
    assert outcomes == [False, True]


def test_a_used_totp_step_outlives_the_store_and_earlier_steps_are_refused(app):
    """The spent step is the method's own (RFC 6238 §5.2): a store that lost everything does not
    let the code in again, and after a code of one step, one of the step before (still inside the
    window the policy allows for clock drift) is refused too."""
    from idp.mfa import services as mfa_services
    from tests.integration.oidc.test_store_forgets import _forget

    secret = _person_with_an_app(app, "spent@centre.example")
    now = time.time()

    def answer(app, at: float) -> bool:
        with app.app_context():
            account = db.session.query(Account).filter_by(email="spent@centre.example").one()
            method = db.session.query(MfaMethod).filter_by(account_id=account.id).one()
            try:
                mfa_services.verify_answer(account, kind="totp", method_id=method.id,
                                           code=pyotp.TOTP(secret).at(at))
                return True
            except mfa_services.MfaError:
                return False

    assert answer(app, now)
    app = _forget(app)  # everything the store held is gone
    assert not answer(app, now)
    assert not answer(app, now - 30)  # an earlier step, after a later one
    assert answer(app, now + 30)  # the next step is still good
