"""The provider on Redis Sentinel and on a Redis Cluster, not only one server: the same URL setting
reaches the store and the rate limiter, and a whole sign-in, code exchange, refresh, userinfo and
revocation work on each (the store contract itself: tests/unit/test_store_contract.py)."""

from __future__ import annotations

import base64

import pytest

from idp import create_app
from tests.support import code_flow, make_account, make_client, token_request

pytestmark = pytest.mark.shared_store


@pytest.fixture(params=["sentinel", "cluster"])
def topology_app(request, make_settings):
    setup = request.getfixturevalue(f"{request.param}_setup")
    wait = 1 if request.param == "sentinel" else 0
    application = create_app(make_settings(store={"redis_url": setup.url, "wait_for_replicas": wait}))
    application.config["TESTING"] = True
    yield application
    application.extensions["idp.db"].dispose()
    application.extensions["idp.store"].close()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def basic(rp) -> str:
    return "Basic " + base64.b64encode(f"{rp.client_id}:{rp.client_secret}".encode()).decode()


def test_sign_in_tokens_refresh_and_revocation_on_each_topology(topology_app):
    http = topology_app.test_client()
    with topology_app.app_context():
        make_account()
        rp = make_client()
    tokens = code_flow(http, rp, scope="openid email")
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    refreshed = token_request(http, rp, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    new = refreshed.get_json()
    revoked = http.post("/revoke", data={"token": new["access_token"]},
                        headers={"Authorization": basic(rp)})
    assert revoked.status_code == 200
    assert http.get("/userinfo", headers=bearer(new["access_token"])).status_code == 401
    assert http.get("/readyz").status_code == 200
