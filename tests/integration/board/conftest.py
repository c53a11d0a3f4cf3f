"""Fixtures for the board console's tests: board staff, a helpdesk account, a centre with its
Exams Officer and people, each signed in on a browser over the Flask test client that fills in
the forms (CSRF token included) as a person would."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import pytest

from idp.audit import AuditEvent
from idp.extensions import db
from tests.support import make_account, make_centre, sign_in

BOARD = "board@board.example"
HELPDESK = "help@board.example"
EO = "eo@centre.example"
ADMIN = "admin@centre.example"
USER = "user@centre.example"
OTHER_EO = "eo@other.example"


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or \
        re.search(r'type="hidden" name="csrf_token" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def problems_of(page: str) -> str:
    """The error summary's list, for an assertion's message."""
    found = re.search(r'<ul class="govuk-list govuk-error-summary__list">(.*?)</ul>', page, re.DOTALL)
    return text_of(found.group(1)) if found else text_of(page)[:1500]


def text_of(page: str) -> str:
    """A page's words, without markup, spaces squeezed (for asserting what it says)."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


@dataclass
class Browser:
    """One person's browser: the Flask test client with their session cookie."""

    http: object
    email: str
    pages: list = field(default_factory=list)

    def get(self, path: str, status: int | None = 200):
        response = self.http.get(path)
        if status is not None:
            assert response.status_code == status, (path, response.status_code,
                                                    problems_of(response.get_data(as_text=True)))
        return response

    def page(self, path: str, status: int = 200) -> str:
        return self.get(path, status).get_data(as_text=True)

    def submit(self, path: str, data: dict | None = None, *, form_page: str | None = None, files=None,
               status: int | None = None):
        """Fill in the form on ``form_page`` (default: ``path``) and post it to ``path``."""
        page = self.page(form_page or path)
        # as a browser does: the form's hidden fields (its CSRF token, the version it shows) go too
        hidden = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
        hidden.update(re.findall(r'<input[^>]*name="([^"]+)"[^>]*type="hidden"[^>]*value="([^"]*)"', page))
        body = {**{k: html.unescape(v) for k, v in hidden.items()}, "csrf_token": csrf_of(page), **(data or {})}
        if files:
            body.update(files)
        response = self.http.post(path, data=body, content_type="multipart/form-data" if files else None)
        if status is not None:
            assert response.status_code == status, (path, response.status_code,
                                                    problems_of(response.get_data(as_text=True)))
        return response


@pytest.fixture
def people_here(app):
    """Board staff, the helpdesk, and two centres with their Exams Officers and people: email -> sub."""
    with app.app_context():
        make_centre("12345", "Ysgol Gyfun")
        make_centre("67890", "Other College")
        subs = {email: make_account(email, role=role, centre=centre, given_name=given).sub for email, role, centre, given in (
            (BOARD, "board", None, "Bea"), (HELPDESK, "helpdesk", None, "Hal"), (EO, "eo", "12345", "Eve"),
            (ADMIN, "admin", "12345", "Ada"), (USER, "user", "12345", "Uma"), (OTHER_EO, "eo", "67890", "Oli"))}
    return subs


@pytest.fixture
def browser_for(app, people_here):
    """browser_for(email): a new browser, signed in as that person."""

    def open_as(email: str) -> Browser:
        http = app.test_client()
        signed = sign_in(http, email)
        assert signed.status_code == 303, signed.get_data(as_text=True)
        return Browser(http, email)

    return open_as


@pytest.fixture
def audit_rows(app):
    def rows(**where):
        with app.app_context():
            return db.session.query(AuditEvent).filter_by(**where).order_by(AuditEvent.at).all()

    return rows
