"""Nobody can flood an inbox or run up a text-message bill through the provider: password-reset
emails are capped per address, and one-time codes (texted second factor, email change) per account
and purpose, each window counted in the shared store. Past the cap a reset request gets the same
answer as any other and sends nothing (the last code sent still works); a code request gets a
message saying how long to wait. Attacked in parallel and through the page."""

from __future__ import annotations

import re
import threading

import pytest

from idp import policy
from idp.accounts import services
from idp.admin import errors, people
from idp.mfa import codes
from tests.support import PASSWORD, make_account

ADA = "ada@centre.example"
NOBODY = "nobody@centre.example"


def _in_parallel(app, work, times: int) -> None:
    start = threading.Barrier(times)

    def run():
        with app.app_context():
            start.wait()
            work()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)


def test_reset_emails_to_one_address_stop_at_the_budget_even_asked_for_at_once(mail_app, smtp, kit):
    app = mail_app
    with app.app_context():
        make_account(ADA)
        budget = policy.current().sec("reset_code").max_emails
    _in_parallel(app, lambda: services.request_reset(ADA), times=budget + 7)
    for _ in range(budget):
        smtp.take(ADA, kit.RESET_SUBJECT)
    smtp.assert_none(ADA, kit.RESET_SUBJECT, wait=1.0)
    refused = kit.audit_events(app, "password.reset_requested")
    assert sum(e.details.get("reason") == "too_many_emails" for e in refused) == 7


def test_past_the_budget_the_page_answers_the_same_and_the_last_code_still_works(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(ADA)
        budget = policy.current().sec("reset_code").max_emails
    person, stranger = browser(app), browser(app)
    answers = []
    for _ in range(budget + 2):
        answers.append(person.forgot(ADA))
        answers.append(stranger.forgot(NOBODY))
    assert {(a.status_code, a.location) for a in answers} == {(303, "/forgot/code")}
    mails = [smtp.take(ADA, kit.RESET_SUBJECT) for _ in range(budget)]
    smtp.assert_none(ADA, kit.RESET_SUBJECT, wait=0.5)
    # the requests past the budget replaced nothing: the last email's code is the one that works
    assert person.reset(kit.reset_code(mails[-1]), "a brand new passphrase 7").status_code == 303
    with app.app_context():
        assert services.find_by_email(ADA) is not None
    assert browser(app).sign_in(ADA, "a brand new passphrase 7").status_code == 303


def _email_change(app, person_cookie: str, new_email: str, subject: str):
    from idp.accounts import sessions

    with app.app_context():
        codes.RESENDS.delete(f"email-change:{subject}")  # as if the resend interval had passed
        people.request_own_email_change(sessions.find(person_cookie), new_email)


def test_codes_per_account_and_purpose_stop_at_the_budget(mail_app, smtp, browser):
    app = mail_app
    with app.app_context():
        subject = make_account(ADA).id
        rules = policy.current().sec("otp")
    person = browser(app)
    assert person.sign_in_fully(ADA, PASSWORD).location.endswith("/account")
    for n in range(rules.max_sends):
        _email_change(app, person.cookie("idp_session"), f"new{n}@elsewhere.example", subject)
        smtp.take(f"new{n}@elsewhere.example", "Confirm your new")
    with pytest.raises(errors.Invalid) as refused:
        _email_change(app, person.cookie("idp_session"), "one.more@elsewhere.example", subject)
    minutes = rules.send_window_seconds // 60
    assert re.fullmatch(rf"You have asked for too many codes\. Wait {minutes} minutes, then ask again\.",
                        str(refused.value.message))
    smtp.assert_none("one.more@elsewhere.example", wait=0.5)


def test_the_send_budget_is_per_purpose_and_per_account(mail_app):
    app = mail_app
    sent = []
    with app.app_context():
        rules = policy.current().sec("otp")
        for _ in range(rules.max_sends):
            codes.RESENDS.delete("sms:account-1")
            codes.issue("sms", "account-1", sent.append)
        codes.RESENDS.delete("sms:account-1")
        with pytest.raises(codes.CodeError) as refused:
            codes.issue("sms", "account-1", sent.append)
        assert refused.value.code == "too_many_sends"
        codes.issue("email-change", "account-1", sent.append)  # another purpose: its own budget
        codes.issue("sms", "account-2", sent.append)           # another account: its own budget
    assert len(sent) == rules.max_sends + 2


def test_a_refused_request_does_not_change_the_address_an_earlier_code_confirms(mail_app, smtp, browser):
    """Ask for a code for an address you read, then (refused: too soon) for someone else's, then
    confirm with the first code: the address you read is the one that becomes yours."""
    from idp.accounts import sessions

    app = mail_app
    with app.app_context():
        subject = make_account(ADA).id
    person = browser(app)
    person.sign_in_fully(ADA, PASSWORD)
    _email_change(app, person.cookie("idp_session"), "mine@elsewhere.example", subject)
    code = re.search(r"Your code is: (\d+)", smtp.take("mine@elsewhere.example", "Confirm your new").text).group(1)
    with app.app_context():
        entry = sessions.find(person.cookie("idp_session"))
        with pytest.raises(errors.Invalid):  # within the resend interval: refused
            people.request_own_email_change(entry, "victim@elsewhere.example")
        assert people.pending_own_email_change(entry) == "mine@elsewhere.example"
        assert people.confirm_own_email_change(entry, code).email == "mine@elsewhere.example"
