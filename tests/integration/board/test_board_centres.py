"""Centres in the board console: list and search, create, rename, suspend and reinstate (with a
confirmation page); a suspended centre's people are told so when (and only when) their password is
right; bad input gets a message to act on and changes nothing."""

from __future__ import annotations

import pytest

from idp.admin import centres as admin_centres
from idp.admin import errors as admin_errors
from idp.admin import people
from idp.centres.models import Centre
from idp.extensions import db
from tests.integration.board.conftest import BOARD, EO, HELPDESK, USER, text_of
from tests.support import make_centre, sign_in

SUSPENDED = "Your centre's access has been suspended. Contact the exam board."
BAD_CREDENTIALS = "The email address or password is incorrect."


def _centres(app):
    with app.app_context():
        return {c.number: (c.name, c.suspended) for c in db.session.query(Centre)}


def test_list_and_search(app, browser_for, people_here):
    with app.app_context():
        for number in range(11000, 11030):
            make_centre(str(number), f"Academy {number}")
        admin_centres.set_centre_suspended(people.operator(), "67890", True)
    board = browser_for(BOARD)
    first = text_of(board.page("/board/centres"))
    assert "32 centres" in first and "11000 Academy 11000 Active 0 None yet" in first
    assert "Next" in first  # 25 a page
    found = text_of(board.page("/board/centres?q=ysgol"))
    assert "1 centre" in found and "12345 Ysgol Gyfun Active 3 Eve Lovelace" in found
    assert "1 centre" in text_of(board.page("/board/centres?q=1234"))  # the start of a number
    suspended = text_of(board.page("/board/centres?suspended=yes"))
    assert "1 centre" in suspended and "67890 Other College Suspended" in suspended
    # LIKE's wildcards are matched literally; junk in the query string is ignored, never a 500
    assert "0 centres" in text_of(board.page("/board/centres?q=%25"))
    assert "32 centres" in text_of(board.page("/board/centres?suspended=maybe&page=x"))
    assert board.get("/board/centres?q=" + "x" * 300, status=400)
    page = text_of(board.page("/board/centres/12345"))
    for words in ("Ysgol Gyfun", "Active", "Eve Lovelace", "Uma Lovelace", "Replace the Exams Officer",
                  "Suspend the centre"):
        assert words in page
    assert "Manage this centre's users in the centre console" in page  # the console exists: linked
    assert board.get("/board/centres/99999", status=404)
    assert board.get("/board/centres/abc", status=400)


def test_create_centre(app, browser_for, audit_rows):
    board = browser_for(BOARD)
    for data, message in (
            ({"number": "", "name": "A"}, "Enter the centre number"),
            ({"number": "1234", "name": "A"}, "A centre number is 5 digits"),
            ({"number": "12345", "name": "A"}, "Centre 12345 already exists"),
            ({"number": "54321", "name": ""}, "Enter the centre name"),
            ({"number": "54321", "name": "x" * 201}, "200 characters or fewer"),
            ({"number": "54321", "name": "Tab\there"}, "cannot be used here"),
            ({"number": "５４３２１", "name": "Full-width digits"}, "5 digits")):
        refused = board.submit("/board/centres/new", data, status=400)
        assert message in text_of(refused.get_data(as_text=True)), data
        assert "54321" not in _centres(app)
    created = board.submit("/board/centres/new", {"number": " 54321 ", "name": "  New School "}, status=303)
    assert created.location.endswith("/board/centres/54321/exams-officer/new")  # next: its Exams Officer
    assert _centres(app)["54321"] == ("New School", False)
    assert [r.actor for r in audit_rows(event="centre.created", centre="54321")] == [people_here_sub(app, BOARD)]


def people_here_sub(app, email):
    with app.app_context():
        return people.account_by_email(email).sub


