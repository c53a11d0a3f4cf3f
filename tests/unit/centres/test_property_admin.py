"""Property test of the delegated-administration services (idp/admin/people.py).

Random sequences of invite / set_profiles / change_role / delete / replace, by random actors (board
staff through ``admin.operator()`` and the centres' own accounts through ``admin.party_of``)
on one or two centres. After every step:

- no account holds a profile its account type may not hold (DESIGN.md §1 catalogue, by hand);
- an EO holds every profile, and implied profiles are always held with their implier;
- every grant a step added was made by the acting person and was held by them at that moment
  (a grant to an EO, who holds everything by type, is the only exception);
- each centre has at most one EO and at most three admins, invited ones counted;
- a refused or invalid action changed nothing (accounts, their fields and their grants).

Plus focused tests that a refused action leaves nothing pending in the session for a later
commit to write (DESIGN.md §5: "nothing half-written remains after a failure").
"""

from __future__ import annotations

import zlib

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from idp import policy
from idp.accounts import passwords
from idp.accounts.models import Account, SsoSession
from idp.admin import centres as admin_centres
from idp.admin import errors as admin_errors
from idp.admin import people as admin
from idp.audit import AuditEvent
from idp.centres import grants
from idp.centres.models import AccessGrant, Centre
from idp.extensions import db
from idp.oidc.models import RefreshToken

CENTRES = ("10001", "10002")
MISSING_CENTRE = "99999"
ROLES = ("board", "eo", "admin", "user")

# DESIGN.md §1, by hand (not read from policies/)
ALL_PROFILES = frozenset({
    "resources", "a2c_keys", "iamis", "access_arrangements", "entries.make", "entries.view",
    "results.embargoed", "results.view", "scripts.view", "training.book", "users.manage",
})
MAY_HOLD = {"board": frozenset(), "eo": ALL_PROFILES, "admin": ALL_PROFILES,
            "user": ALL_PROFILES - {"a2c_keys", "entries.make", "results.embargoed", "users.manage"}}
IMPLIES = {"entries.make": "entries.view", "results.embargoed": "results.view"}
LIMITS = {"eo": 1, "admin": 3}
COUNTED = ("invited", "active")


@pytest.fixture
def fast_hashing(monkeypatch):
    """argon2id at OWASP parameters costs ~50 ms a hash; the rules under test do not care."""
    monkeypatch.setattr(passwords, "hash_password", lambda password: "test-hash:" + password)


def wipe() -> None:
    db.session.rollback()
    for model in (AccessGrant, RefreshToken, SsoSession, Account, Centre, AuditEvent):
        db.session.execute(sql_delete(model))
    db.session.commit()


def snapshot() -> tuple[dict, dict]:
    """Accounts (the fields an admin action may change) and grants, read from the database."""
    accounts = {row.sub: tuple(row) for row in db.session.execute(
        select(Account.sub, Account.email_key, Account.role, Account.status, Centre.number,
               Account.given_name, Account.family_name, Account.invited_by)
        .outerjoin(Centre, Account.centre_id == Centre.id))}
    grants = {(sub, profile): by for sub, profile, by in db.session.execute(
        select(Account.sub, AccessGrant.profile, AccessGrant.granted_by)
        .join(Account, Account.id == AccessGrant.account_id))}
    return accounts, grants


