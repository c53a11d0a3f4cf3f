"""A sign-in in progress holds to the credentials it was begun with (journey.Pending.account): a
password reset, a renewed invite, a corrected address or a forgotten remembered device in the
meantime ends it, whatever step it had reached. Else a sign-in begun with a password that no
longer works (an invite that went to a mistyped address, a password its owner has just reset)
could go on to set the account up and get a session."""

from __future__ import annotations

import threading
import time

import pyotp
import pytest

from idp import journey
from idp.accounts import services as account_services
from idp.extensions import db
from tests.support import PASSWORD, make_account

NEW = "the owner's brand new passphrase 77"
EO = "eo@centre.example"


def _secret_from(html: str) -> str:
    return html.split('<code class="secret">', 1)[1].split("</code>", 1)[0]


def _chooses_a_password(person, csrf: str):
    """Post the new-password form as shown before the change (the page now sends the browser back)."""
    shown = person.get("/signin/new-password")
    assert shown.status_code in (302, 303) and shown.location.endswith("/signin"), shown.location
    return person.http.post("/signin/new-password", data={"password": "a brand new passphrase 42", "csrf_token": csrf})


def _sets_up_an_app(person):
    """Try to finish a sign-in waiting at the second-factor set-up: the response of the last step."""
    page = person.get("/signin/mfa/setup/totp")
    if page.status_code != 200:
        return page
    return person.submit("/signin/mfa/setup/totp",
                         {"code": pyotp.TOTP(_secret_from(page.get_data(as_text=True))).now(), "label": "x"})


def test_a_password_reset_ends_a_sign_in_begun_with_the_old_password(mail_app, smtp, kit, browser):
    victim = "victim@centre.example"
    with mail_app.app_context():
        make_account(victim, role="user", mfa=False)  # no second factor yet: after an MFA reset, say
    attacker = browser(mail_app)
    assert attacker.sign_in(victim, PASSWORD).location.endswith("/signin/mfa/setup")
    owner = browser(mail_app)
    owner.forgot(victim)
    assert owner.reset(kit.reset_code(smtp.take(victim, kit.RESET_SUBJECT)), NEW).status_code == 303
    stopped = _sets_up_an_app(attacker)
    assert stopped.status_code in (302, 303) and stopped.location.endswith("/signin"), stopped.location
    assert not attacker.signed_in()
    with mail_app.app_context():
        from idp.accounts.models import Account
        from idp.extensions import db
        from idp.mfa.models import MfaMethod

        account = db.session.query(Account).filter_by(email_key=victim).one()
        assert db.session.query(MfaMethod).filter_by(account_id=account.id).count() == 0  # nothing added


def test_a_renewed_invite_ends_a_sign_in_begun_with_the_old_temporary_password(mail_app, smtp, kit, browser):
    with mail_app.app_context():
        make_account("eo@centre.example")
    sub = kit.invite(mail_app, "new@centre.example")
    stale = kit.temporary_password(smtp.take("new@centre.example", kit.INVITE_SUBJECT))
    early = browser(mail_app)
    assert early.sign_in("new@centre.example", stale).location.endswith("/signin/new-password")
    csrf = early.csrf("/signin/new-password")
    kit.resend(mail_app, sub)  # "the temporary password sent before no longer works"
    smtp.take("new@centre.example", kit.INVITE_SUBJECT)
    chosen = _chooses_a_password(early, csrf)
    assert chosen.status_code in (302, 303) and chosen.location.endswith("/signin"), chosen.location
    row = kit.account_row(mail_app, "new@centre.example")
    assert row["status"] == "invited" and row["password_is_temporary"] and not row["email_verified"]


