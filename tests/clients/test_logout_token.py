"""examboard_rp back-channel logout (OIDC Back-Channel Logout 1.0), receiving side.

Logout tokens are signed here with the running provider's own keys and checked against the JWKS
it serves, exactly as one it sent would be."""

from __future__ import annotations

import os
import secrets
import threading
import time

import pytest
from examboard_rp import BACKCHANNEL_LOGOUT_EVENT, LogoutTokenError, MemoryReplayCache, RedisReplayCache, ResourceServer
from examboard_rp.flask import logout_view
from flask import Flask

from tests.clients.live import ServedApp
from tests.support import authorize, exchange, query

AUD = "service-client-id"


@pytest.fixture
def rs(provider):
    return ResourceServer(provider.issuer, audience=AUD)


@pytest.fixture
def validator(rs):
    return rs.logout_validator()


def logout_claims(provider, **changes) -> dict:
    claims = {"iss": provider.issuer, "aud": AUD, "iat": int(time.time()), "jti": secrets.token_hex(12),
              "sub": "person-sub", "sid": "session-1", "events": {BACKCHANNEL_LOGOUT_EVENT: {}}}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def logout_token(provider, alg="RS256", typ="logout+jwt", **changes) -> str:
    return provider.sign(logout_claims(provider, **changes), alg=alg, typ=typ)


def refused(validator, token) -> str:
    with pytest.raises(LogoutTokenError) as caught:
        validator.accept(token)
    return caught.value.reason


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
@pytest.mark.parametrize("typ", ["logout+jwt", "JWT", "application/logout+jwt", None])
def test_valid_logout_token_accepted(provider, validator, alg, typ):
    request = validator.accept(logout_token(provider, alg=alg, typ=typ))
    assert (request.sub, request.sid) == ("person-sub", "session-1")


def test_sid_or_sub_alone_is_enough(provider, validator):
    assert validator.accept(logout_token(provider, sub=None)).sid == "session-1"
    assert validator.accept(logout_token(provider, sid=None)).sub == "person-sub"
    assert refused(validator, logout_token(provider, sub=None, sid=None)) == "missing_sub_and_sid"


def test_wrong_audience_refused(provider, validator):
    assert refused(validator, logout_token(provider, aud="another-client")) == "wrong_audience"
    assert validator.accept(logout_token(provider, aud=["another-client", AUD]))


def test_wrong_issuer_refused(provider, validator):
    assert refused(validator, logout_token(provider, iss="https://evil.example")) == "wrong_issuer"


def test_nonce_refused(provider, validator):
    assert refused(validator, logout_token(provider, nonce="n-0S6_WzA2Mj")) == "nonce_present"


@pytest.mark.parametrize("events", [
    None, {}, [], "backchannel-logout", {BACKCHANNEL_LOGOUT_EVENT: []}, {BACKCHANNEL_LOGOUT_EVENT: {"x": 1}},
    {BACKCHANNEL_LOGOUT_EVENT: {}, "http://example.com/other-event": {}},
    {"http://schemas.openid.net/event/backchannel-logout/": {}},
])
def test_missing_or_wrong_events_refused(provider, validator, events):
    token = provider.sign({k: v for k, v in logout_claims(provider, events=events).items()
                           if not (k == "events" and events is None)}, alg="RS256", typ="logout+jwt")
    assert refused(validator, token) == "bad_events"


def test_replayed_jti_refused(provider, validator):
    token = logout_token(provider)
    assert validator.accept(token)
    assert refused(validator, token) == "replayed"
    # a different token reusing the jti is a replay too
    again = logout_token(provider, jti=validator.validate(token).jti, sid="session-2")
    assert refused(validator, again) == "replayed"


def test_replay_window_ends(provider, clock):
    cache = MemoryReplayCache(clock=clock)
    assert cache.add("jti-1", 60) and not cache.add("jti-1", 60)
    clock.advance(61)
    assert cache.add("jti-1", 60)
    small = MemoryReplayCache(max_entries=2, clock=clock)
    assert small.add("a", 60) and small.add("b", 60) and small.add("c", 60)
    assert not small.add("c", 60)


def test_time_claims_with_small_leeway(provider, validator):
    now = int(time.time())
    assert validator.accept(logout_token(provider, iat=now + 20))            # clock skew within leeway
    assert refused(validator, logout_token(provider, iat=now + 120)) == "issued_in_future"
    assert refused(validator, logout_token(provider, iat=now - 400)) == "too_old"
    assert refused(validator, logout_token(provider, exp=now - 60)) == "expired"
    assert validator.accept(logout_token(provider, exp=now + 120))
    assert refused(validator, logout_token(provider, iat=None)) == "missing_claim"
    assert refused(validator, logout_token(provider, jti=None)) == "missing_claim"


def test_other_tokens_are_not_logout_tokens(provider, validator):
    assert refused(validator, logout_token(provider, typ="at+jwt")) == "wrong_typ"
    unknown_key = provider.sign(logout_claims(provider), alg="RS256", typ="JWT", kid="nope")
    assert refused(validator, unknown_key) == "unknown_kid"
    head, body, _ = logout_token(provider).split(".")
    assert refused(validator, f"{head}.{body}.") == "bad_signature"
    assert refused(validator, "garbage") == "malformed"


