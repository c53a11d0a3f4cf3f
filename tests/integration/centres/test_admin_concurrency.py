"""Per-centre limits under real concurrency: two OS processes, each with its own app (its own
connection pool) on the same PostgreSQL database, act at the same moment (a Barrier).

- inviting the 3rd and the 4th admin of a centre at once: exactly one succeeds, the other is
  refused with the limit's reason (invited admins count);
- two board staff replacing the same centre's EO at once: exactly one EO afterwards.

SQLite serialises writers within one process only, so this runs on PostgreSQL alone.
"""

from __future__ import annotations

import multiprocessing
import traceback

import pytest
from sqlalchemy import func, select

from idp import create_app, policy
from idp.accounts.models import Account
from idp.admin import centres as admin_centres
from idp.admin import errors as admin_errors
from idp.admin import people
from idp.centres.models import Centre
from idp.extensions import db

ROUNDS = 4
TIMEOUT = 120


def _worker(settings, barrier, results, name: str, jobs: list) -> None:
    """One process: build an app, then for each job wait for the other process and act."""
    try:
        app = create_app(settings)
        with app.app_context():
            from idp.accounts import passwords

            passwords.hash_password("warm-up")  # pay argon2 and imports before the race
            for job in jobs:
                if job["kind"] == "invite":
                    eo = db.session.scalar(select(Account).where(Account.email_key == job["eo_email"]))
                    actor = people.party_of(eo)
                else:
                    actor = people.operator()
                db.session.commit()  # nothing open while waiting
                barrier.wait(timeout=TIMEOUT)
                try:
                    if job["kind"] == "invite":
                        people.invite(actor, email=job["email"], role="admin", centre=job["centre"],
                                        fields={"given_name": name, "family_name": "Racer"}, send=None)
                    else:
                        people.replace(actor, role="eo", centre=job["centre"], email=job["email"],
                                         fields={"given_name": name, "family_name": "Officer"}, send=None)
                except admin_errors.AdminError as exc:
                    db.session.rollback()
                    results.put((job["round"], name, type(exc).__name__, exc.message))
                else:
                    results.put((job["round"], name, "ok", job["email"]))
        app.extensions["idp.db"].dispose()
    except Exception:  # report, never hang the parent
        results.put((-1, name, "crash", traceback.format_exc()))
        barrier.abort()


def _race(settings, jobs_a: list, jobs_b: list) -> dict:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(settings, barrier, results, name, jobs))
             for name, jobs in (("A", jobs_a), ("B", jobs_b))]
    for p in procs:
        p.start()
    outcomes: dict[int, dict[str, tuple]] = {}
    try:
        for _ in range(len(jobs_a) + len(jobs_b)):
            rnd, name, kind, detail = results.get(timeout=TIMEOUT)
            assert kind != "crash", f"process {name} crashed:\n{detail}"
            outcomes.setdefault(rnd, {})[name] = (kind, detail)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()  # only the processes this test started
                p.join()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return outcomes


# cross-process row locking is a PostgreSQL matter; SQLite serves one process
pytestmark = pytest.mark.shared_store


@pytest.fixture
def pg_settings(backend, make_settings):
    return make_settings()


@pytest.fixture
def parent_app(pg_settings):
    app = create_app(pg_settings)
    with app.app_context():
        yield app
    app.extensions["idp.db"].dispose()
    app.extensions["idp.store"].close()


def _centre_with_eo_and_admins(number: str, admins: int) -> str:
    op = people.operator()
    admin_centres.create_centre(op, number, f"Race {number}")
    eo_email = f"eo-{number}@centre.example"
    eo = people.invite(op, email=eo_email, role="eo", centre=number,
                         fields={"given_name": "Eve", "family_name": "Officer"}, send=None).account
    eo.status = "active"
    db.session.commit()
    for n in range(admins):
        people.invite(people.party_of(eo), email=f"admin{n}-{number}@centre.example", role="admin",
                        centre=number, fields={"given_name": "Ad", "family_name": "Min"}, send=None)
    return eo_email


