"""Copies of one step sent at once (a saved cookie replayed in parallel, a double submit): the step
happens once. The first password after an invite is set by one copy, the others start again."""

from __future__ import annotations

import threading

from tests.support import PASSWORD, make_account

EO = "eo@centre.example"
STARTER = "new.starter@centre.example"


def _clones(app, person, n: int):
    """``n`` browsers holding ``person``'s cookies: the same sign-in, sent from n places."""
    clones = []
    for _ in range(n):
        clone = app.test_client()
        for cookie in person.http._cookies.values():
            clone.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
        clones.append(clone)
    return clones


def test_the_first_password_is_set_by_one_of_ten_copies(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(EO)
    kit.invite(app, STARTER)
    temporary = kit.temporary_password(smtp.take(STARTER, kit.INVITE_SUBJECT))
    person = browser(app)
    step = person.sign_in(STARTER, temporary)
    assert step.location.endswith("/signin/new-password")
    token = person.csrf("/signin/new-password")
    clones = _clones(app, person, 10)
    start, answers = threading.Barrier(10), []

    def choose(n, clone):
        start.wait()
        answer = clone.post("/signin/new-password", data={"password": f"{PASSWORD} number {n}", "csrf_token": token})
        answers.append((n, answer.status_code, answer.location or ""))

    threads = [threading.Thread(target=choose, args=(n, clone)) for n, clone in enumerate(clones)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    went_on = [n for n, status, location in answers if status == 303 and location.endswith("/signin/mfa/setup")]
    assert len(went_on) == 1, answers
    assert len(kit.audit_events(app, "account.password_set")) == 1
    # the password that was said to be set is the one that works
    assert browser(app).sign_in(STARTER, f"{PASSWORD} number {went_on[0]}").status_code == 303


def test_the_right_reset_code_sent_fifteen_times_at_once_resets_once(mail_app, smtp, browser, kit):
    """More copies than the budget of tries: those past it are refused unseen, and the right code
    one of the others is checking still works (it used to be deleted under them: nobody got in)."""
    app = mail_app
    with app.app_context():
        make_account(EO)
    person = browser(app)
    person.forgot(EO)
    code = kit.reset_code(smtp.take(EO, kit.RESET_SUBJECT))
    token = person.csrf("/forgot/code")
    clones = _clones(app, person, 15)
    start, answers = threading.Barrier(15), []

    def reset(n, clone):
        start.wait()
        answer = clone.post("/forgot/code", data={"code": code, "password": f"{PASSWORD} {n}", "csrf_token": token})
        answers.append(answer.status_code)

    threads = [threading.Thread(target=reset, args=(n, clone)) for n, clone in enumerate(clones)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers.count(303) == 1, answers
    assert [e.outcome for e in kit.audit_events(app, "password.reset")].count("success") == 1
