"""A statement the database refuses (a constraint, not an outage) is the provider's own fault: the
person or client gets the ordinary "internal error" answer (500, a page or an OAuth error, no
trace), the transaction is abandoned, and the app goes on serving. Not a 503 (nothing to wait
for), and never an error handler calling itself until the stack runs out."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from idp.accounts.models import Account
from idp.extensions import db
from tests.support import make_account


def _duplicate_account():
    db.session.add(Account(email="eo@centre.example", given_name="A", family_name="B", role="user"))  # no email_key
    db.session.flush()


def test_a_refused_statement_is_a_500_and_the_app_goes_on(app, client):
    with app.app_context():
        make_account("eo@centre.example")

    @app.get("/_test/duplicate")
    def duplicate():
        _duplicate_account()
        return "unreachable"

    page = client.get("/_test/duplicate")
    assert page.status_code == 500
    body = page.get_data(as_text=True)
    assert "Traceback" not in body and "IntegrityError" not in body and "UNIQUE" not in body.upper()
    answer = client.get("/_test/duplicate", headers={"Accept": "application/json"})
    assert answer.status_code == 500 and "Traceback" not in answer.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(Account).count() == 1
    assert client.get("/.well-known/openid-configuration").status_code == 200


def test_the_refusal_really_is_an_integrity_error(app):
    """The test above is about this kind of error: make sure the route raises it."""
    with app.app_context():
        make_account("eo@centre.example")
        try:
            _duplicate_account()
        except IntegrityError:
            db.session.rollback()
        else:
            raise AssertionError("no IntegrityError")