def test_rename_centre(app, browser_for, people_here, audit_rows):
    board = browser_for(BOARD)
    assert 'value="Ysgol Gyfun"' in board.page("/board/centres/12345/rename")
    for name, message in (("", "Enter the centre name"), ("  ", "Enter the centre name"), ("y" * 201, "200 characters"),
                          ("Line\nbreak", "cannot be used here")):
        refused = board.submit("/board/centres/12345/rename", {"name": name}, status=400)
        assert message in text_of(refused.get_data(as_text=True))
    assert _centres(app)["12345"][0] == "Ysgol Gyfun"
    board.submit("/board/centres/12345/rename", {"name": "Ysgol Gyfun Newydd"}, status=303)
    assert _centres(app)["12345"][0] == "Ysgol Gyfun Newydd"
    row, = audit_rows(event="centre.renamed")
    assert row.actor == people_here[BOARD] and row.details["before"] == {"name": "Ysgol Gyfun"} and \
        row.details["after"] == {"name": "Ysgol Gyfun Newydd"}
    # the same name again changes (and audits) nothing; the helpdesk may not rename
    board.submit("/board/centres/12345/rename", {"name": "Ysgol Gyfun Newydd"}, status=303)
    assert len(audit_rows(event="centre.renamed")) == 1
    with app.app_context():
        helpdesk = people.party_of(people.account_by_email(HELPDESK))
        with pytest.raises(admin_errors.Denied):
            admin_centres.rename_centre(helpdesk, "12345", "Nope")
    assert browser_for(HELPDESK).get("/board/centres/12345/rename", status=403)


def test_suspend_and_reinstate_with_confirmation(app, browser_for, people_here, audit_rows):
    user = browser_for(USER)
    assert user.get("/account").status_code == 200
    board = browser_for(BOARD)
    confirm = text_of(board.page("/board/centres/12345/suspension"))
    assert "Suspend Ysgol Gyfun?" in confirm and "3 people with accounts at this centre will be signed out" in confirm
    assert _centres(app)["12345"][1] is False  # looking at the confirmation changes nothing
    board.submit("/board/centres/12345/suspension", status=303)
    assert _centres(app)["12345"][1] is True
    assert user.http.get("/account").status_code == 302  # signed out at once
    assert "Its people cannot sign in." in text_of(board.page("/board/centres/12345"))

    # the right password: told plainly; a wrong one: the usual answer, so nothing leaks
    fresh = app.test_client()
    told = sign_in(fresh, USER)
    assert told.status_code == 400 and SUSPENDED in text_of(told.get_data(as_text=True))
    wrong = sign_in(app.test_client(), USER, password="not the password")
    page = text_of(wrong.get_data(as_text=True))
    assert BAD_CREDENTIALS in page and SUSPENDED not in page
    assert [r.details.get("reason") for r in audit_rows(event="signin.password", subject=people_here[USER],
                                                         outcome="failure")] == ["centre_suspended", "bad_credentials"]

    confirm = text_of(board.page("/board/centres/12345/suspension"))
    assert "Reinstate Ysgol Gyfun?" in confirm
    board.submit("/board/centres/12345/suspension", status=303)
    assert _centres(app)["12345"][1] is False
    assert sign_in(app.test_client(), USER).status_code == 303
    assert [r.event for r in audit_rows(actor=people_here[BOARD]) if r.event.startswith("centre.")] == \
        ["centre.suspended", "centre.reinstated"]


def test_a_right_password_of_a_suspended_centre_does_not_lock_or_count(app, people_here):
    """Being told about the suspension costs no wrong-password budget (the password was right)."""
    from idp import policy
    from idp.accounts import lockout

    with app.app_context():
        admin_centres.set_centre_suspended(people.operator(), "12345", True)
        tries = policy.current().sec("lockout").max_failures + 2
    for _ in range(tries):
        answer = sign_in(app.test_client(), EO)
        assert SUSPENDED in text_of(answer.get_data(as_text=True))
    with app.app_context():
        assert lockout.locked_until(EO) is None


def test_pages_link_into_the_centre_console(browser_for, people_here):
    """Board staff reach a centre's users, and a person's page, in the centre console."""
    board = browser_for(BOARD)
    assert 'href="/centres/12345/users"' in board.page("/board/centres/12345")
    assert f'href="/users/{people_here[USER]}"' in board.page(f"/board/people/{people_here[USER]}")
    assert "/users/" not in board.page(f"/board/people/{people_here[BOARD]}")  # board staff belong to no centre
