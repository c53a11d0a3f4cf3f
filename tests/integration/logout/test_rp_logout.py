"""RP-initiated logout ends the session its valid ID token hint names (its ``sid``), whether or not
the browser sent the SSO cookie and whether or not that session has passed its idle timeout: with
all that ending a session does (its grants without offline_access, back-channel logouts, audit).
What the hint names is all it ends: another person's cookie session is only ever ended when that
person confirms, and nothing here signs anyone in."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from tests.integration.logout.test_backchannel import Receiver, _wait
from tests.support import authorize, code_flow, exchange, make_account, make_client, query, token_request

COOKIE = "idp_session"  # the configured __Host- name without its prefix on a localhost http issuer
BYE = "https://a.example/bye"
OTHER = "other@centre.example"


@pytest.fixture
def settings(make_settings):
    # the receiver listens on plain-http loopback; no failure memory (as in test_backchannel.py)
    return make_settings(outbound={"allow_http_loopback": True, "failure_cache_seconds": 0})


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def service(app, receiver):
    with app.app_context():
        make_account()
        make_account(email=OTHER, role="user")
        return make_client(name="Service A", redirect_uri="https://a.example/cb", post_logout_redirect_uris=[BYE],
                           scope="openid profile offline_access", backchannel_logout_uri=receiver.uri)


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _signed_here(app, claims: dict) -> str:
    """An ID token this provider signs with these claims (what a flaw elsewhere could hand out)."""
    from idp.oidc import tokens

    with app.test_request_context():
        return tokens.sign(claims, app.config["IDP_SETTINGS"].keys.id_token_alg)


def _refreshes(http, rp, tokens) -> bool:
    answer = token_request(http, rp, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    return answer.status_code == 200


def _signed_in(http, rp) -> bool:
    """What prompt=none says about this browser's session."""
    response = http.get("/authorize?" + urlencode({
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
        "scope": "openid", "state": "probe", "prompt": "none"}))
    assert response.status_code == 302, response.get_data(as_text=True)
    return "code" in query(response.location)


def _ended(app) -> list[tuple[str | None, str | None]]:
    """(subject, sid) of each session.ended audit row, oldest first."""
    from idp.audit import AuditEvent
    from idp.extensions import db

    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "session.ended")
                                  .order_by(AuditEvent.at)).all()
        return [(row.subject, row.details.get("sid")) for row in rows]


def _sub(app, email: str) -> str:
    from idp.accounts.models import Account
    from idp.extensions import db

    with app.app_context():
        return db.session.scalars(select(Account.sub).where(Account.email == email)).one()


def _idle(app, seconds: int) -> None:
    from idp.accounts.models import SsoSession
    from idp.extensions import db

    with app.app_context():
        for entry in db.session.scalars(select(SsoSession)):
            entry.last_seen_at = entry.last_seen_at - timedelta(seconds=seconds)
        db.session.commit()


def test_rp_logout_after_the_idle_timeout_ends_that_sign_in(app, client, service, receiver):
    """The person left the provider's pages alone past the idle timeout while the service went on
    refreshing (allowed: the idle timeout is not applied to refreshes), then signed out at the
    service: the cookie finds no live session, but the hint names that one, and it ends (found by
    an outside probe: nothing ended, and the online grant refreshed for up to 12 hours more)."""
    from idp import policy

    issued = code_flow(client, service, scope="openid profile")
    with app.app_context():
        idle = policy.current().sec("session").idle_timeout_seconds
    _idle(app, idle + 60)
    refreshed = token_request(client, service, {"grant_type": "refresh_token",
                                                "refresh_token": issued["refresh_token"]})
    assert refreshed.status_code == 200
    current = refreshed.get_json()

    answer = client.get("/logout?" + urlencode({"id_token_hint": issued["id_token"],
                                                 "post_logout_redirect_uri": BYE, "state": "s1"}))
    assert answer.status_code == 302 and answer.location == f"{BYE}?state=s1"
    assert not _refreshes(client, service, current)
    info = client.get("/userinfo", headers={"Authorization": f"Bearer {current['access_token']}"})
    assert info.status_code == 401
    assert _ended(app) == [(_sub(app, "eo@centre.example"), _claims(issued["id_token"])["sid"])]
    assert _wait(lambda: receiver.tokens), "the service was sent no back-channel logout"
    assert _claims(receiver.tokens[0])["sid"] == _claims(issued["id_token"])["sid"]


def test_rp_logout_by_cross_site_post_without_the_cookie_ends_the_session_the_hint_names(app, client, service,
                                                                                         receiver):
    """RP-Initiated Logout §2 by an auto-submitted cross-site form POST: the browser withholds the
    SameSite=Lax cookie, so only the hint's sid tells which session this is (found by an outside
    probe: the service was sent back as if signed out, and the session and its grant lived on)."""
    online = code_flow(client, service, scope="openid profile")
    offline = code_flow(client, service, scope="openid offline_access")
    cross_site = app.test_client()  # the same browser, its Lax cookie withheld

    answer = cross_site.post("/logout", data={"id_token_hint": online["id_token"], "post_logout_redirect_uri": BYE,
                                              "state": "x"})
    assert answer.status_code == 302 and answer.location == f"{BYE}?state=x"
    assert not _signed_in(client, service)  # the cookie the browser holds signs nobody in now
    assert not _refreshes(client, service, online)
    assert _refreshes(client, service, offline)  # offline_access outlives the sign-in
    assert _ended(app) == [(_sub(app, "eo@centre.example"), _claims(online["id_token"])["sid"])]
    assert _wait(lambda: receiver.tokens)
    # no cookie came with the request, so none is cleared: the browser may hold someone else's
    assert "Set-Cookie" not in answer.headers or COOKIE not in answer.headers["Set-Cookie"]
    assert cross_site.get_cookie(COOKIE) is None and not _signed_in(cross_site, service)

    # the same hint again: that session has ended, nothing more happens
    again = cross_site.post("/logout", data={"id_token_hint": online["id_token"], "post_logout_redirect_uri": BYE})
    assert again.status_code == 302 and len(_ended(app)) == 1


