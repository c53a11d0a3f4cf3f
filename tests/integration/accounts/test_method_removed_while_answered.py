"""A second-factor method removed in My account while someone is answering with it at sign-in:
the answer is refused as one for a method the account no longer has, never a 500 (found by an
outside probe: its last use was written to the removed row)."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import create_engine, select, text

from idp.accounts.models import SsoSession
from idp.extensions import db
from idp.mfa.models import MfaMethod
from tests.support import PASSWORD, _csrf, make_account, sign_in, wait_for_lock_waiters

EMAIL = "eo@centre.example"


def _with_email_method(app) -> tuple[str, str]:
    with app.app_context():
        account = make_account(EMAIL)
        method = MfaMethod(account_id=account.id, kind="email", preferred=False)
        db.session.add(method)
        db.session.commit()
        return account.id, method.id


def _to_challenge(http):
    page = http.get("/signin")
    step = http.post("/signin", data={"email": EMAIL, "csrf_token": _csrf(page.get_data(as_text=True))})
    page = http.get(step.location)
    step = http.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})
    assert step.status_code == 303 and step.location.endswith("/signin/mfa"), step.location
    return step


def _sessions(app, account_id) -> int:
    with app.app_context():
        return len(list(db.session.scalars(select(SsoSession.sid).where(
            SsoSession.account_id == account_id, SsoSession.ended_at.is_(None)))))


@pytest.mark.shared_store
def test_an_email_method_removed_while_its_code_is_being_checked(mail_app, smtp, kit):
    """Attack: someone (with the password) is at the second-factor challenge of a sign-in,
    answering with the account's emailed code; at that moment the owner, signed in elsewhere,
    removes the email method in My account ("removing a method while it is being used to sign in
    elsewhere").

    Should: the answer is judged against the methods the account has (docs/security.md "No
    session, and so no token, without a passed second factor"; DESIGN §5: never a 500): a method
    removed is not passed with, and the page answers with an error a person can act on, not a
    500; no session starts.

    Happens: ``verify_answer`` reads the method before taking its budget slot, then sets the
    removed method's ``last_used_at`` and commits: SQLAlchemy's UPDATE of a row gone fails
    (StaleDataError) and the challenge answers 500.

    Deterministic: the answer is held at its budget slot (a lock on its attempt-counter row from a
    third connection) while the removal commits."""
    app = mail_app
    account_id, email_method = _with_email_method(app)
    owner = app.test_client()
    assert sign_in(owner).status_code == 303
    before = _sessions(app, account_id)

    other = app.test_client()
    challenge = _to_challenge(other)
    page = other.get(challenge.location + f"?method={email_method}").get_data(as_text=True)
    sent = other.post("/signin/mfa", data={"csrf_token": _csrf(page), "action": "send", "kind": "email",
                                           "method_id": email_method})
    assert sent.status_code == 200, sent.status_code
    code = re.search(r"sign-in code is: (\d+)", smtp.take(EMAIL, "Your sign-in code").text).group(1)
    csrf_other = _csrf(sent.get_data(as_text=True))

    locker = create_engine(app.config["IDP_SETTINGS"].database.url)
    answers = []
    with locker.connect() as conn:
        trans = conn.begin()
        assert conn.execute(text("SELECT key FROM attempt_counters WHERE key = :k FOR UPDATE"),
                            {"k": f"mfa:{account_id}"}).all()

        def answer():
            try:
                answers.append(other.post("/signin/mfa", data={"csrf_token": csrf_other, "kind": "email",
                                                               "method_id": email_method, "code": code}))
            except Exception as exc:  # TESTING propagates what would be a 500
                answers.append(exc)

        thread = threading.Thread(target=answer)
        thread.start()
        wait_for_lock_waiters(conn, "%attempt_counters%", 1)
        csrf_owner = _csrf(owner.get("/account/mfa").get_data(as_text=True))
        removed = owner.post(f"/account/mfa/{email_method}/remove", data={"csrf_token": csrf_owner})
        assert removed.status_code == 303 and removed.location.endswith("/account/mfa"), removed.location
        trans.rollback()
    thread.join(timeout=60)
    locker.dispose()
    with app.app_context():
        assert db.session.get(MfaMethod, email_method) is None  # the removal went through
    assert answers, "no answer"
    assert not isinstance(answers[0], Exception), f"the challenge failed (a 500): {answers[0]!r}"
    assert answers[0].status_code != 500, "the challenge answered 500"
    assert not (answers[0].status_code == 303 and answers[0].location.endswith("/account"))
    assert _sessions(app, account_id) == before, "a session started with a removed method"
