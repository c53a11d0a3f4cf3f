"""Two people confirming a change to the same new address at the same moment (or the address
invited meanwhile): the database's unique key refuses the second, and the person is told the
address is taken (a Conflict the page shows), never a 500."""

from __future__ import annotations

import time

import pytest

from idp.admin import errors, people
from idp.extensions import db
from tests.support import make_account


def test_an_address_taken_at_the_same_moment_is_a_conflict(app, monkeypatch):
    with app.app_context():
        me = make_account("me@centre.example", role="user", mfa=False)
        make_account("taken@centre.example", role="user", mfa=False)
        # the other change commits between this one's check and its write: the check does not see it
        real = db.session.scalar
        monkeypatch.setattr(db.session, "scalar",
                            lambda statement, *a, **k: None if "email_key" in str(statement) else real(statement, *a, **k))
        monkeypatch.setattr(people.OWN_EMAIL_CHANGES, "get", lambda _id: "taken@centre.example")
        monkeypatch.setattr(people.codes, "check", lambda *_a: True)

        class Entry:  # a session whose second factor was passed just now
            account, sid, mfa_at = me, None, int(time.time())

        with pytest.raises(errors.Conflict):
            people.confirm_own_email_change(Entry, "123456")
        monkeypatch.undo()
        assert people.account_by_sub(me.sub).email == "me@centre.example"
