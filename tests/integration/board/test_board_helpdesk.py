"""The helpdesk in the board console: find anyone across centres; a person's page shows their
status (locked and until when, invited, expired), second factors by kind, last sign-in and recent
sign-in failures; unlock, reset the second factor, resend the invite, change the email address,
each by board staff or the helpdesk only with a reason, kept in the audit trail with their own
identity; what the helpdesk may not do is neither offered nor done."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp.accounts import lockout
from idp.admin import errors as admin_errors
from idp.admin import people
from idp.extensions import db
from idp.mfa.models import MfaMethod
from tests.integration.board.conftest import ADMIN, BOARD, EO, HELPDESK, USER, text_of
from tests.support import add_totp, sign_in


def _lock(app, email):
    for _ in range(4):
        sign_in(app.test_client(), email, password="wrong password")


def test_search_across_centres(app, browser_for, people_here):
    helpdesk = browser_for(HELPDESK)
    assert "people found" not in helpdesk.page("/board/people")  # nothing until a search
    page = text_of(helpdesk.page("/board/people?q=lovelace"))
    assert "6 people found" in page
    assert "12345 Ysgol Gyfun" in page and "67890 Other College" in page and "Exam board" in page
    page = text_of(helpdesk.page("/board/people?q=OTHER.example"))
    assert "1 person found" in page and "Oli Lovelace" in page
    assert "0 people found" in text_of(helpdesk.page("/board/people?q=_"))  # LIKE wildcards are literal
    assert helpdesk.get("/board/people?q=" + "z" * 101, status=400)


def test_a_persons_status_second_factors_and_failures(app, browser_for, people_here):
    assert sign_in(app.test_client(), USER).status_code == 303  # a last sign-in
    with app.app_context():
        add_totp(people.account_by_email(USER))
        db.session.commit()
    _lock(app, USER)
    page = text_of(browser_for(HELPDESK).page(f"/board/people/{people_here[USER]}"))
    assert "Locked Locked until" in page and "after too many wrong attempts" in page
    assert "Authenticator app" in page and "Passkey or security key" in page
    assert "Last signed in" in page and "Never" not in page.split("Last signed in")[1][:30]
    assert page.count("Wrong password") == 3 and "Tried while locked" in page
    assert "Unlock the account" in page and "Resend the invite" not in page
    # what the helpdesk cannot do is said, with the policy's reason
    assert "Reset the second factor: Helpdesk accounts cannot reset the MFA of User accounts." in page


def test_unlock_needs_a_reason_and_audits_who_and_why(app, browser_for, people_here, audit_rows):
    _lock(app, USER)
    helpdesk = browser_for(HELPDESK)
    path = f"/board/people/{people_here[USER]}/unlock"
    assert "Reason" in text_of(helpdesk.page(path)) and "(optional)" not in text_of(helpdesk.page(path))
    for reason, message in (("", "Enter the reason for this change"), ("   ", "Enter the reason for this change"),
                            ("x" * 501, "500 characters or fewer"), ("Ticket\x0712", "cannot be used here")):
        refused = helpdesk.submit(path, {"reason": reason}, status=400)
        assert message in text_of(refused.get_data(as_text=True)), reason
        with app.app_context():
            assert lockout.locked_until(USER) is not None  # nothing changed
    done = helpdesk.submit(path, {"reason": "  Ticket 4411: locked out before the results deadline "}, status=303)
    assert done.location.endswith(f"/board/people/{people_here[USER]}")
    with app.app_context():
        assert lockout.locked_until(USER) is None
    row, = audit_rows(event="account.unlocked", outcome="success")
    assert (row.actor, row.subject, row.centre, row.details) == (
        people_here[HELPDESK], people_here[USER], "12345", {"reason": "Ticket 4411: locked out before the results deadline"})
    assert sign_in(app.test_client(), USER).status_code == 303
    # not locked any more: the page is not offered, and says why
    again = helpdesk.get(path, status=409)
    assert "This account is not locked." in text_of(again.get_data(as_text=True))


def test_the_reason_is_required_by_the_services_for_board_and_helpdesk_only(app, people_here):
    with app.app_context():
        for who in (BOARD, HELPDESK):
            actor = people.party_of(people.account_by_email(who))
            with pytest.raises(admin_errors.Invalid) as refused:
                people.unlock(actor, people_here[USER])
            assert refused.value.field == "reason"
            with pytest.raises(admin_errors.Invalid):
                people.unlock(actor, people_here[USER], reason=" \u200b ".strip())
            with pytest.raises(admin_errors.Invalid):
                people.unlock(actor, people_here[USER], reason=["a list"])
        board = people.party_of(people.account_by_email(BOARD))
        for call in (lambda **r: people.reset_mfa(board, people_here[USER], **r),
                     lambda **r: people.change_email(board, people_here[USER], "u2@centre.example", **r)):
            with pytest.raises(admin_errors.Invalid):
                call()
        assert people.account_by_email(USER).email == USER
        assert db.session.query(MfaMethod).filter_by(account_id=people.account_by_email(USER).id).count() == 1
        # centre staff need none; a reason they give is kept all the same
        eo = people.party_of(people.account_by_email(EO))
        people.unlock(eo, people_here[USER])
        people.unlock(eo, people_here[ADMIN], reason="Asked at the office")
        # their own address is not changed here at all, reason or none: only from My account, with a
        # code sent to the new address
        with pytest.raises(admin_errors.Denied):
            people.change_email(board, people_here[BOARD], "bea@board.example", reason="Ticket 9")
        assert people.account_by_email(BOARD).email == BOARD


def test_the_helpdesk_cannot_reset_mfa_or_change_email(app, browser_for, people_here, audit_rows):
    helpdesk = browser_for(HELPDESK)
    for action in ("reset-mfa", "email"):
        refused = helpdesk.get(f"/board/people/{people_here[USER]}/{action}", status=403)
        assert "Helpdesk accounts cannot" in text_of(refused.get_data(as_text=True))
    assert len(audit_rows(event="board.action_opened", outcome="denied", actor=people_here[HELPDESK])) == 2
    with app.app_context():
        actor = people.party_of(people.account_by_email(HELPDESK))
        with pytest.raises(admin_errors.Denied):
            people.reset_mfa(actor, people_here[USER], reason="Lost phone")
        # nor anything to board accounts, or to itself
        with pytest.raises(admin_errors.Denied):
            people.unlock(actor, people_here[BOARD], reason="Because")


def test_reset_mfa_by_board_staff(app, settings, browser_for, people_here, audit_rows):
    user = browser_for(USER)
    board = browser_for(BOARD)
    path = f"/board/people/{people_here[USER]}/reset-mfa"
    page = text_of(board.page(path))
    assert "must set up a new second factor the next time they sign in" in page
    board.submit(path, {"reason": "Ticket 77: new phone"}, status=303)
    with app.app_context():
        assert db.session.query(MfaMethod).filter_by(account_id=people.account_by_email(USER).id).count() == 0
    assert user.http.get("/account").status_code == 302
    row, = audit_rows(event="mfa.reset", outcome="success")
    assert row.actor == people_here[BOARD] and row.details["reason"] == "Ticket 77: new phone"
    step = sign_in(app.test_client(), USER)
    assert step.location.endswith("/signin/mfa/setup")
    assert _mail_to(settings, USER)["Subject"] == "Your sign-in methods have been reset"


def _mail_to(settings, address, timeout=10.0):
    """The email sent to ``address`` (sent in the background after the response: waited for)."""
    import email
    import email.policy
    import time

    deadline = time.monotonic() + timeout
    while True:
        for path in Path(settings.mail_outbox_dir).glob("*.eml"):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == address:
                return message
        assert time.monotonic() < deadline, f"no email to {address}"
        time.sleep(0.05)


def test_resend_invite_and_change_email(app, settings, browser_for, people_here, audit_rows):
    with app.app_context():
        eo = people.party_of(people.account_by_email(EO))
        invited = people.invite(eo, email="invited@centre.example", role="user", centre="12345",
                                fields={"given_name": "In", "family_name": "Vited"}, send=None)
        sub = invited.account.sub
    helpdesk = browser_for(HELPDESK)
    page = text_of(helpdesk.page(f"/board/people/{sub}"))
    assert "Invited" in page and "Resend the invite" in page
    helpdesk.submit(f"/board/people/{sub}/resend", {"reason": "Invite email went to spam"}, status=303)
    mails = list(Path(settings.mail_outbox_dir).glob("*.eml"))
    assert len(mails) == 1
    row, = audit_rows(event="account.invite_resent")
    assert row.actor == people_here[HELPDESK] and row.details == {"reason": "Invite email went to spam"}

    board = browser_for(BOARD)
    path = f"/board/people/{people_here[USER]}/email"
    form_page = board.page(path)
    # someone else changes the person meanwhile: the change is refused in plain words, nothing lost
    with app.app_context():
        people.update_fields(people.operator(), people_here[USER], {"job_role": "Teacher"})
    from tests.integration.board.conftest import csrf_of

    stale = board.http.post(path, data={"csrf_token": csrf_of(form_page), "email": "uma@centre.example",
                                        "reason": "Married name", "version": "1"})
    assert stale.status_code == 400
    assert "Someone else changed this person's account" in text_of(stale.get_data(as_text=True))
    for email, message in (("not-an-address", "right format"), (ADMIN, "already exists"),
                           (USER.upper(), "already this person's email address")):
        refused = board.submit(path, {"email": email, "reason": "r"}, status=400)
        assert message in text_of(refused.get_data(as_text=True)), email
    board.submit(path, {"email": "uma@centre.example", "reason": "Married name, ticket 9"}, status=303)
    with app.app_context():
        assert people.account_by_sub(people_here[USER]).email == "uma@centre.example"
    row, = audit_rows(event="account.email_changed")
    assert row.actor == people_here[BOARD] and row.details["reason"] == "Married name, ticket 9"
