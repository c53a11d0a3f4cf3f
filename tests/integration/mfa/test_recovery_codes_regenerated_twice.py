"""Recovery codes regenerated from two tabs at once: one set is left working (found by an outside
probe: both were, twenty codes)."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import create_engine, select, text

from idp.accounts.models import Account
from idp.extensions import db
from idp.mfa.models import RecoveryCode
from tests.support import _csrf, make_account, sign_in, wait_for_lock_waiters

EMAIL = "eo@centre.example"


def _codes_of(page: str) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", page)


def _live_codes(app) -> int:
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.email_key == Account.key_for(EMAIL)))
        return len(list(db.session.scalars(select(RecoveryCode.id).where(
            RecoveryCode.account_id == account.id, RecoveryCode.used_at.is_(None)))))


@pytest.mark.shared_store
def test_two_regenerations_at_once_leave_only_one_set_live(app, settings):
    """Attack: one person regenerates their recovery codes in two tabs (or two workers) at the same
    moment, e.g. because they think a set leaked and press the button twice.

    Should: "New codes; every old one stops working" (idp/mfa/recovery.py) and docs/security.md
    (recovery codes are one-time; "regenerating recovery codes: old ones must stop at once, across
    processes"). After two regenerations exactly one set of ``[mfa] recovery_codes`` codes is live,
    and the set shown by the earlier of the two no longer works.

    Happens: ``regenerate_recovery_codes`` holds no row (unlike adding/removing a method, which
    hold the account row). Each request's DELETE sees only the rows that existed when it started,
    so the second DELETE does not see the first's new rows: both sets stay live (20 codes), and
    the set the person was shown first (and may have thrown away as superseded) still signs in.

    The race is made deterministic by holding the old rows' locks from a third connection until
    both requests are waiting on them."""
    with app.app_context():
        make_account(EMAIL)
    http = app.test_client()
    assert sign_in(http).status_code == 303
    csrf = _csrf(http.get("/account/mfa").get_data(as_text=True))
    first = http.post("/account/mfa/recovery-codes", data={"csrf_token": csrf, "action": "regenerate"})
    assert first.status_code == 200, first.status_code
    wanted = len(_codes_of(first.get_data(as_text=True)))
    assert wanted >= 1 and _live_codes(app) == wanted

    tabs = []
    for _ in range(2):
        tab = app.test_client()
        for cookie in http._cookies.values():
            tab.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
        tabs.append(tab)

    locker = create_engine(settings.database.url)
    shown: list[list[str]] = []
    with locker.connect() as conn:
        trans = conn.begin()
        conn.execute(text("SELECT id FROM recovery_codes FOR UPDATE")).all()

        def regenerate(tab):
            answer = tab.post("/account/mfa/recovery-codes", data={"csrf_token": csrf, "action": "regenerate"})
            shown.append(_codes_of(answer.get_data(as_text=True)) if answer.status_code == 200 else [])

        threads = [threading.Thread(target=regenerate, args=(tab,)) for tab in tabs]
        for thread in threads:
            thread.start()
        wait_for_lock_waiters(conn, "DELETE FROM recovery_codes%", 2)
        trans.rollback()
    for thread in threads:
        thread.join(timeout=60)
    locker.dispose()
    assert len(shown) == 2 and all(len(s) == wanted for s in shown), shown
    assert _live_codes(app) == wanted, f"{_live_codes(app)} recovery codes live after two regenerations"
