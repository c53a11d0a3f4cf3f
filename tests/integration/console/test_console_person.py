"""A person's page and what can be done to them from it: change their email address (the new one is
the username at once, both are told, they are signed out everywhere), manage their access and their
account type with the version the page showed (two people editing the same person: the second is
told, nothing is lost), resend an invite (an expired one too), unlock, reset the second factor and
remove them (each after a confirmation page), with the result in a banner on the next page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from idp.accounts.models import Account
from idp.admin import people
from idp.clock import utcnow
from idp.extensions import db
from idp.mfa.models import MfaMethod
from tests.integration.console.conftest import ADMIN, BOARD, EO, USER
from tests.support import PASSWORD, make_account, second_factor_long_ago

CHANGED_EMAIL = "Your sign-in email address has been changed"


def _profiles(app, email):
    with app.app_context():
        return sorted(people.party_of(people.account_by_email(email)).profiles)


def test_the_change_email_page(mail_app, signed_in, smtp, kit, staff, pages):
    grace = signed_in(USER)  # the person, signed in elsewhere
    eo = signed_in(EO)
    user = staff.sub[USER]
    form = eo.get(f"/users/{user}/email")
    words = pages.text(form)
    assert "the new address is their username straight away" in words
    assert "we email both the old and the new address" in words
    assert "they are signed out everywhere" in words
    changed = pages.post(eo, f"/users/{user}/email", {"email": " Grace.New@Centre.example "}, page=form)
    assert changed.status_code == 303 and changed.location.endswith(f"/users/{user}")
    banner = pages.messages(eo.get(changed.location))
    assert banner == [("user@centre.example is now Grace.New@Centre.example. Both addresses have been emailed, "
                       "and Grace Hopper has been signed out everywhere: they sign in with the new address.")]
    assert "Grace.New@Centre.example" in smtp.take(USER, CHANGED_EMAIL).text
    assert "now the one you sign in" in smtp.take("grace.new@centre.example", CHANGED_EMAIL).text
    assert not grace.signed_in()
    assert pages.row(mail_app, "grace.new@centre.example").email_verified is False  # the EO typed it
    assert kit.live_sessions(mail_app, "grace.new@centre.example") == []
    # the old address no longer signs in; the new one does
    again = eo.__class__(mail_app)
    assert again.sign_in(USER, PASSWORD).status_code == 400
    assert again.sign_in("grace.new@centre.example", PASSWORD).status_code == 303
    assert [e.details["after"]["email"] for e in kit.audit_events(mail_app, "account.email_changed")] == \
        ["Grace.New@Centre.example"]


def test_correcting_an_invited_persons_address_sends_a_new_invite(mail_app, signed_in, smtp, kit, pages):
    """An invite that went to a mistyped address: correcting it sends a new invite to the right
    one, and the temporary password the wrong mailbox got no longer signs in (else whoever reads
    it could set the account up, with all it was given). The wrong mailbox is told nothing."""
    typo = "mary.somerville@centre.exmaple"
    eo = signed_in(EO)
    pages.post(eo, "/users/invite", {"title": "Dr", "given_name": "Mary", "family_name": "Somerville", "email": typo,
                                     "job_role": "", "language": "en", "role": "user"})
    pages.post(eo, "/users/invite/access", {"profiles": ["resources"]})
    pages.post(eo, "/users/invite/check", {})
    stale = kit.temporary_password(smtp.take(typo, kit.INVITE_SUBJECT))
    sub = pages.row(mail_app, typo).sub
    form = eo.get(f"/users/{sub}/email")
    assert "we send a new invite to the new address" in pages.text(form)
    changed = pages.post(eo, f"/users/{sub}/email", {"email": "mary.somerville@centre.example"}, page=form)
    assert changed.status_code == 303
    assert pages.messages(eo.get(changed.location)) == [
        f"{typo} is now mary.somerville@centre.example. A new invite has been sent to the new address; "
        "the temporary password sent before no longer works."]
    fresh = kit.temporary_password(smtp.take("mary.somerville@centre.example", kit.INVITE_SUBJECT))
    assert fresh != stale
    smtp.assert_none(to=typo)
    assert eo.__class__(mail_app).sign_in("mary.somerville@centre.example", stale).status_code == 400
    started = eo.__class__(mail_app).sign_in("mary.somerville@centre.example", fresh)
    assert started.status_code == 303 and started.location.endswith("/signin/new-password")
    assert [e.event for e in kit.audit_events(mail_app, subject=sub) if e.event.startswith("account.")] == \
        ["account.invited", "account.email_changed", "account.invite_resent"]


def test_an_invite_that_cannot_be_sent_to_the_corrected_address_changes_nothing(mail_app, signed_in, smtp, kit,
                                                                                  pages):
    """The mail server refuses the new invite: the Exams Officer's console and board staff's page
    each say so and nothing has changed (the address, the temporary password sent before)."""
    typo = "mary@centre.exmaple"
    eo = signed_in(EO)
    pages.post(eo, "/users/invite", {"given_name": "Mary", "family_name": "Somerville", "email": typo,
                                     "language": "en", "role": "user"})
    pages.post(eo, "/users/invite/access", {"profiles": ["resources"]})
    pages.post(eo, "/users/invite/check", {})
    smtp.take(typo, kit.INVITE_SUBJECT)
    sub = pages.row(mail_app, typo).sub
    board = signed_in(BOARD)
    console_form, board_form = eo.get(f"/users/{sub}/email"), board.get(f"/board/people/{sub}/email")
    smtp.refuse_rcpt = "550 no such mailbox"
    try:
        refused = pages.post(eo, f"/users/{sub}/email", {"email": "mary@centre.example"}, page=console_form)
        assert refused.status_code == 503
        assert "The new invite could not be sent, so nothing has changed" in pages.text(refused)
        refused = pages.post(board, f"/board/people/{sub}/email", {"email": "mary@centre.example",
                                                                   "reason": "ticket 1"}, page=board_form)
        assert refused.status_code == 400 and "The invite could not be emailed" in pages.text(refused), pages.text(refused)[:600]
    finally:
        smtp.refuse_rcpt = None
    assert pages.row(mail_app, typo).version == 1 and pages.row(mail_app, "mary@centre.example") is None


def test_change_email_refusals(mail_app, signed_in, smtp, staff, pages):
    eo = signed_in(EO)
    user = staff.sub[USER]
    path = f"/users/{user}/email"
    for email, message in (("", "Enter the new email address"),
                           ("nope", "Enter an email address in the right format, like name@example.com"),
                           (ADMIN.upper(), "An account with this email address already exists."),
                           (USER, "That is already this person's email address."),
                           ("x@y.example\r\nBcc: z@y.example", "This contains characters that cannot be used here"),
                           ("a" * 300 + "@centre.example", "Email address is too long"),
                           # looks like the Exams Officer's address in every list: full-width letters
                           ("\uff45\uff4f@centre.example", "Use only English letters"),
                           ("jos\u00e9@centre.example", "Use only English letters"),
                           # a display name or a list would reach another mailbox, or several
                           ("Head.Of.Centre<me@evil.example>", "Enter an email address in the right format"),
                           ("postmaster,me@evil.example", "Enter an email address in the right format")):
        refused = pages.post(eo, path, {"email": email})
        assert refused.status_code in (400, 409), (email, refused.status_code)
        assert any(m.startswith(message) for m in pages.messages(refused)), (email, pages.messages(refused))
        assert 'href="#email"' in refused.get_data(as_text=True)
    assert pages.row(mail_app, USER).version == 1
    # your own address is changed from My account, where a code proves the new one is yours
    own = eo.get(f"/users/{staff.sub[EO]}/email")
    assert own.status_code == 403 and "Change your own email address from My account." in pages.text(own)
    smtp.assert_none(subject=CHANGED_EMAIL)


def test_two_people_editing_the_same_person_lose_nothing(mail_app, signed_in, staff, pages):
    eo, admin = signed_in(EO), signed_in(ADMIN)
    user = staff.sub[USER]
    path = f"/users/{user}/access"
    shown_to_eo, shown_to_admin = eo.get(path), admin.get(path)
    assert pages.hidden(shown_to_eo, "version") == pages.hidden(shown_to_admin, "version") == "1"
    first = pages.post(eo, path, {"profiles": ["resources", "scripts.view"]}, page=shown_to_eo)
    assert first.status_code == 303
    second = pages.post(admin, path, {"profiles": ["resources", "iamis"]}, page=shown_to_admin)
    assert second.status_code == 409
    assert pages.messages(second) == [("Someone else changed this person's account while you were looking "
                                       "at it. Check what it says now and make your change again.")]
    # nothing lost: the first change stands, and the page now shows it (with the new version)
    assert _profiles(mail_app, USER) == ["resources", "scripts.view"]
    ticks = pages.form_values(second, "profiles")
    assert ticks["scripts.view"][0] and not ticks["iamis"][0]
    assert pages.hidden(second, "version") == "2"
    # the second person makes their change again, on what is there now
    again = pages.post(admin, path, {"profiles": ["resources", "scripts.view", "iamis"]}, page=second)
    assert again.status_code == 303
    assert _profiles(mail_app, USER) == ["iamis", "resources", "scripts.view"]
    # the same for the account type and the email address
    type_form, email_form = admin.get(f"/users/{user}/type"), admin.get(f"/users/{user}/email")
    assert pages.post(eo, f"/users/{user}/email", {"email": "hopper@centre.example"}).status_code == 303
    late = pages.post(admin, f"/users/{user}/type", {"role": "admin"}, page=type_form)
    assert late.status_code == 409 and pages.row(mail_app, "hopper@centre.example").role == "user"
    late = pages.post(admin, f"/users/{user}/email", {"email": "grace@centre.example"}, page=email_form)
    assert late.status_code == 409 and pages.row(mail_app, "hopper@centre.example") is not None
    # a version that is missing or not a number is out of date: nothing changes
    for version in ("1; drop table", "", "-1", "9" * 40):
        odd = pages.post(admin, path, {"profiles": ["resources"], "version": version})
        assert odd.status_code == 409, version
        assert "This page was out of date. Check what it shows now and try again." in pages.messages(odd)
        assert _profiles(mail_app, "hopper@centre.example") == ["iamis", "resources", "scripts.view"]


def test_changing_the_account_type(mail_app, signed_in, staff, pages):
    eo = signed_in(EO)
    admin = staff.sub[ADMIN]
    path = f"/users/{admin}/type"
    # an admin made a user loses what users cannot have: the page says what, and asks first
    asked = pages.post(eo, path, {"role": "user"})
    assert asked.status_code == 200
    words = pages.text(asked)
    assert "User accounts cannot have this access, so it will be taken away:" in words
    assert "A2C access keys" in words and "Make entries" in words
    assert pages.row(mail_app, ADMIN).role == "admin"
    done = pages.post(eo, path, {"role": "user", "confirmed": "1"}, page=asked)
    assert done.status_code == 303
    assert "Alan Turing is now User." in pages.messages(eo.get(done.location))
    assert pages.row(mail_app, ADMIN).role == "user"
    assert "a2c_keys" not in _profiles(mail_app, ADMIN)
    # and back: nothing to take away, no question
    assert pages.post(eo, path, {"role": "admin"}).status_code == 303
    assert pages.row(mail_app, ADMIN).role == "admin"
    same = pages.post(eo, path, {"role": "admin"})
    assert same.status_code == 400
    assert pages.messages(same) == ["They are already this type of account. Choose another type, or cancel."]
    for role in ("board", "", "nonsense", "x" * 10_000):
        refused = pages.post(eo, path, {"role": role})
        assert refused.status_code == 400 and pages.messages(refused)[0].startswith("Choose the type of account")
    refused = pages.post(eo, path, {"role": "eo"})  # offered (disabled), and refused with the policy's reason
    assert refused.status_code == 403 and pages.messages(refused) == ["You cannot change an account's type to Exams Officer."]
    assert pages.row(mail_app, ADMIN).role == "admin"


def test_a_type_change_cannot_take_away_what_the_changer_does_not_hold(mail_app, signed_in, staff, pages):
    """An admin without A2C keys may not remove them from another admin, so may not make that admin
    a User either (which would take them away): offered disabled with the reason, and refused."""
    with mail_app.app_context():
        eo = people.party_of(people.account_by_email(EO))
        target = make_account("second@centre.example", role="admin", centre="12345", given_name="Second",
                              family_name="Admin").sub
        people.set_profiles(eo, staff.sub[ADMIN], set(_profiles(mail_app, ADMIN)) - {"a2c_keys"})
    admin = signed_in(ADMIN)
    path = f"/users/{target}/type"
    why = ("Changing the type to User would remove 'A2C access keys', which you cannot remove because you do "
           "not have it yourself.")
    assert why in pages.text(admin.get(path))
    refused = pages.post(admin, path, {"role": "user", "confirmed": "1"})
    assert refused.status_code == 403 and pages.messages(refused) == [why]
    assert pages.row(mail_app, "second@centre.example").role == "admin"
    assert "a2c_keys" in _profiles(mail_app, "second@centre.example")


def test_resend_unlock_reset_and_remove(mail_app, signed_in, smtp, kit, staff, pages):
    eo = signed_in(EO)
    # an expired invite: the page says so and a new one can be sent
    sub = kit.invite(mail_app, "late@centre.example", given_name="Laura", family_name="Late")
    first = smtp.take("late@centre.example", kit.INVITE_SUBJECT)
    with mail_app.app_context():
        db.session.query(Account).filter_by(sub=sub).update({"invite_expires_at": utcnow() - timedelta(days=1)})
        db.session.commit()
    page = eo.get(f"/users/{sub}")
    assert "Invite expired" in pages.text(page) and "The invite expired on" in pages.text(page)
    sent = pages.post(eo, f"/users/{sub}/resend", {}, page=page)
    assert sent.status_code == 303
    assert pages.messages(eo.get(sent.location))[0].startswith("A new invite has been sent to late@centre.example.")
    second = smtp.take("late@centre.example", kit.INVITE_SUBJECT)
    assert kit.temporary_password(second) != kit.temporary_password(first)
    assert "Invited" in pages.text(eo.get(f"/users/{sub}"))
    # someone who has accepted their invite gets none
    user = staff.sub[USER]
    refused = pages.post(eo, f"/users/{user}/resend", {}, page=eo.get(f"/users/{user}/remove"))
    assert refused.status_code == 409 and "already accepted their invite" in pages.text(refused)

    # locked: the page says until when, and unlocks
    locker = eo.__class__(mail_app)
    for _ in range(3):
        locker.sign_in(USER, "wrong password")
    page = eo.get(f"/users/{user}")
    assert "Locked until" in pages.text(page)
    unlocked = pages.post(eo, f"/users/{user}/unlock", {}, page=page)
    assert unlocked.status_code == 303
    assert "Grace Hopper's account is unlocked: they can sign in now." in pages.messages(eo.get(unlocked.location))
    assert kit.lock_state(mail_app, USER)["locked_until"] is None

    # second factor: a confirmation page first; then every method goes and they are emailed
    confirm = eo.get(f"/users/{user}/reset-mfa")
    assert "This cannot be undone." in pages.text(confirm)
    assert "govuk-button--warning" in confirm.get_data(as_text=True)
    reset = pages.post(eo, f"/users/{user}/reset-mfa", {}, page=confirm)
    assert reset.status_code == 303
    smtp.take(USER, "Your sign-in methods have been reset")
    with mail_app.app_context():
        assert db.session.query(MfaMethod).join(Account).filter(Account.sub == user).count() == 0
    assert "Second factor not set up" in pages.text(eo.get(f"/users/{user}"))

    # remove: a confirmation page; then they are gone, and the list says so
    confirm = eo.get(f"/users/{user}/remove")
    assert "This cannot be undone." in pages.text(confirm)
    assert eo.http.post(f"/users/{user}/remove", data={}).status_code == 400  # no CSRF token: nothing done
    assert pages.row(mail_app, USER) is not None
    removed = pages.post(eo, f"/users/{user}/remove", {}, page=confirm)
    assert removed.status_code == 303 and removed.location.endswith("/users")
    assert "Grace Hopper's account has been removed." in pages.messages(eo.get("/users"))
    assert pages.row(mail_app, USER) is None
    assert eo.get(f"/users/{user}").status_code == 404
    # and what happened reads as sentences on the centre's activity
    activity = pages.text(eo.get("/users/activity"))
    for sentence in ("Ada Lovelace removed the account of user@centre.example.",
                     "Ada Lovelace reset an account since removed's second factor",
                     "Ada Lovelace unlocked an account since removed's account.",
                     "an account since removed's account was locked after too many wrong passwords.",
                     "Ada Lovelace sent Laura Late a new invite.",
                     "Ada Lovelace invited Laura Late (account type: User)."):
        assert sentence in activity, sentence
    assert "account.deleted" not in activity and "mfa.reset" not in activity


def test_board_staff_do_helpdesk_actions_with_a_reason(mail_app, signed_in, kit, staff, pages):
    """Board staff's unlock, resend, second-factor reset and email change are audited with a reason,
    so the console sends them to the board's helpdesk page for each (which asks for it); nothing is
    done by the console's own forms on their behalf, whatever they post."""
    board = signed_in(BOARD)
    user = staff.sub[USER]
    page = board.get(f"/users/{user}")
    words = page.get_data(as_text=True)
    assert f'href="/board/people/{user}/reset-mfa"' in words and f'href="/board/people/{user}/email"' in words
    assert f'action="/users/{user}/unlock"' not in words  # no reason-less button
    with_token = board.get(f"/board/people/{user}/reset-mfa")
    for action in ("reset-mfa", "email"):
        sent = pages.post(board, f"/users/{user}/{action}", {"email": "x@centre.example"}, page=with_token)
        assert sent.status_code == 303 and sent.location.endswith(f"/board/people/{user}/{action}"), action
    locker = board.__class__(mail_app)
    for _ in range(3):
        locker.sign_in(USER, "wrong password")
    sent = pages.post(board, f"/users/{user}/unlock", {}, page=with_token)
    assert sent.status_code == 303 and sent.location.endswith(f"/board/people/{user}/unlock")
    assert kit.lock_state(mail_app, USER)["locked_until"] is not None  # still locked: no reason, no unlock
    assert pages.row(mail_app, USER).email == USER  # nothing changed
    # an Exams Officer gives no reason: the console's own pages
    eo = signed_in(EO)
    assert 'href="/board/' not in eo.get(f"/users/{user}").get_data(as_text=True)


