"""Backends failing under load, on servers each test starts itself (docs/operations.md, "When Redis
or PostgreSQL is down"):

- the Redis primary killed (SIGKILL) under load with Sentinel: requests fail closed with 503 while
  the Sentinels fail over, then succeed again without a restart; no authorization code is accepted
  twice, not even one redeemed as the primary died; lockout counts are neither lost nor reset;
- PostgreSQL restarted under load (an instance of the test's own, never the shared one): 503s only
  while it is away, never a 500, no committed account change lost, and the pool recovers by itself.

gunicorn with two workers, as in production. Each test takes seconds: the failover is tuned to one
second of silence (tests/redis_servers.py), PostgreSQL restarts in about one.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections import Counter, defaultdict

import pytest
import requests

from tests.live_provider import LiveProvider
from tests.redis_servers import SentinelSetup

pytestmark = pytest.mark.shared_store

PASSWORD = "correct horse battery staple"
ALLOWED = {200, 400, 401, 503}  # never a 500


def session() -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    return http


def basic(client: dict) -> str:
    return "Basic " + base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()


def mint_codes(provider, account_id: str, client: dict, n: int) -> list[str]:
    """Authorization codes as /authorize stores them (idp.oidc.grants), for a person who has signed
    in: the sign-in pages are not what this test is about."""
    from idp.oidc import grants

    codes = []
    with provider.app().app_context():
        for _ in range(n):
            code = secrets.token_urlsafe(32)
            grants.CODES.put_json(grants._code_id(code), {
                "client_id": client["client_id"], "redirect_uri": "https://rp.example/cb", "scope": "openid",
                "nonce": None, "code_challenge": None, "code_challenge_method": None, "account_id": account_id,
                "auth_time": int(time.time()), "amr": ["pwd", "hwk"], "acr": "urn:idp:acr:mfa", "sid": None,
                "grant_id": grants._grant_id_for(code), "expires_at": int(time.time()) + 60}, 60)
            codes.append(code)
    return codes


class Outcomes:
    """What every request answered, and when."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[float, str, int]] = []
        self.redeemed: dict[str, list[int]] = defaultdict(list)

    def note(self, what: str, status: int) -> None:
        with self.lock:
            self.seen.append((time.monotonic(), what, status))

    def statuses(self) -> Counter:
        return Counter(status for _, _, status in self.seen)

    def last(self, status: int) -> float | None:
        times = [t for t, _, s in self.seen if s == status]
        return max(times) if times else None


# ------------------------------------------------------------------ Redis: Sentinel failover
@pytest.fixture
def sentinel(tmp_path):
    # two replicas: after the failover one is left for the new primary's writes to wait for
    with SentinelSetup(tmp_path / "sentinel", replicas=2) as setup:
        yield setup


@pytest.fixture
def provider_on_sentinel(tmp_path, sentinel):
    with LiveProvider(tmp_path / "provider", name="failover", redis=sentinel.url, log_level="WARNING") as live:
        live.setup()
        live.env["IDP_STORE_WAIT_FOR_REPLICAS"] = "1"
        live.start(workers=2, threads=4)
        yield live


