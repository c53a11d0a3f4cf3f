"""MFA end to end over HTTP: mandatory enrolment, each method, recovery codes, replay, amr/acr."""

from __future__ import annotations

import json
import time

import pyotp
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.accounts import lockout
from idp.accounts.models import Account
from idp.extensions import db
from idp.mfa.models import MfaMethod, RecoveryCode
from tests.support import (
    AUTHENTICATORS,
    PASSWORD,
    _csrf,
    authorize,
    exchange,
    make_account,
    make_client,
    pass_passkey_challenge,
    query,
    sign_in,
)


def _to_password_step(http, email):
    page = http.get("/signin")
    step = http.post("/signin", data={"email": email, "csrf_token": _csrf(page.get_data(as_text=True))})
    page = http.get(step.location)
    return http.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})


def _store_keys(app, prefix: str) -> list[str]:
    """The store's keys starting with ``prefix`` (with the store's own prefix on Redis)."""
    store = app.extensions["idp.store"]
    if hasattr(store, "_data"):
        return [k for k in store._data if k.startswith(prefix)]
    return [k for k in store._redis.scan_iter(match=app.config["IDP_SETTINGS"].store.prefix + prefix + "*")]


def _secret_from(html: str) -> str:
    return html.split('<code class="secret">', 1)[1].split("</code>", 1)[0]


def _codes_from(html: str) -> list[str]:
    return [c.split("</code>")[0] for c in html.split('<li><code>')[1:]]


def test_no_method_means_enrolment_before_anything_else(app, client):
    with app.app_context():
        make_account(email="new@centre.example", mfa=False)
    step = _to_password_step(client, "new@centre.example")
    assert step.location.endswith("/signin/mfa/setup")
    # the journey cannot be skipped: an authorization request still ends on the sign-in pages
    assert client.get("/account").location.endswith("/signin")


def test_totp_enrolment_recovery_codes_and_sign_in(app, client):
    with app.app_context():
        make_account(email="totp@centre.example", mfa=False)
    _to_password_step(client, "totp@centre.example")
    page = client.get("/signin/mfa/setup/totp").get_data(as_text=True)
    assert "<svg" in page and "otpauth" not in page.split("<svg")[0][-200:]
    secret = _secret_from(page)
    assert client.get("/signin/mfa/setup/totp").get_data(as_text=True).count(secret) == 1  # same secret on reload
    wrong = client.post("/signin/mfa/setup/totp", data={"code": "000000", "csrf_token": _csrf(page)})
    assert wrong.status_code == 400 and "not right" in wrong.get_data(as_text=True)
    done = client.post("/signin/mfa/setup/totp", data={"code": pyotp.TOTP(secret).now(), "csrf_token": _csrf(page)})
    assert done.location.endswith("/signin/mfa/recovery-codes")
    page = client.get(done.location).get_data(as_text=True)
    codes = _codes_from(page)
    assert len(codes) == 10
    with app.app_context():  # while they wait to be shown, the store holds them sealed, never in clear
        from idp.extensions import store

        held = [store.get(k.removeprefix(app.config["IDP_SETTINGS"].store.prefix))
                for k in _store_keys(app, "recovery-show:")]
        assert len(held) == 1 and not any(c in held[0] or c.replace("-", "") in held[0] for c in codes)
    finished = client.post("/signin/mfa/recovery-codes", data={"action": "done", "csrf_token": _csrf(page)})
    assert finished.location.endswith("/account")
    with app.app_context():
        account = db.session.query(Account).filter_by(email_key="totp@centre.example").one()
        method = db.session.query(MfaMethod).filter_by(account_id=account.id).one()
        assert secret.encode() not in method.secret  # encrypted at rest
        hashes = [r.code_hash for r in db.session.query(RecoveryCode).filter_by(account_id=account.id)]
        assert all(c.replace("-", "") not in h for c in codes for h in hashes)

    # a second browser signs in with a code from the app; the same code is refused a second time
    other = app.test_client()
    step = _to_password_step(other, "totp@centre.example")
    assert step.location.endswith("/signin/mfa")
    page = other.get("/signin/mfa").get_data(as_text=True)
    method_id = page.split('name="method_id" value="', 1)[1].split('"', 1)[0]
    code = pyotp.TOTP(secret).at(time.time() + 30)  # the next step: the one used at enrolment is spent
    ok = other.post("/signin/mfa", data={"kind": "totp", "method_id": method_id, "code": code,
                                         "csrf_token": _csrf(page)})
    assert ok.status_code == 303 and ok.location.endswith("/account")
    third = app.test_client()
    _to_password_step(third, "totp@centre.example")
    page = third.get("/signin/mfa").get_data(as_text=True)
    replay = third.post("/signin/mfa", data={"kind": "totp", "method_id": method_id, "code": code,
                                             "csrf_token": _csrf(page)})
    assert replay.status_code == 400
    # a recovery code works once
    page = third.get("/signin/mfa?method=recovery").get_data(as_text=True)
    used = third.post("/signin/mfa", data={"kind": "recovery", "method_id": "recovery", "code": codes[0],
                                           "csrf_token": _csrf(page)})
    assert used.status_code == 303
    fourth = app.test_client()
    _to_password_step(fourth, "totp@centre.example")
    page = fourth.get("/signin/mfa?method=recovery").get_data(as_text=True)
    again = fourth.post("/signin/mfa", data={"kind": "recovery", "method_id": "recovery", "code": codes[0],
                                             "csrf_token": _csrf(page)})
    assert again.status_code == 400