def test_the_header_links_board_staff_to_the_board_console(mail_app, signed_in, staff, pages):
    board_page = signed_in(BOARD).get("/account").get_data(as_text=True)
    assert re.search(r'href="/board"[^>]*>\s*Board console\s*<', board_page)
    for someone in (EO, USER):
        assert 'href="/board"' not in signed_in(someone).get("/account").get_data(as_text=True), someone


@pytest.mark.parametrize("who, path, data", [
    (EO, "/users/{sub}/email", {"email": "sitter@centre.example"}),
    (EO, "/users/{sub}/reset-mfa", {}),
    (BOARD, "/board/people/{sub}/email", {"email": "sitter@centre.example", "reason": "ticket 7"}),
    (BOARD, "/board/people/{sub}/reset-mfa", {"reason": "ticket 7"}),
])
def test_handing_someone_over_needs_a_recent_second_factor(mail_app, signed_in, staff, pages, who, path, data):
    """Changing someone's address or removing their second factors lets whoever reads the new
    address, or signs in next, be them: from a browser left signed in (no second factor passed in
    [mfa] fresh_seconds) the page asks for one first, a form posted from before changes nothing,
    and once it is passed the page is back and the change goes through."""
    from tests.support import pass_passkey_challenge

    staffer = signed_in(who)
    path = path.format(sub=staff.sub[ADMIN])
    shown = staffer.get(path)
    assert shown.status_code == 200
    second_factor_long_ago(mail_app, who)
    asked = staffer.get(path)
    assert asked.status_code == 303 and asked.location.endswith(f"/account/mfa/verify?next={path}")
    posted = pages.post(staffer, path, data, page=shown)
    assert posted.status_code == 303 and "/account/mfa/verify" in posted.location
    assert pages.row(mail_app, ADMIN) is not None and pages.row(mail_app, ADMIN).version == 1  # nothing changed
    passed = pass_passkey_challenge(staffer.http, who, f"/account/mfa/verify?next={path}")
    assert passed.status_code == 303 and passed.location.endswith(path)
    done = pages.post(staffer, path, data)
    assert done.status_code == 303, pages.text(done)[:500]