def test_a_hint_of_another_person_ends_their_named_session_and_asks_before_ending_this_one(app, client, service):
    """This browser is signed in as one person; the hint is another's. The hint's session ends (as
    it would have without this browser's cookie); this person is asked, and signed out only if
    they confirm (RP-Initiated Logout §2: the OP MUST ask when the hint is not of the current
    session's person)."""
    other_browser = app.test_client()
    theirs = code_flow(other_browser, service, scope="openid profile", email=OTHER)
    mine = code_flow(client, service, scope="openid profile")

    page = client.get("/logout?" + urlencode({"id_token_hint": theirs["id_token"], "post_logout_redirect_uri": BYE,
                                               "state": "s"}))
    assert page.status_code == 200 and 'name="confirm"' in page.get_data(as_text=True)
    assert not _signed_in(other_browser, service) and not _refreshes(other_browser, service, theirs)
    assert _signed_in(client, service) and _refreshes(client, service, mine)
    assert _ended(app) == [(_sub(app, OTHER), _claims(theirs["id_token"])["sid"])]


def test_a_hint_without_sid_or_naming_another_person_s_session_ends_nothing(app, client, service):
    """Only a session of the hint's own person is ended by its sid; a hint without one names none."""
    mine = code_flow(client, service, scope="openid profile")
    other_browser = app.test_client()
    theirs = code_flow(other_browser, service, scope="openid profile", email=OTHER)
    without_sid = {k: v for k, v in _claims(theirs["id_token"]).items() if k != "sid"}
    naming_mine = {**_claims(theirs["id_token"]), "sid": _claims(mine["id_token"])["sid"]}
    for claims in (without_sid, naming_mine):
        answer = app.test_client().post("/logout", data={"id_token_hint": _signed_here(app, claims),
                                                         "post_logout_redirect_uri": BYE})
        assert answer.status_code == 302
    assert _signed_in(client, service) and _refreshes(client, service, mine)
    assert _signed_in(other_browser, service) and _refreshes(other_browser, service, theirs)
    assert _ended(app) == []


def test_a_hint_for_another_client_or_one_not_signed_here_ends_nothing(app, client, service):
    with app.app_context():
        other = make_client(name="Service B", redirect_uri="https://b.example/cb",
                            post_logout_redirect_uris=["https://b.example/bye"])
    mine = code_flow(client, service, scope="openid profile")
    for data in ({"id_token_hint": mine["id_token"], "client_id": other.client_id},
                 {"id_token_hint": mine["id_token"][:-6] + "AAAAAA"}):
        answer = app.test_client().post("/logout", data={**data, "post_logout_redirect_uri": BYE})
        assert answer.status_code == 400 and "Location" not in answer.headers
    assert _signed_in(client, service) and _refreshes(client, service, mine)
    assert _ended(app) == []


def test_logout_by_hint_signs_nobody_in(app, client, service):
    response, verifier = authorize(client, service, scope="openid profile")
    issued = exchange(client, service, query(response.location)["code"], verifier).get_json()
    stranger = app.test_client()
    answer = stranger.post("/logout", data={"id_token_hint": issued["id_token"]})
    assert answer.status_code == 200
    assert stranger.get_cookie(COOKIE) is None and not _signed_in(stranger, service)
    assert not _signed_in(client, service)


def test_a_hint_of_an_earlier_sign_in_asks_before_ending_this_one(app, client, service):
    """Raised by an outside probe: a valid hint of the same person but of an earlier sign-in (a
    service, or anyone holding an old ID token of theirs, sending it at any later time) signed
    this browser's current session out without asking. RP-Initiated Logout §2: a hint whose sid
    is not the current session's is suspect; the person is asked, and signed out only if they
    confirm."""
    earlier = code_flow(client, service, scope="openid profile")
    assert client.get("/logout?" + urlencode({"id_token_hint": earlier["id_token"]})).status_code == 200
    assert not _signed_in(client, service)
    now = code_flow(client, service, scope="openid profile")  # signed in again: another session
    assert _claims(now["id_token"])["sid"] != _claims(earlier["id_token"])["sid"]

    page = client.get("/logout?" + urlencode({"id_token_hint": earlier["id_token"], "post_logout_redirect_uri": BYE,
                                               "state": "s"}))
    assert page.status_code == 200 and 'name="confirm"' in page.get_data(as_text=True)
    assert _signed_in(client, service) and _refreshes(client, service, now)
    # the current session's own hint signs out without asking, as before
    answer = client.get("/logout?" + urlencode({"id_token_hint": now["id_token"], "post_logout_redirect_uri": BYE}))
    assert answer.status_code == 302 and not _signed_in(client, service)
