"""examboard_rp access-token validation against a running provider (RFC 9068)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
import time_machine
from examboard_rp import ConfigurationError, InsufficientProfile, InvalidToken, ProviderUnavailable, ResourceServer
from joserfc import jwt

from tests.clients.apps import protected_app

EO = "eo@centre.example"


def b64(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def reason(rs, token) -> str:
    with pytest.raises(InvalidToken) as caught:
        rs.validate(token)
    return caught.value.reason


# ------------------------------------------------------------------ accepted
def test_es256_token_from_provider_accepted(provider, rp, rs):
    tokens = provider.tokens(rp, EO)
    token = rs.authenticate(f"Bearer {tokens['access_token']}")
    header = json.loads(base64.urlsafe_b64decode(tokens["access_token"].split(".")[0] + "=="))
    assert header["alg"] == "ES256" and header["typ"] == "at+jwt"
    assert token.client_id == rp.client_id and token.role == "eo" and token.centre == "12345"
    assert {"results.view", "entries.make", "resources"} <= token.profiles
    assert token.scopes == {"openid", "access"}
    assert rs.authorize(f"bearer {tokens['access_token']}", "results.view", "resources").sub == token.sub


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")  # joserfc, as the provider signs
@pytest.mark.parametrize("alg", ["RS256", "EdDSA"])
def test_other_provider_algorithms_accepted(make_provider, alg):
    provider = make_provider(keys={"access_token_alg": alg})
    provider.person(EO)
    rp = provider.client()
    access = provider.access_token(rp, EO)
    assert json.loads(base64.urlsafe_b64decode(access.split(".")[0] + "=="))["alg"] == alg
    assert ResourceServer(provider.issuer, audience=rp.client_id).validate(access).centre == "12345"
    with pytest.raises(InvalidToken) as caught:  # and only algorithms on the allow-list
        ResourceServer(provider.issuer, audience=rp.client_id, algorithms=["ES256"]).validate(access)
    assert caught.value.reason == "alg_not_allowed"


def test_several_audiences_and_list_aud(provider, rp):
    rs = ResourceServer(provider.issuer, audience=["other", rp.client_id])
    assert rs.validate(provider.access_token(rp, EO)).client_id == rp.client_id
    listed = provider.sign(provider.access_claims(rp, aud=["x", rp.client_id]))
    assert ResourceServer(provider.issuer, audience=rp.client_id).validate(listed).sub == "someone"


# ------------------------------------------------------------------ rejected
def test_expired_rejected_after_leeway(provider, rp, rs):
    access = provider.access_token(rp, EO)
    exp = jwt.decode(access, provider.signing_key()[1]).claims["exp"]
    with time_machine.travel(exp + 20, tick=False):  # within the 30 s leeway
        assert rs.validate(access)
    with time_machine.travel(exp + 31, tick=False):
        assert reason(rs, access) == "expired"


def test_not_yet_valid_and_issued_in_future(provider, rp, rs):
    now = int(time.time())
    assert reason(rs, provider.sign(provider.access_claims(rp, nbf=now + 120))) == "not_yet_valid"
    assert rs.validate(provider.sign(provider.access_claims(rp, nbf=now + 10)))  # within leeway
    assert reason(rs, provider.sign(provider.access_claims(rp, iat=now + 120))) == "issued_in_future"


def test_wrong_audience_rejected(provider, rp):
    access = provider.access_token(rp, EO)
    other = ResourceServer(provider.issuer, audience="some-other-service")
    assert reason(other, access) == "wrong_audience"
    # a token the provider issued to another client is for that client only
    second = provider.client("Another")
    assert reason(ResourceServer(provider.issuer, audience=second.client_id), access) == "wrong_audience"


def test_wrong_issuer_rejected(provider, rp, rs):
    forged = provider.sign(provider.access_claims(rp, iss="https://evil.example"))
    assert reason(rs, forged) == "wrong_issuer"


def test_missing_required_claims_rejected(provider, rp, rs):
    for claim in ("sub", "client_id", "jti", "exp", "iat"):
        assert reason(rs, provider.sign(provider.access_claims(rp, **{claim: None}))) == "missing_claim", claim
    assert reason(rs, provider.sign(provider.access_claims(rp, exp="tomorrow"))) == "missing_claim"
    assert reason(rs, provider.sign(provider.access_claims(rp, exp=float("nan")))) == "missing_claim"
    assert reason(rs, provider.sign(provider.access_claims(rp, exp=True))) == "missing_claim"


def test_id_token_is_not_an_access_token(provider, rp, rs):
    tokens = provider.tokens(rp, EO)
    assert reason(rs, tokens["id_token"]) == "wrong_typ"
    assert reason(rs, provider.sign(provider.access_claims(rp), typ="JWT")) == "wrong_typ"
    assert rs.validate(provider.sign(provider.access_claims(rp), typ="application/at+jwt"))


def test_alg_none_rejected(provider, rp, rs):
    kid = provider.signing_key()[0]
    claims = provider.access_claims(rp)
    for alg in ("none", "None", "NONE"):
        unsigned = f"{b64({'alg': alg, 'typ': 'at+jwt', 'kid': kid})}.{b64(claims)}."
        assert reason(rs, unsigned) == "alg_not_allowed"


@pytest.mark.parametrize("secret_form", ["pem", "jwk"])
@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_hs256_signed_with_public_key_rejected(provider, rp, rs, alg, secret_form):
    """The classic key confusion: HMAC with the published public key as the shared secret."""
    kid, private = provider.signing_key(alg)
    if secret_form == "pem":
        secret = private.as_pem(private=False)
    else:
        published = next(k for k in json.loads(_get(provider.issuer + "/jwks.json"))["keys"] if k["kid"] == kid)
        secret = json.dumps(published).encode()
    # joserfc refuses to make such a token, so the attacker's side is done by hand
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': kid})}.{b64(provider.access_claims(rp))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(mac)}"
    assert reason(rs, forged) == "alg_not_allowed"


def test_hmac_cannot_be_allowed(provider, rp):
    with pytest.raises(ConfigurationError):
        ResourceServer(provider.issuer, audience=rp.client_id, algorithms=["ES256", "HS256"])
    with pytest.raises(ConfigurationError):
        ResourceServer(provider.issuer, audience=rp.client_id, algorithms=["none"])


def test_header_alg_must_fit_the_key(provider, rp, rs):
    """An RS256 signature under the kid of the EC key (and the reverse) is refused before verifying."""
    ec_kid = provider.signing_key("ES256")[0]
    _, rsa_key = provider.signing_key("RS256")
    forged = jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": ec_kid}, provider.access_claims(rp), rsa_key,
                        algorithms=["RS256"])
    assert reason(rs, forged) == "alg_mismatch"


def test_tampered_and_malformed_tokens_rejected(provider, rp, rs):
    good = provider.sign(provider.access_claims(rp))
    head, body, sig = good.split(".")
    tampered = f"{head}.{b64(provider.access_claims(rp, profiles=['users.manage']))}.{sig}"
    assert reason(rs, tampered) == "bad_signature"
    assert reason(rs, f"{head}.{body}.{b64(b'x' * 64)}") == "bad_signature"
    assert reason(rs, "not-a-jwt") == "malformed"
    assert reason(rs, "a.b.c") == "malformed"
    assert reason(rs, f"{b64([1, 2])}.{body}.{sig}") == "malformed"
    assert reason(rs, "x" * 9000) == "too_large"
    assert reason(rs, provider.sign(provider.access_claims(rp), kid=None)) == "missing_kid"


HOSTILE_HEADERS = {  # refused before any key is fetched or signature checked
    "nested-1500-deep": b"[" * 1500,                                  # RecursionError in json
    "nested-41-deep": b'{"alg": "ES256", "kid": "k", "x": ' + b"[" * 40 + b"]" * 40 + b"}",
    "oversized": b'{"alg": "ES256", "kid": "k", "x": "' + b"a" * 5000 + b'"}',
    "nested-and-oversized": b"[" * 6000,
    "not-utf8": b'{"alg": "\xff"}',
}


@pytest.mark.parametrize("header", HOSTILE_HEADERS.values(), ids=HOSTILE_HEADERS.keys())
def test_hostile_unsigned_headers_are_malformed_not_500(header):
    rs = ResourceServer("https://idp.example.org", audience="x")  # never reached: nothing to fetch
    token = f"{b64(header)}.{b64({'sub': 'x'})}."
    assert len(token) <= 8192
    assert reason(rs, token) == "malformed"
    response = protected_app(rs).test_client().get("/results", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_token"
    from examboard_rp import LogoutTokenError

    with pytest.raises(LogoutTokenError) as caught:
        rs.logout_validator().validate(token)
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize("member", ["typ", "alg"])
def test_token_text_never_reaches_the_response(member):
    """Non-latin-1 text in typ/alg, copied into WWW-Authenticate, makes a real server fail (a
    header must be latin-1; gunicorn answers 500). The error text is fixed ASCII instead."""
    import urllib.error
    import urllib.request

    from tests.clients.live import ServedApp

    marker = 'MARKER \u2603 \u00e9 "quoted" \\ end'
    header = {"alg": "ES256", "typ": "at+jwt", "kid": "k", member: marker}
    token = f"{b64(header)}.{b64({'sub': 'x'})}.{b64(b'signature')}"
    served = ServedApp(protected_app(ResourceServer("https://idp.example.org", audience="x")))
    try:
        request = urllib.request.Request(served.url + "/results", headers={"Authorization": f"Bearer {token}"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        answer = caught.value
        assert answer.code == 401
        challenge = answer.headers["WWW-Authenticate"]
        body = answer.read().decode()
    finally:
        served.close()
    assert challenge.isascii() and 'error="invalid_token"' in challenge
    assert "MARKER" not in challenge and "MARKER" not in body
    assert json.loads(body)["error"] == "invalid_token"


def test_challenge_keeps_only_rfc6750_characters():
    from examboard_rp import InsufficientProfile

    _, headers, body = InsufficientProfile("results.view", 'caf\u00e9 "quoted" \\ \u2603 ok').http_response(
        realm='exam "board" \u00e9')
    assert headers["WWW-Authenticate"] == ('Bearer realm="exam board ", error="insufficient_scope", '
                                           'error_description="caf quoted   ok"')
    assert body["error_description"] == 'caf\u00e9 "quoted" \\ \u2603 ok'  # JSON carries any text


def test_authorization_header_parsing(rs):
    for header, expected in [(None, "missing_token"), ("", "missing_token"), ("Basic abc", "malformed"),
                             ("Bearer", "malformed"), ("Bearer a b", "malformed")]:
        with pytest.raises(InvalidToken) as caught:
            rs.authenticate(header)
        assert caught.value.reason == expected, header


def test_missing_profile_is_named(provider, rp, rs):
    provider.person("user@centre.example", role="user", profiles=["resources"])
    access = provider.access_token(rp, "user@centre.example")
    with pytest.raises(InsufficientProfile) as caught:
        rs.authorize(f"Bearer {access}", "resources", "results.view")
    assert caught.value.profile == "results.view"
    no_access_scope = provider.access_token(rp, EO, scope="openid")
    with pytest.raises(InsufficientProfile, match="access"):
        rs.authorize(f"Bearer {no_access_scope}", "resources")


# ------------------------------------------------------------------ Flask decorator
def test_flask_decorator_answers(provider, rp, rs):
    http = protected_app(rs).test_client()
    provider.person("user@centre.example", role="user", profiles=["resources"])
    missing = http.get("/results")
    assert missing.status_code == 401
    # either scheme will do (RFC 9449 §7.1): the DPoP challenge names the algorithms of proofs
    assert missing.headers["WWW-Authenticate"] == ('Bearer realm="examboard", DPoP realm="examboard", '
                                                   'algs="ES256 ES384 ES512 RS256 PS256 PS384 PS512 EdDSA"')
    bad = http.get("/results", headers={"Authorization": "Bearer a.b.c"})
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    assert bad.get_json()["error"] == "invalid_token"
    weak = http.get("/results", headers={"Authorization": f"Bearer {provider.access_token(rp, 'user@centre.example')}"})
    assert weak.status_code == 403 and weak.get_json()["missing_profile"] == "results.view"
    assert 'error="insufficient_scope"' in weak.headers["WWW-Authenticate"]
    good = http.get("/results", headers={"Authorization": f"Bearer {provider.access_token(rp, EO)}"})
    assert good.status_code == 200 and good.get_json()["sub"]


# ------------------------------------------------------------------ discovery and configuration
def test_discovery_issuer_must_match(provider, rp):
    """The same server reached under another name is not the configured issuer."""
    other_name = provider.issuer.replace("127.0.0.1", "localhost")
    rs = ResourceServer(other_name, audience=rp.client_id)
    with pytest.raises(ProviderUnavailable) as caught:
        rs.validate(provider.access_token(rp, EO))
    assert caught.value.reason == "discovery_issuer_mismatch"
    response = protected_app(rs).test_client().get(
        "/results", headers={"Authorization": f"Bearer {provider.sign(provider.access_claims(rp))}"})
    assert response.status_code == 503


def test_plain_http_only_for_loopback():
    with pytest.raises(ConfigurationError):
        ResourceServer("http://idp.example.org", audience="x")
    ResourceServer("https://idp.example.org", audience="x")
    ResourceServer("http://localhost:8000", audience="x")


def test_unreachable_provider_is_503_not_401(rp):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rs = ResourceServer(f"http://127.0.0.1:{port}", audience=rp.client_id, timeout=1)
    response = protected_app(rs).test_client().get("/results", headers={"Authorization": "Bearer a.b.c"})
    assert response.status_code == 401  # malformed: refused without asking anyone
    token = f"{b64({'alg': 'ES256', 'typ': 'at+jwt', 'kid': 'k'})}.{b64({})}.{b64(b'sig')}"
    response = protected_app(rs).test_client().get("/results", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503 and response.headers["Retry-After"]


# ------------------------------------------------------------------ introspection
def test_introspection_always_catches_revoked_tokens(provider, clock):
    provider.person(EO)
    rp = provider.client()
    tokens = provider.tokens(rp, EO)
    rs = ResourceServer(provider.issuer, audience=rp.client_id, client_secret=rp.client_secret,
                        introspection="always", clock=clock)
    assert rs.validate(tokens["access_token"]).profiles
    revoked = provider.app.test_client().post("/revoke", data={"token": tokens["access_token"]},
                                              auth=(rp.client_id, rp.client_secret))
    assert revoked.status_code == 200, revoked.get_data(as_text=True)
    # the answer is remembered for introspection_cache_ttl: the revocation is seen after it
    assert rs.validate(tokens["access_token"]) and rs.introspector.calls == 1
    clock.advance(rs.introspector.cache_ttl)
    assert reason(rs, tokens["access_token"]) == "inactive"
    assert rs.introspector.calls == 2
    # local validation alone cannot know
    assert ResourceServer(provider.issuer, audience=rp.client_id).validate(tokens["access_token"])


def test_introspection_of_opaque_tokens(provider):
    provider.person(EO)
    rp = provider.client()
    tokens = provider.tokens(rp, "eo@centre.example", scope="openid access offline_access")
    rs = ResourceServer(provider.issuer, audience=rp.client_id, client_secret=rp.client_secret)
    assert rs.introspection_mode == "opaque"
    assert reason(rs, "opaque-token-nobody-issued") == "inactive"
    assert reason(rs, tokens["refresh_token"]) == "not_access_token"
    assert rs.validate(tokens["access_token"]).centre == "12345"  # a JWT: validated locally
    wrong_secret = ResourceServer(provider.issuer, audience=rp.client_id, client_secret="wrong")
    with pytest.raises(ProviderUnavailable):
        wrong_secret.validate("opaque-token-nobody-issued")


def _get(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()
