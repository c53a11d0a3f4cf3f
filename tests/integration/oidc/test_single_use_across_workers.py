"""Single use across processes, on gunicorn with two workers on PostgreSQL + Redis: one pushed
request_uri presented by many browsers at once, one DPoP proof and one refresh token presented by
many copies of a client at once; exactly one of each gets through (and a refresh token presented
twice ends its grant)."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from tests.dpop_keys import DPoPKey
from tests.live_provider import LiveProvider
from tests.support import pkce_pair

pytestmark = pytest.mark.shared_store

REDIRECT_URI = "https://rp.example/cb"
BROWSERS = 8


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with LiveProvider(tmp_path_factory.mktemp("provider"), name="par") as live:
        live.setup()
        live.start(workers=2, threads=4)
        yield live


def _open(request):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
    try:
        with opener.open(request, timeout=20) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def push(provider, rp) -> str:
    _, challenge = pkce_pair()
    body = urlencode({"response_type": "code", "client_id": rp["client_id"], "redirect_uri": REDIRECT_URI,
                      "scope": "openid", "state": "st", "code_challenge": challenge,
                      "code_challenge_method": "S256"}).encode()
    basic = base64.b64encode(f"{rp['client_id']}:{rp['client_secret']}".encode()).decode()
    status, _, answer = _open(urllib.request.Request(
        provider.issuer + "/par", data=body, headers={"Authorization": f"Basic {basic}",
                                                     "Content-Type": "application/x-www-form-urlencoded"}))
    assert status == 201, answer
    return json.loads(answer)["request_uri"]


def logged(provider, path: str) -> list[dict]:
    lines = (json.loads(line) for line in provider.log_tail(10**8).splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("path") == path]


def authorize_logged(provider) -> list[dict]:
    return logged(provider, "/authorize")


def at_once(send) -> list:
    """``send()`` from BROWSERS threads released together by a barrier; their answers."""
    start = threading.Barrier(BROWSERS)
    answers = []

    def one():
        start.wait()
        answers.append(send())

    threads = [threading.Thread(target=one) for _ in range(BROWSERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_one_request_uri_redeemed_at_once_in_two_workers_is_used_once(provider):
    rp = provider.create_client("par-race", redirect_uris=[REDIRECT_URI],
                                extra=["--require-par"])
    for _ in range(10):  # which worker takes a connection is the kernel's choice: go on until both did
        request_uri = push(provider, rp)
        logged_before = len(authorize_logged(provider))

        def browser():
            status, headers, _ = _open(urllib.request.Request(provider.issuer + "/authorize?" + urlencode(
                {"client_id": rp["client_id"], "request_uri": request_uri}), headers={"Connection": "close"}))
            return status, headers.get("Location", "")

        answers = at_once(browser)
        got_on = [location for status, location in answers if status == 302]
        assert len(answers) == BROWSERS
        assert len(got_on) == 1 and "/signin?authreq=" in got_on[0], answers  # on to sign in: once
        assert sorted(status for status, _ in answers) == [302] + [400] * (BROWSERS - 1), answers
        pids = {line["pid"] for line in authorize_logged(provider)[logged_before:]}
        if len(pids) == 2:
            return
    pytest.fail(f"in ten rounds only the workers {pids} answered")


def test_one_dpop_proof_sent_at_once_to_two_workers_is_used_once(provider):
    """The proof's jti is remembered in the shared store: a copy replayed in parallel, whichever
    worker takes it, gets nothing (RFC 9449 §11.1)."""
    service = provider.create_client("dpop-race", grant_types=["client_credentials"], extra=["--scope", "entries"])
    basic = base64.b64encode(f"{service['client_id']}:{service['client_secret']}".encode()).decode()
    key = DPoPKey()
    for _ in range(10):
        proof = key.proof("POST", provider.issuer + "/token")
        logged_before = len(logged(provider, "/token"))

        def copy_of_the_client():
            status, _, body = _open(urllib.request.Request(
                provider.issuer + "/token", data=b"grant_type=client_credentials",
                headers={"Authorization": f"Basic {basic}", "DPoP": proof, "Connection": "close",
                         "Content-Type": "application/x-www-form-urlencoded"}))
            return status, json.loads(body)

        answers = at_once(copy_of_the_client)
        assert sorted(status for status, _ in answers) == [200] + [400] * (BROWSERS - 1), answers
        assert {body["error"] for status, body in answers if status == 400} == {"invalid_dpop_proof"}
        assert [body["token_type"] for status, body in answers if status == 200] == ["DPoP"]
        pids = {line["pid"] for line in logged(provider, "/token")[logged_before:]}
        if len(pids) == 2:
            return
    pytest.fail(f"in ten rounds only the workers {pids} answered")


def test_one_refresh_token_sent_at_once_to_two_workers_is_used_once(provider):
    """Copies of a client racing with one refresh token: exactly one gets new tokens, every other
    is told the token was used, and since that is reuse the whole grant ends, the winner's new
    refresh token included (RFC 9700 §4.14.2)."""
    rp = provider.create_client("refresh-race", redirect_uris=[REDIRECT_URI],
                                grant_types=["authorization_code", "refresh_token"])
    basic = base64.b64encode(f"{rp['client_id']}:{rp['client_secret']}".encode()).decode()
    person = provider.make_account(email="racer@centre.example", mfa=False)

    def refresh(token: str):
        status, _, body = _open(urllib.request.Request(
            provider.issuer + "/token", data=urlencode({"grant_type": "refresh_token", "refresh_token": token}).encode(),
            headers={"Authorization": f"Basic {basic}", "Connection": "close",
                     "Content-Type": "application/x-www-form-urlencoded"}))
        return status, json.loads(body)

    for _ in range(10):
        [token] = provider.mint_refresh_tokens(rp["client_id"], person["email"])
        logged_before = len(logged(provider, "/token"))
        answers = at_once(lambda: refresh(token))
        assert sorted(status for status, _ in answers) == [200] + [400] * (BROWSERS - 1), answers
        assert {body["error"] for status, body in answers if status == 400} == {"invalid_grant"}
        [winner] = [body for status, body in answers if status == 200]
        assert winner["refresh_token"] != token and winner["id_token"]
        status, body = refresh(winner["refresh_token"])
        assert (status, body["error"]) == (400, "invalid_grant")  # the grant ended with the reuse
        pids = {line["pid"] for line in logged(provider, "/token")[logged_before:]}
        if len(pids) == 2:
            return
    pytest.fail(f"in ten rounds only the workers {pids} answered")