def test_redis_primary_killed_under_load_fails_closed_then_recovers(provider_on_sentinel, sentinel):
    provider = provider_on_sentinel
    person = provider.make_account(email="eo@centre.example", password=PASSWORD)
    locked_out = provider.make_account(email="admin@centre.example", role="admin", password=PASSWORD)
    client = provider.create_client("failover rp", redirect_uris=["https://rp.example/cb"],
                                    grant_types=["authorization_code", "refresh_token", "client_credentials"])
    codes = mint_codes(provider, person["id"], client, 400)
    # two wrong passwords before the failover: the third, after it, must lock the account
    for _ in range(2):
        assert "incorrect" in provider.password_attempt(locked_out["email"], "not it")

    outcomes = Outcomes()
    stop = threading.Event()
    pending = list(codes)
    pending_lock = threading.Lock()

    def redeem(http, code):
        answer = http.post(provider.issuer + "/token", headers={"Authorization": basic(client)}, timeout=15,
                           data={"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": "https://rp.example/cb"})
        outcomes.note("code", answer.status_code)
        with outcomes.lock:
            outcomes.redeemed[code].append(answer.status_code)
        return answer

    def code_load():
        http = session()
        while not stop.is_set():
            with pending_lock:
                if not pending:
                    return
                code = pending.pop()
            redeem(http, code)
            redeem(http, code)  # at once, again: a replay

    def token_load():
        http = session()
        access = None
        while not stop.is_set():
            answer = http.post(provider.issuer + "/token", data={"grant_type": "client_credentials"},
                               headers={"Authorization": basic(client)}, timeout=15)
            outcomes.note("client_credentials", answer.status_code)
            if answer.status_code == 200:
                access = answer.json()["access_token"]
            if access:  # introspection reads the revocation markers in Redis
                seen = http.post(provider.issuer + "/introspect", data={"token": access},
                                 headers={"Authorization": basic(client)}, timeout=15)
                outcomes.note("introspect", seen.status_code)

    threads = [threading.Thread(target=code_load) for _ in range(2)] + [threading.Thread(target=token_load)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        killed_at = time.monotonic()
        old = sentinel.kill_primary()
        sentinel.wait_for_failover(old.port)

        # the provider follows by itself: a request succeeds again within the socket timeout
        def serves():
            answer = session().post(provider.issuer + "/token", data={"grant_type": "client_credentials"},
                                    headers={"Authorization": basic(client)}, timeout=15)
            return answer.status_code == 200

        deadline = time.monotonic() + 15
        while not serves():
            assert time.monotonic() < deadline, "the provider did not recover from the failover"
            time.sleep(0.1)
        recovered_at = time.monotonic()
        time.sleep(1)  # load after recovery too
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    statuses = outcomes.statuses()
    assert set(statuses) <= ALLOWED, statuses
    assert statuses[200] > 0 and statuses[503] > 0, "the failover was not noticed: this test showed nothing"
    # 503s only from the kill until the provider served again
    first_503 = min((t for t, _, s in outcomes.seen if s == 503), default=None)
    if first_503 is not None:
        assert killed_at <= first_503 and outcomes.last(503) <= recovered_at
    # after recovery every request succeeds (or is a replayed code, refused)
    after = Counter(s for t, what, s in outcomes.seen if t > recovered_at)
    assert after[503] == 0, after

    # no code was accepted twice, not even across the failover: present each once more now
    http = session()
    for code in codes:
        redeem(http, code)
    twice = {code: answers for code, answers in outcomes.redeemed.items() if answers.count(200) > 1}
    assert not twice, twice
    assert sum(1 for answers in outcomes.redeemed.values() if 200 in answers) > 0

    # the failure count survived: the third wrong password locks; then even the right one is refused
    assert "locked" in provider.password_attempt(locked_out["email"], "not it either")
    assert "locked" in provider.password_attempt(locked_out["email"], PASSWORD)


# ------------------------------------------------------------------ PostgreSQL restarted
@pytest.fixture
def own_postgres():
    from tests.pg_server import PostgresServer

    with PostgresServer() as server:
        yield server


WORKERS, THREADS = 2, 4
SETTLE_SECONDS = 2.0  # after one request succeeds again, time for the other worker's pools to renew


@pytest.fixture
def provider_on_own_postgres(tmp_path, own_postgres):
    with LiveProvider(tmp_path / "provider", name="pgrestart", database=own_postgres.url,
                      log_level="WARNING") as live:
        live.setup()
        live.start(workers=WORKERS, threads=THREADS)
        yield live


def admin_api_token(provider, board_id: str, client: dict) -> str:
    """An access token for the admin API, for a board member (a code minted as /authorize would)."""
    from idp.oidc import grants

    code = secrets.token_urlsafe(32)
    with provider.app().app_context():
        grants.CODES.put_json(grants._code_id(code), {
            "client_id": client["client_id"], "redirect_uri": "https://console.example/cb",
            "scope": "openid admin_api", "nonce": None, "code_challenge": None, "code_challenge_method": None,
            "account_id": board_id, "auth_time": int(time.time()), "amr": ["pwd", "hwk"],
            "acr": "urn:idp:acr:mfa", "sid": None, "grant_id": grants._grant_id_for(code),
            "expires_at": int(time.time()) + 60}, 60)
    answer = session().post(provider.issuer + "/token", headers={"Authorization": basic(client)}, timeout=15,
                            data={"grant_type": "authorization_code", "code": code,
                                  "redirect_uri": "https://console.example/cb"})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def test_postgresql_restarted_under_load_loses_no_change_and_the_pool_recovers(provider_on_own_postgres,
                                                                              own_postgres):
    provider = provider_on_own_postgres
    board = provider.make_account(email="board@board.example", role="board", centre=None, password=PASSWORD)
    person = provider.make_account(email="eo@centre.example", password=PASSWORD)
    client = provider.create_client("board scripts", redirect_uris=["https://console.example/cb"],
                                    grant_types=["authorization_code", "client_credentials"],
                                    extra=["--scope", "openid admin_api"])
    token = admin_api_token(provider, board["id"], client)
    api = f"{provider.issuer}/api/v1/accounts/{person['sub']}"
    outcomes = Outcomes()
    acknowledged: list[str] = []  # names the API said it saved, in order
    stop = threading.Event()

    def changes():  # one writer, so the last acknowledged name is the one that must be there
        http = session()
        n = 0
        while not stop.is_set():
            n += 1
            name = f"Name{n}"
            answer = http.patch(api, json={"given_name": name}, timeout=15,
                                headers={"Authorization": f"Bearer {token}"})
            outcomes.note("patch", answer.status_code)
            if answer.status_code == 200:
                acknowledged.append(name)

    def reads():
        http = session()
        while not stop.is_set():
            answer = http.post(provider.issuer + "/introspect", data={"token": token},
                               headers={"Authorization": basic(client)}, timeout=15)
            outcomes.note("introspect", answer.status_code)

    threads = [threading.Thread(target=changes), threading.Thread(target=reads)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        restarted_at = time.monotonic()
        own_postgres.restart()
        back_at = time.monotonic()
        deadline = time.monotonic() + 20
        while True:  # the pool replaces its dead connections by itself: no worker restarts
            answer = session().get(api, headers={"Authorization": f"Bearer {token}"}, timeout=15)
            if answer.status_code == 200:
                break
            assert answer.status_code == 503, answer.text
            assert time.monotonic() < deadline, "the provider did not recover after PostgreSQL restarted"
            time.sleep(0.1)
        recovered_at = time.monotonic()
        time.sleep(SETTLE_SECONDS + 1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    statuses = outcomes.statuses()
    assert set(statuses) <= {200, 503}, (statuses, provider.log_tail())
    assert statuses[503] > 0, "the restart was not noticed: this test showed nothing"
    assert restarted_at <= min(t for t, _, s in outcomes.seen if s == 503)
    # One answer again is not every pool renewed: a worker that has not touched PostgreSQL since
    # it came back still holds connections opened before, and finds them dead on first use (one
    # 503 each, then its pools are discarded). So a few 503s may end just after the probe's 200,
    # at most one per worker thread, and none once every worker has been used.
    late = [t for t, _, s in outcomes.seen if t > recovered_at and s != 200]
    assert len(late) <= WORKERS * THREADS and all(t <= recovered_at + SETTLE_SECONDS for t in late), (
        [(round(t - recovered_at, 3), what, s) for t, what, s in outcomes.seen if t > recovered_at - 0.5])
    assert [t for t, _, s in outcomes.seen if t > recovered_at + SETTLE_SECONDS and s == 200]
    shown = session().get(api, headers={"Authorization": f"Bearer {token}"}, timeout=15).json()
    assert shown["given_name"] == acknowledged[-1], (shown["given_name"], acknowledged[-3:])
    assert back_at >= restarted_at
