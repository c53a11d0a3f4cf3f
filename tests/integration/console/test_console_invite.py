"""Inviting someone from the console, as the exam boards' guides describe it: their details and type
of account, what they can use, a check of the answers with Change links, then the invite, whose
email names the centre, who invited them and whom to ask if it expires. Bad input at each step gets
a message a person can act on and nothing is written; a refused email leaves nobody invited."""

from __future__ import annotations

import pytest

from idp.admin import people
from idp.extensions import db
from tests.integration.console.conftest import BOARD, EO, HOME, OTHER

NEWCOMER = "new.starter@centre.example"
DETAILS = {"title": "Dr", "given_name": "Mary", "family_name": "Somerville", "email": NEWCOMER,
           "job_role": "Head of Science", "language": "en", "role": "user"}


def _grants(app, email):
    with app.app_context():
        return sorted(people.party_of(people.account_by_email(email)).profiles)


def test_the_exams_officer_invites_a_user(mail_app, signed_in, smtp, kit, pages):
    eo = signed_in(EO)
    assert "Invite a user" in pages.text(eo.get("/users"))
    first = pages.post(eo, "/users/invite", DETAILS)
    assert first.status_code == 303 and first.location.endswith("/users/invite/access")
    access = eo.get("/users/invite/access")
    ticks = pages.form_values(access, "profiles")
    assert ticks["resources"] == (True, False)  # on by default for a user
    assert ticks["entries.make"] == (False, True) and ticks["entries.view"] == (False, False)
    words = pages.text(access)
    assert "User accounts cannot have 'Make entries'." in words
    assert "View candidate entries without changing them." in words  # view only, said so
    assert "View results before they are released on results day." in words
    second = pages.post(eo, "/users/invite/access", {"profiles": ["resources", "entries.view", "results.view"]})
    assert second.status_code == 303 and second.location.endswith("/users/invite/check")
    check = pages.text(eo.get("/users/invite/check"))
    for shown in ("Dr Mary Somerville", NEWCOMER, "Head of Science", "English", "User", "View entries",
                  "View results", "Past papers, marking schemes and resources", "Change name"):
        assert shown in check, shown
    assert pages.row(mail_app, NEWCOMER) is None  # nothing written before the invite is sent
    sent = pages.post(eo, "/users/invite/check", {})
    assert sent.status_code == 303 and "/users/" in sent.location
    person = eo.get(sent.location)
    assert f"Invite sent to {NEWCOMER}." in pages.messages(person)
    assert "Invited" in pages.text(person)
    assert _grants(mail_app, NEWCOMER) == ["entries.view", "resources", "results.view"]
    mail = smtp.take(NEWCOMER, kit.INVITE_SUBJECT)
    assert "Ada Lovelace has invited you to exam board services for Test Centre (centre 12345)." in mail.text
    assert "ask your Exams Officer or an admin at your centre" in mail.text
    assert kit.temporary_password(mail)
    row = pages.row(mail_app, NEWCOMER)
    assert (row.title, row.job_role, row.role, row.status) == ("Dr", "Head of Science", "user", "invited")
    assert eo.get("/users/invite/check").location.endswith("/users/invite")  # the answers are gone