def test_hook_failure_lets_the_provider_retry(provider, validator):
    token = logout_token(provider)
    calls = []

    def flaky(request):
        calls.append(request.sid)
        if len(calls) == 1:
            raise RuntimeError("session store down")

    with pytest.raises(RuntimeError):
        validator.handle(token, flaky)
    assert validator.handle(token, flaky).sid == "session-1"
    assert calls == ["session-1", "session-1"]


# ------------------------------------------------------------------ the Flask view
def logout_app(validator, ended: list) -> Flask:
    app = Flask("logout")
    app.add_url_rule("/backchannel-logout", methods=["POST"], view_func=logout_view(validator, ended.append))
    return app


def test_flask_view_answers_200_then_400(provider, validator):
    ended = []
    http = logout_app(validator, ended).test_client()
    token = logout_token(provider)
    ok = http.post("/backchannel-logout", data={"logout_token": token})
    assert ok.status_code == 200 and ok.headers["Cache-Control"] == "no-store"
    assert [(r.sub, r.sid) for r in ended] == [("person-sub", "session-1")]

    replay = http.post("/backchannel-logout", data={"logout_token": token})
    assert replay.status_code == 400 and replay.headers["Cache-Control"] == "no-store"
    assert replay.get_json()["error"] == "invalid_request" and replay.get_json()["reason"] == "replayed"

    for bad in (logout_token(provider, aud="x"), logout_token(provider, nonce="n"),
                logout_token(provider, events=None)):
        answer = http.post("/backchannel-logout", data={"logout_token": bad})
        assert answer.status_code == 400 and answer.get_json()["error"]
    assert http.post("/backchannel-logout", data={}).status_code == 400
    assert http.post("/backchannel-logout", json={"logout_token": logout_token(provider)}).status_code == 400
    assert len(ended) == 1


def test_flask_view_hook_failure_is_400(provider, validator):
    def broken(request):
        raise RuntimeError("nope")

    http = Flask("x")
    http.add_url_rule("/bcl", methods=["POST"], view_func=logout_view(validator, broken))
    answer = http.test_client().post("/bcl", data={"logout_token": logout_token(provider)})
    assert answer.status_code == 400 and answer.get_json()["error"] == "logout_failed"


def test_replay_memory_is_shared_between_processes(provider, rs, backend):
    """With Redis (the pg-redis backend) two validators, as in two processes, share the jti memory."""
    if backend == "embedded":
        shared = MemoryReplayCache()  # one process, several threads
        first = rs.logout_validator(replay_cache=shared)
        second = rs.logout_validator(replay_cache=shared)
        token = logout_token(provider)
        assert first.accept(token) and refused(second, token) == "replayed"
        return
    import redis

    client = redis.Redis.from_url(os.environ["IDP_TEST_REDIS_URL"])
    prefix = f"rp-test-{secrets.token_hex(6)}:"
    try:
        first = rs.logout_validator(replay_cache=RedisReplayCache(client, prefix=prefix))
        second = rs.logout_validator(replay_cache=RedisReplayCache(client, prefix=prefix))
        token = logout_token(provider)
        assert first.accept(token)
        assert refused(second, token) == "replayed"
        assert 0 < client.ttl(prefix + first.validate(token).jti) <= 300 + 60
        second.replay_cache.discard(first.validate(token).jti)
        assert second.accept(token)
    finally:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()


# ------------------------------------------------------------------ end to end
def test_logout_token_sent_by_the_provider_is_accepted(make_provider):
    """RP-initiated logout at the provider: it posts a logout token to the client's registered
    back-channel URI, where the kit's view validates it and calls the hook."""
    provider = make_provider(outbound={"allow_http_loopback": True})  # the RP listens on http loopback
    ended, arrived = [], threading.Event()

    def end_sessions(request):
        ended.append(request)
        arrived.set()

    holder = {}
    served = ServedApp(lambda environ, start: holder["app"](environ, start))
    try:
        provider.person("eo@centre.example")
        rp = provider.client("Logout RP", backchannel_logout_uri=served.url + "/backchannel-logout")
        validator = ResourceServer(provider.issuer, audience=rp.client_id).logout_validator()
        holder["app"] = Flask("rp")
        holder["app"].add_url_rule("/backchannel-logout", methods=["POST"],
                                   view_func=logout_view(validator, end_sessions))

        browser = provider.app.test_client()
        response, verifier = authorize(browser, rp)
        tokens = exchange(browser, rp, query(response.location)["code"], verifier).get_json()
        from joserfc import jwt

        id_claims = jwt.decode(tokens["id_token"], provider.signing_key("RS256")[1]).claims
        out = browser.get("/logout?" + "&".join([f"id_token_hint={tokens['id_token']}",
                                                 "post_logout_redirect_uri=https://rp.example/bye"]))
        assert out.status_code in (200, 302, 303), out.get_data(as_text=True)
        assert arrived.wait(15), "no logout token arrived"
        assert ended[0].sub == id_claims["sub"] and ended[0].sid == id_claims["sid"]
        assert ended[0].claims["aud"] == rp.client_id
    finally:
        served.close()