class AdminMachine(RuleBasedStateMachine):
    #: across all examples: {"refused": n, "done": n, "grants_by_people": n}
    totals: dict = {}

    def __init__(self) -> None:
        super().__init__()
        wipe()
        self.serial = 0
        self.centres: list[str] = []
        self.steps: list[str] = []
        #: the database as last read (snapshots are the slow part; reuse while nothing changed)
        self.cached: tuple[dict, dict] | None = None

    # ------------------------------------------------------------ set-up
    @initialize(n_centres=st.integers(1, 2), admins=st.integers(0, 2), users=st.integers(0, 1))
    def centres_exist(self, n_centres, admins, users):
        """Each centre starts with its EO (invited by board staff) and a few people the EO invited."""
        op = admin.operator()
        for number in CENTRES[:n_centres]:
            admin_centres.create_centre(op, number, f"Centre {number}")
            self.centres.append(number)
            eo = admin.invite(op, email=self.new_email(), role="eo", centre=number,
                                 fields={"given_name": "Eve", "family_name": "Officer"}, send=None).account
            for role, n in (("admin", admins), ("user", users)):
                for _ in range(n):
                    admin.invite(admin.party_of(eo), email=self.new_email(), role=role, centre=number,
                                    fields={"given_name": "Sam", "family_name": "Smith"}, send=None)
        self.activate_all()

    # ------------------------------------------------------------ helpers
    def new_email(self) -> str:
        self.serial += 1
        return f"person{self.serial}@centre.example"

    def activate_all(self) -> None:
        """Most people accept their invite; status matters only for the limits (invited count too)."""
        changed = False
        for account in db.session.scalars(select(Account).where(Account.status == "invited")):
            if zlib.crc32(account.sub.encode()) % 3:
                account.status = "active"
                changed = True
        if changed:
            db.session.commit()
            self.cached = None

    def accounts(self) -> list[Account]:
        return list(db.session.scalars(select(Account).order_by(Account.email_key)))

    def pick_actor(self, i: int):
        people = self.accounts()
        if i % 6 == 0 or not people:
            return admin.operator()
        return admin.party_of(people[i % len(people)])

    def pick_target(self, i: int, actor, near: bool) -> Account | None:
        """Mostly someone at the actor's own centre (where something can happen), sometimes anyone."""
        people = self.accounts()
        if near and actor.centre is not None:
            people = [a for a in people if a.centre_number == actor.centre] or people
        return people[i % len(people)] if people else None

    def pick_centre(self, i: int, actor) -> str | None:
        options = [actor.centre] + self.centres + [MISSING_CENTRE, None]
        return options[i % len(options)]

    def pick_email(self, reuse: int | None) -> str:
        people = self.accounts()
        if reuse is not None and people:
            existing = people[reuse % len(people)].email
            return f"  {existing.upper()} "  # same address: trimmed and case-insensitive
        return self.new_email()

    def attempt(self, label: str, actor, call) -> None:
        """Run one service call and check what it did (or that a refusal did nothing)."""
        checks = policy.checks()
        held_before = checks.held_profiles(actor)
        before = self.cached or snapshot()
        self.cached = None
        self.steps.append(f"{label} by {actor.role}:{actor.sub[:6]}")
        try:
            call()
        except admin_errors.AdminError as exc:
            assert exc.message.strip(), f"{label}: refused without a reason"
            # a request would end here (app-context teardown rolls the session back)
            db.session.rollback()
            AdminMachine.totals["refused"] = AdminMachine.totals.get("refused", 0) + 1
            if "at most" in exc.message or "exactly one" in exc.message:
                AdminMachine.totals["limit"] = AdminMachine.totals.get("limit", 0) + 1
            after = self.cached = snapshot()
            assert after == before, f"{label} was refused ({exc.message}) but changed the database"
            return
        AdminMachine.totals["done"] = AdminMachine.totals.get("done", 0) + 1
        accounts_after, grants_after = self.cached = snapshot()
        for (sub, profile), by in grants_after.items():
            if (sub, profile) in before[1]:
                continue
            assert by == actor.sub, f"{label}: grant of {profile} recorded as by {by!r}, actor {actor.sub!r}"
            role = accounts_after[sub][2]
            if actor.sub != "cli":
                AdminMachine.totals["grants_by_people"] = AdminMachine.totals.get("grants_by_people", 0) + 1
            if role == "eo":
                continue  # the EO holds everything by type
            assert profile in held_before, (
                f"{label}: {actor.role} {actor.sub} granted {profile!r} to a {role} without holding it "
                f"(held {sorted(held_before)})")

    # ------------------------------------------------------------ rules
    @rule(actor=st.integers(0, 40), role=st.sampled_from(("admin", "user", "admin", "user", "eo", "board")),
          centre=st.one_of(st.just(0), st.integers(0, 5)),
          reuse=st.one_of(st.none(), st.none(), st.integers(0, 40)),
          profiles=st.one_of(st.none(), st.sets(st.sampled_from(sorted(ALL_PROFILES)), max_size=3)),
          named=st.integers(0, 9))
    def invite(self, actor, role, centre, reuse, profiles, named):
        party = self.pick_actor(actor)
        number, email = self.pick_centre(centre, party), self.pick_email(reuse)
        fields = {"given_name": "Pat" if named else "", "family_name": "Jones"}
        self.attempt(f"invite {role} {email.strip()} to {number} with {profiles}", party,
                     lambda: admin.invite(party, email=email, role=role, centre=number, fields=fields,
                                             profiles=profiles, send=None))
        self.activate_all()

    @rule(actor=st.integers(0, 40), who=st.integers(0, 40), near=st.integers(0, 4),
          add=st.sets(st.sampled_from(sorted(ALL_PROFILES)), max_size=2),
          drop=st.sets(st.sampled_from(sorted(ALL_PROFILES)), max_size=2))
    def set_profiles(self, actor, who, near, add, drop):
        party = self.pick_actor(actor)
        account = self.pick_target(who, party, near > 0)
        if account is None:
            return
        wanted = (set(grants.profiles_of(account)) | add) - drop
        self.attempt(f"set_profiles {account.email} {sorted(wanted)}", party,
                     lambda: admin.set_profiles(party, account.sub, wanted))

    @rule(actor=st.integers(0, 40), who=st.integers(0, 40), near=st.integers(0, 4), role=st.sampled_from(ROLES))
    def change_role(self, actor, who, near, role):
        party = self.pick_actor(actor)
        account = self.pick_target(who, party, near > 0)
        if account is None:
            return
        self.attempt(f"change_role {account.email} -> {role}", party,
                     lambda: admin.change_role(party, account.sub, role))

    @rule(actor=st.integers(0, 40), who=st.integers(0, 40), near=st.integers(0, 4))
    def delete(self, actor, who, near):
        party = self.pick_actor(actor)
        account = self.pick_target(who, party, near > 0)
        if account is None:
            return
        sub = account.sub
        self.attempt(f"delete {account.email}", party, lambda: admin.delete(party, sub))

    @rule(actor=st.integers(0, 40), centre=st.integers(0, 5), reuse=st.one_of(st.none(), st.integers(0, 40)),
          as_operator=st.booleans())
    def replace(self, actor, centre, reuse, as_operator):
        party = admin.operator() if as_operator else self.pick_actor(actor)
        number, email = self.pick_centre(centre, party), self.pick_email(reuse)
        self.attempt(f"replace eo of {number} by {email.strip()}", party,
                     lambda: admin.replace(party, role="eo", centre=number, email=email,
                                              fields={"given_name": "New", "family_name": "Officer"}, send=None))
        self.activate_all()

    # ------------------------------------------------------------ invariants
    @invariant()
    def rules_hold(self):
        accounts, grants = self.cached = self.cached or snapshot()
        held: dict[str, set[str]] = {sub: set() for sub in accounts}
        for sub, profile in grants:
            held[sub].add(profile)
        for sub, row in accounts.items():
            role = row[2]
            # only board staff stand outside a centre (and board staff are never invited here)
            assert (row[4] is None) == (role == "board"), row
            extra = held[sub] - MAY_HOLD[role]
            assert not extra, f"a {role} holds {sorted(extra)}; steps: {self.steps}"
            if role == "eo":
                assert held[sub] == ALL_PROFILES, f"an EO holds only {sorted(held[sub])}; steps: {self.steps}"
            for implier, implied in IMPLIES.items():
                if implier in held[sub]:
                    assert implied in held[sub], f"a {role} holds {implier} without {implied}; steps: {self.steps}"
        for number in self.centres:
            for role, limit in LIMITS.items():
                n = sum(1 for row in accounts.values() if row[4] == number and row[2] == role and row[3] in COUNTED)
                assert n <= limit, f"centre {number} has {n} {role} accounts; steps: {self.steps}"


