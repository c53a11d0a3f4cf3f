"""What the busiest person-facing token calls read: UserInfo reads the person and their access
profiles in one statement; a refresh reads the token with its person and their profiles in one,
and both the new access token and the new ID token carry what it read. Fewer round trips, same answers:
the claims are checked here too, after a change to the person's access."""

from __future__ import annotations

import base64
import json

import pytest

from idp import create_app
from idp.admin import people
from idp.centres import grants
from idp.extensions import db
from tests.integration.oidc.test_client_cache import statements
from tests.support import code_flow, make_account, make_client, token_request

SCOPE = "openid profile email access offline_access"


def _person_and_tokens(app, client_http):
    with app.app_context():
        account = make_account("eo@centre.example", profiles=["results.view", "entries.make"])
        rp = make_client(grant_types=["authorization_code", "refresh_token"], scope=SCOPE)
    return account, rp, code_flow(client_http, rp, scope=SCOPE)


def _claims(jwt: str) -> dict:
    """A JWT's claims, unverified (the signature is tested elsewhere; this is about what it says)."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _reads(seen: list[str]) -> list[str]:
    return [s.split()[0].upper() for s in seen]


def test_userinfo_is_one_read(app, client):
    account, rp, issued = _person_and_tokens(app, client)
    with statements(app) as seen:
        answer = client.get("/userinfo", headers={"Authorization": f"Bearer {issued['access_token']}"})
    assert answer.status_code == 200
    assert _reads(seen) == ["SELECT"]
    assert answer.get_json()["profiles"] == ["entries.make", "results.view"]
    # what they hold now is what UserInfo says, not what the token said
    with app.app_context():
        person = db.session.merge(account)
        grants.replace_profiles(person, grants.profiles_of(person), frozenset({"results.view"}), by="test")
        db.session.commit()
    later = client.get("/userinfo", headers={"Authorization": f"Bearer {issued['access_token']}"}).get_json()
    assert later["profiles"] == ["results.view"]


def test_with_the_embedded_store_every_userinfo_reads(app, client, backend, make_settings):
    """The in-process store is this process's alone: an ``idp`` command changing a person writes
    its notices into its own, so the server keeps no copies and reads the database every time; a
    change made by another process on the same database is in the very next answer."""
    if backend != "embedded":
        pytest.skip("the copies on a shared store: test_claims_copies.py")
    account, _rp, issued = _person_and_tokens(app, client)
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    for _ in range(2):
        with statements(app) as seen:
            assert client.get("/userinfo", headers=bearer).get_json()["given_name"] == "Ada"
        assert _reads(seen) == ["SELECT"]
    command = create_app(make_settings())  # as `idp` would build it: the same database, its own store
    with command.app_context():
        people.update_fields(people.operator(), account.sub, {"given_name": "Grace"})
    command.extensions["idp.db"].dispose()
    assert client.get("/userinfo", headers=bearer).get_json()["given_name"] == "Grace"


def test_a_person_without_profiles_still_gets_userinfo(app, client):
    with app.app_context():
        make_account("eo@centre.example", profiles=[])
        rp = make_client(grant_types=["authorization_code"], scope="openid access")
    issued = code_flow(client, rp, scope="openid access")
    answer = client.get("/userinfo", headers={"Authorization": f"Bearer {issued['access_token']}"})
    assert answer.status_code == 200 and answer.get_json()["profiles"] == []


def test_a_refresh_reads_the_token_with_its_person_and_the_profiles_once(app, client):
    _, rp, issued = _person_and_tokens(app, client)
    with statements(app) as seen:
        refreshed = token_request(client, rp, {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.get_data(as_text=True)
    # the token (joined with its person, centre and profiles); then the single-use claim and the
    # successor: on PostgreSQL one statement (WITH claimed AS (UPDATE ...) INSERT ...), each in autocommit
    with app.app_context():
        postgres = db.is_postgres
    assert _reads(seen) == (["SELECT", "WITH"] if postgres else ["SELECT", "UPDATE", "INSERT"]), seen
    body = refreshed.get_json()
    assert body["refresh_token"] != issued["refresh_token"]
    for name in ("access_token", "id_token"):
        assert _claims(body[name])["profiles"] == ["entries.make", "results.view"], name
    again = token_request(client, rp, {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"  # still single use


def test_a_refresh_speaks_for_the_person_as_they_are_now(app, client):
    """The refreshed tokens carry the person's current name and access, not the grant's; a person
    who may no longer act gets nothing, and the refused token is not used up."""
    account, rp, issued = _person_and_tokens(app, client)
    with app.app_context():
        person = db.session.merge(account)
        person.given_name = "Renamed"
        grants.replace_profiles(person, grants.profiles_of(person), frozenset({"results.view"}), by="test")
        db.session.commit()
    body = token_request(client, rp, {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}).get_json()
    assert _claims(body["id_token"])["given_name"] == "Renamed"
    assert _claims(body["access_token"])["profiles"] == ["results.view"]
    with app.app_context():
        db.session.merge(account).centre.suspended = True
        db.session.commit()
    refused = token_request(client, rp, {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    with app.app_context():
        db.session.merge(account).centre.suspended = False
        db.session.commit()
    assert token_request(client, rp, {"grant_type": "refresh_token",
                                      "refresh_token": body["refresh_token"]}).status_code == 200
