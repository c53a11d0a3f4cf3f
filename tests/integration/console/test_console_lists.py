"""The console's lists: a large centre's people (search by name or email, filters by type and
status, pages) and the centre's activity (filters by person and by kind, pages). Whatever the
query string holds, the answer is a page a person can use, never an error page."""

from __future__ import annotations

import re

import pytest

from idp.accounts.models import Account
from idp.admin import people
from idp.extensions import db
from tests.integration.console.conftest import EO, HOME, USER
from tests.support import make_account

STAFF = 60


@pytest.fixture
def college(mail_app, staff):
    """A large centre: 60 more users (Staff 00 to Staff 59), every third of them invited."""
    with mail_app.app_context():
        eo = people.party_of(people.account_by_email(EO))
        for n in range(STAFF):
            if n % 3:
                make_account(f"staff{n:02d}@centre.example", role="user", mfa=False, given_name="Staff",
                             family_name=f"{n:02d}")
            else:
                people.invite(eo, email=f"staff{n:02d}@centre.example", role="user", centre=HOME,
                              fields={"given_name": "Staff", "family_name": f"{n:02d}"})
    return STAFF


def _names(response) -> list[str]:
    return re.findall(r'<a class="govuk-link" href="/users/(?!activity)[^"]+">([^<]+)</a>',
                      response.get_data(as_text=True))


def test_a_large_centres_people_in_pages(mail_app, signed_in, college, pages):
    eo = signed_in(EO)
    first = eo.get("/users")
    words = pages.text(first)
    assert "63 users, page 1 of 3" in words
    assert len(_names(first)) == 25
    assert _names(first)[:2] == ["Staff 00", "Staff 01"]  # by family name, then given name
    assert 'href="/users?page=2"' in first.get_data(as_text=True)  # GOV.UK pagination
    last = eo.get("/users?page=3")
    assert len(_names(last)) == 13 and "page 3 of 3" in pages.text(last)
    assert "Ada Lovelace" in _names(last) and "Grace Hopper" in _names(last)
    # filters keep to every page's links
    invited = eo.get("/users?status=invited")
    assert "20 users, page 1 of 1" in pages.text(invited)
    assert all(name.startswith("Staff") for name in _names(invited))
    not_set_up = eo.get("/users?status=mfa_not_set_up&page=2")
    assert "40 users, page 2 of 2" in pages.text(not_set_up)
    assert 'href="/users?status=mfa_not_set_up&amp;page=1"' in not_set_up.get_data(as_text=True)
    assert _names(eo.get("/users?q=LOVELACE")) == ["Ada Lovelace"]
    assert _names(eo.get("/users?q=user%40centre")) == ["Grace Hopper"]
    assert _names(eo.get("/users?role=eo")) == ["Ada Lovelace"]
    assert "No users match your search." in pages.text(eo.get("/users?q=%25%25_"))


@pytest.mark.parametrize("query", [
    "page=0", "page=-1", "page=abc", "page=99999999999999999999", "page=1e3", "page=%00", "page=%C2%B9",
    "page=%D9%A3",
    "status=sleeping", "role=overlord", "q=%09tab", "q=" + "x" * 500, "q=%FF%FE", "role=eo&role=admin&page=2",
])
def test_any_query_string_gets_a_usable_page(mail_app, signed_in, college, pages, query):
    eo = signed_in(EO)
    response = eo.get(f"/users?{query}")
    assert response.status_code in (200, 400), response.status_code
    words = pages.text(response)
    assert "Users" in words and (_names(response) or "No users match your search." in words)
    if response.status_code == 400:
        assert pages.messages(response)  # and says what was wrong


def test_past_the_last_page_shows_the_last(mail_app, signed_in, college, pages):
    eo = signed_in(EO)
    assert "page 3 of 3" in pages.text(eo.get("/users?page=40"))


def test_the_centres_activity(mail_app, signed_in, staff, college, pages):
    eo = signed_in(EO)
    grace = staff.sub[USER]
    assert pages.post(eo, f"/users/{grace}/access", {"profiles": ["resources", "iamis"]}).status_code == 303
    everything = eo.get("/users/activity")
    words = pages.text(everything)
    assert "Ada Lovelace changed Grace Hopper's access: gave IAMIS (all subjects)." in words
    assert "Ada Lovelace invited Staff 00 (account type: User)." in words
    assert "Ada Lovelace signed in." in words
    assert "entered their password" not in words  # the steps of a sign-in are not listed
    assert not re.search(r"\b(account|signin|mfa)\.[a-z_]+\b", words)  # no event ids
    assert re.search(r"\d{1,2} \w+ \d{4} at \d{2}:\d{2}", words)  # dates as people write them
    assert "page 1 of 1" in words
    access = pages.text(eo.get("/users/activity?kind=access"))
    assert "changed Grace Hopper's access" in access and "invited" not in access
    about = eo.get(f"/users/activity?person={grace}")
    assert "Showing what was done by or to Grace Hopper." in pages.text(about)
    assert "Staff 00" not in pages.text(about)
    by_name = pages.text(eo.get("/users/activity?who=hopper"))
    assert "Grace Hopper" in by_name and "Staff 00" not in by_name
    # the person's own page shows their latest events and leads to the rest
    person = pages.text(eo.get(f"/users/{grace}"))
    assert "Ada Lovelace changed Grace Hopper's access" in person
    # pages of 25: invite 60 more and there are three
    with mail_app.app_context():
        eo_party = people.party_of(people.account_by_email(EO))
        for n in range(60):
            people.update_fields(eo_party, grace, {"job_role": f"Role {n}"})
    paged = eo.get("/users/activity?kind=details")
    assert "60 events, page 1 of 3 (newest first)" in pages.text(paged)
    assert 'href="/users/activity?kind=details&amp;page=2"' in paged.get_data(as_text=True)
    for query in ("kind=nonsense", "who=" + "y" * 500, "person=" + "z" * 500, "page=abc", "who=%00"):
        odd = eo.get(f"/users/activity?{query}")
        assert odd.status_code in (200, 400) and "Centre activity" in pages.text(odd), query


def test_activity_is_only_the_centres_own(mail_app, signed_in, staff, pages):
    from idp.audit import record

    with mail_app.app_context():
        other = db.session.query(Account).filter_by(email_key="user@other.example").one()
        record("account.updated", actor=other.sub, subject=other.sub, centre=other.centre_number)
        db.session.commit()
    words = pages.text(signed_in(EO).get("/users/activity"))
    assert "Olive User" not in words
