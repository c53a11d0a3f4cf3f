"""Interop: the certified relying-party library openid-client v6 (node) against a real provider.

The provider runs as in production (README "Production"): PostgreSQL + Redis, `idp setup`, gunicorn
with two gthread workers over HTTPS (a throwaway certificate the node process is told to trust).
tests/interop/rp.mjs performs discovery, the code flow with PKCE S256 + state + nonce through the
provider's own sign-in form, the code exchange (ID token, nonce, state, PKCE and RFC 9207 `iss`
checked by openid-client), userinfo, refresh (rotation), introspection and revocation. The person
signs in with email, password and an authenticator-app (TOTP) code that rp.mjs computes.

Needs node >= 20 and `npm ci --prefix tests/interop`; without them this test FAILS (never skips).
PostgreSQL/Redis: IDP_TEST_DATABASE_URL / IDP_TEST_REDIS_URL, else the local defaults.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from idp.protocol import ACR_MFA
from tests.live_provider import LiveProvider, base_env
from tests.support import PASSWORD

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
RP_SCRIPT = HERE / "rp.mjs"
REDIRECT_URI = "https://rp.interop.example/callback"
EMAIL = "eo.interop@centre.example"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node (>= 20) is not on PATH: the interop test needs it", pytrace=False)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    major = int(version.lstrip("v").split(".")[0] or 0)
    if major < 20:
        pytest.fail(f"node {version} is too old: openid-client v6 needs node >= 20", pytrace=False)
    if not (HERE / "node_modules" / "openid-client" / "package.json").is_file():
        pytest.fail("tests/interop/node_modules is missing: run `npm ci --prefix tests/interop` first "
                    "(CI does this before pytest)", pytrace=False)
    return node


@pytest.fixture
def provider(tmp_path):
    with LiveProvider(tmp_path / "provider", name="interop", tls=True) as live:
        yield live


@pytest.mark.parametrize("pushed", [False, True], ids=["query", "pushed-dpop"])
def test_openid_client_code_flow_userinfo_refresh_revoke(provider, pushed):
    """``pushed``: the client is registered to require pushed authorization requests (RFC 9126) and
    sender-constrained tokens (DPoP, RFC 9449), and the provider requires DPoP nonces: openid-client
    pushes its request first (buildAuthorizationUrlWithPAR) with a DPoP proof, which binds the code to
    its key, and proves that key at the token endpoint and userinfo, retrying once with the nonce
    the provider hands out."""
    node = _node()  # fail before touching PostgreSQL if the RP cannot run at all

    provider.setup()
    # second factor: an authenticator app, whose codes rp.mjs computes (RFC 6238) like the app would
    person = provider.make_account(email=EMAIL, password=PASSWORD, role="eo", centre="12345", mfa=False)
    totp_secret = provider.add_totp(EMAIL)
    rp = provider.create_client("openid-client interop", redirect_uris=[REDIRECT_URI],
                                grant_types=["authorization_code", "refresh_token"],
                                auth_method="client_secret_basic",
                                extra=["--require-par", "--require-dpop"] if pushed else [])
    assert rp["client_id"] and rp["client_secret"], rp
    if pushed:
        provider.env["IDP_TOKENS_DPOP_NONCE_REQUIRED"] = "true"
    provider.start(workers=2, threads=4)

    env = {**base_env(), "ISSUER": provider.issuer, "CLIENT_ID": rp["client_id"],
           "CLIENT_SECRET": rp["client_secret"], "REDIRECT_URI": REDIRECT_URI, "EMAIL": EMAIL,
           "PASSWORD": PASSWORD, "TOTP_SECRET": totp_secret,
           "NODE_EXTRA_CA_CERTS": str(provider.tls_files["ca"]), "USE_PAR": "1" if pushed else "0",
           "USE_DPOP": "1" if pushed else "0"}
    done = subprocess.run([node, "--dns-result-order=ipv4first", str(RP_SCRIPT)], env=env, cwd=HERE,
                          capture_output=True, text=True, timeout=120, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    context = (f"rp.mjs exit {done.returncode}\nstdout:\n{done.stdout[-6000:]}\nstderr:\n{done.stderr[-4000:]}"
               f"\nprovider log (tail):\n{provider.log_tail(4000)}")
    assert done.returncode == 0 and lines, context
    result = json.loads(lines[-1])
    assert result["ok"] is True, context
    print(json.dumps(result, indent=1))  # shown with -rP / -s

    # discovery and the authorization response
    assert result["discovery"]["issuer"] == provider.issuer
    assert result["discovery"]["iss_parameter_supported"] is True
    assert result["discovery"]["code_challenge_methods_supported"] == ["S256"]
    assert set(result["callback_params"]) == {"code", "state", "iss"}, result["callback_params"]
    assert result["par_endpoint"] == provider.issuer + "/par"
    if pushed:  # the browser carried a reference, nothing else
        assert result["authorization_params"] == ["client_id", "request_uri"], result["authorization_params"]
    else:
        assert "redirect_uri" in result["authorization_params"]
    assert any(name.startswith("__Host-") for name in result["cookies"]), result["cookies"]
    typed = " ".join(result["sign_in_steps"])
    assert "password" in typed and "TOTP" in typed, result["sign_in_steps"]

    # the ID token, validated by openid-client
    claims = result["id_token"]["claims"]
    assert result["id_token"]["header"]["alg"] == "RS256"
    assert claims["iss"] == provider.issuer and claims["aud"] == rp["client_id"]
    assert claims["sub"] == person["sub"]
    assert claims["email"] == EMAIL and claims["role"] == "eo" and claims["centre"] == "12345"
    assert claims["nonce"] and claims["at_hash"]
    assert claims["acr"] == ACR_MFA, claims  # password + authenticator app
    assert result["token_response"]["token_type"].lower() == ("dpop" if pushed else "bearer")
    if pushed:  # bound to the key openid-client made (RFC 9449 §6.1); useless without it
        assert set(result["access_token_cnf"]) == {"jkt"}, result["access_token_cnf"]
        assert "ES256" in result["dpop_algs"]
        assert result["userinfo_as_bearer"]["status"] == 401
        assert result["userinfo_as_bearer"]["challenge"].startswith("DPoP "), result["userinfo_as_bearer"]
        assert result["refresh"]["token_type"].lower() == "dpop"
        # the nonce round trip: the first proof (no nonce yet) refused, the retry with it accepted
        answered = [(line.get("path"), line.get("status")) for line in map(json.loads, (
            text for text in provider.log_tail(10**8).splitlines() if text.startswith("{")))]
        assert ("/par", 400) in answered and ("/par", 201) in answered, answered
    else:
        assert result["access_token_cnf"] is None
    assert result["token_response"]["has_refresh_token"] is True

    # sub stable across ID token, userinfo and introspection
    assert result["userinfo"]["sub"] == claims["sub"] == result["sub"]
    assert result["userinfo"]["email"] == EMAIL and result["userinfo"]["centre"] == "12345"
    assert result["introspection_access"] == {"active": True, "sub": claims["sub"],
                                              "client_id": rp["client_id"]}

    # refresh: rotation, a new access token and an ID token for the same person
    refresh = result["refresh"]
    assert refresh["new_refresh_token"] is True and refresh["new_access_token"] is True
    assert refresh["id_token_sub"] == claims["sub"] and refresh["userinfo_sub"] == claims["sub"]

    # revocation of the refresh token ends the grant (RFC 7009 §2.1)
    revocation = result["revocation"]
    assert revocation["ok"] is True
    assert revocation["introspection_active_after"] is False
    assert revocation["refresh_after"]["rejected"] is True
    assert revocation["refresh_after"]["error"] == "invalid_grant", revocation
    assert revocation["userinfo_after"]["rejected"] is True, revocation
    # and the refresh token rotated away earlier cannot be replayed
    assert result["reuse_of_rotated_refresh_token"]["rejected"] is True
    assert result["reuse_of_rotated_refresh_token"]["error"] == "invalid_grant"

    assert "Traceback" not in provider.log_tail(200_000), provider.log_tail()
