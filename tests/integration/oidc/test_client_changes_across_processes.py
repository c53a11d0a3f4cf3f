"""A client changed by one process takes effect at once in every other: gunicorn with two
workers (each with its own client cache) on PostgreSQL + Redis, and the `idp client` CLI as the
other process. The first request after the command returns must already see the change."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

from tests.live_provider import LiveProvider

pytestmark = pytest.mark.shared_store

WARM_UP = 40  # requests spread over both workers by the kernel; each worker caches the client


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with LiveProvider(tmp_path_factory.mktemp("provider"), name="clientcache") as live:
        live.setup()
        live.start(workers=2, threads=2)
        yield live


def token(provider, client_id, client_secret) -> tuple[int, dict]:
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    request = urllib.request.Request(provider.issuer + "/token", data=b"grant_type=client_credentials",
                                     headers={"Authorization": f"Basic {basic}",
                                              "Content-Type": "application/x-www-form-urlencoded",
                                              "Connection": "close"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def answers(provider, client_id, client_secret, n=WARM_UP) -> set:
    return {(status, body.get("error")) for status, body in
            (token(provider, client_id, client_secret) for _ in range(n))}


def token_requests_logged(provider) -> list[dict]:
    lines = (json.loads(line) for line in provider.log_tail(10**8).splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("path") == "/token"]


@pytest.fixture
def service(provider):
    """A new client, used by both workers (so both hold it in their caches)."""
    created = provider.create_client("batch", grant_types=["client_credentials"])
    logged_before = len(token_requests_logged(provider))
    for _ in range(20):  # which worker accepts a connection is the kernel's choice: ask until both have
        assert answers(provider, created["client_id"], created["client_secret"]) == {(200, None)}
        pids = {line["pid"] for line in token_requests_logged(provider)[logged_before:]}
        if len(pids) == 2:
            return created
    pytest.fail(f"after {20 * WARM_UP} requests only the workers {pids} had answered")


def test_a_secret_rotated_by_the_cli_is_refused_at_once_by_every_worker(provider, service):
    rotated = provider.run_idp("client", "rotate-secret", service["client_id"])
    assert answers(provider, service["client_id"], service["client_secret"]) == {(401, "invalid_client")}
    assert answers(provider, service["client_id"], rotated["client_secret"]) == {(200, None)}


def test_a_client_disabled_by_the_cli_is_refused_at_once_by_every_worker(provider, service):
    provider.run_idp("client", "disable", service["client_id"])
    assert answers(provider, service["client_id"], service["client_secret"]) == {(401, "invalid_client")}
    provider.run_idp("client", "disable", "--enable", service["client_id"])
    assert answers(provider, service["client_id"], service["client_secret"]) == {(200, None)}


def test_a_client_deleted_by_the_cli_is_refused_at_once_by_every_worker(provider, service):
    provider.run_idp("client", "delete", service["client_id"])
    assert answers(provider, service["client_id"], service["client_secret"]) == {(401, "invalid_client")}