# derandomize: the coverage floor below is a property of the sequences drawn, and about one random
# draw in ten fell under it (a flaky test teaches nothing); the fixed sequences still mix every rule
STATEFUL = settings(max_examples=30, stateful_step_count=20, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def test_admin_rules_hold_under_random_sequences(app_context, fast_hashing):
    AdminMachine.totals = {}
    run_state_machine_as_test(AdminMachine, settings=STATEFUL)
    # the run exercised both sides: refusals, and people (not only board staff) granting profiles
    assert AdminMachine.totals.get("refused", 0) > 20, AdminMachine.totals
    assert AdminMachine.totals.get("done", 0) > 20, AdminMachine.totals
    assert AdminMachine.totals.get("grants_by_people", 0) > 5, AdminMachine.totals


# ------------------------------------------------------------------ nothing left pending
def _centre_with_eo(number="10001"):
    op = admin.operator()
    admin_centres.create_centre(op, number, "Centre")
    eo = admin.invite(op, email="eo@centre.example", role="eo", centre=number,
                         fields={"given_name": "Eve", "family_name": "Officer"}, send=None).account
    eo.status = "active"
    db.session.commit()
    return eo


def test_a_refused_invite_leaves_nothing_for_a_later_commit(app_context, fast_hashing):
    """An invite refused after the account row was flushed (a profile the inviter may not grant)
    must not leave that row in the session, where the caller's next commit would write it."""
    eo = _centre_with_eo()
    with pytest.raises(admin_errors.Denied):
        admin.invite(admin.party_of(eo), email="u@centre.example", role="user", centre="10001",
                        fields={"given_name": "U", "family_name": "Ser"}, profiles=["users.manage"], send=None)
    # the same caller goes on to do something that succeeds (and commits)
    admin.update_fields(admin.party_of(eo), eo.sub, {"job_role": "Exams Officer"})
    emails = set(db.session.scalars(select(Account.email_key)))
    assert emails == {"eo@centre.example"}, "the refused invite was committed by the next action"


def test_a_refused_replace_leaves_the_old_eo_in_place(app_context, fast_hashing):
    """replace() deletes the old EO before inviting the new one; if the invite is then refused
    (the new email is taken) the deletion must not survive into the caller's next commit."""
    eo = _centre_with_eo()
    admin_centres.create_centre(admin.operator(), "10002", "Other")
    admin.invite(admin.party_of(eo), email="admin@centre.example", role="admin", centre="10001",
                    fields={"given_name": "Ad", "family_name": "Min"}, send=None)
    with pytest.raises(admin_errors.Conflict):
        admin.replace(admin.operator(), role="eo", centre="10001", email="Admin@centre.example",
                         fields={"given_name": "New", "family_name": "Officer"}, send=None)
    admin_centres.set_centre_suspended(admin.operator(), "10002", True)  # any later successful action
    assert db.session.scalar(select(Account.sub).where(Account.email_key == "eo@centre.example")) == eo.sub, \
        "the refused replace deleted the EO once the next action committed"


# ------------------------------------------------------------------ the limits, directly
def test_invited_admins_count_towards_the_limit_and_role_changes_respect_it(app_context, fast_hashing):
    eo = _centre_with_eo()
    actor = admin.party_of(eo)
    fields = {"given_name": "Ad", "family_name": "Min"}
    for n in range(3):  # all three still only invited
        admin.invite(actor, email=f"admin{n}@centre.example", role="admin", centre="10001", fields=fields)
    with pytest.raises(admin_errors.Denied) as refused:
        admin.invite(actor, email="admin3@centre.example", role="admin", centre="10001", fields=fields)
    assert "3" in refused.value.message
    db.session.rollback()
    user = admin.invite(actor, email="user@centre.example", role="user", centre="10001", fields=fields).account
    with pytest.raises(admin_errors.Denied):
        admin.change_role(actor, user.sub, "admin")
    db.session.rollback()
    assert db.session.scalar(select(Account.role).where(Account.sub == user.sub)) == "user"
    # a second EO is refused whoever asks; the board replaces instead
    with pytest.raises(admin_errors.Denied):
        admin.invite(admin.operator(), email="eo2@centre.example", role="eo", centre="10001", fields=fields)
    db.session.rollback()
    admin.replace(admin.operator(), role="eo", centre="10001", email="eo2@centre.example", fields=fields)
    eos = list(db.session.scalars(select(Account.email_key).where(Account.role == "eo")))
    assert eos == ["eo2@centre.example"]
