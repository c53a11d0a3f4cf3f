"""A store that forgets everything (Redis restarted without persistence, as the operations guide
allows; the embedded store at every restart) forgets every revocation with it. Attacked: a token
revoked, and a disabled person's token, must not come back "active" once the store is back empty;
they, and every token issued before the loss, are refused, and tokens issued after it work
(idp.records.STORE_FORGOT)."""

from __future__ import annotations

import base64
import time

import pytest

from idp import create_app
from idp.admin import people
from idp.oidc import clients, tokens
from tests.integration.test_outages import RedisServer, _free_port
from tests.support import make_account

SERVICE = {"client_name": "Batch results", "grant_types": ["client_credentials"], "scope": "access"}


def _basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _world(app):
    """A service, its own token revoked at /revoke, another of its tokens left alone, and a
    person's token whose person is then disabled."""
    http = app.test_client()
    with app.app_context():
        made = clients.create(dict(SERVICE), actor="test", pepper=app.extensions["idp.pepper"])
        auth = _basic(made.client.client_id, made.client_secret)
        person = make_account("teacher@centre.example", role="user", mfa=False)
        registered = app.extensions["idp.clients"].get(made.client.client_id)
        principal = tokens.Principal(account=person, auth_time=int(time.time()), amr=["pwd"], acr="", sid=None,
                                     grant_id="g" * 22)
        persons, _ = tokens.issue_access_token(registered, "authorization_code", principal, "openid access")

    def issue() -> str:
        return http.post("/token", data={"grant_type": "client_credentials"}, headers=auth).get_json()["access_token"]

    revoked, live = issue(), issue()
    assert http.post("/revoke", data={"token": revoked}, headers=auth).status_code == 200
    with app.app_context():
        people.disable(people.operator(), person.sub, reason="left the centre")

    def active(token: str):
        answer = http.post("/introspect", data={"token": token}, headers=auth)
        return answer.get_json()["active"] if answer.status_code == 200 else answer.status_code

    assert (active(revoked), active(persons), active(live)) == (False, False, True)
    return active, issue, {"revoked": revoked, "disabled person": persons, "issued before": live}


@pytest.mark.one_backend
def test_a_redis_restarted_empty_brings_no_revoked_token_back(make_settings):
    server = RedisServer(_free_port())
    server.start()
    app = create_app(make_settings(store={"redis_url": f"redis://127.0.0.1:{server.port}/0"}))
    try:
        active, issue, before = _world(app)
        server.stop()
        server.start()  # empty: --save "" and no append-only file
        deadline = time.monotonic() + 10
        while active(before["issued before"]) == 503 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert {name: active(token) for name, token in before.items()} == dict.fromkeys(before, False)
        time.sleep(1.05)  # the second in which the loss was found is refused as a whole
        assert active(issue()) is True
    finally:
        app.extensions["idp.db"].dispose()
        app.extensions["idp.store"].close()
        server.stop()


def test_a_store_that_forgot_everything_brings_no_revoked_token_back(app):
    """The embedded store lives in the process: a restart (a new app on the same database and
    keys) begins with it empty. A shared store forgets with its keys flushed under a running app."""
    active, issue, before = _world(app)
    time.sleep(1.05)  # the loss a second later
    shared = app.extensions["idp.store"].shared
    checking = _forget(app)
    try:
        with checking.app_context():
            assert {name: tokens.verify_access_token(token) for name, token in before.items()} == \
                dict.fromkeys(before)
        if shared:
            time.sleep(1.05)
            assert active(issue()) is True
    finally:
        if not shared:
            checking.extensions["idp.db"].dispose()
            checking.extensions["idp.store"].close()


def _forget(app):
    """The store forgets everything: the app to go on with (embedded: a restarted one)."""
    if app.extensions["idp.store"].shared:
        redis = app.extensions["idp.store"].client
        redis.delete(*redis.scan_iter(match=app.config["IDP_SETTINGS"].store.prefix + "*"))
        return app
    restarted = create_app(app.config["IDP_SETTINGS"])
    restarted.config["TESTING"] = True
    return restarted


def test_a_dpop_proof_used_before_the_store_forgot_is_not_taken_again(app):
    from tests.dpop_keys import DPoPKey
    from tests.support import make_client, token_request

    with app.app_context():
        service = make_client(name="Entries batch", grant_types=["client_credentials"], scope="entries",
                              redirect_uris=[])
    key = DPoPKey()
    used = {"DPoP": key.proof("POST", "http://localhost/token")}
    form = {"grant_type": "client_credentials"}
    assert token_request(app.test_client(), service, form, headers=used).status_code == 200
    time.sleep(1.05)
    after = _forget(app)
    try:
        replayed = token_request(after.test_client(), service, form, headers=used)
        assert replayed.status_code == 400 and replayed.get_json()["error"] == "invalid_dpop_proof"
        time.sleep(1.05)  # a proof made after the loss is taken
        fresh = {"DPoP": key.proof("POST", "http://localhost/token")}
        assert token_request(after.test_client(), service, form, headers=fresh).status_code == 200
    finally:
        if after is not app:
            after.extensions["idp.db"].dispose()
            after.extensions["idp.store"].close()


def test_a_client_assertion_used_before_the_store_forgot_is_not_taken_again(app):
    from tests.integration.oidc.test_conformance_basic import _assertion, _jwt_client, _jwt_token_request

    registered, keys = _jwt_client(app)
    cid, key = registered.client_id, keys["ES256"]
    used = _assertion(cid, key, "ES256")
    assert _jwt_token_request(app.test_client(), cid, used).status_code == 200
    time.sleep(1.05)
    after = _forget(app)
    try:
        replayed = _jwt_token_request(after.test_client(), cid, used)
        assert replayed.status_code in (400, 401) and replayed.get_json()["error"] == "invalid_client"
        time.sleep(1.05)
        assert _jwt_token_request(after.test_client(), cid, _assertion(cid, key, "ES256")).status_code == 200
    finally:
        if after is not app:
            after.extensions["idp.db"].dispose()
            after.extensions["idp.store"].close()


def test_a_garbled_record_of_what_the_store_forgot_is_replaced_not_kept_refusing(app):
    from idp import records

    active, issue, before = _world(app)
    with app.app_context():
        records.STORE_FORGOT.put("up-to", "not a second")
    assert active(before["issued before"]) is False  # as good as forgotten: fail closed, once
    with app.app_context():
        assert records.STORE_FORGOT.get("up-to").isdigit()
    time.sleep(1.05)
    assert active(issue()) is True
