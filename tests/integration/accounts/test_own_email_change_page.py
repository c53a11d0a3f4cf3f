"""My account's "Change your email address": the new address, a code sent to it, the code; the page
says what will happen, and it does (the new address is the username at once, other sessions end)."""

from __future__ import annotations

import re

from idp.admin import people
from tests.support import PASSWORD, make_account, second_factor_long_ago

USER, OTHER = "user@centre.example", "someone@centre.example"
NEW = "Me.Elsewhere@school.example"


def _code(smtp, to: str) -> str:
    return re.search(r"Your code is: (\d+)", smtp.take(to, "Confirm your new").text).group(1)


def test_changing_my_address_with_the_code_sent_to_it(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(USER, role="user")
    person, elsewhere = browser(app), browser(app)
    for b in (person, elsewhere):
        assert b.sign_in_fully(USER, PASSWORD).location.endswith("/account")
    assert 'href="/account/email"' in person.get("/account").get_data(as_text=True)

    form = person.get("/account/email").get_data(as_text=True)
    assert f"You sign in with {USER}" in form and "signed out on your other devices" in form
    # a code page without a code asked for leads back to the form
    assert person.get("/account/email/code").location.endswith("/account/email")
    for bad, told in (("", "Enter your new email address"), ("not an address", "in the right format"),
                      (USER.upper(), "already your email address")):
        refused = person.submit("/account/email", {"email": bad})
        assert refused.status_code == 400 and told in " ".join(kit.messages(refused)), bad

    asked = person.submit("/account/email", {"email": NEW})
    assert asked.status_code == 303 and asked.location.endswith("/account/email/code")
    code = _code(smtp, NEW)
    page = person.get("/account/email/code").get_data(as_text=True)
    assert f"We have sent a code to {NEW}" in page and "straight away" in page
    assert "Waiting for the code sent to" in person.get("/account").get_data(as_text=True)

    wrong = person.submit("/account/email/code", {"code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 400 and 'href="#code"' in wrong.get_data(as_text=True)
    assert person.submit("/account/email/code", {"code": "12ab"}).status_code == 400

    done = person.submit("/account/email/code", {"code": code})
    assert done.status_code == 303 and done.location.endswith("/account")
    told = person.get("/account")
    assert f"Your email address is now {NEW}" in " ".join(kit.messages(told))
    assert person.signed_in() and not elsewhere.signed_in()  # this session stays, the others end
    assert kit.account_row(app, NEW)["email"] == NEW and kit.account_row(app, USER) is None
    assert kit.account_row(app, NEW)["email_verified"] is True  # the code was read there
    smtp.take(USER, "has been changed")
    smtp.take(NEW.lower(), "has been changed")
    # the new address signs in at once
    step = browser(app).sign_in(NEW, PASSWORD)
    assert step.status_code == 303 and step.location.endswith("/signin/mfa")


def test_an_address_someone_else_has_gets_the_same_answer_and_no_code(mail_app, smtp, browser):
    app = mail_app
    with app.app_context():
        make_account(USER, role="user")
        make_account(OTHER, role="user")
    person = browser(app)
    person.sign_in_fully(USER, PASSWORD)
    asked = person.submit("/account/email", {"email": OTHER})
    assert asked.status_code == 303 and asked.location.endswith("/account/email/code")
    smtp.assert_none(OTHER, "Confirm your new", wait=0.5)
    assert f"We have sent a code to {OTHER}" in person.get("/account/email/code").get_data(as_text=True)


def test_guessing_the_code_runs_out(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(USER, role="user")
    person = browser(app)
    person.sign_in_fully(USER, PASSWORD)
    person.submit("/account/email", {"email": NEW})
    code = _code(smtp, NEW)
    wrong = "000000" if code != "000000" else "111111"
    said = []
    for _ in range(12):
        said += kit.messages(person.submit("/account/email/code", {"code": wrong}))
    assert any("Too many wrong codes" in m for m in said)
    # the right code is no use once the budget is spent
    assert person.submit("/account/email/code", {"code": code}).status_code == 400
    with app.app_context():
        assert people.account_by_email(USER).email == USER


def test_a_browser_left_signed_in_cannot_move_the_address_without_a_second_factor(mail_app, smtp, browser, kit):
    """The address is where a forgotten password's code goes: whoever sits at a browser someone left
    signed in could otherwise move it and keep the account. A second factor passed within [mfa]
    fresh_seconds is asked first, on the form and when the code is sent; then it goes on."""
    from tests.support import pass_passkey_challenge

    app = mail_app
    with app.app_context():
        make_account(USER, role="user")
    person = browser(app)
    person.sign_in_fully(USER, PASSWORD)
    csrf = person.csrf("/account/email")
    second_factor_long_ago(app, USER)
    shown = person.get("/account/email")
    assert shown.status_code == 303 and shown.location.endswith("/account/mfa/verify?next=/account/email")
    sent = person.http.post("/account/email", data={"email": NEW, "csrf_token": csrf})  # a form shown before
    assert sent.status_code == 303 and "/account/mfa/verify" in sent.location
    smtp.assert_none(NEW.lower(), "Confirm your new", wait=0.5)
    assert kit.account_row(app, USER)["email"] == USER

    asked = person.get("/account/mfa/verify?next=/account/email").get_data(as_text=True)
    assert "changes how someone signs in, so we ask for your second factor" in asked  # why it is asked
    verified = pass_passkey_challenge(person.http, USER, "/account/mfa/verify?next=/account/email")
    assert verified.status_code == 303 and verified.location.endswith("/account/email")
    asked = person.submit("/account/email", {"email": NEW})
    assert asked.status_code == 303 and asked.location.endswith("/account/email/code")
    code = _code(smtp, NEW)
    second_factor_long_ago(app, USER)  # and again before the code is entered
    held = person.http.post("/account/email/code", data={"code": code, "csrf_token": csrf})
    assert held.status_code == 303 and "/account/mfa/verify" in held.location
    assert kit.account_row(app, USER)["email"] == USER
