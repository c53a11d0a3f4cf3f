"""examboard_rp and DPoP-bound access tokens (RFC 9449 §7): a service accepts a token bound to a
key only with ``Authorization: DPoP`` and a fresh proof by that key for this request, naming the
token; proofs are used once, also across the service's processes (RedisReplayCache)."""

from __future__ import annotations

import base64
import os
import time

import pytest
from examboard_rp import InvalidDPoPProof, InvalidToken, MemoryReplayCache, RedisReplayCache, ResourceServer

from tests.clients.apps import protected_app
from tests.dpop_keys import DPoPKey
from tests.support import authorize, query

EO = "eo@centre.example"
RESULTS = "https://results.example/results"


def bound_token(provider, rp, key: DPoPKey) -> str:
    """A code flow whose code exchange carries a proof by ``key``: the access token is bound to it."""
    http = provider.app.test_client()
    response, verifier = authorize(http, rp, scope="openid access", email=EO)
    raw = f"{rp.client_id}:{rp.client_secret}".encode()
    answer = http.post("/token", data={"grant_type": "authorization_code", "code": query(response.location)["code"],
                                       "redirect_uri": rp.redirect_uri, "code_verifier": verifier},
                       headers={"Authorization": "Basic " + base64.b64encode(raw).decode(),
                                "DPoP": key.proof("POST", provider.issuer + "/token")})
    assert answer.status_code == 200 and answer.get_json()["token_type"] == "DPoP", answer.get_data(as_text=True)
    return answer.get_json()["access_token"]


def check(rs, token, proof, scheme="DPoP", method="GET", url=RESULTS):
    return rs.authenticate(f"{scheme} {token}", dpop=[proof] if proof else [], method=method, url=url)


def test_a_bound_token_with_its_proof_is_accepted(provider, rp, rs):
    key = DPoPKey()
    token = bound_token(provider, rp, key)
    access = check(rs, token, key.proof("GET", RESULTS + "?term=summer", access_token=token))
    assert access.jkt == key.jkt and access.centre == "12345"


@pytest.mark.parametrize("attack, error, reason", [
    ("as a bearer token", InvalidToken, "dpop_bound"),
    ("no proof", InvalidDPoPProof, "proof_missing"),
    ("proof by another key", InvalidToken, "dpop_key_mismatch"),
    ("proof for another token", InvalidDPoPProof, "proof_ath"),
    ("proof for another URL", InvalidDPoPProof, "proof_htu"),
    ("proof for another method", InvalidDPoPProof, "proof_htm"),
    ("old proof", InvalidDPoPProof, "proof_iat"),
    ("unsigned proof", InvalidDPoPProof, "proof_alg"),
    ("private key in the proof", InvalidDPoPProof, "proof_key"),
    ("signed by another key", InvalidDPoPProof, "proof_signature"),
    ("replayed proof", InvalidDPoPProof, "proof_replayed"),
    ("two proofs", InvalidDPoPProof, "proof_count"),
])
def test_a_bound_token_without_its_proof_is_refused(provider, rp, rs, attack, error, reason):
    from joserfc.jwk import ECKey

    key = DPoPKey()
    token = bound_token(provider, rp, key)
    good = key.proof("GET", RESULTS, access_token=token)
    with pytest.raises(error) as caught:
        if attack == "as a bearer token":
            check(rs, token, good, scheme="Bearer")
        elif attack == "no proof":
            check(rs, token, None)
        elif attack == "proof by another key":
            check(rs, token, DPoPKey().proof("GET", RESULTS, access_token=token))
        elif attack == "proof for another token":
            check(rs, token, key.proof("GET", RESULTS, ath="A" * 43))
        elif attack == "proof for another URL":
            check(rs, token, good, url="https://entries.example/results")
        elif attack == "proof for another method":
            check(rs, token, good, method="POST")
        elif attack == "old proof":
            check(rs, token, key.proof("GET", RESULTS, access_token=token, iat=int(time.time()) - 400))
        elif attack == "unsigned proof":
            header = base64.urlsafe_b64encode(b'{"typ":"dpop+jwt","alg":"none"}').rstrip(b"=").decode()
            check(rs, token, header + "." + good.split(".")[1] + ".")
        elif attack == "private key in the proof":
            check(rs, token, key.proof("GET", RESULTS, access_token=token, jwk=key.key.as_dict(private=True)))
        elif attack == "signed by another key":
            check(rs, token, key.proof("GET", RESULTS, access_token=token, sign_with=ECKey.generate_key("P-256")))
        elif attack == "replayed proof":
            check(rs, token, good)
            check(rs, token, good)
        else:
            rs.authenticate(f"DPoP {token}", dpop=[good, good], method="GET", url=RESULTS)
    assert caught.value.reason == reason
    status, headers, body = caught.value.http_response()
    assert status == 401 and headers["WWW-Authenticate"].startswith('DPoP realm="examboard", algs="')
    assert body["error"] == error.error


def test_an_unbound_token_is_not_sent_with_the_dpop_scheme(provider, rp, rs):
    token = provider.access_token(rp, EO)
    with pytest.raises(InvalidToken) as caught:
        check(rs, token, DPoPKey().proof("GET", RESULTS, access_token=token))
    assert caught.value.reason == "not_dpop_bound"
    assert rs.authenticate(f"Bearer {token}").jkt is None


def test_a_proof_is_used_once_across_the_services_processes(provider, rp):
    """Two ResourceServers (two processes of one service) sharing one replay cache: Redis when the
    tests have one (as CI does), else one memory shared by both."""
    url = os.environ.get("IDP_TEST_REDIS_URL")
    if url:
        import redis

        client = redis.Redis.from_url(url)
        cache = RedisReplayCache(client, prefix=f"test-rp-dpop:{os.getpid()}:{time.time_ns()}:")
    else:
        cache = MemoryReplayCache()
    first, second = (ResourceServer(provider.issuer, audience=rp.client_id, dpop_replay_cache=cache)
                     for _ in range(2))
    key = DPoPKey()
    token = bound_token(provider, rp, key)
    proof = key.proof("GET", RESULTS, access_token=token)
    assert check(first, token, proof).jkt == key.jkt
    with pytest.raises(InvalidDPoPProof) as caught:
        check(second, token, proof)
    assert caught.value.reason == "proof_replayed"


def test_flask_decorator_checks_the_proof(provider, rp, rs):
    http = protected_app(rs).test_client()
    key = DPoPKey()
    token = bound_token(provider, rp, key)
    url = "http://localhost/results"  # Flask's test client: the URL the service sees
    good = http.get("/results", headers={"Authorization": f"DPoP {token}",
                                         "DPoP": key.proof("GET", url, access_token=token)})
    assert good.status_code == 200 and good.get_json()["sub"]
    bearer = http.get("/results", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 401 and bearer.headers["WWW-Authenticate"].startswith("DPoP ")
    stolen = http.get("/results", headers={"Authorization": f"DPoP {token}",
                                           "DPoP": DPoPKey().proof("GET", url, access_token=token)})
    assert stolen.status_code == 401 and stolen.get_json()["error"] == "invalid_token"
