"""A sign-in in progress holds to the credentials it was begun with (journey.Pending.account): a
password reset, a renewed invite, a corrected address or a forgotten remembered device in the
meantime ends it, whatever step it had reached. Else a sign-in begun with a password that no
longer works (an invite that went to a mistyped address, a password its owner has just reset)
could go on to set the account up and get a session."""

from __future__ import annotations

import pyotp

from tests.support import PASSWORD, make_account

NEW = "the owner's brand new passphrase 77"


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
