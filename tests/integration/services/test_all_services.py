"""All services: the client services a person's access profiles open, each with its name and short
description in the page's language and a link that starts it (its launch address, with ``iss``);
and whom to ask when a service is missing."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from idp.oidc import clients
from tests.support import PASSWORD, _csrf, make_account, make_client, pass_passkey_challenge

EO, USER, BOARD = "eo@centre.example", "user@centre.example", "board@board.example"


def _services(app):
    """Results (results.*), Entries (entries.make), a notice board open to everyone, one without a
    launch address and one disabled: neither of the last two is ever listed."""
    with app.app_context():
        make_client("Results", allowed_profiles=["results.embargoed", "results.view"],
                    initiate_login_uri="https://results.example/start",
                    description="See your candidates' results.", description_cy="Gweld canlyniadau eich ymgeiswyr.")
        make_client("Entries", allowed_profiles=["entries.make"], initiate_login_uri="https://entries.example/",
                    description="Make entries.")
        make_client("Notices <script>alert(1)</script>", initiate_login_uri="https://notices.example/go?from=idp&iss=evil",
                    description="News for centres <b>bold</b>.")
        make_client("No launch address", allowed_profiles=["resources"])
        hidden = make_client("Switched off", allowed_profiles=["resources"], initiate_login_uri="https://off.example/")
        clients.set_disabled(hidden.client_id, True, actor="test")


def _sign_in(app, email: str, lang: str = "en"):
    http = app.test_client()
    page = http.get(f"/signin?ui_locales={lang}")
    step = http.post("/signin", data={"email": email, "csrf_token": _csrf(page.get_data(as_text=True))})
    page = http.get(step.location)
    step = http.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})
    assert pass_passkey_challenge(http, email, step.location).status_code == 303
    return http


def _listed(page: str) -> dict[str, tuple[str, str]]:
    """name -> (link, description) of each listed service."""
    found = {}
    for href, name, rest in re.findall(r'<a class="govuk-link" href="([^"]+)">(.*?)</a></h2>(.*?)</li>', page, re.DOTALL):
        description = re.search(r'<p class="govuk-body">(.*?)</p>', rest, re.DOTALL)
        found[html.unescape(name)] = (html.unescape(href), html.unescape(description.group(1)) if description else "")
    return found


@pytest.mark.parametrize("email,role,profiles,expected", [
    (USER, "user", ["results.view"], {"Results", "Notices <script>alert(1)</script>"}),
    (USER, "user", ["resources"], {"Notices <script>alert(1)</script>"}),
    (EO, "eo", None, {"Results", "Entries", "Notices <script>alert(1)</script>"}),
    (BOARD, "board", [], {"Notices <script>alert(1)</script>"}),
])
def test_only_the_services_the_persons_profiles_open(app, email, role, profiles, expected):
    _services(app)
    with app.app_context():
        make_account(email, role=role, centre=None if role == "board" else "12345", profiles=profiles)
    page = _sign_in(app, email).get("/services")
    assert page.status_code == 200
    assert set(_listed(page.get_data(as_text=True))) == expected


def test_each_service_is_a_link_that_starts_it_with_its_description(app):
    _services(app)
    with app.app_context():
        make_account(EO)
    page = _sign_in(app, EO).get("/services").get_data(as_text=True)
    listed = _listed(page)
    issuer = app.config["IDP_SETTINGS"].server.issuer
    link, description = listed["Results"]
    assert link.startswith("https://results.example/start?") and parse_qs(urlsplit(link).query) == {"iss": [issuer]}
    assert description == "See your candidates' results."
    # the launch address keeps its own query; ``iss`` is always this provider's
    notices = urlsplit(listed["Notices <script>alert(1)</script>"][0])
    assert parse_qs(notices.query) == {"from": ["idp"], "iss": [issuer]}
    # names and descriptions are text, never markup
    assert "<script>" not in page and "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "No launch address" not in page and "Switched off" not in page


def test_welsh_descriptions_on_a_welsh_page_where_there_are_any(app):
    _services(app)
    with app.app_context():
        make_account(EO)
    listed = _listed(_sign_in(app, EO, "cy").get("/services?ui_locales=cy").get_data(as_text=True))
    assert listed["Results"][1] == "Gweld canlyniadau eich ymgeiswyr."
    assert listed["Entries"][1] == "Make entries."  # no Welsh given: the English


@pytest.mark.parametrize("email,role,who", [
    (USER, "user", "Ask your Exams Officer"),
    ("admin@centre.example", "admin", "Ask your Exams Officer"),
    (EO, "eo", "Contact the exam board"),
    (BOARD, "board", "Contact the exam board"),
])
def test_whom_to_ask_when_a_service_is_missing(app, email, role, who):
    with app.app_context():
        make_account(email, role=role, centre=None if role == "board" else "12345")
    page = _sign_in(app, email).get("/services").get_data(as_text=True)
    assert "There are no exam board services you can use yet." in page
    assert who in page


def test_all_services_needs_a_session(app):
    assert app.test_client().get("/services").location.endswith("/signin")


def test_the_example_registrations_describe_themselves_and_can_be_started(app):
    """clients/registrations/*.toml, as the quick start imports them, show on All services."""
    from pathlib import Path

    from idp.oidc import declared

    folder = Path(__file__).resolve().parents[3] / "clients" / "registrations"
    with app.app_context():
        declared.import_folder(str(folder), pepper=app.extensions["idp.pepper"])
        make_account(EO)
    listed = _listed(_sign_in(app, EO).get("/services").get_data(as_text=True))
    assert set(listed) == {"Results", "Entries", "Past papers and resources"}
    for link, description in listed.values():
        assert re.match(r"http://localhost:810[1-3]/\?iss=", link) and description
    welsh = _listed(_sign_in(app, EO, "cy").get("/services?ui_locales=cy").get_data(as_text=True))
    assert all(welsh[name][1] != listed[name][1] for name in listed)
