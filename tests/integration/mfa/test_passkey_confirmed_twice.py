"""One passkey confirmed from two My account tabs at once: one is added, the other tab is told it
is already registered (found by an outside probe: the second was a 500 on the unique index)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, select, text

from idp.accounts.models import Account
from idp.extensions import db
from idp.mfa.models import MfaMethod
from tests.support import _csrf, make_account, sign_in, wait_for_lock_waiters
from tests.webauthn_soft import SoftAuthenticator

EMAIL = "eo@centre.example"


@pytest.mark.shared_store
def test_one_security_key_confirmed_in_two_tabs_at_once(app, settings):
    """Attack: the person adds the same security key from two tabs of My account at once (two
    set-up pages, each with its own ceremony; the key answers both with its one credential), or
    replays the browser's answer into a second ceremony.

    Should: one method is added and the other tab is told "This passkey or security key is
    already registered." (``confirm_webauthn``); DESIGN §5: "never a 500 or a stack trace".

    Happens: the duplicate check runs before the account row is held (``_add`` holds it later),
    so both copies pass it; the second then waits on the row, inserts the same ``credential_id``
    and its commit fails on the unique index: an unhandled IntegrityError (a 500).

    Deterministic: the account row is held from a third connection until both copies wait on it."""
    with app.app_context():
        make_account(EMAIL)
        account_id = db.session.scalar(select(Account.id).where(Account.email_key == Account.key_for(EMAIL)))
    http = app.test_client()
    assert sign_in(http).status_code == 303
    tabs = []
    for _ in range(2):
        tab = app.test_client()
        for cookie in http._cookies.values():
            tab.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
        tabs.append(tab)
    key = SoftAuthenticator(origin="http://localhost", rp_id="localhost")
    posts = []
    for tab in tabs:
        page = tab.get("/account/mfa/add/webauthn").get_data(as_text=True)
        options = page.split('id="webauthn-options">', 1)[1].split("</script>", 1)[0]
        ceremony = page.split('name="ceremony" value="', 1)[1].split('"', 1)[0]
        posts.append((tab, {"ceremony": ceremony, "credential": key.create(options), "label": "Key",
                            "csrf_token": _csrf(page)}))

    locker = create_engine(settings.database.url)
    answers = []
    with locker.connect() as conn:
        trans = conn.begin()
        conn.execute(text("SELECT id FROM accounts WHERE id = :i FOR NO KEY UPDATE"), {"i": account_id}).all()

        def confirm(tab, data):
            try:
                answers.append(tab.post("/account/mfa/add/webauthn", data=data).status_code)
            except Exception as exc:  # TESTING propagates what would be a 500
                answers.append(repr(exc)[:200])

        threads = [threading.Thread(target=confirm, args=pair) for pair in posts]
        for thread in threads:
            thread.start()
        wait_for_lock_waiters(conn, "%FROM accounts%FOR NO KEY UPDATE%", 2)
        trans.rollback()
    for thread in threads:
        thread.join(timeout=60)
    locker.dispose()
    with app.app_context():
        keys = list(db.session.scalars(select(MfaMethod.id).where(MfaMethod.account_id == account_id,
                                                                  MfaMethod.label == "Key")))
    assert len(keys) == 1, keys
    assert all(isinstance(a, int) and a < 500 for a in answers), answers
