"""The centre console's tests: the sign-in journey tests' fixtures (a real SMTP server, browsers
over the Flask test client, database helpers), the people of two centres, and a few helpers to
read the console's pages.

    12345 Test Centre   eo@centre.example (Exams Officer), admin@centre.example (Admin),
                        user@centre.example (User)
    54321 Other Centre  eo@other.example (Exams Officer), user@other.example (User)
    (no centre)         board@board.example (Board staff)
"""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from idp.accounts.models import Account
from idp.extensions import db
from tests.integration.accounts import conftest as journey
from tests.support import PASSWORD, make_account, make_centre

# the sign-in journey tests' fixtures, for these tests too
smtp, background_sends, mail_app, browser, kit = (
    journey.smtp, journey.background_sends, journey.mail_app, journey.browser, journey.kit)

HOME, OTHER = "12345", "54321"
EO, ADMIN, USER = "eo@centre.example", "admin@centre.example", "user@centre.example"
OTHER_EO, OTHER_USER, BOARD = "eo@other.example", "user@other.example", "board@board.example"


@pytest.fixture
def staff(mail_app):
    """The people above; ``staff.sub[email]`` is each one's sub."""
    with mail_app.app_context():
        make_centre(HOME, "Test Centre")
        make_centre(OTHER, "Other Centre")
        make_account(EO, role="eo", centre=HOME, given_name="Ada", family_name="Lovelace")
        make_account(ADMIN, role="admin", centre=HOME, given_name="Alan", family_name="Turing")
        make_account(USER, role="user", centre=HOME, given_name="Grace", family_name="Hopper")
        make_account(OTHER_EO, role="eo", centre=OTHER, given_name="Other", family_name="Officer")
        make_account(OTHER_USER, role="user", centre=OTHER, given_name="Olive", family_name="User")
        make_account(BOARD, role="board", centre=None, given_name="Bea", family_name="Board")
        subs = {a.email: a.sub for a in db.session.scalars(select(Account))}
    return SimpleNamespace(sub=subs, app=mail_app)


@pytest.fixture
def signed_in(mail_app, browser, staff):
    """``signed_in(email)``: a browser signed in as that person (password and test passkey)."""

    def sign_in(email: str):
        person = browser(mail_app)
        done = person.sign_in_fully(email, PASSWORD)
        assert done.status_code == 303, done.get_data(as_text=True)[:2000]
        return person

    return sign_in


def text(response) -> str:
    """A page's words, without markup, spaces squeezed (what a person reads)."""
    page = response.get_data(as_text=True)
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def hidden(response, name: str) -> str:
    """The value of a hidden field on the page."""
    found = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', response.get_data(as_text=True))
    assert found, f"no hidden field {name!r}"
    return found.group(1)


def form_values(response, name: str) -> dict:
    """Each input named ``name`` on the page: value -> (checked, disabled)."""
    found = {}
    for tag in re.findall(rf'<input\b[^>]*\bname="{name}"[^>]*>', response.get_data(as_text=True)):
        value = re.search(r'value="([^"]*)"', tag).group(1)
        found[value] = (" checked" in tag, " disabled" in tag)
    return found


def post_form(person, path: str, data: dict, *, page=None):
    """Post ``data`` to ``path`` with the CSRF token (and version, unless given) of ``page`` (the
    form as this browser showed it earlier) or of a fresh GET of ``path``."""
    shown = page if page is not None else person.get(path)
    assert page is not None or shown.status_code == 200, (path, shown.status_code)
    fields = {"csrf_token": journey.csrf_of(shown.get_data(as_text=True))}
    if 'name="version"' in shown.get_data(as_text=True):
        fields["version"] = hidden(shown, "version")
    return person.http.post(path, data={**fields, **data})


def row(app, email: str) -> Account | None:
    with app.app_context():
        found = db.session.scalar(select(Account).where(Account.email_key == Account.key_for(email)))
        if found is not None:
            db.session.expunge(found)
        return found


@pytest.fixture
def pages():
    """The page helpers above, as one namespace."""
    return SimpleNamespace(text=text, hidden=hidden, form_values=form_values, post=post_form, row=row,
                           messages=journey.messages)