@pytest.mark.parametrize("path, data, newcomer", [
    ("/board/centres/12345/exams-officer/replace", {"email": "outsider@centre.example", "given_name": "Out",
                                                    "family_name": "Sider", "language": "en", "keep_as": ""},
     "outsider@centre.example"),
    ("/board/staff/invite", {"email": "outsider@board.example", "given_name": "Out", "family_name": "Two",
                             "role": "board"}, "outsider@board.example"),
])
def test_bringing_in_someone_who_may_act_on_others_needs_a_recent_second_factor(mail_app, signed_in, staff, pages,
                                                                                 smtp, path, data, newcomer):
    """Replacing a centre's Exams Officer, or inviting board staff, hands that power to whoever
    reads the invite: from a board member's browser left signed in, nothing happens until a second
    factor is passed again."""
    board = signed_in(BOARD)
    shown = board.get(path)
    second_factor_long_ago(mail_app, BOARD)
    asked = board.get(path)  # before anything is typed in
    assert asked.status_code == 303 and asked.location.endswith(f"/account/mfa/verify?next={path}")
    posted = pages.post(board, path, data, page=shown)
    assert posted.status_code == 303 and "/account/mfa/verify" in posted.location, posted.status_code
    assert pages.row(mail_app, newcomer) is None and pages.row(mail_app, EO) is not None
    smtp.assert_none(to=newcomer)


