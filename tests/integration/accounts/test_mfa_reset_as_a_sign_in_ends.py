"""The sign-in's last step (journey.complete) against an admin's MFA reset committing just before
it (found by an outside probe: the reset changed none of the credentials the sign-in held to, and
a session and a remembered device began after it). The last MFA reset is now among them."""

from __future__ import annotations

import threading

import pytest

from idp import journey
from idp.extensions import db
from tests.support import PASSWORD, make_account

VICTIM = "victim@centre.example"


@pytest.mark.shared_store
def test_an_mfa_reset_committing_as_the_second_factor_is_passed_leaves_no_session(mail_app, browser, kit,
                                                                                  monkeypatch):
    """Attack: someone with the password (and the victim's passkey, say a stolen laptop) answers
    the second-factor challenge; the victim's admin resets the MFA at that moment ("every way in
    must end"). The reset commits after the passkey answer was checked and before the last step
    holds the account's row (commit 58b5912). The last step then checks only the credentials the
    sign-in was begun with (password hash, address, status: ``journey.credentials_of``), which an
    MFA reset does not change, and starts a session: after the reset that ended every session.

    Should: docs/security.md ("Codes and refresh tokens"/"Sign-in and sessions"): a second-factor
    reset ends access ("ending someone's access ends every session"); commit 58b5912 made the last
    step see a reset "committed first" and start again, for a password reset. No live session of
    the victim's may remain once the reset has committed. Happens: the intruder's new session lives
    (a session begun with a factor the account no longer has)."""
    from idp.admin import people

    app = mail_app
    with app.app_context():
        sub = make_account(VICTIM, role="user").sub
    real = journey.second_factor_passed
    reset = {}

    def reset_meanwhile():
        with app.app_context():
            reset["account"] = people.reset_mfa(people.operator(), sub, reason="a factor nobody here set up")
            db.session.remove()

    def passed_after_a_reset(*args, **kwargs):
        monkeypatch.setattr(journey, "second_factor_passed", real)
        resetting = threading.Thread(target=reset_meanwhile)
        resetting.start()
        resetting.join(timeout=5)
        reset["thread"], reset["committed_first"] = resetting, not resetting.is_alive()
        return real(*args, **kwargs)

    monkeypatch.setattr(journey, "second_factor_passed", passed_after_a_reset)
    intruder = browser(app)
    intruder.sign_in_fully(VICTIM, PASSWORD)
    reset["thread"].join(timeout=30)
    assert reset.get("account") is not None and reset["committed_first"]  # the reset committed first
    assert kit.live_sessions(app, VICTIM) == []
    assert not intruder.signed_in()


@pytest.mark.shared_store
def test_an_mfa_reset_committing_as_the_second_factor_is_passed_leaves_no_remembered_device(
        mail_app, browser, kit, monkeypatch):
    """Attack: as above, with "Do not ask for a code on this device" ticked at the challenge. The
    reset forgets every remembered device and commits; the last step then remembers the intruder's
    browser (a new row, after the reset's delete). Once the owner has set up a new second factor,
    that browser signs in with the password alone.

    Should: docs/security.md ("Sign-in and sessions"): "the remembered device is a database row
    that removal in My account and every end of access delete, so it is revocable at once"; an MFA
    reset ends access. No remembered device of the account's may be left once the reset has
    committed. Happens: one is left, made after the reset."""
    from sqlalchemy import func, select

    from idp.accounts.models import Account, RememberedDevice
    from idp.admin import people
    from tests.support import AUTHENTICATORS, _csrf

    app = mail_app
    with app.app_context():
        sub = make_account(VICTIM).sub
    real = journey.second_factor_passed
    reset = {}

    def reset_meanwhile():
        with app.app_context():
            reset["account"] = people.reset_mfa(people.operator(), sub, reason="a factor nobody here set up")
            db.session.remove()

    def passed_after_a_reset(*args, **kwargs):
        monkeypatch.setattr(journey, "second_factor_passed", real)
        resetting = threading.Thread(target=reset_meanwhile)
        resetting.start()
        resetting.join(timeout=5)
        reset["thread"], reset["committed_first"] = resetting, not resetting.is_alive()
        return real(*args, **kwargs)

    monkeypatch.setattr(journey, "second_factor_passed", passed_after_a_reset)
    intruder = browser(app)
    assert intruder.sign_in(VICTIM, PASSWORD).location.endswith("/signin/mfa")
    page = intruder.get("/signin/mfa").get_data(as_text=True)
    options = page.split('<script type="application/json" id="webauthn-options">', 1)[1].split("</script>", 1)[0]
    ceremony = page.split('name="ceremony" value="', 1)[1].split('"', 1)[0]
    credential = AUTHENTICATORS[Account.key_for(VICTIM)].get(options)
    intruder.http.post("/signin/mfa", data={"kind": "webauthn", "method": "webauthn", "ceremony": ceremony,
                                            "credential": credential, "csrf_token": _csrf(page), "remember": "y"})
    reset["thread"].join(timeout=30)
    assert reset.get("account") is not None and reset["committed_first"]  # the reset committed first
    with app.app_context():
        account_id = db.session.scalar(select(Account.id).where(Account.email_key == Account.key_for(VICTIM)))
        devices = db.session.scalar(select(func.count()).select_from(RememberedDevice)
                                    .where(RememberedDevice.account_id == account_id))
    assert devices == 0
