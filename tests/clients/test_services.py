"""The example services in clients/services/ with real tokens from a running provider."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from clients.services import entries, past_papers, results

LONDON = ZoneInfo("Europe/London")
EO = "eo@centre.example"
VIEWER = "viewer@centre.example"      # results.view only
OUTSIDER = "outsider@centre.example"  # no results profile


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def people(provider):
    provider.person(EO)  # an EO holds every profile of its role: results.embargoed and results.view
    provider.person(VIEWER, role="user", profiles=["results.view", "entries.view", "resources"])
    provider.person(OUTSIDER, role="user", profiles=[])
    return provider.client("Service")


# ------------------------------------------------------------------ results and the embargo
@pytest.fixture
def results_day() -> dt.date:
    # ahead of the real date, so the provider's keys are already valid when we travel there
    return dt.datetime.now(LONDON).date() + dt.timedelta(days=10)


def results_service(provider, rp, results_day):
    config = {"issuer": provider.issuer, "audience": rp.client_id, "results_day": results_day.isoformat()}
    return results.create_app(config).test_client()


def at(day: dt.date, hour: int, minute: int, second: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute, second), LONDON)


EXPECTED = {  # person -> (before 08:00, from 08:00): status, missing profile
    EO: ((200, None), (200, None)),
    VIEWER: ((403, "results.embargoed"), (200, None)),
    OUTSIDER: ((403, "results.embargoed"), (403, "results.view")),
}


def check(http, token, expected, released):
    status, missing = expected
    answer = http.get("/results", headers=bearer(token))
    assert answer.status_code == status, answer.get_data(as_text=True)
    if status == 200:
        assert answer.get_json()["released"] is released
        assert answer.get_json()["centre"] == "12345" and answer.get_json()["results"]
    else:
        assert answer.get_json()["missing_profile"] == missing


def test_embargo_lifts_at_0800_on_results_day(provider, people, results_day):
    http = results_service(provider, people, results_day)
    with time_machine.travel(at(results_day, 7, 55), tick=True) as traveller:
        tokens = {email: provider.access_token(people, email) for email in EXPECTED}
        traveller.move_to(at(results_day, 7, 59, 59))
        for email, (before, _) in EXPECTED.items():
            check(http, tokens[email], before, released=False)
        traveller.move_to(at(results_day, 8, 0, 0))  # the same tokens, now after release
        for email, (_, after) in EXPECTED.items():
            check(http, tokens[email], after, released=True)


@pytest.mark.parametrize("moment, released", [
    (lambda day: at(day - dt.timedelta(days=1), 12, 0), False),
    (lambda day: at(day, 0, 1), False),
    (lambda day: at(day, 8, 1), True),
    (lambda day: at(day + dt.timedelta(days=1), 6, 0), True),
], ids=["day-before", "midnight", "0801", "day-after"])
def test_embargo_for_each_profile_around_results_day(provider, people, results_day, moment, released):
    http = results_service(provider, people, results_day)
    with time_machine.travel(moment(results_day), tick=True):
        for email, expectations in EXPECTED.items():
            check(http, provider.access_token(people, email), expectations[released], released)


def test_embargoed_profile_alone_sees_results(provider, people, results_day):
    http = results_service(provider, people, results_day)
    with time_machine.travel(at(results_day, 7, 0), tick=True):
        token = provider.sign(provider.access_claims(people, profiles=["results.embargoed"]))
        check(http, token, (200, None), released=False)


def test_results_needs_a_token(provider, people, results_day):
    answer = results_service(provider, people, results_day).get("/results")
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")


# ------------------------------------------------------------------ entries
def test_entries_view_reads_and_make_writes(provider, people):
    http = entries.create_app({"issuer": provider.issuer, "audience": people.client_id}).test_client()
    eo, viewer, outsider = (provider.access_token(people, email) for email in (EO, VIEWER, OUTSIDER))
    entry = {"candidate": "0001", "subject": "Mathematics"}

    made = http.post("/entries", json=entry, headers=bearer(eo))
    assert made.status_code == 201 and made.get_json()["subject"] == "Mathematics"
    assert http.get("/entries", headers=bearer(eo)).get_json()["entries"][0]["candidate"] == "0001"

    assert http.get("/entries", headers=bearer(viewer)).get_json()["entries"] == [made.get_json()]
    refused = http.post("/entries", json=entry, headers=bearer(viewer))
    assert refused.status_code == 403 and refused.get_json()["missing_profile"] == "entries.make"

    denied = http.get("/entries", headers=bearer(outsider))
    assert denied.status_code == 403 and denied.get_json()["missing_profile"] == "entries.view"
    assert http.post("/entries", json={}, headers=bearer(eo)).status_code == 400
    assert http.post("/entries", json=entry).status_code == 401


def test_entries_are_per_centre(provider, people):
    provider.person("eo2@other.example", centre="54321")
    http = entries.create_app({"issuer": provider.issuer, "audience": people.client_id}).test_client()
    http.post("/entries", json={"candidate": "0001", "subject": "Art"},
              headers=bearer(provider.access_token(people, EO)))
    other = http.get("/entries", headers=bearer(provider.access_token(people, "eo2@other.example")))
    assert other.get_json() == {"centre": "54321", "entries": []}


# ------------------------------------------------------------------ past papers
def test_past_papers_need_resources(provider, people):
    http = past_papers.create_app({"issuer": provider.issuer, "audience": people.client_id}).test_client()
    viewer = provider.access_token(people, VIEWER)
    listing = http.get("/papers", headers=bearer(viewer))
    assert listing.status_code == 200 and listing.get_json()["papers"]
    assert http.get("/papers/maths-2024-p1", headers=bearer(viewer)).get_json()["title"]
    assert http.get("/papers/nope", headers=bearer(viewer)).status_code == 404

    outsider = http.get("/papers", headers=bearer(provider.access_token(people, OUTSIDER)))
    assert outsider.status_code == 403 and outsider.get_json()["missing_profile"] == "resources"
    no_scope = http.get("/papers", headers=bearer(provider.access_token(people, EO, scope="openid")))
    assert no_scope.status_code == 403 and "access" in no_scope.get_json()["error_description"]


def test_services_refuse_tokens_for_other_clients(provider, people):
    other = provider.client("Someone else")
    token = provider.access_token(other, EO)
    http = past_papers.create_app({"issuer": provider.issuer, "audience": people.client_id}).test_client()
    answer = http.get("/papers", headers=bearer(token))
    assert answer.status_code == 401 and 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    assert answer.get_json()["error_description"]


def test_client_credentials_tokens_carry_no_profiles(provider):
    from tests.support import token_request

    machine = provider.client("Batch job", grant_types=["client_credentials"], redirect_uris=[],
                              response_types=[])
    response = token_request(provider.app.test_client(), machine,
                             {"grant_type": "client_credentials"})
    assert response.status_code == 200, response.get_data(as_text=True)
    http = past_papers.create_app({"issuer": provider.issuer, "audience": machine.client_id}).test_client()
    answer = http.get("/papers", headers=bearer(response.get_json()["access_token"]))
    assert answer.status_code == 403 and answer.get_json()["missing_profile"] == "resources"