def test_a_corrected_address_ends_a_sign_in_begun_at_the_mistyped_one(mail_app, smtp, kit, browser):
    from idp.admin import people
    from idp.extensions import db

    typo, right = "mary@centre.exmaple", "mary@centre.example"
    with mail_app.app_context():
        make_account("eo@centre.example")
    sub = kit.invite(mail_app, typo)
    stale = kit.temporary_password(smtp.take(typo, kit.INVITE_SUBJECT))
    wrong = browser(mail_app)
    assert wrong.sign_in(typo, stale).location.endswith("/signin/new-password")
    csrf = wrong.csrf("/signin/new-password")
    with mail_app.app_context():
        people.change_email(people.party_of(people.account_by_email("eo@centre.example")), sub, right)
        db.session.remove()
    smtp.take(right, kit.INVITE_SUBJECT)
    chosen = _chooses_a_password(wrong, csrf)
    assert chosen.status_code in (302, 303) and chosen.location.endswith("/signin"), chosen.location
    assert kit.account_row(mail_app, right)["status"] == "invited"


def _methods(app, email: str) -> list[str]:
    from sqlalchemy import select

    from idp.accounts.models import Account
    from idp.extensions import db
    from idp.mfa.models import MfaMethod

    with app.app_context():
        account_id = db.session.scalar(select(Account.id).where(Account.email_key == email))
        return sorted(db.session.scalars(select(MfaMethod.kind).where(MfaMethod.account_id == account_id)))


def test_an_mfa_reset_ends_a_sign_in_showing_the_recovery_codes_of_the_factor_it_set_up(mail_app, browser):
    """Someone with the password sets up their own factor; the owner's admin sees it and resets the
    MFA (every way in must end). The sign-in, paused on the recovery codes page, gets no session."""
    from idp.admin import people

    victim = "victim@centre.example"
    with mail_app.app_context():
        sub = make_account(victim, role="user", mfa=False).sub
    attacker = browser(mail_app)
    assert attacker.sign_in(victim, PASSWORD).location.endswith("/signin/mfa/setup")
    assert _sets_up_an_app(attacker).location.endswith("/signin/mfa/recovery-codes")
    csrf = attacker.csrf("/signin/mfa/recovery-codes")
    with mail_app.app_context():
        people.reset_mfa(people.operator(), sub, reason="a factor nobody here set up")
    assert _methods(mail_app, victim) == []

    done = attacker.http.post("/signin/mfa/recovery-codes", data={"action": "done", "csrf_token": csrf})
    assert done.status_code in (302, 303) and done.location.endswith("/signin"), done.location
    assert not attacker.signed_in()
    again = attacker.http.post("/signin/mfa/recovery-codes", data={"action": "done", "csrf_token": csrf})
    assert again.location.endswith("/signin") and not attacker.signed_in()


def test_a_sign_in_begun_with_no_factor_cannot_add_one_once_the_owner_has(mail_app, smtp, browser):
    """After an MFA reset, someone with the password reaches the set-up page; the owner then sets
    up their own factor in another browser. The first sign-in must face the owner's challenge, not
    add a factor of its own."""
    victim = "victim@centre.example"
    with mail_app.app_context():
        make_account(victim, role="user", mfa=False)
    attacker = browser(mail_app)
    assert attacker.sign_in(victim, PASSWORD).location.endswith("/signin/mfa/setup")
    owner = browser(mail_app)
    assert owner.sign_in(victim, PASSWORD).location.endswith("/signin/mfa/setup")
    assert owner.enrol_email_codes(smtp, victim).location.endswith("/account")

    refused = _sets_up_an_app(attacker)
    assert refused.status_code in (302, 303) and refused.location.endswith("/signin"), refused.location
    assert _methods(mail_app, victim) == ["email"]
    assert not attacker.signed_in()
    assert attacker.get("/signin/mfa/setup").location.endswith("/signin")  # that sign-in has ended


