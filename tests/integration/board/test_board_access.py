"""Who may open the board console: every route of it (each method) refuses centre staff with a 403
page, before it reads any form, and audits the refusal (up to the actor's budget of refusals); the helpdesk opens only its parts (people,
centres to read, the audit trail) and is refused the rest; nobody signed out sees anything."""

from __future__ import annotations

import re

import pytest

from idp.admin.errors import REFUSALS_UNRECORDED
from tests.integration.board.conftest import ADMIN, BOARD, EO, HELPDESK, USER, csrf_of, text_of
from tests.support import make_client

# one backend: who may open which page: the policy, not storage
pytestmark = pytest.mark.one_backend

PUBLIC = {"board.client_logo"}  # a client service's logo: All services shows it to anyone


def _routes(app, values: dict) -> list[tuple[str, str, str]]:
    """(endpoint, method, URL) for every route of the board console."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("board.") or rule.endpoint in PUBLIC:
            continue
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<{name}>", values[name])
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return found


@pytest.fixture
def routes(app, people_here):
    with app.app_context():
        rp = make_client()
        from idp.extensions import keys

        kid = keys().ring().infos[0].kid
    values = {"number": "12345", "sub": people_here[USER], "client_id": rp.client_id, "kid": kid, "alg": "ES256"}
    found = _routes(app, values)
    assert len(found) > 30 and {e for e, _, _ in found} >= {"board.index", "board.audit_csv", "board.rotate_key"}
    return found


@pytest.mark.parametrize("who", [EO, ADMIN, USER])
def test_centre_staff_are_refused_every_board_route_and_each_refusal_is_audited(browser_for, routes, who,
                                                                             people_here, audit_rows):
    person = browser_for(who)
    token = csrf_of(person.page("/account"))
    for endpoint, method, url in routes:
        # a POST carries a form that would pass (their own CSRF token): the refusal comes first anyway
        response = person.http.open(url, method=method, data={"csrf_token": token, "reason": "r", "name": "n"})
        assert response.status_code == 403, (endpoint, method, url, response.status_code)
        page = text_of(response.get_data(as_text=True))
        assert "You cannot do this" in page and "board console is for exam board staff" in page, (endpoint, page)
    # each audited, up to the actor's budget of refusals; one row stands for the rest
    # (tests/integration/centres/test_refusal_budget.py)
    budget = 30
    assert len(routes) > budget
    refusals = audit_rows(event="board.opened", outcome="denied", actor=people_here[who])
    assert len(refusals) == budget
    assert all(r.details["reason"] and r.details["target"] for r in refusals)
    assert len(audit_rows(event=REFUSALS_UNRECORDED, outcome="denied", actor=people_here[who])) == 1


def test_signed_out_visitors_are_sent_to_sign_in(client, routes):
    for endpoint, method, url in routes:
        response = client.open(url, method=method)
        if method == "GET":
            assert response.status_code == 302 and response.location.endswith("/signin"), (endpoint, method)
        else:  # no session, so no CSRF token either: refused before anything is looked at
            assert response.status_code == 400, (endpoint, method)


def test_the_helpdesk_opens_its_parts_only(browser_for, routes, people_here, audit_rows):
    helpdesk = browser_for(HELPDESK)
    allowed = {"board.index", "board.centres", "board.centre", "board.people_search", "board.person", "board.unlock",
               "board.resend", "board.audit", "board.audit_csv", "board.staff"}
    for endpoint, method, url in routes:
        if method != "GET":
            continue
        if endpoint == "board.remove_staff":  # about a board account, not the centre user of the others
            url = url.replace(people_here[USER], people_here[BOARD])
        response = helpdesk.http.get(url)
        if endpoint in allowed:
            assert response.status_code in (200, 409), (endpoint, response.status_code)  # 409: user not locked
        elif endpoint == "board.enable":  # the user is not disabled: that is said before who may
            assert response.status_code == 409, (endpoint, response.status_code)
        else:
            assert response.status_code == 403, (endpoint, response.status_code)
    # what it may open, and nothing else, is in the navigation
    nav = helpdesk.page("/board")
    assert re.findall(r'href="(/board/[a-z]+)"', nav.split('aria-label="Board console"')[1].split("</nav>")[0]) == \
        ["/board/centres", "/board/people", "/board/audit", "/board/staff"]
    refused = {r.details["target"] for r in audit_rows(actor=people_here[HELPDESK], outcome="denied")}
    assert refused >= {"clients", "keys", "manage_centres", "invite_staff"}


def test_board_staff_open_every_part(browser_for, routes):
    board = browser_for(BOARD)
    for endpoint, method, url in routes:
        # what applies to a person only in some state (locked, invited, a board account, disabled)
        if method == "GET" and endpoint not in ("board.unlock", "board.resend", "board.remove_staff", "board.enable"):
            assert board.get(url, status=None).status_code == 200, endpoint