def test_change_links_keep_the_answers(mail_app, signed_in, pages):
    eo = signed_in(EO)
    pages.post(eo, "/users/invite", DETAILS)
    pages.post(eo, "/users/invite/access", {"profiles": ["resources", "iamis"]})
    again = eo.get("/users/invite?change=1")
    assert 'value="Somerville"' in again.get_data(as_text=True)
    assert pages.form_values(again, "role")["user"] == (True, False)
    # the same type: straight back to the check, the access kept
    back = pages.post(eo, "/users/invite?change=1", {**DETAILS, "family_name": "Fairfax"}, page=again)
    assert back.location.endswith("/users/invite/check")
    check = pages.text(eo.get("/users/invite/check"))
    assert "Mary Fairfax" in check and "IAMIS (all subjects)" in check
    # another type: access is chosen again, for that type
    moved = pages.post(eo, "/users/invite?change=1", {**DETAILS, "role": "admin"})
    assert moved.location.endswith("/users/invite/access")
    assert pages.form_values(eo.get("/users/invite/access"), "profiles")["a2c_keys"] == (True, False)
    # starting a new invite forgets the old answers
    assert 'value="Somerville"' not in eo.get("/users/invite").get_data(as_text=True)
    assert eo.get("/users/invite/check").location.endswith("/users/invite")


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"given_name": ""}, "given_name", "Enter their first name"),
    ({"family_name": "   "}, "family_name", "Enter their last name"),
    ({"given_name": "\u200b"}, "given_name", "Enter the given name."),  # nothing that shows
    ({"family_name": "\u200b\u00a0\u2060"}, "family_name", "Enter the family name."),
    ({"email": "not-an-address"}, "email", "Enter an email address in the right format, like name@example.com"),
    ({"email": "eo@centre.example"}, "email", "An account with this email address already exists."),
    ({"email": "EO@Centre.example "}, "email", "An account with this email address already exists."),
    ({"given_name": "Mary\tAnn"}, "given_name", "This contains characters that cannot be used here"),
    ({"given_name": "x" * 101}, "given_name", "First name is too long"),
    ({"job_role": "<script>" * 20}, "job_role", "Job role is too long"),
    ({"role": ""}, "role", "Choose the type of account"),
    ({"role": "eo"}, "role", "Choose the type of account."),
    ({"role": "board"}, "role", "Choose the type of account."),
    ({"role": "x" * 5000}, "role", "Choose the type of account"),
    ({"language": "fr"}, "language", "Language must be en (English) or cy (Welsh)."),
    ({"email": "a@b.c\u0000"}, "email", "This contains characters that cannot be used here"),
])
def test_bad_details_are_refused_with_a_message_and_nothing_kept(mail_app, signed_in, pages, change, field,
                                                                 message):
    eo = signed_in(EO)
    refused = pages.post(eo, "/users/invite", {**DETAILS, **change})
    assert refused.status_code in (400, 403, 409), refused.status_code
    found = pages.messages(refused)
    assert any(m.startswith(message) for m in found), found
    assert f'href="#{field}"' in refused.get_data(as_text=True)  # the summary leads to the field
    assert eo.get("/users/invite/access").status_code == 303  # no answers kept
    assert pages.row(mail_app, NEWCOMER) is None


def test_bad_access_answers_are_refused(mail_app, signed_in, pages):
    eo = signed_in(EO)
    pages.post(eo, "/users/invite", DETAILS)
    for wanted, message in ((["no.such.profile"], "Unknown access profile 'no.such.profile'."),
                            (["a2c_keys"], "User accounts cannot have 'A2C access keys'."),
                            (["<b>x</b>" * 300], "Unknown access profile")):
        refused = pages.post(eo, "/users/invite/access", {"profiles": wanted})
        assert refused.status_code in (400, 403)
        assert any(m.startswith(message) for m in pages.messages(refused)), pages.messages(refused)
        assert "<b>x</b>" not in refused.get_data(as_text=True)
    assert eo.get("/users/invite/check").location.endswith("/users/invite")
    # without the CSRF token nothing moves on
    assert eo.http.post("/users/invite/access", data={"profiles": ["resources"]}).status_code == 400
    assert eo.get("/users/invite/check").location.endswith("/users/invite")


def test_a_refused_email_leaves_nobody_invited(mail_app, signed_in, smtp, pages):
    eo = signed_in(EO)
    pages.post(eo, "/users/invite", DETAILS)
    pages.post(eo, "/users/invite/access", {"profiles": ["resources"]})
    smtp.refuse_rcpt = "550 5.1.1 Recipient address rejected"
    refused = pages.post(eo, "/users/invite/check", {})
    assert refused.status_code == 503
    assert "The invite email could not be sent, so nobody has been invited." in pages.messages(refused)[0]
    assert pages.row(mail_app, NEWCOMER) is None
    smtp.refuse_rcpt = None
    assert pages.post(eo, "/users/invite/check", {}).status_code == 303  # the answers were kept
    assert pages.row(mail_app, NEWCOMER).status == "invited"


