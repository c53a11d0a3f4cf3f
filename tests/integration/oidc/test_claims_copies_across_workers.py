"""UserInfo's copies of a person, attacked across processes: gunicorn with two workers on
PostgreSQL + Redis, and a third process (this one) changing the person through the administration
services. After each change returns, every call at once, whichever worker takes it, says what the
database says; calls racing a change say the old value or the new one, never an older one, and
once it has committed, only the new."""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from urllib.parse import urlencode

import pytest

from tests.integration.oidc.test_single_use_across_workers import _open, at_once, logged
from tests.live_provider import LiveProvider

pytestmark = pytest.mark.shared_store

SCOPE = "openid profile access offline_access"


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    with LiveProvider(tmp_path_factory.mktemp("provider"), name="copies") as live:
        live.setup()
        live.start(workers=2, threads=4)
        yield live


@pytest.fixture(scope="module")
def officer(provider) -> str:
    """The centre's Exams Officer, who may change a User's access."""
    return provider.make_account(email="eo@centre.example", mfa=False)["sub"]


@pytest.fixture(scope="module")
def person(provider):
    """A teacher and a live access token of theirs, from a refresh as a relying party would get it."""
    rp = provider.create_client("copies", redirect_uris=["https://rp.example/cb"],
                                grant_types=["authorization_code", "refresh_token"])
    made = provider.make_account(email="teacher@centre.example", role="user", profiles=["resources", "results.view"])
    [refresh] = provider.mint_refresh_tokens(rp["client_id"], made["email"], scope=SCOPE)
    basic = base64.b64encode(f"{rp['client_id']}:{rp['client_secret']}".encode()).decode()
    status, _, body = _open(urllib.request.Request(
        provider.issuer + "/token", data=urlencode({"grant_type": "refresh_token", "refresh_token": refresh}).encode(),
        headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}))
    assert status == 200, body
    return made, json.loads(body)["access_token"]


def userinfo(provider, access_token: str) -> tuple[int, dict]:
    status, _, body = _open(urllib.request.Request(provider.issuer + "/userinfo",
                                                   headers={"Authorization": f"Bearer {access_token}"}))
    return status, json.loads(body) if status == 200 else {}


def change(provider, sub: str, *, name: str, profiles=None, officer: str | None = None) -> None:
    """In this process (a third one), through the administration services."""
    from idp.admin import people

    with provider.app().app_context():
        people.update_fields(people.operator(), sub, {"given_name": name})
        if profiles is not None:
            people.set_profiles(people.party_of(people.account_by_sub(officer)), sub, profiles)


def test_after_each_change_every_worker_says_what_the_database_says(provider, person, officer):
    made, token = person
    before = len(logged(provider, "/userinfo"))
    for round_ in range(4):
        answers = at_once(lambda: userinfo(provider, token))  # copies made in both workers' reads
        assert {status for status, _ in answers} == {200}
        change(provider, made["sub"], name=f"Round{round_}",
               profiles=["resources"] if round_ % 2 == 0 else ["resources", "results.view"], officer=officer)
        answers = at_once(lambda: userinfo(provider, token))
        assert [(status, said["given_name"], said["profiles"]) for status, said in answers] == \
            [(200, f"Round{round_}", ["resources"] if round_ % 2 == 0 else ["resources", "results.view"])] * len(answers)
    assert len({line["pid"] for line in logged(provider, "/userinfo")[before:]}) == 2


def test_calls_racing_a_change_never_go_back(provider, person):
    """Callers ask without pause while the name changes ten times: each caller's answers move only
    forward through the names, and after the last change has committed all say the last."""
    made, token = person
    change(provider, made["sub"], name="Step0")
    stop = threading.Event()
    seen: dict[int, list[int]] = {n: [] for n in range(6)}

    def caller(n: int) -> None:
        while not stop.is_set():
            status, said = userinfo(provider, token)
            assert status == 200
            seen[n].append(int(said["given_name"].removeprefix("Step")))

    callers = [threading.Thread(target=caller, args=(n,)) for n in range(6)]
    for thread in callers:
        thread.start()
    try:
        for step in range(1, 11):
            change(provider, made["sub"], name=f"Step{step}")
    finally:
        stop.set()
        for thread in callers:
            thread.join()
    for steps in seen.values():
        assert steps == sorted(steps), steps
    assert {said["given_name"] for _, said in at_once(lambda: userinfo(provider, token))} == {"Step10"}
