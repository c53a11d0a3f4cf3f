"""Failure budgets held on the server, per account (idp.accounts.lockout): a second factor cannot be
brute-forced by replaying a saved cookie, by starting new attempts or by sending guesses in parallel,
and a locked account never gets a session whatever it answers. (Two server processes:
test_lockout_processes.py.)"""

from __future__ import annotations

import concurrent.futures
import re
import time

import pyotp
from sqlalchemy import select

from idp.accounts import lockout
from idp.accounts.models import SsoSession
from idp.extensions import db
from tests.support import PASSWORD, add_totp, make_account

ADA = "ada@centre.example"
STATE_COOKIE = "idp_state"
SESSION_COOKIE = "idp_session"


def _wrong(code: str) -> str:
    return f"{(int(code) + 500_000) % 1_000_000:06d}"


def _totp_account(app, email=ADA) -> pyotp.TOTP:
    with app.app_context():
        account = make_account(email, mfa=False)
        secret = add_totp(account)
        db.session.commit()
    return pyotp.TOTP(secret)


def _answer(person, kit, code: str):
    page = person.get("/signin/mfa")
    assert page.status_code == 200, (page.status_code, page.location)
    method_id = page.get_data(as_text=True).split('name="method_id" value="', 1)[1].split('"', 1)[0]
    return person.http.post("/signin/mfa", data={"csrf_token": kit.csrf_of(page.get_data(as_text=True)),
                                                 "kind": "totp", "method_id": method_id, "code": code})


def _sessions(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(SsoSession)).all())


def test_a_replayed_state_cookie_after_the_budget_is_spent_gets_nothing(mail_app, smtp, browser, kit):
    app = mail_app
    totp = _totp_account(app)
    person = browser(app)
    assert person.sign_in(ADA, PASSWORD).location.endswith("/signin/mfa")
    page = person.get("/signin/mfa")
    saved = person.cookie(STATE_COOKIE)
    method_id = page.get_data(as_text=True).split('name="method_id" value="', 1)[1].split('"', 1)[0]
    csrf = kit.csrf_of(page.get_data(as_text=True))

    for attempt in range(1, 6):
        response = _answer(person, kit, _wrong(totp.now()))
        if attempt < 5:
            assert response.status_code == 400, attempt
    assert response.status_code == 302 and response.location.endswith("/signin")
    assert any("Too many wrong answers" in m for m in kit.messages(person.get("/signin")))
    smtp.take(ADA, kit.LOCKED_SUBJECT)

    # the attacker puts the saved cookie back and sends the right code: the attempt is gone
    attacker = browser(app)
    attacker.set_cookie(STATE_COOKIE, saved)
    replay = attacker.http.post("/signin/mfa", data={"csrf_token": csrf, "kind": "totp", "method_id": method_id,
                                                     "code": totp.now()})
    assert replay.status_code == 302 and replay.location.endswith("/signin")
    assert attacker.cookie(SESSION_COOKIE) is None
    # and a new attempt with the right password finds the account locked
    fresh = browser(app)
    assert kit.messages(fresh.sign_in(ADA, PASSWORD))[0].startswith(kit.LOCKED)
    assert _sessions(app) == 0
    events = kit.audit_events(app, "signin.mfa")
    assert [e.details.get("reason") for e in events] == ["bad_code"] * 5


def test_new_attempts_and_a_correct_password_do_not_refill_the_budget(mail_app, smtp, browser, kit):
    app = mail_app
    totp = _totp_account(app)
    for guesses in (3, 2):  # 3 wrong in one attempt, 2 in the next: 5 in a row
        person = browser(app)
        assert person.sign_in(ADA, PASSWORD).location.endswith("/signin/mfa")
        for _ in range(guesses):
            last = _answer(person, kit, _wrong(totp.now()))
    assert last.status_code == 302 and last.location.endswith("/signin")
    with app.app_context():
        assert lockout.locked_until(ADA) is not None


def test_a_passed_second_factor_resets_the_budget(mail_app, browser, kit):
    app = mail_app
    totp = _totp_account(app)
    person = browser(app)
    person.sign_in(ADA, PASSWORD)
    for _ in range(4):
        assert _answer(person, kit, _wrong(totp.now())).status_code == 400
    done = _answer(person, kit, totp.now())
    assert done.status_code == 303 and done.location.endswith("/account"), kit.messages(done)
    person = browser(app)
    person.sign_in(ADA, PASSWORD)
    for _ in range(4):  # a full budget again
        assert _answer(person, kit, _wrong(totp.now())).status_code == 400