def test_totp_drift(app):
    from idp.mfa import totp

    secret = pyotp.random_base32()
    now = time.time()
    with app.app_context():
        assert totp.matching_step(secret, pyotp.TOTP(secret).at(now - 30), now) is not None
        assert totp.matching_step(secret, pyotp.TOTP(secret).at(now + 30), now) is not None
        assert totp.matching_step(secret, pyotp.TOTP(secret).at(now - 60), now) is None
        assert totp.matching_step(secret, pyotp.TOTP(secret).at(now + 60), now) is None


def _sent_code(settings, kind):
    import email as email_lib
    import email.policy

    deadline = time.time() + 5
    while time.time() < deadline:
        if kind == "email":
            files = sorted(settings.mail_outbox_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime)
            if files:
                text = email_lib.message_from_bytes(files[-1].read_bytes(), policy=email.policy.default)
                body = text.get_body(("plain",)).get_content()
                return body.split("sign-in code is: ", 1)[1].split()[0]
        else:
            files = sorted(settings.sms_outbox_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
            if files:
                return json.loads(files[-1].read_text())["text"].split("code is ", 1)[1].split(".")[0]
        time.sleep(0.05)
    raise AssertionError(f"no {kind} code arrived")


@pytest.mark.parametrize("kind", ["email", "sms"])
def test_sent_code_enrolment(app, client, kind):
    settings = app.config["IDP_SETTINGS"]
    with app.app_context():
        make_account(email=f"{kind}@centre.example", mfa=False)
    _to_password_step(client, f"{kind}@centre.example")
    page = client.get(f"/signin/mfa/setup/{kind}").get_data(as_text=True)
    data = {"action": "send", "csrf_token": _csrf(page)}
    if kind == "sms":
        bad = client.post("/signin/mfa/setup/sms", data={**data, "phone": "020 7946 0018"})
        assert bad.status_code == 400 and "Enter a mobile phone number" in bad.get_data(as_text=True)
        data["phone"] = "07700 900123"
    sent = client.post(f"/signin/mfa/setup/{kind}", data=data)
    assert sent.status_code == 200
    throttled = client.post(f"/signin/mfa/setup/{kind}", data=data)
    assert throttled.status_code == 400 and "Wait" in throttled.get_data(as_text=True)
    code = _sent_code(settings, kind)
    done = client.post(f"/signin/mfa/setup/{kind}", data={"action": "confirm", "code": code, "csrf_token": _csrf(page)})
    assert done.location.endswith("/signin/mfa/recovery-codes")


def test_a_refused_send_does_not_change_the_number_an_earlier_code_confirms(app, client):
    """Ask for a code on your own phone, then (refused: too soon) on someone else's, then confirm
    with the code you received: the number that becomes your second factor is the one it went to."""
    settings = app.config["IDP_SETTINGS"]
    with app.app_context():
        make_account(email="sms@centre.example", mfa=False)
    _to_password_step(client, "sms@centre.example")
    page = client.get("/signin/mfa/setup/sms").get_data(as_text=True)
    send = {"action": "send", "csrf_token": _csrf(page)}
    assert client.post("/signin/mfa/setup/sms", data={**send, "phone": "07700 900123"}).status_code == 200
    code = _sent_code(settings, "sms")
    refused = client.post("/signin/mfa/setup/sms", data={**send, "phone": "07700 900999"})
    assert refused.status_code == 400 and "Wait" in refused.get_data(as_text=True)
    done = client.post("/signin/mfa/setup/sms", data={"action": "confirm", "code": code, "csrf_token": _csrf(page)})
    assert done.location.endswith("/signin/mfa/recovery-codes")
    with app.app_context():
        phones = [m.phone for m in db.session.scalars(select(MfaMethod).where(MfaMethod.kind == "sms"))]
    assert phones == ["+447700900123"]


def test_passkey_enrolment_and_tampered_or_foreign_assertions(app, client):
    from tests.webauthn_soft import SoftAuthenticator

    with app.app_context():
        make_account(email="key@centre.example", mfa=False)
    _to_password_step(client, "key@centre.example")
    page = client.get("/signin/mfa/setup/webauthn").get_data(as_text=True)
    options = page.split('id="webauthn-options">', 1)[1].split("</script>", 1)[0]
    ceremony = page.split('name="ceremony" value="', 1)[1].split('"', 1)[0]
    key = SoftAuthenticator(origin="http://localhost", rp_id="localhost")
    wrong_origin = client.post("/signin/mfa/setup/webauthn", data={
        "ceremony": ceremony, "credential": key.create(options, origin="https://evil.example"), "csrf_token": _csrf(page)})
    assert wrong_origin.status_code == 400
    page = client.get("/signin/mfa/setup/webauthn").get_data(as_text=True)
    options = page.split('id="webauthn-options">', 1)[1].split("</script>", 1)[0]
    ceremony = page.split('name="ceremony" value="', 1)[1].split('"', 1)[0]
    done = client.post("/signin/mfa/setup/webauthn", data={
        "ceremony": ceremony, "credential": key.create(options), "label": "Laptop", "csrf_token": _csrf(page)})
    assert done.location.endswith("/signin/mfa/recovery-codes"), done.get_data(as_text=True)
    AUTHENTICATORS["key@centre.example"] = key

    def attempt(**kwargs):
        http = app.test_client()
        _to_password_step(http, "key@centre.example")
        return pass_passkey_challenge(http, "key@centre.example", **kwargs)

    assert attempt(tamper=True).status_code == 400
    assert attempt(origin="https://evil.example").status_code == 400
    assert attempt(rp_id="evil.example").status_code == 400
    assert attempt().status_code == 303
    assert attempt(sign_count=1).status_code == 400  # the counter went backwards: a cloned key


def test_tokens_carry_amr_and_acr_of_the_method(app, client):
    with app.app_context():
        make_account()
        rp = make_client()
    response, verifier = authorize(client, rp)
    tokens = exchange(client, rp, query(response.location)["code"], verifier).get_json()
    claims = jwt.decode(tokens["id_token"], KeySet.import_key_set(client.get("/jwks.json").get_json())).claims
    assert claims["amr"] == ["hwk", "mfa", "pwd"]
    assert claims["acr"] == "urn:idp:acr:phr"


def test_five_wrong_answers_end_the_attempt_and_lock_the_account(app, client):
    with app.app_context():
        make_account(email="slow@centre.example")
    _to_password_step(client, "slow@centre.example")
    for i in range(5):
        client.get("/signin/mfa")
        response = pass_passkey_challenge(client, "slow@centre.example", tamper=True)
        if i < 4:
            assert response.status_code == 400
    assert response.status_code == 302 and response.location.endswith("/signin")
    assert client.get("/signin/mfa").location.endswith("/signin")
    with app.app_context():
        assert lockout.locked_until("slow@centre.example") is not None


def test_shipped_policy_hashes_at_owasp_parameters(make_settings):
    from argon2 import extract_parameters

    from idp import create_app
    from idp.accounts import passwords

    app = create_app(make_settings(policies={"dir": ""}))
    with app.app_context():
        params = extract_parameters(passwords.hash_password("x" * 12))
    assert (params.type.name, params.memory_cost, params.time_cost, params.parallelism) == ("ID", 19456, 2, 1)


@pytest.mark.parametrize("wanted, lands", [
    ("/account/mfa/add/totp", "/account/mfa/add/totp"),
    ("/account/%0D%0AX-Evil:%201", "/account/mfa"),  # was a 500, after the answer had been spent
    ("//evil.example/account/", "/account/mfa"),
    ("/account/../\\evil.example", "/account/mfa"),
])
def test_re_verifying_leads_only_to_a_page_of_my_account(app, client, wanted, lands):
    with app.app_context():
        make_account("eo@centre.example")
    assert sign_in(client).status_code == 303
    done = pass_passkey_challenge(client, "eo@centre.example", f"/account/mfa/verify?next={wanted}")
    assert done.status_code == 303 and done.location == lands


def test_two_first_set_ups_at_once_add_one_method(app, monkeypatch):
    """A sign-in's set-up adds a method only while the account has none: two at once (an app in one
    browser, codes by email in another, each after the same password) add one, and the other is
    told to start again, on both backends (the count and the insert under the account's row)."""
    import threading

    from idp.mfa import codes, services

    with app.app_context():
        account_id = make_account("twice@centre.example", mfa=False).id
    counted = threading.Barrier(2, timeout=1.5)
    real_methods_of = services.methods_of

    def methods_of_then_wait(account):  # both count before either adds, unless the row is held
        found = real_methods_of(account)
        try:
            counted.wait()
        except threading.BrokenBarrierError:
            pass  # the other waits for the row: it counts after this one commits
        return found

    monkeypatch.setattr(services, "methods_of", methods_of_then_wait)
    outcomes = []

    def set_up(kind):
        with app.app_context():
            account = db.session.get(Account, account_id)
            try:
                if kind == "totp":
                    secret = services.start_totp(account)["secret"]
                    services.confirm_totp(account, pyotp.TOTP(secret).now(), first_only=True)
                else:
                    sent = []
                    codes.issue("enrol-email", account.id, sent.append)
                    services.confirm_email(account, sent[0], first_only=True)
                outcomes.append("added")
            except services.MfaError as exc:
                outcomes.append(exc.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=set_up, args=(kind,)) for kind in ("totp", "email")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["added", "restart"], outcomes
    with app.app_context():
        assert db.session.query(MfaMethod).filter_by(account_id=account_id).count() == 1