def test_making_someone_able_to_act_on_others_needs_a_recent_second_factor(mail_app, signed_in, staff, pages):
    """Inviting an admin asks for a recent second factor; inviting a user and then changing them to
    an admin, or giving an admin 'Manage user accounts', would hand the same power to whoever
    reads the invite, so each asks for it too, and changes nothing until it is passed."""
    with mail_app.app_context():
        make_account("plain.admin@centre.example", role="admin", centre="12345", profiles=["resources"])
    plain = pages.row(mail_app, "plain.admin@centre.example").sub
    eo = signed_in(EO)
    type_page, access_page = eo.get(f"/users/{staff.sub[USER]}/type"), eo.get(f"/users/{plain}/access")
    second_factor_long_ago(mail_app, EO)
    promoted = pages.post(eo, f"/users/{staff.sub[USER]}/type", {"role": "admin", "confirmed": "1"}, page=type_page)
    assert promoted.status_code == 303 and "/account/mfa/verify" in promoted.location, promoted.status_code
    granted = pages.post(eo, f"/users/{plain}/access", {"profiles": ["resources", "users.manage"]}, page=access_page)
    assert granted.status_code == 303 and "/account/mfa/verify" in granted.location, granted.status_code
    assert pages.row(mail_app, USER).role == "user"
    assert _profiles(mail_app, "plain.admin@centre.example") == ["resources"]
    # what gives no power over others goes on as before
    kept = pages.post(eo, f"/users/{plain}/access", {"profiles": ["resources", "results.view"]}, page=access_page)
    assert kept.status_code == 303 and kept.location.endswith(f"/users/{plain}"), kept.location
