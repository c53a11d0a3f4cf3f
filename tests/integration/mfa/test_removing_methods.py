"""Removing second-factor methods in My account: never the last one, even when every method is
removed at once from several tabs (each removal counts what the others left; none is a 500), and
the preferred one moves to what is left."""

from __future__ import annotations

import threading

from idp.extensions import db
from idp.mfa.models import MfaMethod
from tests.support import _csrf, add_totp, make_account, sign_in


def _two_methods(app, email: str) -> list[str]:
    """A person with a passkey (preferred: the sign-in helper answers it) and an authenticator app."""
    with app.app_context():
        account = make_account(email)
        add_totp(account)
        db.session.flush()
        for method in db.session.query(MfaMethod).filter_by(account_id=account.id):
            method.preferred = method.kind != "totp"
        db.session.commit()
        return [m.id for m in db.session.query(MfaMethod).filter_by(account_id=account.id)]


def _left(app, email: str) -> list[MfaMethod]:
    from idp.accounts.models import Account

    with app.app_context():
        account = db.session.query(Account).filter_by(email_key=email).one()
        return [(m.kind, m.preferred) for m in db.session.query(MfaMethod).filter_by(account_id=account.id)]


def _signed_in(app, email: str):
    http = app.test_client()
    assert sign_in(http, email).status_code == 303
    return http, _csrf(http.get("/account/mfa").get_data(as_text=True))


def test_the_last_method_cannot_be_removed_and_the_preferred_moves(app):
    email = "two@centre.example"
    ids = _two_methods(app, email)
    passkey = _passkey_id(app, email)
    app_method = next(i for i in ids if i != passkey)
    http, csrf = _signed_in(app, email)
    assert http.post(f"/account/mfa/{passkey}/remove", data={"csrf_token": csrf}).status_code == 303
    assert _left(app, email) == [("totp", True)]
    refused = http.post(f"/account/mfa/{app_method}/remove", data={"csrf_token": csrf}, follow_redirects=True)
    assert "You cannot remove your only sign-in method" in refused.get_data(as_text=True)
    assert _left(app, email) == [("totp", True)]


def _passkey_id(app, email: str) -> str:
    from idp.accounts.models import Account

    with app.app_context():
        account = db.session.query(Account).filter_by(email_key=email).one()
        return db.session.query(MfaMethod).filter_by(account_id=account.id, kind="webauthn").one().id


def test_every_method_removed_at_once_leaves_one(app):
    """Two tabs, each removing one of the two methods at the same moment, several times over: one
    removal goes through and the other is refused, never both, never a 500."""
    for round_ in range(5):
        email = f"race{round_}@centre.example"
        ids = _two_methods(app, email)
        http, csrf = _signed_in(app, email)
        tabs = []
        for _ in ids:
            tab = app.test_client()
            for cookie in http._cookies.values():
                tab.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
            tabs.append(tab)
        start, answers = threading.Barrier(len(ids)), []

        def remove(tab, method_id):
            start.wait()
            answers.append(tab.post(f"/account/mfa/{method_id}/remove", data={"csrf_token": csrf}).status_code)

        threads = [threading.Thread(target=remove, args=pair) for pair in zip(tabs, ids, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert answers == [303, 303], answers  # the refusal is a message on the page, not an error
        left = _left(app, email)
        assert len(left) == 1 and left[0][1] is True, (round_, left)


def test_an_id_no_method_could_have_is_not_found(app):
    """A NUL, another control character or a very long id in the path is a method that is not
    there (PostgreSQL refuses a NUL in a query outright: that was a 500), and nothing changes."""
    _two_methods(app, "odd@centre.example")
    http, csrf = _signed_in(app, "odd@centre.example")
    for method_id in ("%00", "a%00b", "a%0Ab", "x" * 200):
        for action in ("remove", "preferred"):
            answer = http.post(f"/account/mfa/{method_id}/{action}", data={"csrf_token": csrf})
            assert answer.status_code == 303, (method_id, action, answer.status_code)
            assert "That sign-in method was not found." in http.get(answer.location).get_data(as_text=True)
    assert sorted(_left(app, "odd@centre.example")) == [("totp", False), ("webauthn", True)]
