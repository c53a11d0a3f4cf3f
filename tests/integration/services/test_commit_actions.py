"""What runs as a transaction commits (extensions.as_it_commits: a revocation written to the store)
and after it (extensions.after_commit): an action that fails before the commit fails the commit,
and runs again when the commit is retried; a rollback forgets both."""

from __future__ import annotations

import pytest

from idp.accounts.models import Account
from idp.extensions import after_commit, as_it_commits, db
from tests.support import make_account


class StoreDown(Exception):
    pass


def test_an_action_failing_as_it_commits_fails_the_commit_and_runs_again_on_a_retry(app):
    ran, after = [], []
    with app.app_context():
        account = make_account("someone@centre.example")
        account.given_name = "Changed"
        failures = iter([StoreDown()])

        def revoke():
            failure = next(failures, None)
            if failure is not None:
                raise failure
            ran.append("revoked")

        as_it_commits(revoke)
        after_commit(lambda: after.append("told"))
        with pytest.raises(StoreDown):
            db.session.commit()
        assert ran == [] and after == []
        db.session.commit()  # the same change, tried again: the action runs first
        assert ran == ["revoked"] and after == ["told"]
    with app.app_context():
        assert db.session.query(Account).filter_by(email_key="someone@centre.example").one().given_name == "Changed"


def test_a_rollback_forgets_what_was_to_run(app):
    ran = []
    with app.app_context():
        make_account("someone@centre.example").given_name = "Rolled back"
        db.session.flush()  # a transaction under way, as when a revocation is asked for
        as_it_commits(lambda: ran.append("before"))
        after_commit(lambda: ran.append("after"))
        db.session.rollback()
        db.session.commit()
    assert ran == []


def test_a_failing_action_commits_nothing(app):
    with app.app_context():
        make_account("someone@centre.example")
        account = db.session.query(Account).filter_by(email_key="someone@centre.example").one()
        account.given_name = "Never"

        def down():
            raise StoreDown()

        as_it_commits(down)
        with pytest.raises(StoreDown):
            db.session.commit()
        db.session.rollback()
    with app.app_context():
        assert db.session.query(Account).filter_by(email_key="someone@centre.example").one().given_name != "Never"
