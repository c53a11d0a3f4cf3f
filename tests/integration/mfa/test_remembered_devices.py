"""Remembered devices ("Do not ask for a code on this device for N days"): offered per account type
(not to board staff), a random token in a signed cookie and only its hash in the database, bound to
the account; signing in on one needs the password and claims no second factor (amr ["pwd"], acr
urn:idp:acr:mfa-remembered); a request asking for a second factor ignores it; a password change,
an MFA reset, "sign out everywhere", removing it in My account, and its expiry all end it."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urlencode

import pytest
import time_machine
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import protocol
from idp.accounts import remembered
from idp.accounts.models import Account, RememberedDevice, SsoSession
from idp.audit import AuditEvent
from idp.extensions import db
from idp.policy import PolicyError
from tests.support import AUTHENTICATORS, PASSWORD, _csrf, exchange, make_account, make_client, pkce_pair, query

EMAIL = "eo@centre.example"
COOKIE = "idp_device"  # the __Host- prefix is dropped on the plain-http localhost issuer


@pytest.fixture
def person(app):
    with app.app_context():
        return make_account().sub


def to_password(http, email=EMAIL, authreq=""):
    page = http.get("/signin" + (f"?authreq={authreq}" if authreq else ""))
    step = http.post("/signin", data={"email": email, "authreq": authreq,
                                      "csrf_token": _csrf(page.get_data(as_text=True))})
    page = http.get(step.location)
    return http.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})


def answer_passkey(http, email=EMAIL, remember=True):
    page = http.get("/signin/mfa").get_data(as_text=True)
    options = page.split('<script type="application/json" id="webauthn-options">', 1)[1].split("</script>", 1)[0]
    ceremony = page.split('name="ceremony" value="', 1)[1].split('"', 1)[0]
    credential = AUTHENTICATORS[Account.key_for(email)].get(options)
    data = {"kind": "webauthn", "method": "webauthn", "ceremony": ceremony, "credential": credential,
            "csrf_token": _csrf(page)}
    if remember:
        data["remember"] = "y"
    return http.post("/signin/mfa", data=data)


def sign_in_remembering(http, email=EMAIL, remember=True):
    step = to_password(http, email)
    assert step.location.endswith("/signin/mfa"), step.location
    done = answer_passkey(http, email, remember)
    assert done.status_code == 303 and done.location.endswith("/account"), done.get_data(as_text=True)
    return done


def sign_out(http):
    page = http.get("/account").get_data(as_text=True)
    http.post("/signout", data={"csrf_token": _csrf(page)})


def asked_for_a_code(http, email=EMAIL) -> bool:
    """Sign in with the password; True if a second factor comes next (the challenge, or setting one
    up after an MFA reset)."""
    step = to_password(http, email)
    assert step.status_code == 303, step.get_data(as_text=True)
    return step.location.endswith(("/signin/mfa", "/signin/mfa/setup"))


def current_session(app, http) -> SsoSession:
    with app.app_context():
        return db.session.query(SsoSession).filter(SsoSession.ended_at.is_(None)) \
            .order_by(SsoSession.created_at.desc()).first()


# ------------------------------------------------------------------ offered, stored, recognised
def test_ticked_box_remembers_this_device_and_the_next_sign_in_needs_only_the_password(app, client, person):
    page = to_password(client)
    challenge = client.get(page.location).get_data(as_text=True)
    assert "Do not ask for a code on this device for 30 days" in challenge
    answer_passkey(client)
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert 29 * 86400 < (cookie.expires.timestamp() - time.time()) <= 30 * 86400 + 5
    token = cookie.value.rsplit(".", 1)[0]  # signed: token.signature
    with app.app_context():
        [device] = db.session.query(RememberedDevice).all()
        assert device.token_hash == hashlib.sha256(token.encode()).hexdigest()  # only its hash
        assert token not in repr([getattr(device, c.name) for c in RememberedDevice.__table__.columns])
        assert db.session.query(AuditEvent).filter_by(event="mfa.device_remembered").count() == 1
    first = current_session(app, client)
    assert protocol.AMR_MFA in first.amr and first.mfa_at

    sign_out(client)
    done = to_password(client)
    assert done.location.endswith("/account"), done.location  # no second-factor page
    session = current_session(app, client)
    assert session.amr == [protocol.AMR_PASSWORD] and session.acr == protocol.ACR_REMEMBERED_DEVICE
    assert session.mfa_at is None  # changing sign-in methods asks for a second factor
    assert "Confirm it is you" in client.get("/account/mfa/verify").get_data(as_text=True)
    with app.app_context():
        assert db.session.query(RememberedDevice).one().last_used_at is not None


def test_unticked_or_elsewhere_asks_every_time(app, client, person):
    sign_in_remembering(client, remember=False)
    assert client.get_cookie(COOKIE) is None
    sign_out(client)
    assert asked_for_a_code(client)
    assert asked_for_a_code(app.test_client())


def test_the_claims_a_relying_party_sees(app, client, person):
    with app.app_context():
        rp = make_client()
    sign_in_remembering(client)
    sign_out(client)
    verifier, challenge = pkce_pair()
    start = client.get("/authorize?" + urlencode({
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": "openid",
        "state": "s", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256"}))
    done = to_password(client, authreq=query(start.location)["authreq"])
    code = query(client.get(done.location).location)["code"]
    tokens = exchange(client, rp, code, verifier).get_json()
    claims = jwt.decode(tokens["id_token"], KeySet.import_key_set(client.get("/jwks.json").get_json())).claims
    assert claims["amr"] == ["pwd"] and claims["acr"] == protocol.ACR_REMEMBERED_DEVICE
    assert protocol.ACR_REMEMBERED_DEVICE in client.get("/.well-known/openid-configuration").get_json()[
        "acr_values_supported"]


@pytest.mark.parametrize("acr", [protocol.ACR_PHISHING_RESISTANT, protocol.ACR_MFA])
def test_a_request_asking_for_a_second_factor_ignores_the_device(app, client, person, acr):
    with app.app_context():
        rp = make_client()
    sign_in_remembering(client)
    params = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
              "scope": "openid", "state": "s", "code_challenge": pkce_pair()[1], "code_challenge_method": "S256"}
    # signed in on the remembered device now: the request steps up to a new sign-in ...
    sign_out(client)
    to_password(client)
    step_up = client.get("/authorize?" + urlencode({**params, "acr_values": acr}))
    assert step_up.location.startswith("/signin"), step_up.location
    # ... in which the remembered device does not stand in for the second factor
    step = to_password(client, authreq=query(step_up.location)["authreq"])
    assert step.location.endswith("/signin/mfa")
    # without acr_values the same session is good enough
    plain = client.get("/authorize?" + urlencode(params))
    assert plain.status_code == 302 and plain.location.startswith(rp.redirect_uri)


# ------------------------------------------------------------------ bound, signed, expiring
def test_the_device_is_bound_to_the_account(app, client, person):
    with app.app_context():
        make_account(email="other@centre.example")
    sign_in_remembering(client)
    sign_out(client)
    assert asked_for_a_code(client, "other@centre.example")  # the same browser, someone else


def test_a_forged_or_copied_cookie_is_not_recognised(app, client, person):
    sign_in_remembering(client)
    value = client.get_cookie(COOKIE).value
    sign_out(client)
    token, signature = value.rsplit(".", 1)
    other = app.test_client()
    other.set_cookie(COOKIE, token + "." + signature[::-1])  # bad signature
    assert asked_for_a_code(other)
    third = app.test_client()
    third.set_cookie(COOKIE, "x" * 3000)
    assert asked_for_a_code(third)
    copied = app.test_client()
    copied.set_cookie(COOKIE, value)  # stolen whole, it still needs the password; removing it ends it
    assert not asked_for_a_code(copied)


def test_it_expires(app, client, person):
    sign_in_remembering(client)
    sign_out(client)
    value = client.get_cookie(COOKIE).value
    with time_machine.travel(time.time() + 31 * 86400, tick=False):
        later = app.test_client()
        later.set_cookie(COOKIE, value)  # a browser that kept it past its Max-Age
        assert asked_for_a_code(later)


def test_not_offered_to_board_staff(app, client):
    with app.app_context():
        make_account(email="staff@board.example", role="board", centre=None)
        assert remembered.offered_days(db.session.query(Account).one()) == 0
    step = to_password(client, "staff@board.example")
    assert "Do not ask for a code" not in client.get(step.location).get_data(as_text=True)
    answer_passkey(client, "staff@board.example", remember=True)  # ticked anyway: ignored
    assert client.get_cookie(COOKIE) is None
    with app.app_context():
        assert db.session.query(RememberedDevice).count() == 0


# ------------------------------------------------------------------ what ends it
def _ends(app, client, action) -> None:
    sign_in_remembering(client)
    action()
    with app.app_context():
        assert db.session.query(RememberedDevice).count() == 0
    fresh = app.test_client()
    fresh.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    assert asked_for_a_code(fresh)


def test_sign_out_everywhere_ends_it(app, client, person):
    def everywhere():
        page = client.get("/account").get_data(as_text=True)
        client.post("/signout", data={"csrf_token": _csrf(page), "everywhere": "1"})

    _ends(app, client, everywhere)


def test_a_password_change_ends_it(app, client, person):
    def change():
        page = client.get("/account/password").get_data(as_text=True)
        answer = client.post("/account/password", data={"current": PASSWORD, "password": "a new passphrase 2026",
                                                         "csrf_token": _csrf(page)})
        assert answer.status_code in (200, 303), answer.get_data(as_text=True)

    sign_in_remembering(client)
    change()
    with app.app_context():
        assert db.session.query(RememberedDevice).count() == 0


def test_an_mfa_reset_ends_it(app, client, person):
    from idp.admin import people

    def reset():
        with app.app_context():
            make_account(email="staff@board.example", role="board", centre=None)
            staff = db.session.query(Account).filter_by(email_key="staff@board.example").one()
            people.reset_mfa(people.party_of(staff), person, reason="Lost phone")

    _ends(app, client, reset)


def test_removing_it_in_my_account_ends_it(app, client, person):
    def remove():
        page = client.get("/account").get_data(as_text=True)
        assert "Devices that do not ask for a code" in page and "Remembered since" in page
        with app.app_context():
            device_id = db.session.query(RememberedDevice).one().id
        done = client.post("/account/devices/forget", data={"device": device_id, "csrf_token": _csrf(page)})
        assert done.status_code == 303
        assert "Devices that do not ask for a code" not in client.get("/account").get_data(as_text=True)

    _ends(app, client, remove)


def test_someone_elses_device_cannot_be_removed(app, client, person):
    with app.app_context():
        make_account(email="other@centre.example")
    other = app.test_client()
    sign_in_remembering(other, "other@centre.example")
    with app.app_context():
        theirs = db.session.query(RememberedDevice).one().id
    sign_in_remembering(client)
    page = client.get("/account").get_data(as_text=True)
    refused = client.post("/account/devices/forget", data={"device": theirs, "csrf_token": _csrf(page)})
    assert refused.status_code == 400 and "could not be found" in refused.get_data(as_text=True)
    for junk in ("", "x" * 500):
        assert client.post("/account/devices/forget", data={"device": junk, "csrf_token": _csrf(page)}
                           ).status_code == 400
    with app.app_context():
        assert db.session.query(RememberedDevice).count() == 2


def test_a_plain_sign_out_keeps_it(app, client, person):
    sign_in_remembering(client)
    sign_out(client)
    assert not asked_for_a_code(client)


# ------------------------------------------------------------------ the policy
@pytest.mark.parametrize("line, message", [
    ("days = { board = 0, wizard = 30 }", "unknown account type"),
    ("days = { eo = 365 }", "0 to 90"),
    ('days = { eo = "30" }', "0 to 90"),
    ("days = 30", "expected dict"),
])
def test_the_policy_is_checked(tmp_path, line, message):
    import re
    import shutil

    from idp import policy

    for item in policy.default_dir().glob("*.toml"):
        shutil.copy(item, tmp_path / item.name)
    security = tmp_path / "security.toml"
    security.write_text(re.sub(r"(?m)^days = .*$", line, security.read_text()))
    with pytest.raises(PolicyError, match=message):
        policy.load(tmp_path)


def test_a_device_removed_as_it_stands_in_for_the_second_factor_gives_no_session(app, client, person, monkeypatch):
    """The device is removed in My account on another browser at the moment this browser's password
    step recognises it: it stands in for nothing, the second factor is asked for, and nothing fails
    (its last use was flushed to a row that was gone: a 500)."""
    import threading

    sign_in_remembering(client)
    sign_out(client)
    real_update = remembered.update

    def removed_elsewhere_then_update(*args, **kwargs):  # recognised (read), not yet marked used
        def remove():
            with app.app_context():
                db.session.query(RememberedDevice).delete()
                db.session.commit()
                db.session.remove()
        elsewhere = threading.Thread(target=remove)
        elsewhere.start()
        elsewhere.join(timeout=10)
        return real_update(*args, **kwargs)

    monkeypatch.setattr(remembered, "update", removed_elsewhere_then_update)
    step = to_password(client)
    monkeypatch.undo()
    assert step.status_code == 303 and step.location.endswith("/signin/mfa"), step.status_code
    with app.app_context():
        assert db.session.query(SsoSession).filter(SsoSession.ended_at.is_(None)).count() == 0


def test_a_device_removed_as_its_sign_in_completes_waits_for_it_and_nothing_fails(app, client, person,
                                                                                  monkeypatch):
    """The removal comes a moment later, once the password step has marked the device used: it
    waits for that step's commit (the update holds the row). Then either the sign-in completes
    first, or the removal does and the sign-in starts again (remembered.still_live, as it
    completes); never a 500, as when the removal committed first and the step's flush of the
    device's last use found no row."""
    import threading

    sign_in_remembering(client)
    sign_out(client)
    real_recognise = remembered.recognise
    removals = []

    def recognised_then_removed_elsewhere(account, token):
        device = real_recognise(account, token)

        def remove():
            with app.app_context():
                db.session.query(RememberedDevice).delete()
                db.session.commit()
                db.session.remove()
        removals.append(threading.Thread(target=remove))
        removals[-1].start()
        removals[-1].join(timeout=1)  # (it waits for this sign-in's commit)
        return device

    monkeypatch.setattr(remembered, "recognise", recognised_then_removed_elsewhere)
    step = to_password(client)
    monkeypatch.undo()
    removals[0].join(timeout=30)
    assert step.status_code == 303 and step.location.endswith(("/account", "/signin")), step.status_code
    if step.location.endswith("/account"):
        sign_out(client)
    assert asked_for_a_code(client)  # removed for the next sign-in
