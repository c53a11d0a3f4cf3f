"""Disabling an account stops it signing in without deleting it, and enabling gives it back as it
was. Attacked as a person would try it: the disabled person with the right password (told, no
session), a stranger with a wrong one (told nothing more than for any account), tokens issued
before (dead at once), people who may not (another centre's Exams Officer, an admin against the
Exams Officer, someone on their own account, the helpdesk) and two enables racing for a centre's
last admin place."""

from __future__ import annotations

import threading

import pytest

from idp.admin import errors, people
from idp.extensions import db
from tests.integration.console.conftest import ADMIN, BOARD, EO, HOME, OTHER_EO, USER
from tests.support import PASSWORD, code_flow, make_account, make_client, token_request

DISABLED_MESSAGE = "Your account has been disabled. Contact your Exams Officer or the exam board."


def _party(app, email):
    with app.app_context():
        return people.party_of(people.account_by_email(email))


def test_an_exams_officer_disables_and_enables_a_user_from_the_console(mail_app, signed_in, browser, staff, pages,
                                                                       kit):
    grace = signed_in(USER)
    eo = signed_in(EO)
    user = staff.sub[USER]
    person_page = eo.get(f"/users/{user}")
    assert "Disable account" in pages.text(person_page)
    confirm = eo.get(f"/users/{user}/disable")
    assert "they are signed out everywhere, at once" in pages.text(confirm)
    done = pages.post(eo, f"/users/{user}/disable", {}, page=confirm)
    assert done.status_code == 303 and done.location.endswith(f"/users/{user}")
    shown = eo.get(done.location)
    assert pages.messages(shown) == [("Grace Hopper's account is disabled: they have been signed out everywhere "
                                      "and cannot sign in until it is enabled again.")]
    assert "Disabled" in pages.text(shown) and "Enable account" in pages.text(shown)
    assert not grace.signed_in()
    assert pages.row(mail_app, USER).status == "disabled"
    # with the right password they are told; with a wrong one, nothing that tells the account apart
    again = browser(mail_app)
    told = again.sign_in(USER, PASSWORD)
    assert told.status_code == 400 and DISABLED_MESSAGE in pages.text(told)
    assert not again.signed_in()
    wrong = browser(mail_app).sign_in(USER, "not the password")
    assert wrong.status_code == 400 and "The email address or password is incorrect." in pages.text(wrong)
    assert "disabled" not in pages.text(wrong).lower()
    # enabled: back as they were
    enabled = pages.post(eo, f"/users/{user}/enable", {})
    assert enabled.status_code == 303
    assert browser(mail_app).sign_in_fully(USER, PASSWORD).status_code == 303
    events = [(e.event, e.details.get("after")) for e in kit.audit_events(mail_app)
              if e.event in ("account.disabled", "account.enabled")]
    assert events == [("account.disabled", {"status": "disabled"}), ("account.enabled", {"status": "active"})]