def test_a_locked_account_with_the_right_code_gets_no_session(mail_app, smtp, browser, kit):
    app = mail_app
    totp = _totp_account(app)
    person = browser(app)
    assert person.sign_in(ADA, PASSWORD).location.endswith("/signin/mfa")
    # meanwhile someone locks the account with wrong passwords
    other = browser(app)
    other.begin(ADA)
    for n in range(3):
        other.password(f"wrong-guess-{n}")
    smtp.take(ADA, kit.LOCKED_SUBJECT)

    refused = _answer(person, kit, totp.now())
    assert refused.status_code == 302 and refused.location.endswith("/signin")
    assert person.cookie(SESSION_COOKIE) is None and _sessions(app) == 0
    assert person.get("/signin/mfa").location.endswith("/signin")  # the attempt was deleted
    assert [e.details.get("reason") for e in kit.audit_events(app, "signin.mfa")] == ["locked"]


def test_a_lock_between_the_second_factor_and_the_end_of_sign_in_still_refuses(mail_app, smtp, browser, kit):
    """The first sign-in's last step (recovery codes seen) is where the session starts: locked there,
    no session."""
    app = mail_app
    with app.app_context():
        make_account(ADA, mfa=False)
    person = browser(app)
    assert person.sign_in(ADA, PASSWORD).location.endswith("/signin/mfa/setup")
    sent = person.submit("/signin/mfa/setup/email", {"action": "send"})
    assert sent.status_code == 200
    code = re.search(r"sign-in code is: (\d+)", smtp.take(ADA, "Your sign-in code").text).group(1)
    shown = person.submit("/signin/mfa/setup/email", {"action": "confirm", "code": code})
    assert shown.location.endswith("/signin/mfa/recovery-codes")
    other = browser(app)
    other.begin(ADA)
    for n in range(3):
        other.password(f"wrong-guess-{n}")
    done = person.submit("/signin/mfa/recovery-codes", {"action": "done"})
    assert done.status_code == 303 and done.location.endswith("/signin")
    assert kit.messages(person.get("/signin"))[0].startswith(kit.LOCKED)
    assert person.cookie(SESSION_COOKIE) is None and _sessions(app) == 0


def test_parallel_guesses_get_no_more_than_the_budget(mail_app, browser, kit):
    """Ten wrong answers at once, each from its own pending sign-in: five are looked at, the rest
    are refused unseen, and the account is locked."""
    app = mail_app
    totp = _totp_account(app)
    people = []
    for _ in range(10):
        person = browser(app)
        person.sign_in(ADA, PASSWORD)
        page = person.get("/signin/mfa").get_data(as_text=True)
        method_id = page.split('name="method_id" value="', 1)[1].split('"', 1)[0]
        people.append((person, {"csrf_token": kit.csrf_of(page), "kind": "totp", "method_id": method_id,
                                "code": _wrong(totp.now())}))
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda p: p[0].http.post("/signin/mfa", data=p[1]), people))
    assert all(a.status_code in (400, 302) for a in answers)
    reasons = sorted(e.details.get("reason") for e in kit.audit_events(app, "signin.mfa"))
    assert reasons == ["bad_code"] * 5 + ["locked"] * 5, reasons
    with app.app_context():
        assert lockout.locked_until(ADA) is not None


def test_second_factor_answers_are_rate_limited_per_account(mail_app, browser, kit):
    """Wrong answers below the budget, each run ended by a right one, over new attempts (so new
    cookies): the 11th answer within a minute is refused (policies/security.toml mfa_per_account)."""
    app = mail_app
    totp = _totp_account(app)
    statuses = []
    for right in (totp.now(), totp.at(time.time() + 30), None):
        person = browser(app)
        person.sign_in(ADA, PASSWORD)
        for _ in range(4):
            statuses.append(_answer(person, kit, _wrong(totp.now())).status_code)
        if right:
            statuses.append(_answer(person, kit, right).status_code)
    assert statuses[:10] == [400] * 4 + [303] + [400] * 4 + [303], statuses
    assert statuses[10] == 429, statuses
