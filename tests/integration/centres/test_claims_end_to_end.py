"""Token claims end to end: what an administrator changes reaches (or stops) the tokens a relying
party gets, through the real authorization code flow, refresh, ID token and userinfo."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import policy
from idp.admin import centres as admin_centres
from idp.admin import errors as admin_errors
from idp.admin import people as admin
from idp.extensions import db
from tests.support import code_flow, make_account, make_client, token_request

CENTRE = "12345"
USER = "user@centre.example"
EO = "eo@centre.example"


class Flow:
    """One relying party and one browser for one person."""

    def __init__(self, app, rp, email_address: str, scope: str) -> None:
        self.app, self.rp, self.http = app, rp, app.test_client()
        self.tokens = code_flow(self.http, rp, scope=scope, email=email_address)
        self.keys = KeySet.import_key_set(self.http.get("/jwks.json").get_json())

    def claims(self, kind: str = "access_token") -> dict:
        return jwt.decode(self.tokens[kind], self.keys).claims

    def refresh(self):
        response = token_request(self.http, self.rp, {"grant_type": "refresh_token",
                                                      "refresh_token": self.tokens["refresh_token"]})
        if response.status_code == 200:
            self.tokens = response.get_json()
        return response

    def userinfo(self):
        return self.http.get("/userinfo", headers={"Authorization": f"Bearer {self.tokens['access_token']}"})


@pytest.fixture
def people(app):
    with app.app_context():
        eo = make_account(EO, role="eo", centre=CENTRE)
        user = make_account(USER, role="user", centre=CENTRE, language="cy")
        rp = make_client()
        return {"eo": eo.sub, "user": user.sub, "rp": rp}


def as_eo(app, action):
    with app.app_context():
        actor = admin.party_of(admin.account_by_email(EO))
        return action(actor)


def test_grant_then_refresh_releases_the_profile_and_revoke_removes_it(app, people):
    flow = Flow(app, people["rp"], USER, "openid access")
    assert flow.claims()["profiles"] == ["resources"]
    assert flow.claims("id_token")["profiles"] == ["resources"]

    as_eo(app, lambda eo: admin.set_profiles(eo, people["user"], ["resources", "scripts.view", "iamis"]))
    assert flow.refresh().status_code == 200
    for kind in ("access_token", "id_token"):
        assert flow.claims(kind)["profiles"] == ["iamis", "resources", "scripts.view"], kind
    assert flow.userinfo().get_json()["profiles"] == ["iamis", "resources", "scripts.view"]

    as_eo(app, lambda eo: admin.set_profiles(eo, people["user"], ["iamis"]))
    assert flow.refresh().status_code == 200
    for kind in ("access_token", "id_token"):
        assert flow.claims(kind)["profiles"] == ["iamis"], kind
    assert flow.userinfo().get_json()["profiles"] == ["iamis"]


def test_role_change_reaches_the_refreshed_token(app, people):
    flow = Flow(app, people["rp"], USER, "openid access")
    as_eo(app, lambda eo: admin.change_role(eo, people["user"], "admin"))
    assert flow.refresh().status_code == 200
    assert flow.claims()["role"] == "admin" and flow.claims("id_token")["role"] == "admin"


def test_deleted_account_cannot_refresh(app, people):
    flow = Flow(app, people["rp"], USER, "openid access")
    as_eo(app, lambda eo: admin.delete(eo, people["user"]))
    response = flow.refresh()
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    assert flow.userinfo().status_code == 401


def test_suspended_centre_cannot_refresh_or_use_userinfo(app, people):
    flow = Flow(app, people["rp"], USER, "openid access")
    assert flow.userinfo().status_code == 200
    with app.app_context():
        admin_centres.set_centre_suspended(admin.operator(), CENTRE, True)
    response = flow.refresh()
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    info = flow.userinfo()
    assert info.status_code == 401 and "invalid_token" in info.headers["WWW-Authenticate"]


def test_a_client_sees_only_its_allowed_profiles(app, people):
    with app.app_context():
        results = make_client(name="Results service", redirect_uri="https://results.example/cb",
                              allowed_profiles=["results.view", "results.embargoed"])
    flow = Flow(app, results, EO, "openid access")
    for kind in ("access_token", "id_token"):
        assert flow.claims(kind)["profiles"] == ["results.embargoed", "results.view"], kind
    assert flow.userinfo().get_json()["profiles"] == ["results.embargoed", "results.view"]
    # a person without those profiles gets an empty list, not someone else's
    user_flow = Flow(app, results, USER, "openid access")
    assert user_flow.claims()["profiles"] == []


def test_profiles_sorted_centre_is_the_number_locale_is_the_language(app, people):
    flow = Flow(app, people["rp"], EO, "openid profile access")
    every = sorted(policy.load().allowed_profiles("eo"))
    for kind in ("access_token", "id_token"):
        claims = flow.claims(kind)
        assert claims["profiles"] == every, kind
        assert claims["centre"] == CENTRE and isinstance(claims["centre"], str), kind
        assert claims["role"] == "eo", kind
    assert flow.claims("id_token")["locale"] == "en"

    welsh = Flow(app, people["rp"], USER, "openid profile access")
    assert welsh.claims("id_token")["locale"] == "cy"
    assert welsh.userinfo().get_json()["locale"] == "cy"
    as_eo(app, lambda eo: admin.update_fields(eo, people["user"], {"language": "en"}))
    assert welsh.refresh().status_code == 200
    assert welsh.claims("id_token")["locale"] == "en"


def test_without_the_access_scope_no_role_centre_or_profiles(app, people):
    flow = Flow(app, people["rp"], EO, "openid profile email")
    for claims in (flow.claims(), flow.claims("id_token"), flow.userinfo().get_json()):
        assert not {"role", "centre", "profiles"} & set(claims), claims
    assert flow.refresh().status_code == 200
    for claims in (flow.claims(), flow.claims("id_token")):
        assert not {"role", "centre", "profiles"} & set(claims), claims


def test_a_refused_replace_does_not_sign_the_eo_out(app, people):
    """replace() ends the old EO's access before it knows the new invite is acceptable; when the
    invite is then refused (a bad email address) nothing happened, so the EO's tokens must work."""
    flow = Flow(app, people["rp"], EO, "openid access")
    assert flow.userinfo().status_code == 200
    with app.app_context():
        with pytest.raises(admin_errors.Invalid):
            admin.replace(admin.operator(), role="eo", centre=CENTRE, email="not an email",
                             fields={"given_name": "New", "family_name": "Officer"})
        db.session.rollback()
    assert flow.userinfo().status_code == 200, "a refused replace revoked the EO's access token"
    assert flow.refresh().status_code == 200