def test_tokens_issued_before_stop_working_at_once(mail_app, staff):
    with mail_app.app_context():
        rp = make_client(grant_types=["authorization_code", "refresh_token"], scope="openid profile offline_access")
    http = mail_app.test_client()
    issued = code_flow(http, rp, scope="openid profile offline_access", email=USER)
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    assert http.get("/userinfo", headers=bearer).status_code == 200
    with mail_app.app_context():
        people.disable(_party(mail_app, EO), staff.sub[USER])
    assert http.get("/userinfo", headers=bearer).status_code == 401
    refreshed = token_request(http, rp, {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("actor, target, why", [
    (USER, ADMIN, "User accounts cannot disable or enable Admin accounts."),
    (ADMIN, EO, "Admin accounts cannot disable or enable Exams Officer accounts."),
    (OTHER_EO, USER, "You can only manage accounts at your own centre."),
    (EO, EO, "You cannot disable or enable your own account."),
])
def test_who_may_not(mail_app, staff, actor, target, why, kit):
    with mail_app.app_context():
        with pytest.raises(errors.Denied) as refused:
            people.disable(_party(mail_app, actor), staff.sub[target])
        assert str(refused.value.message) == why
    assert [e.outcome for e in kit.audit_events(mail_app, "account.disabled")] == ["denied"]


def test_the_helpdesk_may_not_and_board_staff_must_give_a_reason(mail_app, staff):
    with mail_app.app_context():
        make_account("help@board.example", role="helpdesk", centre=None)
        helpdesk = people.party_of(people.account_by_email("help@board.example"))
        with pytest.raises(errors.Denied):
            people.disable(helpdesk, staff.sub[USER], reason="ticket 12")
        board = _party(mail_app, BOARD)
        with pytest.raises(errors.Invalid):
            people.disable(board, staff.sub[EO])
        people.disable(board, staff.sub[EO], reason="ticket 12: the school reported a stolen laptop")
        assert people.account_by_email(EO).status == "disabled"
        with pytest.raises(errors.Conflict):  # twice: nothing to do
            people.disable(board, staff.sub[EO], reason="again")


def test_the_board_helpdesk_page_disables_with_a_reason(mail_app, signed_in, staff, pages, kit):
    board = signed_in(BOARD)
    user = staff.sub[USER]
    assert "Disable the account" in pages.text(board.get(f"/board/people/{user}"))
    empty = pages.post(board, f"/board/people/{user}/disable", {"reason": ""})
    assert empty.status_code == 400 and "Enter the reason" in pages.text(empty)
    done = pages.post(board, f"/board/people/{user}/disable", {"reason": "Ticket 42"})
    assert done.status_code == 303
    assert "Enable the account" in pages.text(board.get(f"/board/people/{user}"))
    assert [e.details.get("reason") for e in kit.audit_events(mail_app, "account.disabled")] == ["Ticket 42"]


def test_enabling_cannot_take_a_centre_past_its_limit_even_twice_at_once(mail_app, staff):
    """The centre has 3 admin places. Two admins are disabled (their places are free), two more
    invited; then both disabled ones are enabled at the same moment: one gets the last place."""
    eo = _party(mail_app, EO)
    with mail_app.app_context():
        for n in (2, 3):
            make_account(f"admin{n}@centre.example", role="admin", centre=HOME)
        first, second = (people.account_by_email(e).sub for e in ("admin2@centre.example", "admin3@centre.example"))
        people.disable(eo, first)
        people.disable(eo, second)
        make_account("admin4@centre.example", role="admin", centre=HOME)  # 2 of 3 places taken now
    outcomes = []
    start = threading.Barrier(2)

    def enable(sub):
        with mail_app.app_context():
            start.wait()
            try:
                people.enable(eo, sub)
                outcomes.append("enabled")
            except errors.Denied as exc:
                outcomes.append(str(exc.message))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=enable, args=(sub,)) for sub in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["A centre can have at most 3 Admin accounts (invited ones count).", "enabled"]


def test_the_admin_api_disables_and_enables(mail_app, staff):
    from tests.support import ADMIN_API_SCOPE, make_admin_client

    with mail_app.app_context():
        rp = make_admin_client()
    http = mail_app.test_client()
    token = code_flow(http, rp, scope=ADMIN_API_SCOPE, email=EO)["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    user = staff.sub[USER]
    answer = http.post(f"/api/v1/accounts/{user}/disable", headers=bearer)
    assert answer.status_code == 200 and answer.get_json()["status"] == "disabled"
    assert answer.get_json()["state"] == "disabled"
    assert http.post(f"/api/v1/accounts/{user}/disable", headers=bearer).status_code == 409
    answer = http.post(f"/api/v1/accounts/{user}/enable", headers=bearer)
    assert answer.status_code == 200 and answer.get_json()["status"] == "active"


def test_ten_disables_at_once_disable_once(mail_app, staff, kit):
    eo, user = _party(mail_app, EO), staff.sub[USER]
    start, outcomes = threading.Barrier(10), []

    def disable():
        with mail_app.app_context():
            start.wait()
            try:
                people.disable(eo, user)
                outcomes.append("disabled")
            except errors.Conflict:
                outcomes.append("conflict")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=disable) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["conflict"] * 9 + ["disabled"]
    assert [e.outcome for e in kit.audit_events(mail_app, "account.disabled")] == ["success"]
