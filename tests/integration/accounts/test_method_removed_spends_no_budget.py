"""A right answer for a method removed while it is checked is refused as one for a method the
account no longer has, and spends nothing of the failure budget, as the same refusal made one
request after the other does (found by an outside probe: it counted as a wrong answer, and at the
budget's last slot locked the account)."""

from __future__ import annotations

import re
import threading
import time

import pytest
from sqlalchemy import create_engine, text

from idp import policy
from idp.accounts import lockout
from idp.accounts.models import AttemptCounter
from idp.extensions import db
from idp.mfa.models import MfaMethod
from tests.support import PASSWORD, _csrf, make_account, sign_in, wait_for_lock_waiters

EMAIL = "eo@centre.example"


def _to_challenge(http):
    page = http.get("/signin")
    step = http.post("/signin", data={"email": EMAIL, "csrf_token": _csrf(page.get_data(as_text=True))})
    page = http.get(step.location)
    step = http.post(step.location, data={"password": PASSWORD, "csrf_token": _csrf(page.get_data(as_text=True))})
    assert step.status_code == 303 and step.location.endswith("/signin/mfa"), step.location
    return step


@pytest.mark.shared_store
def test_a_right_code_for_a_method_removed_meanwhile_does_not_spend_the_budget(mail_app, smtp, kit):
    app = mail_app
    with app.app_context():
        account = make_account(EMAIL)
        method = MfaMethod(account_id=account.id, kind="email", preferred=False)
        db.session.add(method)
        db.session.commit()
        account_id, email_method = account.id, method.id
        max_failures = policy.current().sec("mfa").max_failures
    owner = app.test_client()
    assert sign_in(owner).status_code == 303

    other = app.test_client()
    challenge = _to_challenge(other)
    page = other.get(challenge.location + f"?method={email_method}").get_data(as_text=True)
    sent = other.post("/signin/mfa", data={"csrf_token": _csrf(page), "action": "send", "kind": "email",
                                           "method_id": email_method})
    assert sent.status_code == 200, sent.status_code
    code = re.search(r"sign-in code is: (\d+)", smtp.take(EMAIL, "Your sign-in code").text).group(1)
    csrf_other = _csrf(sent.get_data(as_text=True))

    # earlier wrong answers: one slot of the budget is left
    with app.app_context():
        key = f"mfa:{account_id}"
        row = db.session.get(AttemptCounter, key)
        if row is None:
            db.session.add(AttemptCounter(key=key, failures=max_failures - 1, locked_until=None,
                                          updated_at=int(time.time())))
        else:
            row.failures = max_failures - 1
        db.session.commit()

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
            except Exception as exc:
                answers.append(exc)

        thread = threading.Thread(target=answer)
        thread.start()
        wait_for_lock_waiters(conn, "%attempt_counters%", 1)
        csrf_owner = _csrf(owner.get("/account/mfa").get_data(as_text=True))
        removed = owner.post(f"/account/mfa/{email_method}/remove", data={"csrf_token": csrf_owner})
        assert removed.status_code == 303, removed.status_code
        trans.rollback()
    thread.join(timeout=60)
    locker.dispose()
    with app.app_context():
        assert db.session.get(MfaMethod, email_method) is None  # the removal went through
    assert answers and not isinstance(answers[0], Exception), answers
    assert answers[0].status_code != 500
    # the answer was right: refusing it as "not found" must not count as a wrong guess, let alone lock
    with app.app_context():
        locked = lockout.locked_until(EMAIL)
        failures = db.session.get(AttemptCounter, f"mfa:{account_id}").failures
    reasons = [e.details.get("reason") if isinstance(getattr(e, "details", None), dict) else None
               for e in kit.audit_events(app, "signin.mfa")]
    assert "bad_code" not in reasons, reasons  # the code itself was right
    assert locked is None, f"the account was locked by a right answer (failures={failures})"
    assert failures <= max_failures - 1, f"a right answer was counted as a failure ({failures})"
