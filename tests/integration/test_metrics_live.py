"""/metrics counts what every worker did: gunicorn with two workers (`-c python:idp.serving`, the
documented command) on PostgreSQL + Redis, real requests, then a scrape of the exporter the master
serves on its own port. The public listener has no /metrics."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.live_provider import LiveProvider

pytestmark = pytest.mark.shared_store

PASSWORD = "correct horse battery staple"
TOKENS = 40


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with LiveProvider(tmp_path_factory.mktemp("metrics"), name="metrics", metrics=True) as live:
        live.setup()
        live.start(workers=2, threads=2)
        yield live


def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of every sample scraped."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


def client_credentials(provider, client) -> int:
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    request = urllib.request.Request(provider.issuer + "/token", data=b"grant_type=client_credentials",
                                     headers={"Authorization": f"Basic {basic}", "Connection": "close",
                                              "Content-Type": "application/x-www-form-urlencoded"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def workers_that_answered(provider, path: str) -> set:
    lines = (json.loads(line) for line in provider.log_tail(10**8).splitlines() if line.startswith("{"))
    return {line["pid"] for line in lines if line.get("path") == path}


def test_metrics_add_up_every_worker_and_are_not_on_the_public_listener(provider):
    before = samples(provider.scrape())
    client = provider.create_client("metrics batch", grant_types=["client_credentials"])
    statuses = [client_credentials(provider, client) for _ in range(TOKENS)]
    assert statuses == [200] * TOKENS
    person = provider.make_account(email="locked.out@centre.example", password=PASSWORD)
    for _ in range(3):  # the third wrong password locks the account (policies/security.toml)
        provider.password_attempt(person["email"], "not the password")
    assert "locked" in provider.password_attempt(person["email"], PASSWORD)

    after = samples(provider.scrape())
    # both workers answered /token, and the scrape counts every request of either
    assert len(workers_that_answered(provider, "/token")) == 2
    token_requests = value(after, "idp_http_request_duration_seconds_count", endpoint="token.token", status="200") \
        - value(before, "idp_http_request_duration_seconds_count", endpoint="token.token", status="200")
    assert token_requests == TOKENS
    assert value(after, "idp_http_request_duration_seconds_bucket", endpoint="token.token", le="+Inf") >= TOKENS
    assert value(after, "idp_tokens_issued_total", grant_type="client_credentials",
                 client=client["client_id"]) == TOKENS
    assert value(after, "idp_signins_total", outcome="wrong_password") == 3
    assert value(after, "idp_signins_total", outcome="locked") == 1
    assert value(after, "idp_lockouts_total", reason="password") == 1
    # key ages, read by the exporter from the key folder: one signing key per algorithm
    signing = {dict(ls)["alg"] for (n, ls), v in after.items()
               if n == "idp_signing_key_age_seconds" and dict(ls)["state"] == "signing" and v >= 0}
    assert signing == {"RS256", "ES256", "EdDSA"}

    status, _ = provider.get("/metrics")
    assert status == 404


def test_idp_serve_with_granian_adds_up_its_workers_too(provider):
    """`idp serve` runs granian by default: its parent process serves /metrics the same way."""
    import os
    import signal
    import subprocess
    import time

    from tests.live_provider import base_env, free_port, idp_command

    port, metrics_port = free_port(), free_port()
    env = {**base_env(), **provider.env, "IDP_ISSUER": f"http://localhost:{port}",
           "IDP_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
           "IDP_METRICS_DIR": str(provider.workdir / "granian-metrics")}
    log = (provider.workdir / "granian.log").open("w")
    server = subprocess.Popen(idp_command() + ["serve", "--workers", "2", "--port", str(port)], env=env,
                              cwd=provider.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, \
                    (provider.workdir / "granian.log").read_text()[-3000:]
                time.sleep(0.2)
        for _ in range(20):
            with opener.open(f"http://127.0.0.1:{port}/jwks.json", timeout=5):
                pass
        with opener.open(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as answer:
            found = samples(answer.read().decode())
        assert value(found, "idp_http_request_duration_seconds_count", endpoint="published.jwks") == 20
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
        log.close()
