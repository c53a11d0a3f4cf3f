"""A service's plain client_credentials and introspection requests, answered ahead of the
endpoints (idp/oidc/plain_requests.py).

What is attacked: that the short way ever answers differently from the token endpoint. Every
request below is sent twice, once as it comes and once with the short way switched off, and the
two answers must be the same (status, error, headers, the token's claims but its id and times);
each case also says which way it must have gone, so a change that quietly sends everything the
long way (or lets an odd request through the short one) fails too.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from idp import protocol
from idp.extensions import db
from idp.oidc import clients, plain_requests, tokens
from tests.redis_servers import wait_until
from tests.support import spoiled

SERVICE = {"client_name": "Batch results", "grant_types": ["client_credentials"], "scope": "access results.read"}
#: claims that differ between any two tokens
PER_TOKEN = {"jti", "iat", "exp"}
#: response headers that differ between any two responses
PER_RESPONSE = {"x-request-id", "date"}


@pytest.fixture
def services(app):
    """Four registrations: the plain service, one that must bind its tokens with DPoP, one that
    may not use client_credentials at all, and one registered to send its secret in the body."""
    pepper = app.extensions["idp.pepper"]
    made = {}
    with app.app_context():
        for name, meta in {"plain": SERVICE,
                           "dpop": {**SERVICE, "client_name": "Bound", "dpop_bound_access_tokens": True},
                           "no_grant": {**SERVICE, "client_name": "Person-only", "grant_types": ["authorization_code"],
                                        "redirect_uris": ["https://rp.example/cb"]},
                           "post": {**SERVICE, "client_name": "Posts", "token_endpoint_auth_method": "client_secret_post"},
                           }.items():
            created = clients.create(dict(meta), actor="test", pepper=pepper)
            made[name] = (created.client.client_id, created.client_secret)
    return made


@pytest.fixture
def issued(app, client, services):
    """Access tokens to introspect and to ask UserInfo about: the plain service's own, a person's
    issued to it, a person's issued to another client, one of the service's that has been revoked,
    a person's without ``openid``, one bound to a DPoP key, and one of a person since disabled."""
    from idp import secrets
    from tests.support import make_account

    own = client.post("/token", data={"grant_type": "client_credentials"},
                      headers={"Authorization": basic(*services["plain"])}).get_json()["access_token"]
    made = {"own": own}
    with app.app_context():
        account = make_account("teacher@centre.example", role="user", mfa=False, profiles=["results.view"])
        gone = make_account("left@centre.example", mfa=False)
        cache = app.extensions["idp.clients"]
        for name, which, person, scope, jkt in (
                ("person", "plain", account, "openid profile email access", None),
                ("another client's", "no_grant", account, "openid profile access", None),
                ("person without openid", "plain", account, "profile access", None),
                ("person's bound to a key", "plain", account, "openid profile", "0" * 43),
                ("disabled person's", "plain", gone, "openid profile", None)):
            registered = cache.get(services[which][0])
            principal = tokens.Principal(account=person, auth_time=int(time.time()), amr=["pwd", "otp", "mfa"],
                                         acr=protocol.ACR_MFA, sid=None, grant_id=secrets.token(16))
            made[name], _ = tokens.issue_access_token(registered, protocol.AUTHORIZATION_CODE, principal, scope,
                                                      jkt=jkt)
        gone.status = "disabled"
        db.session.commit()
        revoked = client.post("/token", data={"grant_type": "client_credentials"},
                              headers={"Authorization": basic(*services["plain"])}).get_json()["access_token"]
        tokens.revoke_access_token(tokens.decode_own(revoked, typ=protocol.ACCESS_TOKEN_TYP))
        made["revoked"] = revoked
    return made


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def warm(app, http, services) -> None:
    """Each client looked up once (the token endpoint fills the cache) and the change notices live:
    only then does the short way hold the client."""
    cache = app.extensions["idp.clients"]
    for _ in range(2):  # the first lookup starts the watch; one while it is live fills the cache
        for client_id, secret in services.values():
            http.post("/token", data={"grant_type": "client_credentials"},
                      headers={"Authorization": basic(client_id, secret)})
        wait_until(lambda: cache._watch is not None and cache._watch.live, timeout=10, what="client change notices")
    for client_id, _ in services.values():
        assert cache.cached(client_id) is not None


