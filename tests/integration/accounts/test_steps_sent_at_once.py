"""Copies of one step sent at once (a saved cookie replayed in parallel, a double submit): the step
happens once. The first password after an invite is set by one copy, the others start again; the
last step of a sign-in starts one session."""

from __future__ import annotations

import re
import threading

from tests.integration.accounts.conftest import MFA_CODE_SUBJECT
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


def test_the_last_step_sent_eight_times_at_once_starts_one_session(mail_app, smtp, browser, kit):
    """Found by an outside probe (two servers, copies of the cookie): at a first sign-in's last
    step, the recovery codes page, eight copies of "I have saved them" sent at once each started a
    session of their own (three to five did), each with a signin.completed: whoever held a copy of
    the cookie had a session that the person's sign-out did not end. The sign-in is finished once;
    the other copies start again."""
    app = mail_app
    with app.app_context():
        make_account(EO)
    kit.invite(app, STARTER)
    temporary = kit.temporary_password(smtp.take(STARTER, kit.INVITE_SUBJECT))
    person = browser(app)
    assert person.sign_in(STARTER, temporary).location.endswith("/signin/new-password")
    assert person.new_password(PASSWORD).location.endswith("/signin/mfa/setup")
    sent = person.submit("/signin/mfa/setup/email", {"action": "send"})
    assert sent.status_code == 200
    code = re.search(r"sign-in code is: (\d+)", smtp.take(STARTER, MFA_CODE_SUBJECT).text).group(1)
    shown = person.submit("/signin/mfa/setup/email", {"action": "confirm", "code": code})
    assert shown.location.endswith("/signin/mfa/recovery-codes")
    token = person.csrf("/signin/mfa/recovery-codes")
    clones = _clones(app, person, 8)
    start, answers = threading.Barrier(8), []

    def done(clone):
        start.wait()
        answer = clone.post("/signin/mfa/recovery-codes", data={"action": "done", "csrf_token": token})
        answers.append((answer.status_code, answer.location or ""))

    threads = [threading.Thread(target=done, args=(clone,)) for clone in clones]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    finished = [a for a in answers if a[0] == 303 and a[1].endswith("/account")]
    assert len(answers) == 8 and len(finished) == 1, answers
    # the others are sent back to the start (the sign-in was gone when they looked, or went as they wrote)
    assert all(a[0] in (302, 303) and a[1].endswith("/signin") for a in answers if a not in finished), answers
    assert len(kit.live_sessions(app, STARTER)) == 1
    assert len(kit.audit_events(app, "signin.completed")) == 1
