"""examboard_rp JWKS cache: caching, key rotation without restart, rate-limited refresh."""

from __future__ import annotations

import secrets
import threading
import time

import pytest
from examboard_rp import InvalidToken, JWKSCache, ProviderUnavailable, ResourceServer
from examboard_rp.http import Response
from examboard_rp.jwks import parse_jwks

from idp.oidc.keys import KeyFolder

EO = "eo@centre.example"


def new_kid_token(provider, rp, alg="ES256") -> str:
    """A token the provider's key signed, naming a kid nobody publishes."""
    return provider.sign(provider.access_claims(rp), alg=alg, kid=secrets.token_urlsafe(16))


def wait_for_new_signing_kid(provider, rp, old_kid: str) -> str:
    """The provider re-reads its key folder at most once a second: wait until it signs with the new key."""
    from joserfc import jws

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        access = provider.access_token(rp, EO)
        if jws.extract_compact(access.encode()).headers()["kid"] != old_kid:
            return access
        time.sleep(0.3)
    raise AssertionError("the provider never signed with the rotated key")


def test_keys_are_fetched_once_and_cached(provider, rp):
    rs = ResourceServer(provider.issuer, audience=rp.client_id)
    tokens = [provider.access_token(rp, EO) for _ in range(3)]
    for _ in range(100):
        for access in tokens:
            rs.validate(access)
    assert rs.jwks.fetches == 1 and provider.jwks_requests == 1


def test_rotation_is_picked_up_without_restart(provider, rp, clock):
    rs = ResourceServer(provider.issuer, audience=rp.client_id, clock=clock)
    before = provider.access_token(rp, EO)
    rs.validate(before)
    old_kid = provider.signing_key("ES256")[0]
    assert rs.jwks.fetches == 1

    KeyFolder(provider.keys_dir).rotate("ES256", now_=True)
    after = wait_for_new_signing_kid(provider, rp, old_kid)

    # the keys were fetched just now: within the refresh interval an unknown kid waits ...
    with pytest.raises(InvalidToken) as caught:
        rs.validate(after)
    assert caught.value.reason == "unknown_kid"
    assert rs.jwks.fetches == 1
    # ... and once it has passed, the first token with the new kid fetches the new JWKS
    clock.advance(rs.jwks.refresh_interval)
    assert rs.validate(after).centre == "12345"
    assert rs.jwks.fetches == 2
    assert rs.validate(before)  # the retiring key stays published until its tokens expire
    assert rs.jwks.fetches == 2


def test_rotation_seen_on_first_unknown_kid_when_interval_passed(provider, rp):
    rs = ResourceServer(provider.issuer, audience=rp.client_id, jwks_refresh_interval=0.5)
    rs.validate(provider.access_token(rp, EO))
    old_kid = provider.signing_key("ES256")[0]
    KeyFolder(provider.keys_dir).rotate("ES256", now_=True)
    after = wait_for_new_signing_kid(provider, rp, old_kid)
    time.sleep(0.5)
    assert rs.validate(after).sub  # fetched at once, no restart
    assert rs.jwks.fetches == 2


