"""An authorization code lives in the store; the session it was issued in, its end and the grant
it makes live in the database. Where the two meet, a code must give nothing that outlives what
ended it (found by an outside probe):

- a code issued a moment before "sign out everywhere" (or a password reset, or an MFA reset) and
  redeemed a moment after gives nothing: its session has ended;
- a code sent again while its first redemption is committing revokes that redemption's refresh
  token too (the replay writes the grant's marker before revoking the rows it can see; the first
  redemption looks for the marker once it has committed)."""

from __future__ import annotations

import threading

from tests.support import _csrf, authorize, exchange, make_account, make_client, query, token_request

EO = "eo@centre.example"


def _code(app, rp, scope="openid offline_access"):
    browser = app.test_client()
    response, verifier = authorize(browser, rp, email=EO, scope=scope)
    return browser, query(response.location)["code"], verifier


def test_a_code_issued_before_sign_out_everywhere_gives_nothing_after_it(app):
    with app.app_context():
        make_account(EO)
        rp = make_client(scope="openid email offline_access")
    browser, code, verifier = _code(app, rp)
    page = browser.get("/account").get_data(as_text=True)
    assert browser.post("/signout", data={"everywhere": "1", "csrf_token": _csrf(page)}).status_code == 200

    answer = exchange(app.test_client(), rp, code, verifier)
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_grant", answer.get_json()


def test_a_code_issued_before_a_password_reset_gives_nothing_after_it(app):
    from idp.accounts import access
    from idp.accounts.models import Account
    from idp.extensions import db

    with app.app_context():
        make_account(EO)
        rp = make_client(scope="openid email offline_access")
    _browser, code, verifier = _code(app, rp)
    with app.app_context():  # what a reset, an MFA reset or access ended by someone does
        access.end_access(db.session.query(Account).filter_by(email_key=EO).one())
        db.session.commit()

    answer = exchange(app.test_client(), rp, code, verifier)
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_grant", answer.get_json()


def test_a_code_still_works_while_its_session_lasts(app):
    with app.app_context():
        make_account(EO)
        rp = make_client(scope="openid email offline_access")
    _browser, code, verifier = _code(app, rp)
    assert exchange(app.test_client(), rp, code, verifier).status_code == 200


def test_a_code_replayed_while_its_first_redemption_commits_ends_that_redemptions_tokens(app, monkeypatch):
    from idp.oidc import tokens

    with app.app_context():
        make_account(EO)
        rp = make_client(scope="openid email offline_access")
    _browser, code, verifier = _code(app, rp)

    inserted, replayed = threading.Event(), threading.Event()
    real = tokens.save_refresh_token

    def save_then_wait_for_the_replay(*args, **kwargs):
        real(*args, **kwargs)
        inserted.set()
        replayed.wait(timeout=3)  # (SQLite: the replay waits for this transaction's write lock instead)

    monkeypatch.setattr(tokens, "save_refresh_token", save_then_wait_for_the_replay)
    first = {}
    redeem = threading.Thread(target=lambda: first.setdefault("answer", exchange(app.test_client(), rp, code,
                                                                                 verifier)))
    redeem.start()
    assert inserted.wait(timeout=10)
    replay = exchange(app.test_client(), rp, code, verifier)
    replayed.set()
    redeem.join(timeout=30)
    monkeypatch.undo()

    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    issued = first["answer"]
    assert issued.status_code == 400 and issued.get_json()["error"] == "invalid_grant", issued.get_json()
    with app.app_context():
        from sqlalchemy import select

        from idp.extensions import db
        from idp.oidc.models import RefreshToken

        assert db.session.scalars(select(RefreshToken.revoked_at)).all() and \
            None not in db.session.scalars(select(RefreshToken.revoked_at)).all()


def test_a_refresh_token_of_a_replayed_code_does_not_refresh(app):
    """The plain case, for contrast: a code sent twice in turn ends its refresh token."""
    with app.app_context():
        make_account(EO)
        rp = make_client(scope="openid email offline_access")
    _browser, code, verifier = _code(app, rp)
    issued = exchange(app.test_client(), rp, code, verifier).get_json()
    assert exchange(app.test_client(), rp, code, verifier).status_code == 400
    refresh = token_request(app.test_client(), rp, {"grant_type": "refresh_token",
                                                    "refresh_token": issued["refresh_token"]})
    assert refresh.status_code == 400
