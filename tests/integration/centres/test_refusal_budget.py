"""An actor's refused administrative actions are audited up to a budget per window
(``[rate_limits] refused_admin_actions_per_account``), counted per account in the store: a script
holding one account's session cannot bury the audit trail under refusals, sent one after another
or all at once. Past the budget every action is still refused, one row says so, and the rest are
not recorded one by one; another account's refusals, and the actor's allowed actions, are not
touched. A store out of reach records every refusal (it fails towards the trail, never silence)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from idp import policy
from idp.admin import errors, people
from idp.audit import AuditEvent
from idp.extensions import db
from idp.store import StoreUnavailable
from tests.support import make_account, make_centre

HOME, OTHER = "12345", "54321"
BUDGET = 30  # policies/security.toml: "30 per 10 minutes"


@pytest.fixture
def actors(app):
    with app.app_context():
        make_centre(HOME)
        make_centre(OTHER)
        eo = make_account("eo@home.example", role="eo", centre=HOME).sub
        other = make_account("eo@other.example", role="eo", centre=OTHER).sub
    return eo, other


def _refused_invite(app, sub: str, n: int) -> None:
    """An Exams Officer asking for a board staff account: always refused by the role rules."""
    with app.app_context():
        actor = people.party_of(people.account_by_sub(sub))
        with pytest.raises(errors.Denied):
            people.invite(actor, email=f"probe{n}@home.example", role="board", centre=None,
                          fields={"given_name": "Probe", "family_name": str(n)}, send=None)
        db.session.remove()


def _rows(app, sub: str) -> dict[str, int]:
    with app.app_context():
        query = select(AuditEvent.event, func.count()).where(AuditEvent.actor == sub,
                                                             AuditEvent.outcome == "denied")
        return dict(db.session.execute(query.group_by(AuditEvent.event)).all())


def test_the_budget_is_the_policys(app):
    with app.app_context():
        limit = policy.current().sec("rate_limits").refused_admin_actions_per_account
    assert limit == f"{BUDGET} per 10 minutes"


def test_refusals_past_the_budget_are_refused_and_one_row_stands_for_them(app, actors):
    eo, other = actors
    for n in range(BUDGET + 10):
        _refused_invite(app, eo, n)
    assert _rows(app, eo) == {"account.invited": BUDGET, errors.REFUSALS_UNRECORDED: 1}
    with app.app_context():
        marker = db.session.scalar(select(AuditEvent).where(AuditEvent.event == errors.REFUSALS_UNRECORDED))
        assert marker.details["first_unrecorded"] == "account.invited"
        assert f"more than {BUDGET} refused actions" in marker.details["reason"]

    # another account's budget is its own
    _refused_invite(app, other, 0)
    assert _rows(app, other) == {"account.invited": 1}

    # and what the actor may do is still done, and audited
    with app.app_context():
        actor = people.party_of(people.account_by_sub(eo))
        people.invite(actor, email="real.person@home.example", role="user", centre=HOME,
                      fields={"given_name": "Real", "family_name": "Person"}, send=None)
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.actor == eo, AuditEvent.event == "account.invited", AuditEvent.outcome == "success")) == 1


def test_refusals_sent_all_at_once_keep_to_the_budget(app, actors):
    eo, _ = actors
    threads, start = 8, threading.Barrier(8)
    failures = []

    def run(worker):
        start.wait()
        for n in range(6):
            try:
                _refused_invite(app, eo, worker * 10 + n)
            except BaseException as exc:  # noqa: BLE001 - reported below, as a server's 500 would be
                failures.append(repr(exc))

    running = [threading.Thread(target=run, args=(w,)) for w in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(timeout=60)
    assert not failures, failures
    assert _rows(app, eo) == {"account.invited": BUDGET, errors.REFUSALS_UNRECORDED: 1}


def test_a_store_out_of_reach_records_every_refusal(app, actors, monkeypatch):
    eo, _ = actors

    def unreachable(*_args, **_kwargs):
        raise StoreUnavailable("down")

    monkeypatch.setattr(errors.REFUSALS, "incr", unreachable)
    for n in range(BUDGET + 3):
        _refused_invite(app, eo, n)
    assert _rows(app, eo) == {"account.invited": BUDGET + 3}
