"""examboard_rp introspection: junk is refused locally, answers are remembered briefly (never past
the token's exp), and calls to the provider are throttled."""

from __future__ import annotations

import secrets

import pytest
from examboard_rp import InvalidToken, ProviderUnavailable, ResourceServer

from tests.clients.apps import protected_app
from tests.clients.listeners import FakeIssuer, Listener, json_answer

EO = "eo@centre.example"
AUDIENCE = "service"


def reason(rs, token) -> str:
    with pytest.raises(InvalidToken) as caught:
        rs.validate(token)
    return caught.value.reason


def opaque() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def idp():
    with Listener() as listener:
        yield listener


@pytest.fixture
def fake(idp) -> FakeIssuer:
    return FakeIssuer(idp, AUDIENCE)


JUNK = ["x", "short-token", "has spaces but is otherwise long enough", "\u00fcn\u00efc\u00f6d\u00e9-token-0123456789",
        "a" * 9000, "tok\x00en-0123456789abcdef", "=leading-padding-0123456789", "quote\"and<markup>-0123456789",
        "a.b.c"]


def test_junk_bearer_strings_are_refused_without_asking_the_provider(provider, rp):
    rs = ResourceServer(provider.issuer, audience=rp.client_id, client_secret=rp.client_secret)
    for junk in JUNK:
        assert reason(rs, junk) == "malformed", junk
    http = protected_app(rs).test_client()
    assert http.get("/results", headers={"Authorization": "Bearer x"}).status_code == 401
    assert provider.requests["/introspect"] == 0
    assert reason(rs, opaque()) == "inactive"  # a plausible one is asked about
    assert provider.requests["/introspect"] == 1


def test_an_unknown_token_is_asked_about_once_then_remembered_briefly(provider, rp, clock):
    rs = ResourceServer(provider.issuer, audience=rp.client_id, client_secret=rp.client_secret, clock=clock)
    token = opaque()
    for _ in range(20):
        assert reason(rs, token) == "inactive"
    assert provider.requests["/introspect"] == 1
    clock.advance(rs.introspector.negative_ttl)
    assert reason(rs, token) == "inactive"
    assert provider.requests["/introspect"] == 2


def test_an_active_token_is_remembered(provider, rp):
    tokens = provider.tokens(rp, EO)
    rs = ResourceServer(provider.issuer, audience=rp.client_id, client_secret=rp.client_secret,
                        introspection="always")
    for _ in range(10):
        assert rs.validate(tokens["access_token"]).centre == "12345"
    assert provider.requests["/introspect"] == 1


def test_an_active_answer_is_never_remembered_past_the_token_exp(idp, fake, clock):
    """The provider says active, exp in 3 s; the cache TTL is 10 s: 3 s later the kit asks again."""
    token = opaque()
    idp.routes["/introspect"] = json_answer({"active": True, "sub": "someone", "client_id": AUDIENCE,
                                             "iat": clock.now, "exp": clock.now + 3})
    rs = ResourceServer(idp.url, audience=AUDIENCE, client_secret="secret", clock=clock, now=clock, leeway=0)
    assert rs.validate(token).sub == "someone"
    clock.advance(2.9)
    assert rs.validate(token).sub == "someone"
    assert idp.paths().count("/introspect") == 1
    idp.routes["/introspect"] = json_answer({"active": False})
    clock.advance(0.1)
    assert reason(rs, token) == "inactive"
    assert idp.paths().count("/introspect") == 2


def test_calls_to_the_provider_are_throttled(idp, fake, clock):
    rs = ResourceServer(idp.url, audience=AUDIENCE, client_secret="secret", clock=clock,
                        introspection_rate_limit=5)
    outcomes = []
    for _ in range(20):
        try:
            rs.validate(opaque())
        except InvalidToken as exc:
            outcomes.append(exc.reason)
        except ProviderUnavailable as exc:
            outcomes.append(exc.reason)
    assert outcomes == ["inactive"] * 5 + ["introspection_throttled"] * 15
    assert idp.paths().count("/introspect") == 5
    response = protected_app(rs).test_client().get("/results", headers={"Authorization": f"Bearer {opaque()}"})
    assert response.status_code == 503 and response.headers["Retry-After"]
    clock.advance(1)  # five more a second
    for _ in range(5):
        assert reason(rs, opaque()) == "inactive"
    assert idp.paths().count("/introspect") == 10


def test_remembered_answers_are_bounded_and_keyed_by_a_hash(idp, fake):
    idp.routes["/introspect"] = json_answer({"active": True, "sub": "someone", "client_id": AUDIENCE})
    rs = ResourceServer(idp.url, audience=AUDIENCE, client_secret="secret", introspection_cache_size=3)
    tokens = [opaque() for _ in range(10)]
    for token in tokens:
        rs.validate(token)
    remembered = rs.introspector._answers._entries
    assert len(remembered) == 3
    assert all(isinstance(key, bytes) and len(key) == 32 for key in remembered)  # SHA-256, not the token
    assert not any(token in repr(remembered) for token in tokens)
    rs.validate(tokens[-1])
    assert idp.paths().count("/introspect") == 10  # the newest is still remembered
