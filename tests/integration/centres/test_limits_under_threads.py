"""Per-centre limits when many requests arrive at once in one server process (threads), on both
backends: the embedded SQLite default serves with threads too, and SQLite ignores FOR UPDATE, so
the centre is locked there by a write (idp.admin.centres.centre_row). Ten invites for a centre
with one admin give two more admins; ten replacements of the Exams Officer leave exactly one.
(Across processes on PostgreSQL: test_admin_concurrency.py.)"""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from idp.accounts.models import Account
from idp.admin import errors, people
from idp.extensions import db
from tests.support import make_account, make_centre

HOME = "12345"


def _at_once(app, work, times: int) -> list[str]:
    start, outcomes = threading.Barrier(times), []

    def run(n):
        with app.app_context():
            start.wait()
            try:
                work(n)
                outcomes.append("ok")
            except errors.AdminError as exc:
                outcomes.append(type(exc).__name__)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _count(app, role: str) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Account).where(Account.role == role))


def test_ten_invites_at_once_fill_the_admin_places_and_no_more(app):
    with app.app_context():
        make_centre(HOME)
        eo = people.party_of(make_account("eo@centre.example", role="eo", centre=HOME))
        make_account("admin@centre.example", role="admin", centre=HOME)

    def invite(n):
        people.invite(eo, email=f"racer{n}@centre.example", role="admin", centre=HOME,
                      fields={"given_name": "Racer", "family_name": str(n)}, send=None)

    outcomes = _at_once(app, invite, 10)
    assert sorted(outcomes) == ["Denied"] * 8 + ["ok"] * 2, outcomes
    assert _count(app, "admin") == 3


def test_ten_replacements_at_once_leave_exactly_one_exams_officer(app):
    with app.app_context():
        make_centre(HOME)
        make_account("eo@centre.example", role="eo", centre=HOME)

    def replace(n):
        people.replace(people.operator(), role="eo", centre=HOME, email=f"new{n}@centre.example",
                       fields={"given_name": "New", "family_name": str(n)}, send=None)

    outcomes = _at_once(app, replace, 10)
    assert "ok" in outcomes and set(outcomes) <= {"ok", "Conflict", "Denied"}, outcomes
    assert _count(app, "eo") == 1