@pytest.mark.shared_store
def test_a_password_reset_committing_as_a_sign_in_finishes_leaves_no_session(mail_app, smtp, browser, kit,
                                                                             monkeypatch):
    """Raised by an outside probe: the sign-in's last step checks its credentials, then starts the
    session; a reset committing between the two ended every session there was, not this one, which
    then committed: someone with the old password (and the second factor) kept a session after the
    owner reset it. The step now holds the account's row from that check to its commit: a reset
    at that moment waits, then ends the new session with the others (or, committed first, is seen
    by the check, and the sign-in starts again)."""
    app = mail_app
    with app.app_context():
        make_account(EO)
    owner = browser(app)
    owner.forgot(EO)
    code = kit.reset_code(smtp.take(EO, kit.RESET_SUBJECT))
    start = journey.sessions.start
    reset = {}

    def reset_meanwhile():
        with app.app_context():
            reset["account"] = account_services.reset_password(EO, code, NEW)
            db.session.remove()

    def start_after_a_reset(*args, **kwargs):
        monkeypatch.setattr(journey.sessions, "start", start)
        resetting = threading.Thread(target=reset_meanwhile)
        resetting.start()
        resetting.join(timeout=1.5)  # done, or waiting for this step's commit
        reset["thread"] = resetting
        return start(*args, **kwargs)

    monkeypatch.setattr(journey.sessions, "start", start_after_a_reset)
    intruder = browser(app)
    intruder.sign_in_fully(EO, PASSWORD)
    reset["thread"].join(timeout=30)
    assert reset.get("account") is not None  # the reset happened
    assert kit.live_sessions(app, EO) == []
    assert browser(app).sign_in_fully(EO, NEW).location.endswith("/account")


def test_after_an_mfa_reset_the_next_sign_in_sets_up_a_method_and_finishes(mail_app, smtp, browser, kit):
    """The sign-in holds to the account's last MFA reset (a reset ends the sign-ins in progress),
    and its own set-up of the first method must not end it: the reset's time stays as it was."""
    from idp.admin import people

    app = mail_app
    with app.app_context():
        make_account("board@board.example", role="board", centre=None)
        make_account(EO)
        board = people.party_of(people.account_by_email("board@board.example"))
        people.reset_mfa(board, people.account_by_email(EO).sub, reason="Lost phone")
    person = browser(app)
    assert person.sign_in(EO, PASSWORD).location.endswith("/signin/mfa/setup")
    done = person.enrol_email_codes(smtp, EO)
    assert done.status_code == 303 and done.location.endswith("/account"), (done.status_code, done.location)
    assert len(kit.live_sessions(app, EO)) == 1


def test_after_an_mfa_reset_the_whole_journey_runs_to_its_end_twice(mail_app, smtp, browser, kit):
    """A journey driven from its first page to its last, twice: an MFA reset, the next sign-in
    sets up an authenticator app and reaches My account, signs out; the sign-in after that
    answers the app's challenge and reaches My account again. (A green suite once held a change
    that ended the first of these sign-ins: each step was tested, the journey to its end was not.)"""
    from idp.admin import people

    app = mail_app
    with app.app_context():
        make_account("board@board.example", role="board", centre=None)
        make_account(EO)
        board = people.party_of(people.account_by_email("board@board.example"))
        people.reset_mfa(board, people.account_by_email(EO).sub, reason="Lost phone")
    person = browser(app)
    assert person.sign_in(EO, PASSWORD).location.endswith("/signin/mfa/setup")
    page = person.get("/signin/mfa/setup/totp")
    secret = _secret_from(page.get_data(as_text=True))
    shown = person.submit("/signin/mfa/setup/totp", {"code": pyotp.TOTP(secret).now(), "label": "Phone"})
    assert shown.location.endswith("/signin/mfa/recovery-codes"), shown.location
    done = person.submit("/signin/mfa/recovery-codes", {"action": "done"})
    assert done.status_code == 303 and done.location.endswith("/account"), done.location
    assert person.signed_in()
    person.sign_out()
    assert not person.signed_in()

    again = browser(app)
    assert again.sign_in(EO, PASSWORD).location.endswith("/signin/mfa")
    page = again.get("/signin/mfa").get_data(as_text=True)
    method_id = page.split('name="method_id" value="', 1)[1].split('"', 1)[0]
    # the step the set-up spent is spent: the app's next one answers
    code = pyotp.TOTP(secret).at(int(time.time()) + 30)
    answered = again.http.post("/signin/mfa", data={"csrf_token": kit.csrf_of(page), "kind": "totp",
                                                    "method_id": method_id, "code": code})
    assert answered.status_code == 303 and answered.location.endswith("/account"), answered.location
    assert again.signed_in()