def _send(http, case):
    form = {"Content-Type": "application/x-www-form-urlencoded"} if "body" in case else {}
    return http.open(case.get("path", "/token"), method=case.get("method", "POST"), data=case.get("body"),
                     headers={**form, **case["headers"]},
                     base_url=case.get("base_url", "http://localhost"), environ_overrides=case.get("environ", {}))


def _comparable(app, response) -> dict:
    answer = response.get_json(silent=True)
    if isinstance(answer, dict) and "access_token" in answer:
        with app.app_context():
            claims = tokens.decode_own(answer["access_token"], typ="at+jwt")
        assert claims is not None, "the token does not verify"
        answer = {**answer, "access_token": {k: v for k, v in claims.items() if k not in PER_TOKEN}}
    headers = sorted((k.lower(), v) for k, v in response.headers.items() if k.lower() not in PER_RESPONSE)
    # the bytes too, but for the token itself: the keys in the same order, the same spacing
    shape = response.data
    if isinstance(answer, dict) and "access_token" in answer:
        shape = shape.replace(response.get_json()["access_token"].encode(), b"<token>")
    return {"status": response.status_code, "body": answer if answer is not None else response.data,
            "headers": headers, "shape": shape}


def _cases(services, issued) -> dict[str, tuple[dict, bool]]:
    """name -> (request, answered the short way?)"""
    cid, secret = services["plain"]
    auth = {"Authorization": basic(cid, secret)}
    form = "grant_type=client_credentials"
    return {**_introspection_cases(services, issued), **_userinfo_cases(issued),
        "plain": ({"body": form, "headers": auth}, True),
        "scope asked for": ({"body": form + "&scope=results.read", "headers": auth}, True),
        "scope asked for twice over": ({"body": form + "&scope=results.read+results.read", "headers": auth}, True),
        "blank scope": ({"body": form + "&scope=", "headers": auth}, True),
        "charset given": ({"body": form, "headers": {**auth, "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}}, True),
        "https": ({"body": form, "headers": auth, "base_url": "https://idp.example"}, True),
        "credentials percent-encoded": ({"body": form, "headers": {"Authorization": basic(
            cid, "".join(f"%{b:02X}" for b in secret.encode()))}}, True),
        # everything below is the token endpoint's to answer
        "a person's scope": ({"body": form + "&scope=openid", "headers": auth}, False),
        "a scope it does not have": ({"body": form + "&scope=entries.write", "headers": auth}, False),
        "wrong secret": ({"body": form, "headers": {"Authorization": basic(cid, spoiled(secret))}}, False),
        "unknown client": ({"body": form, "headers": {"Authorization": basic("c" * 22, secret)}}, False),
        "no colon": ({"body": form, "headers": {"Authorization": "Basic " + base64.b64encode(cid.encode()).decode()}}, False),
        "not base64": ({"body": form, "headers": {"Authorization": "Basic !!!"}}, False),
        "a secret not UTF-8": ({"body": form, "headers": {"Authorization": "Basic " + base64.b64encode(
            cid.encode() + b":\xff\xfe").decode()}}, False),
        "a client id not UTF-8": ({"body": form, "headers": {"Authorization": "Basic " + base64.b64encode(
            b"\xff:x").decode()}}, False),
        "lower-case scheme": ({"body": form, "headers": {"Authorization": "basic " + basic(cid, secret)[6:]}}, False),
        "secret in the body": ({"body": f"{form}&client_id={cid}&client_secret={secret}", "headers": {}}, False),
        "secret both ways": ({"body": f"{form}&client_id={cid}&client_secret={secret}", "headers": auth}, False),
        "grant_type twice": ({"body": form + "&" + form, "headers": auth}, False),
        "scope twice": ({"body": form + "&scope=access&scope=results.read", "headers": auth}, False),
        "another parameter": ({"body": form + "&resource=https%3A%2F%2Fapi.example", "headers": auth}, False),
        "query string": ({"body": form, "headers": auth, "path": "/token?scope=access"}, False),
        "another grant": ({"body": "grant_type=refresh_token&refresh_token=x", "headers": auth}, False),
        "no grant_type": ({"body": "scope=access", "headers": auth}, False),
        "not a form": ({"body": json.dumps({"grant_type": "client_credentials"}),
                        "headers": {**auth, "Content-Type": "application/json"}}, False),
        "a DPoP header": ({"body": form, "headers": {**auth, "DPoP": "not.a.proof"}}, False),
        "a client bound to DPoP": ({"body": form, "headers": {"Authorization": basic(*services["dpop"])}}, False),
        "a client without the grant": ({"body": form, "headers": {"Authorization": basic(*services["no_grant"])}}, False),
        "plain http to another host": ({"body": form, "headers": auth, "base_url": "http://idp.example"}, False),
        # a Host werkzeug finds invalid is no host at all, so Authlib's transport rule refuses it
        "https to an invalid host": ({"body": form, "headers": auth, "base_url": "https://idp.example",
                                      "environ": {"HTTP_HOST": "idp_example"}}, False),
        "https to port 0": ({"body": form, "headers": auth, "base_url": "https://idp.example",
                             "environ": {"HTTP_HOST": "idp.example:0"}}, False),
        "http to localhost on port 0": ({"body": form, "headers": auth, "environ": {"HTTP_HOST": "localhost:0"}}, False),
        "http to localhost on a port too high": ({"body": form, "headers": auth,
                                                  "environ": {"HTTP_HOST": "localhost:99999"}}, False),
        "http to localhost on a port with a leading zero": ({"body": form, "headers": auth,
                                                             "environ": {"HTTP_HOST": "localhost:080"}}, False),
        "http to localhost on its port": ({"body": form, "headers": auth, "environ": {"HTTP_HOST": "localhost:5000"}}, True),
        "http to the loopback address": ({"body": form, "headers": auth, "environ": {"HTTP_HOST": "127.0.0.1:5000"}}, True),
        "a length with a sign": ({"body": form, "headers": auth, "environ": {"CONTENT_LENGTH": "+29"}}, False),
        "a length with an underscore": ({"body": form, "headers": auth, "environ": {"CONTENT_LENGTH": "2_9"}}, False),
        "a transfer encoding": ({"body": form, "headers": {**auth, "Transfer-Encoding": "chunked"}}, False),
        "a client registered to post its secret, sending it by Basic": (
            {"body": form, "headers": {"Authorization": basic(*services["post"])}}, True),
        "a body over 8 KiB": ({"body": form + "&scope=" + "+".join(["results.read"] * 700), "headers": auth}, False),
        "non-ASCII body": ({"body": form.encode() + b"&scope=\xff", "headers": auth}, False),
        "a field without a value": ({"body": form + "&scope", "headers": auth}, False),
    }


def _introspection_cases(services, issued) -> dict[str, tuple[dict, bool]]:
    auth = {"Authorization": basic(*services["plain"])}

    def about(token, extra=""):
        return {"path": "/introspect", "body": f"token={token}{extra}", "headers": auth}

    return {
        "introspect its own token": (about(issued["own"]), True),
        "introspect a person's token": (about(issued["person"]), True),
        "introspect with the access_token hint": (about(issued["person"], "&token_type_hint=access_token"), True),
        # the introspection endpoint's: not active, someone else's, or not the plain form
        "introspect another client's token": (about(issued["another client's"]), False),
        "introspect a revoked token": (about(issued["revoked"]), False),
        "introspect a token altered by one character": (about(issued["person"][:-2] + ("A" if issued["person"][-2] != "A" else "B") + issued["person"][-1]), False),
        "introspect something else": (about("not-a-token"), False),
        "introspect a token with characters added to its signature": (about(issued["person"] + "%2A%2A%2A%2A"), False),
        "introspect a token with padding": (about(issued["person"] + "%3D%3D"), False),
        "introspect with the refresh_token hint": (about(issued["person"], "&token_type_hint=refresh_token"), False),
        "introspect with a hint of no kind": (about(issued["person"], "&token_type_hint=id_token"), False),
        "introspect with a blank hint": (about(issued["person"], "&token_type_hint="), False),
        "introspect two tokens": (about(issued["person"], "&token=" + issued["own"]), False),
        "introspect nothing": ({"path": "/introspect", "body": "token_type_hint=access_token", "headers": auth}, False),
        "introspect with a wrong secret": ({**about(issued["own"]), "headers": {"Authorization": basic(
            services["plain"][0], "wrong")}}, False),
        "introspect as a client without the grant": ({**about(issued["another client's"]), "headers": {
            "Authorization": basic(*services["no_grant"])}}, True),
        "introspect with a query string": ({**about(issued["own"]), "path": "/introspect?token=x"}, False),
    }


def _userinfo_cases(issued) -> dict[str, tuple[dict, bool]]:
    def asking(token, scheme="Bearer ", **extra):
        return {"method": "GET", "path": "/userinfo", "headers": {"Authorization": scheme + token}, **extra}

    person = issued["person"]
    return {
        "userinfo": (asking(person), True),
        "userinfo over https": (asking(person, base_url="https://idp.example"), True),
        "userinfo with another client's token": (asking(issued["another client's"]), True),
        # the endpoint's: refusals, and anything but the plain form
        "userinfo with a service's own token": (asking(issued["own"]), False),
        "userinfo with a revoked token": (asking(issued["revoked"]), False),
        "userinfo with an altered token": (asking(person[:-2] + ("A" if person[-2] != "A" else "B") + person[-1]),
                                           False),
        "userinfo without openid": (asking(issued["person without openid"]), False),
        "userinfo with a token bound to a key": (asking(issued["person's bound to a key"]), False),
        "userinfo for a person since disabled": (asking(issued["disabled person's"]), False),
        "userinfo with a lower-case scheme": (asking(person, "bearer "), False),
        "userinfo with two spaces": (asking(person, "Bearer  "), False),
        "userinfo with the DPoP scheme": (asking(person, "DPoP "), False),
        "userinfo with no token": (asking("", "Bearer "), False),
        "userinfo with a query string": (asking(person, path="/userinfo?schema=openid"), False),
        "userinfo with a DPoP header": ({**asking(person), "headers": {"Authorization": "Bearer " + person,
                                                                       "DPoP": "not.a.proof"}}, False),
        "userinfo with a body": (asking(person, body="access_token=x"), False),
        "userinfo with a transfer encoding": ({**asking(person), "headers": {"Authorization": "Bearer " + person,
                                                                             "Transfer-Encoding": "chunked"}}, False),
    }


_DUMMY_SERVICES = {"plain": ("a", "b"), "dpop": ("c", "d"), "no_grant": ("e", "f"), "post": ("g", "h")}
CASE_NAMES = list(_cases(_DUMMY_SERVICES, dict.fromkeys(
    ("own", "person", "another client's", "revoked", "person without openid", "person's bound to a key",
     "disabled person's"), "x.y.z")))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_the_short_way_answers_as_the_endpoint_does(app, client, services, issued, monkeypatch, name):
    warm(app, client, services)
    case, short = _cases(services, issued)[name]
    answered = []
    real_answer = plain_requests.PlainRequests.answer

    def spy(self, handler, environ):
        body = real_answer(self, handler, environ)
        answered.append(body is not None)
        return body

    monkeypatch.setattr(plain_requests.PlainRequests, "answer", spy)
    first = _send(client, case)
    assert answered == [short], f"{name}: expected the {'short way' if short else 'token endpoint'}"
    monkeypatch.setattr(plain_requests.PlainRequests, "answer", lambda self, handler, environ: None)
    second = _send(client, case)
    assert _comparable(app, first) == _comparable(app, second)
    assert first.status_code < 500, f"{name}: {first.status_code} {first.data[:200]!r}"
    if short:
        assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
        assert first.headers["X-Frame-Options"] == "DENY" and first.headers["X-Request-Id"]
        assert first.headers.get("Pragma") == (None if case.get("method") == "GET" else "no-cache")


def test_a_plain_request_never_reaches_flask(app, client, services, monkeypatch):
    warm(app, client, services)

    def not_here():
        raise AssertionError("the token endpoint was called")

    monkeypatch.setitem(app.view_functions, "token.token", not_here)
    answer = client.post("/token", data={"grant_type": "client_credentials", "scope": "results.read"},
                         headers={"Authorization": basic(*services["plain"])})
    assert answer.status_code == 200
    with app.app_context():
        claims = tokens.decode_own(answer.get_json()["access_token"], typ="at+jwt")
    assert claims["sub"] == claims["client_id"] == claims["aud"] == services["plain"][0]
    assert claims["scope"] == "results.read" and answer.get_json()["token_type"] == "Bearer"


def test_a_client_not_cached_yet_goes_the_long_way_and_is_cached_by_it(app, client, services):
    cid, secret = services["plain"]
    cache = app.extensions["idp.clients"]
    assert cache.cached(cid) is None

    def issued_then_cached():
        assert client.post("/token", data={"grant_type": "client_credentials"},
                           headers={"Authorization": basic(cid, secret)}).status_code == 200
        return cache.cached(cid) is not None

    wait_until(issued_then_cached, timeout=10, what="cached by the token endpoint")


def test_a_change_to_the_client_is_obeyed_at_once(app, client, services):
    """Disabled, secret rotated (the old one kept for a grace that then ends): the short way reads
    the cache the change notices keep exact, and the clock for the grace."""
    warm(app, client, services)
    cid, secret = services["plain"]
    pepper = app.extensions["idp.pepper"]

    def issued(with_secret):
        return client.post("/token", data={"grant_type": "client_credentials"},
                           headers={"Authorization": basic(cid, with_secret)}).status_code

    with app.app_context():
        clients.set_disabled(cid, True, actor="test")
    assert issued(secret) == 401
    with app.app_context():
        clients.set_disabled(cid, False, actor="test")
    assert issued(secret) == 200
    with app.app_context():
        new = clients.rotate_secret(cid, actor="test", pepper=pepper, grace_seconds=2)
    warm(app, client, {"plain": (cid, new)})
    assert issued(secret) == 200 and issued(new) == 200  # both during the grace
    time.sleep(2.1)
    assert issued(secret) == 401 and issued(new) == 200


def test_a_failure_on_the_short_way_leaves_the_answer_to_the_token_endpoint(app, client, services, monkeypatch,
                                                                             caplog):
    warm(app, client, services)

    def broken(*_args, **_kwargs):
        raise RuntimeError("signing broken on the short way only")

    monkeypatch.setattr(plain_requests, "issue_tokens", broken)
    answer = client.post("/token", data={"grant_type": "client_credentials"},
                         headers={"Authorization": basic(*services["plain"])})
    assert answer.status_code == 200 and "access_token" in answer.get_json()
    assert "not answered ahead of the endpoint" in caplog.text


def test_the_body_read_on_the_short_way_is_handed_on_whole(app, client, services):
    """A request the short way reads and then leaves (a wrong secret) reaches the token endpoint
    with its body: the refusal names the client's error, not a missing grant_type."""
    warm(app, client, services)
    cid, secret = services["plain"]
    answer = client.post("/token", data={"grant_type": "client_credentials", "scope": "access"},
                         headers={"Authorization": basic(cid, spoiled(secret))})
    assert answer.status_code == 401 and answer.get_json()["error"] == "invalid_client"


def test_with_the_store_down_introspection_says_so_as_the_endpoint_does(app, client, services, issued, monkeypatch,
                                                                        caplog):
    """Redis gone mid-request: the revocation markers cannot be read, so nothing is said active;
    the short way leaves the answer (503, as every endpoint gives) to the endpoint, quietly."""
    from idp.store import StoreUnavailable

    warm(app, client, services)

    def down(*_keys):
        raise StoreUnavailable("Redis: ConnectionError")

    monkeypatch.setattr(app.extensions["idp.store"], "get_many", down)
    answer = client.post("/introspect", data={"token": issued["person"]},
                         headers={"Authorization": basic(*services["plain"])})
    assert answer.status_code == 503 and answer.get_json()["error"] == "temporarily_unavailable"
    assert "not answered ahead of the endpoint" not in caplog.text


def test_with_the_store_down_userinfo_says_so_as_the_endpoint_does(app, client, services, issued, monkeypatch,
                                                                    caplog):
    from idp.store import StoreUnavailable

    warm(app, client, services)

    def down(*_keys):
        raise StoreUnavailable("Redis: ConnectionError")

    monkeypatch.setattr(app.extensions["idp.store"], "get_many", down)
    answer = client.get("/userinfo", headers={"Authorization": "Bearer " + issued["person"]})
    assert answer.status_code == 503 and answer.get_json()["error"] == "temporarily_unavailable"
    assert "not answered ahead of the endpoint" not in caplog.text


def test_userinfo_the_short_way_sees_a_change_at_once(app, client, services, issued):
    """The short way reads the store's copy of the person under the same versions as the endpoint:
    a change made through the administration services is in the very next answer."""
    from idp.admin import people
    from tests.support import make_account

    warm(app, client, services)
    bearer = {"Authorization": "Bearer " + issued["person"]}
    assert client.get("/userinfo", headers=bearer).get_json()["profiles"] == ["results.view"]
    with app.app_context():
        sub = tokens.decode_own(issued["person"], typ="at+jwt")["sub"]
        officer = people.party_of(make_account("eo@centre.example", mfa=False))
        people.set_profiles(officer, sub, ["results.view", "scripts.view"])
    assert client.get("/userinfo", headers=bearer).get_json()["profiles"] == ["results.view", "scripts.view"]
    with app.app_context():
        people.disable(people.operator(), sub, reason="left the centre")
    assert client.get("/userinfo", headers=bearer).status_code == 401


def test_the_transport_answers_remembered_are_bounded_and_per_host():
    """The transport rule's answers are kept per scheme and host; the Host header is the caller's,
    so a flood of names keeps at most the limit, and each name still gets its own answer."""
    plain_requests._TRANSPORT_ANSWERS.clear()
    for n in range(plain_requests._TRANSPORT_ANSWERS_LIMIT * 2):
        assert plain_requests._secure_enough({"wsgi.url_scheme": "http", "HTTP_HOST": f"h{n}.example"}) is False
        assert len(plain_requests._TRANSPORT_ANSWERS) <= plain_requests._TRANSPORT_ANSWERS_LIMIT
    assert plain_requests._secure_enough({"wsgi.url_scheme": "http", "HTTP_HOST": "localhost:5000"}) is True
    assert plain_requests._secure_enough({"wsgi.url_scheme": "https", "HTTP_HOST": "idp.example"}) is True
    assert plain_requests._secure_enough({"wsgi.url_scheme": "https", "HTTP_HOST": "idp_example"}) is False