def test_board_staff_invite_a_centres_exams_officer(mail_app, signed_in, smtp, kit, staff, pages):
    from tests.support import make_centre

    with mail_app.app_context():
        make_centre("67890", "New College")
    board = signed_in(BOARD)
    invite = board.get("/centres/67890/users/invite")
    assert pages.form_values(invite, "role") == {"eo": (False, False)}
    taken = board.get(f"/centres/{OTHER}/users/invite")  # that centre has its Exams Officer
    assert pages.form_values(taken, "role") == {"eo": (False, True)}
    assert "A centre has exactly one Exams Officer; ask the exam board to replace them." in pages.text(taken)
    path = "/centres/67890/users/invite"
    assert pages.post(board, path, {**DETAILS, "email": "head@college.example", "role": "eo"}).status_code == 303
    access = board.get("/centres/67890/users/invite/access")
    assert all(state == (True, True) for state in pages.form_values(access, "profiles").values())
    assert "Exams Officer accounts always have every access profile." in pages.text(access)
    assert pages.post(board, "/centres/67890/users/invite/access", {}).status_code == 303
    sent = pages.post(board, "/centres/67890/users/invite/check", {})
    assert sent.status_code == 303
    mail = smtp.take("head@college.example", kit.INVITE_SUBJECT)
    assert "Bea Board at the exam board has invited you to exam board services for New College (centre 67890)." \
        in mail.text
    assert "If it expires, ask the exam board to send you a new one." in mail.text
    assert pages.row(mail_app, "head@college.example").role == "eo"
    listing = pages.text(board.get("/centres/67890/users"))
    assert "head@college.example" in listing and "Invited" in listing


def test_invite_pages_for_a_centre_are_the_same_for_its_own_staff(mail_app, signed_in, pages):
    eo = signed_in(EO)
    assert pages.post(eo, f"/centres/{HOME}/users/invite", DETAILS).location.endswith(
        "/users/invite/access")


def test_welsh_invites_are_dated_in_welsh(mail_app, signed_in, smtp, kit, pages):
    eo = signed_in(EO)
    pages.post(eo, "/users/invite", {**DETAILS, "language": "cy"})
    pages.post(eo, "/users/invite/access", {"profiles": ["resources"]})
    assert pages.post(eo, "/users/invite/check", {}).status_code == 303
    mail = smtp.take(NEWCOMER, None)
    with mail_app.app_context():
        expires = people.account_by_email(NEWCOMER).invite_expires_at
        db.session.rollback()
    from zoneinfo import ZoneInfo

    from babel.dates import format_date

    assert format_date(expires.astimezone(ZoneInfo("Europe/London")), "long", locale="cy") in mail.text


def test_access_profiles_and_account_types_in_welsh(mail_app, signed_in, pages):
    eo = signed_in(EO)
    assert eo.get("/users?ui_locales=cy").status_code == 200
    invite = pages.text(eo.get("/users/invite"))
    assert "Gweinyddwr" in invite and "Defnyddiwr" in invite  # Admin, User
    pages.post(eo, "/users/invite", DETAILS)
    access = pages.text(eo.get("/users/invite/access"))
    assert "Gweld cofrestriadau" in access and "Gweld cofrestriadau ymgeiswyr heb eu newid." in access
    assert "Gwneud cofrestriadau" in access and "Gweld canlyniadau dan embargo" in access
    assert "View entries" not in access
    listing = pages.text(eo.get("/users"))
    assert "Swyddog Arholiadau" in listing  # the Exams Officer's type