def test_flood_of_unknown_kids_fetches_at_most_once_per_interval(provider, rp, clock):
    rs = ResourceServer(provider.issuer, audience=rp.client_id, clock=clock)
    rs.validate(provider.access_token(rp, EO))
    assert rs.jwks.fetches == 1 and provider.jwks_requests == 1
    clock.advance(rs.jwks.refresh_interval)

    forged = [new_kid_token(provider, rp) for _ in range(50)]
    errors = []

    def attack():
        for token in forged:
            try:
                rs.validate(token)
            except InvalidToken as exc:
                errors.append(exc.reason)

    threads = [threading.Thread(target=attack) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == ["unknown_kid"] * 400
    assert rs.jwks.fetches == 2 and provider.jwks_requests == 2  # one refresh for the whole flood

    clock.advance(rs.jwks.refresh_interval - 1)
    for token in forged:
        with pytest.raises(InvalidToken):
            rs.validate(token)
    assert provider.jwks_requests == 2
    clock.advance(1)
    with pytest.raises(InvalidToken):
        rs.validate(new_kid_token(provider, rp))
    assert provider.jwks_requests == 3  # the next interval allows the next single fetch
    assert rs.validate(provider.access_token(rp, EO))  # known keys never wait


def test_expired_cache_is_refreshed_per_max_age(provider, rp, clock):
    rs = ResourceServer(provider.issuer, audience=rp.client_id, clock=clock)
    access = provider.access_token(rp, EO)
    rs.validate(access)
    clock.advance(299)  # the provider's JWKS max-age is 300 s
    rs.validate(access)
    assert provider.jwks_requests == 1
    clock.advance(1)
    rs.validate(access)
    assert provider.jwks_requests == 2


def test_cached_keys_survive_a_provider_outage(provider, rp, clock):
    rs = ResourceServer(provider.issuer, audience=rp.client_id, clock=clock, timeout=1)
    access = provider.access_token(rp, EO)
    rs.validate(access)
    provider.stop()
    clock.advance(400)  # stale, and the refresh fails: the old keys still answer
    assert rs.validate(access).sub
    with pytest.raises(InvalidToken) as caught:
        rs.validate(new_kid_token(provider, rp))
    assert caught.value.reason == "unknown_kid"
    clock.advance(2 * 86400)  # too long without a successful refresh
    with pytest.raises(ProviderUnavailable):
        rs.validate(access)


def test_a_provider_that_never_answered_is_unavailable(provider, rp, clock):
    rs = ResourceServer(provider.issuer, audience=rp.client_id, clock=clock, timeout=1)
    token = provider.access_token(rp, EO)
    provider.stop()
    with pytest.raises(ProviderUnavailable):
        rs.validate(token)


def test_jwks_parsing_keeps_only_public_signing_keys(provider):
    from joserfc.jwk import ECKey, OctKey

    public = ECKey.generate_key("P-256").as_dict(private=False) | {"kid": "good", "alg": "ES256"}
    private = ECKey.generate_key("P-256").as_dict(private=True) | {"kid": "private"}
    doc = {"keys": [public, private, {**public, "kid": "enc", "use": "enc"},
                    OctKey.generate_key(256).as_dict() | {"kid": "oct"}, {"kty": "EC", "kid": "broken"},
                    {"kty": "EC"}, "junk"]}
    assert set(parse_jwks(doc)) == {"good"}
    with pytest.raises(ProviderUnavailable):
        parse_jwks({"no": "keys"})


def test_jwks_cache_rate_limits_failures(clock):
    calls = []

    def failing(url, form, headers, timeout):
        calls.append(url)
        return Response(500, None, None)

    cache = JWKSCache("https://idp.example.org/jwks.json", fetch=failing, clock=clock)
    for _ in range(20):
        with pytest.raises(ProviderUnavailable):
            cache.get("k")
    assert len(calls) == 1
    clock.advance(cache.refresh_interval)
    with pytest.raises(ProviderUnavailable):
        cache.get("k")
    assert len(calls) == 2


def test_withdrawn_key_stops_cached_tokens_at_the_next_refresh(provider, rp, clock):
    """A compromised key withdrawn at once: tokens it signed stop validating when the kit next
    refreshes the JWKS (its max-age), whether or not they were in the token cache."""
    rs = ResourceServer(provider.issuer, audience=rp.client_id, clock=clock)
    uncached = ResourceServer(provider.issuer, audience=rp.client_id, clock=clock, token_cache_size=0)
    access = provider.access_token(rp, EO)
    assert rs.validate(access) and uncached.validate(access)
    folder = KeyFolder(provider.keys_dir)
    old_kid = provider.signing_key("ES256")[0]
    folder.rotate("ES256", now_=True)
    folder.retire(old_kid, immediately=True)
    time.sleep(1.1)  # the provider re-reads its key folder at most once a second
    assert rs.validate(access) and uncached.validate(access)  # JWKS still fresh here
    clock.advance(300)
    for server in (rs, uncached):
        with pytest.raises(InvalidToken) as caught:
            server.validate(access)
        assert caught.value.reason == "unknown_kid"


def test_token_cache_is_bounded(provider, rp):
    rs = ResourceServer(provider.issuer, audience=rp.client_id, token_cache_size=3)
    tokens = [provider.sign(provider.access_claims(rp)) for _ in range(10)]
    for token in tokens:
        rs.validate(token)
    assert len(rs.access_tokens._cache) == 3
    assert set(rs.access_tokens._cache) == set(tokens[-3:])


def test_discovery_with_insecure_or_missing_jwks_uri_is_unavailable(clock):
    from examboard_rp.discovery import Discovery

    def serving(doc):
        return lambda url, form, headers, timeout: Response(200, doc, None)

    issuer = "https://idp.example.org"
    for doc in ({"issuer": issuer, "jwks_uri": "http://idp.example.org/jwks.json"}, {"issuer": issuer},
                {"issuer": "https://other.example", "jwks_uri": issuer + "/jwks.json"}, ["not", "a", "dict"]):
        with pytest.raises(ProviderUnavailable):
            Discovery(issuer, fetch=serving(doc), clock=clock).metadata()
    ok = Discovery(issuer, fetch=serving({"issuer": issuer, "jwks_uri": issuer + "/jwks.json"}), clock=clock)
    assert ok.endpoint("jwks_uri") == issuer + "/jwks.json"
    with pytest.raises(ProviderUnavailable):
        ok.endpoint("introspection_endpoint")


# ------------------------------------------------------------------ refreshing without stalling
def published(*kids: str) -> tuple[dict, dict]:
    """(JWKS document, kid -> private key) for fresh ES256 keys."""
    from joserfc.jwk import ECKey

    keys = {kid: ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256"}) for kid in kids}
    return {"keys": [k.as_dict(private=False) for k in keys.values()]}, keys


class GatedJWKS:
    """A fetch function: the first answer at once, later ones held until ``release`` is set."""

    def __init__(self, *documents: dict) -> None:
        self.documents = list(documents)
        self.calls = 0
        self.entered, self.release, self.answered = threading.Event(), threading.Event(), threading.Event()

    def __call__(self, url, form, headers, timeout):
        self.calls += 1
        if self.calls > 1:
            self.entered.set()
            self.release.wait(10)
            self.answered.set()
        return Response(200, self.documents[min(self.calls, len(self.documents)) - 1], 300)


def test_cached_keys_keep_serving_while_a_refresh_hangs(clock):
    """Past max-age one thread re-fetches; the others validate with the cached keys meanwhile
    instead of queueing behind it. A kid nobody has seen waits for that same fetch."""
    first, _ = published("old")
    second, _ = published("old", "new")
    second["keys"][0] = first["keys"][0]  # the same "old" key, plus a new one
    fetch = GatedJWKS(first, second)
    cache = JWKSCache("https://idp.example.org/jwks.json", fetch=fetch, clock=clock)
    assert cache.get("old").kid == "old"
    clock.advance(300)  # past max-age

    refresher = threading.Thread(target=cache.get, args=("old",))
    refresher.start()
    assert fetch.entered.wait(10)  # the refresh is under way, held by the provider
    for _ in range(100):
        assert cache.get("old").kid == "old"
    assert not fetch.answered.is_set()  # every one of those was served while it hung

    found = []
    waiter = threading.Thread(target=lambda: found.append(cache.get("new").kid))
    waiter.start()
    fetch.release.set()
    for thread in (refresher, waiter):
        thread.join(10)
    assert found == ["new"] and fetch.calls == 2  # the unknown kid was answered by that one fetch


def test_an_unknown_kid_waits_for_a_hanging_refresh_no_longer_than_the_timeout(clock):
    first, _ = published("old")
    fetch = GatedJWKS(first, first)
    cache = JWKSCache("https://idp.example.org/jwks.json", fetch=fetch, clock=clock, timeout=0.2)
    cache.get("old")
    clock.advance(300)
    refresher = threading.Thread(target=cache.get, args=("old",))
    refresher.start()
    assert fetch.entered.wait(10)
    with pytest.raises(InvalidToken) as caught:
        cache.get("other")
    assert caught.value.reason == "unknown_kid"
    assert not fetch.answered.is_set()  # refused while the refresh still hangs
    fetch.release.set()
    refresher.join(10)
    assert fetch.calls == 2


def test_a_crowd_at_cold_start_makes_one_fetch(clock):
    document, _ = published("k")
    calls = []
    release = threading.Event()

    def slow(url, form, headers, timeout):
        calls.append(url)
        release.wait(10)
        return Response(200, document, 300)

    cache = JWKSCache("https://idp.example.org/jwks.json", fetch=slow, clock=clock)
    found = []
    crowd = [threading.Thread(target=lambda: found.append(cache.get("k").kid)) for _ in range(16)]
    for thread in crowd:
        thread.start()
    release.set()
    for thread in crowd:
        thread.join(10)
    assert found == ["k"] * 16 and len(calls) == 1


# ------------------------------------------------------------------ how long cached keys are trusted
def test_cached_keys_stop_being_trusted_after_the_stale_limit(provider, rp, clock):
    """Provider out of reach: the cached keys serve for jwks_max_stale (default 300 s) past the
    JWKS max-age (300 s), then every request is refused, so a withdrawn key cannot linger."""
    from tests.clients.apps import protected_app

    rs = ResourceServer(provider.issuer, audience=rp.client_id, clock=clock, timeout=1)
    access = provider.access_token(rp, EO)
    rs.validate(access)
    provider.stop()
    clock.advance(300 + 299)
    assert rs.validate(access).sub
    clock.advance(1)
    with pytest.raises(ProviderUnavailable):
        rs.validate(access)  # the token cache does not bypass it either
    response = protected_app(rs).test_client().get("/results", headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 503


def test_stale_limit_is_configurable(provider, rp, clock):
    rs = ResourceServer(provider.issuer, audience=rp.client_id, clock=clock, timeout=1, jwks_max_stale=30)
    access = provider.access_token(rp, EO)
    rs.validate(access)
    provider.stop()
    clock.advance(300 + 29)
    assert rs.validate(access).sub
    clock.advance(1)
    with pytest.raises(ProviderUnavailable):
        rs.validate(access)


def test_withdrawn_key_stops_when_the_first_token_names_the_new_key(provider, rp, clock):
    """`idp keys retire --immediately` after a rotation: the first token signed with the new key
    makes the kit fetch the JWKS at once (rate-limited), and the withdrawn key's tokens, cached
    or not, stop there, long before the JWKS max-age."""
    rs = ResourceServer(provider.issuer, audience=rp.client_id, clock=clock)
    access = provider.access_token(rp, EO)
    rs.validate(access)
    folder = KeyFolder(provider.keys_dir)
    old_kid = provider.signing_key("ES256")[0]
    folder.rotate("ES256", now_=True)
    folder.retire(old_kid, immediately=True)
    after = wait_for_new_signing_kid(provider, rp, old_kid)
    clock.advance(rs.jwks.refresh_interval)  # 10 s: far inside the 300 s max-age
    assert rs.validate(after).sub
    with pytest.raises(InvalidToken) as caught:
        rs.validate(access)
    assert caught.value.reason == "unknown_kid"
    assert provider.jwks_requests == 2
