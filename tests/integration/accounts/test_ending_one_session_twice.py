"""Where you are signed in: ending another of one's own sessions, copies sent at once: it ends
once, audited once; the other copy is told it has already ended (found by an outside probe)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, select, text

from idp.accounts.models import Account, SsoSession
from idp.audit import AuditEvent
from idp.extensions import db
from tests.support import _csrf, make_account, sign_in, wait_for_lock_waiters

EMAIL = "eo@centre.example"


@pytest.mark.shared_store
def test_copies_of_ending_one_session_end_it_once(app, settings):
    """Attack: the person presses "Sign out" on another browser's line of "Where you are signed
    in" twice (a double click, two tabs, a retried POST), the copies arriving at once.

    Should: ``end_own_session``: "Someone else's session, an ended one and an unknown id get the
    same refusal" ("That sign-in has already ended."); one sign-out is made and audited once, as
    ``sign_out_at_logout`` audits only the endings it made (``if sessions.end(entry)``).

    Happens: both copies find the session live before either holds its row; the second then finds
    it ended (``sessions.end`` returns False) but ignores that: it flashes "You have signed out
    of ..." and writes a second ``session.ended`` audit row for a sign-out it did not make.

    Deterministic: the session's row is held from a third connection until both copies wait on it."""
    with app.app_context():
        make_account(EMAIL)
    here, there = app.test_client(), app.test_client()
    assert sign_in(there).status_code == 303
    assert sign_in(here).status_code == 303
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.email_key == Account.key_for(EMAIL)))
        sessions = list(db.session.scalars(select(SsoSession).where(SsoSession.account_id == account.id)
                                           .order_by(SsoSession.created_at)))
        target_sid, target_hash, sub = sessions[0].sid, sessions[0].id_hash, account.sub
    csrf = _csrf(here.get("/account").get_data(as_text=True))
    tabs = []
    for _ in range(2):
        tab = app.test_client()
        for cookie in here._cookies.values():
            tab.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
        tabs.append(tab)

    locker = create_engine(settings.database.url)
    answers = []
    with locker.connect() as conn:
        trans = conn.begin()
        conn.execute(text("SELECT id_hash FROM sso_sessions WHERE id_hash = :h FOR UPDATE"), {"h": target_hash}).all()

        def end(tab):
            answers.append(tab.post("/account/sessions/end", data={"csrf_token": csrf, "sid": target_sid}))

        threads = [threading.Thread(target=end, args=(tab,)) for tab in tabs]
        for thread in threads:
            thread.start()
        wait_for_lock_waiters(conn, "%sso_sessions%", 2)
        trans.rollback()
    for thread in threads:
        thread.join(timeout=60)
    locker.dispose()
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.event == "session.ended",
                                                                AuditEvent.subject == sub)))
        ended = [r for r in rows if (r.details or {}).get("sid") == target_sid and r.outcome != "denied"]
    statuses = sorted(a.status_code for a in answers)
    assert len(ended) == 1, f"{len(ended)} session.ended audit rows for one sign-out"
    assert statuses == [303, 400], f"both copies answered as if they signed it out: {statuses}"
