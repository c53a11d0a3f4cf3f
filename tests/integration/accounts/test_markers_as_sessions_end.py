"""The person-wide revocation marker (revoked:sub) is one value each writer replaces. A password
change made in session A writes ``<time>|A`` (sparing A's tokens); a "sign out everywhere" (or an
admin's MFA reset, or access ended) writes ``<time>``, sparing nothing. Found by an outside probe:
the two at the same moment left the weaker one, and A's offline token working. The change now
holds A's row with the others it ends, and keeps nothing if A has ended meanwhile."""

from __future__ import annotations

import base64
import threading

import pytest

from idp.accounts import services as account_services
from tests.support import PASSWORD, code_flow, make_account, make_client

ADA = "ada@centre.example"
NEW_PASSWORD = "a brand new passphrase 2026"


def _basic(rp) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{rp.client_id}:{rp.client_secret}".encode()).decode()}


def _active(http, rp, tokens) -> tuple[bool, int]:
    seen = http.post("/introspect", data={"token": tokens["access_token"]}, headers=_basic(rp)).get_json()
    info = http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    return seen["active"], info.status_code


@pytest.mark.shared_store
@pytest.mark.parametrize("by", ["sign_out_everywhere", "admin_mfa_reset"])
def test_sign_out_everywhere_during_a_password_change_stops_the_changing_sessions_offline_token(
        mail_app, browser, kit, monkeypatch, by):
    """Attack: session A (an intruder holding the password, with an offline_access grant of a
    service) changes the password; while its request is hashing the new password, the owner in
    session B presses "sign out everywhere" (or the person's admin resets their MFA, which ends
    every session too). Both commit: the sign-out everywhere ends A and writes
    revoked:sub = ``T``; the change, which never re-checks that A still lives, commits after and
    overwrites it with ``T|A``.

    Should: docs/security.md ("Codes and refresh tokens"): "sign out everywhere ... end[s] those
    too, access tokens at once". Session A ended with the sign-out everywhere, so no token of it
    may be spared: A's offline token must be inactive at introspection and refused at UserInfo.
    Happens: the token stays active (the weaker marker overwrote the stronger one)."""
    app = mail_app
    with app.app_context():
        sub = make_account(ADA).sub
        rp = make_client(scope="openid profile offline_access")
    intruder, owner = browser(app), browser(app)
    stolen = code_flow(intruder.http, rp, email=ADA, scope="openid profile offline_access")
    code_flow(owner.http, rp, email=ADA, scope="openid profile")
    assert _active(intruder.http, rp, stolen) == (True, 200)

    real = account_services.passwords.set_password
    done = {}

    def owner_signs_out_everywhere():
        if by == "sign_out_everywhere":
            done["response"] = owner.sign_out(everywhere=True)
        else:  # the person's admin resets their second factor (every way in must end)
            from idp.admin import people
            from idp.extensions import db
            with app.app_context():
                people.reset_mfa(people.operator(), sub, reason="a factor nobody here set up")
                db.session.remove()
            done["response"] = owner.http.get("/account")

    def set_password_while_the_owner_signs_out(*args, **kwargs):
        monkeypatch.setattr(account_services.passwords, "set_password", real)
        other = threading.Thread(target=owner_signs_out_everywhere)
        other.start()
        other.join(timeout=20)
        return real(*args, **kwargs)

    monkeypatch.setattr(account_services.passwords, "set_password", set_password_while_the_owner_signs_out)
    changed = intruder.change_password(PASSWORD, NEW_PASSWORD)
    assert done["response"].status_code in (200, 302) and not owner.signed_in()  # the ending happened
    assert kit.live_sessions(app, ADA) == []  # every session ended, A's included

    assert _active(owner.http, rp, stolen) == (False, 401), changed.status_code