def test_third_and_fourth_admin_at_the_same_moment(pg_settings, parent_app):
    jobs_a, jobs_b = [], []
    for rnd in range(ROUNDS):
        number = f"3{rnd:04d}"
        eo_email = _centre_with_eo_and_admins(number, admins=2)  # invited ones count
        common = {"kind": "invite", "round": rnd, "centre": number, "eo_email": eo_email}
        jobs_a.append({**common, "email": f"a{rnd}@centre.example"})
        jobs_b.append({**common, "email": f"b{rnd}@centre.example"})

    outcomes = _race(pg_settings, jobs_a, jobs_b)
    limit_reason = policy.checks().within_limit("admin", 3).reason
    assert limit_reason
    for rnd in range(ROUNDS):
        kinds = sorted(kind for kind, _ in outcomes[rnd].values())
        assert kinds == ["Denied", "ok"], f"round {rnd}: {outcomes[rnd]}"
        refusal = next(detail for kind, detail in outcomes[rnd].values() if kind == "Denied")
        assert refusal == limit_reason, f"round {rnd}: refused for another reason: {refusal!r}"
        number = f"3{rnd:04d}"
        db.session.rollback()
        admins = list(db.session.scalars(
            select(Account.email_key).join(Centre, Account.centre_id == Centre.id)
            .where(Centre.number == number, Account.role == "admin")))
        assert len(admins) == 3, f"round {rnd}: {admins}"
        winner = next(detail for kind, detail in outcomes[rnd].values() if kind == "ok")
        assert winner in admins


def test_two_eo_replacements_at_the_same_moment(pg_settings, parent_app):
    jobs_a, jobs_b = [], []
    for rnd in range(ROUNDS):
        number = f"4{rnd:04d}"
        _centre_with_eo_and_admins(number, admins=0)
        jobs_a.append({"kind": "replace", "round": rnd, "centre": number, "email": f"new-a{rnd}@centre.example"})
        jobs_b.append({"kind": "replace", "round": rnd, "centre": number, "email": f"new-b{rnd}@centre.example"})

    outcomes = _race(pg_settings, jobs_a, jobs_b)
    for rnd in range(ROUNDS):
        number = f"4{rnd:04d}"
        kinds = {name: kind for name, (kind, _) in outcomes[rnd].items()}
        assert set(kinds.values()) <= {"ok", "Denied", "Conflict"}, outcomes[rnd]
        assert "ok" in kinds.values(), outcomes[rnd]
        db.session.rollback()
        eos = list(db.session.scalars(
            select(Account.email_key).join(Centre, Account.centre_id == Centre.id)
            .where(Centre.number == number, Account.role == "eo")))
        assert len(eos) == 1, f"round {rnd}: {len(eos)} EOs afterwards: {eos} ({outcomes[rnd]})"
        succeeded = {detail for kind, detail in outcomes[rnd].values() if kind == "ok"}
        assert eos[0] in succeeded
        assert f"eo-{number}@centre.example" not in eos


def test_the_same_address_invited_at_two_centres_at_the_same_moment(pg_settings, parent_app):
    """Each invite checks that the address is free before the other commits: the database's unique
    address decides, and the loser is told so as a Conflict (a form message, a 409), never a 500."""
    jobs_a, jobs_b = [], []
    for rnd in range(ROUNDS):
        for side, jobs in (("a", jobs_a), ("b", jobs_b)):
            number = f"5{rnd:03d}{'1' if side == 'a' else '2'}"
            eo_email = _centre_with_eo_and_admins(number, admins=0)
            jobs.append({"kind": "invite", "round": rnd, "centre": number, "eo_email": eo_email,
                         "email": f"same{rnd}@centre.example"})
    outcomes = _race(pg_settings, jobs_a, jobs_b)
    for rnd in range(ROUNDS):
        kinds = sorted(kind for kind, _ in outcomes[rnd].values())
        assert kinds == ["Conflict", "ok"], f"round {rnd}: {outcomes[rnd]}"
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Account)
                                 .where(Account.email_key == Account.key_for(f"same{rnd}@centre.example"))) == 1
