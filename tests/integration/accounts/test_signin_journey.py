"""Every sign-in journey end to end over HTTP, with the emails received by a real SMTP server:
invite -> first sign-in -> own password; resend; expired invite; forgotten password;
change password; sign out (here and everywhere). DESIGN.md §1 Invitations, First sign-in,
Passwords, Lockout."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import time_machine
from argon2 import PasswordHasher

from idp import policy
from tests.support import (
    ADMIN_API_SCOPE,
    PASSWORD,
    code_flow,
    make_account,
    make_admin_client,
    make_client,
    token_request,
)

EO = "eo@centre.example"
ADA = "ada@centre.example"
NEW = "Tulip-harbour-93"
NEWER = "Quiet-lantern-orbit-7"
STARTER = "new.starter@centre.example"

RULES = {
    "short": "Your password must be at least 10 characters long.",
    "long": "Your password must be 128 characters or fewer.",
    "email": "Your password must not contain your email address.",
    "temporary": "Choose a password that is different from your temporary password.",
    "breached": "This password is on a list of passwords known to criminals. Choose another.",
}


def refresh(http, rp, refresh_token):
    return token_request(http, rp, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def only_rule(response, kit, rule):
    """The page shows this rule's message and no other rule's."""
    shown = " ".join(kit.messages(response))
    assert response.status_code == 400, (rule, response.status_code, response.location)
    assert RULES[rule] in shown, (rule, shown)
    others = [name for name, text in RULES.items() if name != rule and text in shown]
    assert not others, (rule, others, shown)


def test_invite_first_sign_in_with_spaces_and_every_new_password_rule(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(EO)
        rp = make_admin_client()

    # the EO invites over the admin API; the invite arrives by SMTP
    eo = browser(app)
    token = code_flow(eo.http, rp, scope=ADMIN_API_SCOPE)["access_token"]
    created = eo.http.post("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"},
                           json={"email": STARTER, "role": "user", "centre": "12345",
                                 "given_name": "Grace", "family_name": "Hopper"})
    assert created.status_code == 201, created.get_data(as_text=True)
    sub = created.get_json()["sub"]
    assert created.get_json()["status"] == "invited"
    mail = smtp.take(STARTER, kit.INVITE_SUBJECT)
    assert "http://localhost/signin" in mail.text and STARTER in mail.text
    temp = kit.temporary_password(mail)
    rules = policy.load(None).sec("invite")
    assert len(temp) == rules.temporary_password_length
    assert set(temp) <= set(rules.temporary_password_alphabet) and not set(temp) & set("0O1lI")

    # spaces pasted around the temporary password are ignored; the email is case-insensitive
    person = browser(app)
    step = person.sign_in(" New.Starter@Centre.example ", f"  {temp}  ")
    assert step.status_code == 303 and step.location.endswith("/signin/new-password"), kit.messages(step)
    assert not person.signed_in()  # not before choosing a password

    # every rule refuses with its own message
    only_rule(person.new_password("Short-1!"), kit, "short")
    only_rule(person.new_password("Tulip-harbour-" + "x" * 115), kit, "long")
    only_rule(person.new_password("new.starter-is-me"), kit, "email")
    only_rule(person.new_password(temp), kit, "temporary")
    only_rule(person.new_password(f" {temp} "), kit, "temporary")
    only_rule(person.new_password("password1234"), kit, "breached")
    assert kit.account_row(app, STARTER)["status"] == "invited"

    chosen = person.new_password(NEW)
    assert chosen.status_code == 303 and chosen.location.endswith("/signin/mfa/setup"), kit.messages(chosen)
    assert not person.signed_in()  # not before a second factor is set up
    done = person.enrol_email_codes(smtp, STARTER)
    assert done.status_code == 303 and done.location.endswith("/account"), (done.location, kit.messages(done))
    assert person.signed_in()
    row = kit.account_row(app, STARTER)
    assert row["status"] == "active" and not row["password_is_temporary"] and row["invite_expires_at"] is None
    assert row["password_changed_at"] is not None
    assert PasswordHasher().verify(row["password_hash"], NEW)

    # the temporary password is gone; the new one signs in
    assert kit.messages(browser(app).sign_in(STARTER, temp)) == [kit.BAD_CREDENTIALS]
    again = browser(app).sign_in(STARTER, NEW)
    assert again.status_code == 303 and again.location.endswith("/signin/mfa")  # on to the second factor

    invited = kit.audit_events(app, "account.invited", subject=sub)
    assert len(invited) == 1 and invited[0].outcome == "success" and invited[0].centre == "12345"
    assert invited[0].actor == kit.account_row(app, EO)["sub"]
    assert invited[0].details["after"]["email"] == STARTER
    set_events = kit.audit_events(app, "account.password_set", subject=sub)
    assert [e.details["first"] for e in set_events] == [True]
    outcomes = [(e.outcome, e.details.get("reason")) for e in kit.audit_events(app, "signin.password", subject=sub)]
    assert outcomes == [("success", None), ("failure", "bad_credentials"), ("success", None)]
    assert len(kit.audit_events(app, "signin.completed", subject=sub)) == 1


def test_resend_invite_stops_the_old_temporary_password(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(EO)
        rp = make_admin_client()
    sub = kit.invite(app, STARTER)
    first = kit.temporary_password(smtp.take(STARTER, kit.INVITE_SUBJECT))
    expiry = kit.account_row(app, STARTER)["invite_expires_at"]

    # the EO resends over the admin API
    eo = browser(app)
    token = code_flow(eo.http, rp, scope=ADMIN_API_SCOPE)["access_token"]
    resent = eo.http.post(f"/api/v1/accounts/{sub}/invite", headers={"Authorization": f"Bearer {token}"})
    assert resent.status_code == 200, resent.get_data(as_text=True)
    second = kit.temporary_password(smtp.take(STARTER, kit.INVITE_SUBJECT))
    assert second != first
    assert kit.account_row(app, STARTER)["invite_expires_at"] >= expiry

    person = browser(app)
    refused = person.sign_in(STARTER, first)
    assert refused.status_code == 400 and kit.messages(refused) == [kit.BAD_CREDENTIALS]
    accepted = person.password(second)
    assert accepted.status_code == 303 and accepted.location.endswith("/signin/new-password")

    resent = kit.audit_events(app, "account.invite_resent", subject=sub)
    assert len(resent) == 1 and resent[0].actor == kit.account_row(app, EO)["sub"]
    assert resent[0].centre == "12345" and resent[0].outcome == "success"
    failures = kit.audit_events(app, "signin.password", subject=sub)
    assert [(e.outcome, e.details.get("reason")) for e in failures] == [("failure", "bad_credentials"),
                                                                          ("success", None)]


def test_expired_invite_says_so_and_forgot_password_changes_nothing(mail_app, smtp, browser, kit):
    """Only someone who may invite can renew an invite: a forgotten-password request for an invited
    address neither replaces its temporary password nor revives it, and says what it says to anyone."""
    app = mail_app
    with app.app_context():
        make_account(EO)
    sub = kit.invite(app, STARTER)
    temp = kit.temporary_password(smtp.take(STARTER, kit.INVITE_SUBJECT))
    now = datetime.now(UTC)

    with time_machine.travel(now + timedelta(days=59)):  # still within the 60 days
        step = browser(app).sign_in(STARTER, temp)
        assert step.status_code == 303 and step.location.endswith("/signin/new-password"), kit.messages(step)
        # asked while the invite is live: the temporary password keeps working, nothing is sent
        asked = browser(app).forgot(STARTER)
        assert asked.status_code == 303 and asked.location.endswith("/forgot/code")
        smtp.assert_none(STARTER, wait=0.3)
        step = browser(app).sign_in(STARTER, temp)
        assert step.status_code == 303 and step.location.endswith("/signin/new-password"), kit.messages(step)

    with time_machine.travel(now + timedelta(days=61)):
        person = browser(app)
        expired = person.sign_in(STARTER, temp)
        assert expired.status_code == 400
        assert any(kit.INVITE_EXPIRED in m for m in kit.messages(expired)), kit.messages(expired)
        before = kit.account_row(app, STARTER)
        assert before["status"] == "invited"

        asked = person.forgot(STARTER)
        assert asked.status_code == 303 and asked.location.endswith("/forgot/code")
        smtp.assert_none(STARTER, wait=0.3)
        after = kit.account_row(app, STARTER)
        assert (after["password_hash"], after["invite_expires_at"]) == \
            (before["password_hash"], before["invite_expires_at"])
        expired = browser(app).sign_in(STARTER, temp)
        assert any(kit.INVITE_EXPIRED in m for m in kit.messages(expired)), kit.messages(expired)

    reasons = [e.details.get("reason") for e in kit.audit_events(app, "signin.password", subject=sub)]
    assert reasons == [None, None, "invite_expired", "invite_expired"]
    assert [e.details.get("reason") for e in kit.audit_events(app, "password.reset_requested", subject=sub)] \
        == ["account_invited", "account_invited"]
    assert kit.audit_events(app, "account.invite_resent", subject=sub) == []


def test_forgotten_password_code_works_once(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(ADA)
    sub = kit.account_row(app, ADA)["sub"]
    person = browser(app)
    asked = person.forgot(ADA)
    assert asked.status_code == 303 and asked.location.endswith("/forgot/code")
    mail = smtp.take(ADA, kit.RESET_SUBJECT)
    code = kit.reset_code(mail)
    assert len(code) == 6 and "10 minutes" in mail.text
    before_reset = person.cookie("idp_state")

    weak = person.reset(code, "password1234")  # a refused password does not use the code up
    assert weak.status_code == 400 and RULES["breached"] in kit.messages(weak)
    done = person.reset(code, NEW)
    assert done.status_code == 303 and done.location.endswith("/signin"), kit.messages(done)
    assert any("Your password has been changed" in m for m in kit.messages(person.get("/signin")))
    smtp.take(ADA, kit.CHANGED_SUBJECT)

    # the same code again, from the browser state that held it: refused, nothing changes
    snapshot = kit.account_row(app, ADA)
    person.set_cookie("idp_state", before_reset)
    replay = person.reset(code, NEWER)
    assert replay.status_code == 400 and kit.messages(replay) == [kit.BAD_CODE]
    assert kit.account_row(app, ADA) == snapshot

    signed = browser(app).sign_in_fully(ADA, NEW)
    assert signed.status_code == 303 and signed.location.endswith("/account")
    assert [e.outcome for e in kit.audit_events(app, "password.reset_requested", subject=sub)] == ["success"]
    resets = kit.audit_events(app, "password.reset")
    assert [(e.outcome, e.subject, e.details.get("reason")) for e in resets] == [
        ("success", sub, None), ("failure", None, "bad_code")]


def test_five_wrong_codes_spend_the_budget_and_a_new_code_does_not_refill_it(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(ADA)
    person = browser(app)
    person.forgot(ADA)
    code = kit.reset_code(smtp.take(ADA, kit.RESET_SUBJECT))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    hash_before = kit.account_row(app, ADA)["password_hash"]

    for _ in range(5):
        response = person.reset(wrong, NEW)
        assert response.status_code == 400 and kit.messages(response) == [kit.BAD_CODE]
    spent = person.reset(code, NEW)  # the right code, too late
    assert spent.status_code == 400 and kit.messages(spent) == [kit.TOO_MANY_CODES]
    assert kit.account_row(app, ADA)["password_hash"] == hash_before

    # asking for another code buys no more guesses (the budget is the address's, not the code's)
    person.forgot(ADA)
    fresh = kit.reset_code(smtp.take(ADA, kit.RESET_SUBJECT))
    refused = person.reset(fresh, NEW)
    assert refused.status_code == 400 and kit.messages(refused) == [kit.TOO_MANY_CODES]
    assert kit.account_row(app, ADA)["password_hash"] == hash_before

    # the window ends: the store expires the counter (expiry itself is the store contract suite's)
    with app.app_context():
        from idp.accounts import services

        services.RESET_TRIES.delete(services._reset_key(ADA))
    person.forgot(ADA)
    fresh = kit.reset_code(smtp.take(ADA, kit.RESET_SUBJECT))
    done = person.reset(fresh, NEW)
    assert done.status_code == 303, kit.messages(done)
    assert browser(app).sign_in_fully(ADA, NEW).location.endswith("/account")


def test_the_budgets_last_wrong_code_voids_the_code_for_the_next_window(mail_app, smtp, browser, kit):
    """A code asked for late in one window of tries would otherwise meet a fresh budget in the
    next while it still lives: ten guesses at one code instead of five."""
    app = mail_app
    with app.app_context():
        make_account(ADA)
    person = browser(app)
    person.forgot(ADA)
    code = kit.reset_code(smtp.take(ADA, kit.RESET_SUBJECT))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    hash_before = kit.account_row(app, ADA)["password_hash"]
    for _ in range(5):
        assert kit.messages(person.reset(wrong, NEW)) == [kit.BAD_CODE]
    with app.app_context():  # the window of tries ends while the code still lives
        from idp.accounts import services

        services.RESET_TRIES.delete(services._reset_key(ADA))
    late = person.reset(code, NEW)
    assert late.status_code == 400 and kit.messages(late) == [kit.BAD_CODE]
    assert kit.account_row(app, ADA)["password_hash"] == hash_before


def test_reset_code_expires_after_ten_minutes(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(ADA)
    person = browser(app)
    now = datetime.now(UTC)
    person.forgot(ADA)
    code = kit.reset_code(smtp.take(ADA, kit.RESET_SUBJECT))
    hash_before = kit.account_row(app, ADA)["password_hash"]

    with time_machine.travel(now + timedelta(minutes=9, seconds=30)):
        # still valid: the code is accepted and only the (breached) password is refused
        almost = person.reset(code, "password1234")
        assert kit.messages(almost) == [RULES["breached"]]
    with time_machine.travel(now + timedelta(minutes=10, seconds=5)):
        late = person.reset(code, NEW)
        assert late.status_code == 400 and kit.messages(late) == [kit.BAD_CODE]
    assert kit.account_row(app, ADA)["password_hash"] == hash_before


def test_reset_unlocks_ends_sessions_revokes_refresh_tokens_and_emails_a_notice(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(ADA)
        rp = make_client()
    sub = kit.account_row(app, ADA)["sub"]
    before = browser(app)  # signed in, with tokens, before everything else
    tokens = code_flow(before.http, rp, email=ADA, scope="openid offline_access")
    old_cookie = before.cookie("idp_session")
    assert before.signed_in() and old_cookie

    attacker = browser(app)
    attacker.begin(ADA)
    assert kit.messages(attacker.password("wrong-guess-1")) == [kit.BAD_CREDENTIALS]
    assert kit.messages(attacker.password("wrong-guess-2")) == [kit.BAD_CREDENTIALS]
    third = attacker.password("wrong-guess-3")
    assert third.status_code == 400 and kit.messages(third)[0].startswith(kit.LOCKED), kit.messages(third)
    page = third.get_data(as_text=True)  # offers "reset your password to unlock it now"
    assert re.search(r'<a href="/forgot"[^>]*>Reset your password to unlock', page), page
    # the form there already holds the address (from the sign-in, never from the URL)
    assert 'value="ada@centre.example"' in attacker.get("/forgot").get_data(as_text=True)
    smtp.take(ADA, kit.LOCKED_SUBJECT)
    right_but_locked = attacker.password(PASSWORD)
    assert kit.messages(right_but_locked)[0].startswith(kit.LOCKED)
    assert kit.lock_state(app, ADA)["locked_until"] is not None

    person = browser(app)
    person.forgot(ADA)
    code = kit.reset_code(smtp.take(ADA, kit.RESET_SUBJECT))
    done = person.reset(code, NEW)
    assert done.status_code == 303, kit.messages(done)
    assert kit.lock_state(app, ADA) == {"failures": 0, "locked_until": None}
    notice = smtp.take(ADA, kit.CHANGED_SUBJECT)
    assert ADA in notice.text

    # every session ended: the SSO cookie from before no longer opens /account
    assert kit.live_sessions(app, ADA) == []
    before.set_cookie("idp_session", old_cookie)
    assert before.get("/account").status_code == 302
    # refresh tokens revoked, and the access token issued before stops at userinfo
    refused = refresh(before.http, rp, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    info = before.http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 401, info.get_data(as_text=True)
    # unlocked at once
    signed = browser(app).sign_in_fully(ADA, NEW)
    assert signed.status_code == 303 and signed.location.endswith("/account"), kit.messages(signed)

    locked = kit.audit_events(app, "account.locked", subject=sub)
    assert len(locked) == 1 and locked[0].details["reason"] == "password" and locked[0].centre == "12345"
    reasons = [(e.outcome, e.details.get("reason")) for e in kit.audit_events(app, "signin.password", subject=sub)]
    assert reasons == [("success", None), ("failure", "bad_credentials"), ("failure", "bad_credentials"),
                       ("failure", "bad_credentials"), ("failure", "locked"), ("success", None)]
    assert {e.ip for e in kit.audit_events(app, "signin.password", subject=sub)} == {"127.0.0.1"}
    reset = kit.audit_events(app, "password.reset", subject=sub)
    assert len(reset) == 1 and reset[0].outcome == "success" and reset[0].details["sessions_ended"] == 1


def test_lock_lasts_an_hour_and_the_count_resets_on_success(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(ADA)
    person = browser(app)
    person.begin(ADA)
    # two wrong, then right: the count starts again
    assert kit.messages(person.password("wrong-guess-1")) == [kit.BAD_CREDENTIALS]
    assert kit.messages(person.password("wrong-guess-2")) == [kit.BAD_CREDENTIALS]
    assert person.password(PASSWORD).location.endswith("/signin/mfa")
    assert kit.lock_state(app, ADA)["failures"] == 0
    person = browser(app)
    person.begin(ADA)
    assert kit.messages(person.password("wrong-guess-3")) == [kit.BAD_CREDENTIALS]
    assert kit.messages(person.password("wrong-guess-4")) == [kit.BAD_CREDENTIALS]
    now = datetime.now(UTC)
    assert kit.messages(person.password("wrong-guess-5"))[0].startswith(kit.LOCKED)
    smtp.take(ADA, kit.LOCKED_SUBJECT)

    with time_machine.travel(now + timedelta(minutes=59)):
        late = browser(app)
        late.begin(ADA)
        assert kit.messages(late.password(PASSWORD))[0].startswith(kit.LOCKED)
    with time_machine.travel(now + timedelta(minutes=61)):
        later = browser(app)
        later.begin(ADA)
        assert later.password(PASSWORD).location.endswith("/signin/mfa")


def test_change_password_needs_the_current_one_and_ends_other_sessions(mail_app, smtp, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(ADA)
        rp = make_client()
    here, there = browser(app), browser(app)
    here_tokens = code_flow(here.http, rp, email=ADA, scope="openid offline_access")
    there_tokens = code_flow(there.http, rp, email=ADA, scope="openid offline_access")
    assert len(kit.live_sessions(app, ADA)) == 2

    wrong = here.change_password("not-my-password", NEW)
    assert wrong.status_code == 400 and kit.messages(wrong) == ["Your current password is incorrect."]
    same = here.change_password(PASSWORD, PASSWORD)
    assert kit.messages(same) == ["Choose a password that is different from your current one."]
    weak = here.change_password(PASSWORD, "password1234")
    assert kit.messages(weak) == [RULES["breached"]]
    assert there.signed_in()

    done = here.change_password(PASSWORD, NEW)
    assert done.status_code == 303 and done.location.endswith("/account"), kit.messages(done)
    page = here.get("/account")
    assert page.status_code == 200  # this session kept
    assert any("signed out on your other devices" in m for m in kit.messages(page))
    assert not there.signed_in()  # the other one ended
    assert len(kit.live_sessions(app, ADA)) == 1
    smtp.take(ADA, kit.CHANGED_SUBJECT)

    kept = refresh(here.http, rp, here_tokens["refresh_token"])
    assert kept.status_code == 200, kept.get_data(as_text=True)
    gone = refresh(there.http, rp, there_tokens["refresh_token"])
    assert gone.status_code == 400 and gone.get_json()["error"] == "invalid_grant"

    assert kit.messages(browser(app).sign_in(ADA, PASSWORD)) == [kit.BAD_CREDENTIALS]
    assert browser(app).sign_in_fully(ADA, NEW).location.endswith("/account")
    changed = kit.audit_events(app, "password.changed")
    assert len(changed) == 1 and changed[0].details["sessions_ended"] == 1


def test_sign_out_and_sign_out_everywhere(mail_app, browser, kit):
    app = mail_app
    with app.app_context():
        make_account(ADA)
        rp = make_client()
    a, b, c = browser(app), browser(app), browser(app)
    assert a.sign_in_fully(ADA, PASSWORD).location.endswith("/account")
    b_tokens = code_flow(b.http, rp, email=ADA, scope="openid offline_access")
    assert c.sign_in_fully(ADA, PASSWORD).location.endswith("/account")
    a_cookie = a.cookie("idp_session")

    out = a.sign_out()
    assert out.status_code == 200 and "You have signed out" in out.get_data(as_text=True)
    assert any(h.startswith("idp_session=;") for h in out.headers.getlist("Set-Cookie"))
    assert not a.signed_in()
    a.set_cookie("idp_session", a_cookie)  # ended on the server, not only forgotten by the browser
    assert not a.signed_in()
    assert b.signed_in() and c.signed_in()
    rotated = refresh(b.http, rp, b_tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.get_data(as_text=True)

    c_cookie = c.cookie("idp_session")
    everywhere = c.sign_out(everywhere=True)
    assert everywhere.status_code == 200
    assert not b.signed_in() and not c.signed_in()
    c.set_cookie("idp_session", c_cookie)
    assert not c.signed_in()
    assert kit.live_sessions(app, ADA) == []
    gone = refresh(b.http, rp, rotated.get_json()["refresh_token"])
    assert gone.status_code == 400 and gone.get_json()["error"] == "invalid_grant"
    info = b.http.get("/userinfo", headers={"Authorization": f"Bearer {rotated.get_json()['access_token']}"})
    assert info.status_code == 401, info.get_data(as_text=True)

    ended = [e.details["reason"] for e in kit.audit_events(app, "session.ended")]
    assert ended == ["sign_out", "sign_out_everywhere"]
