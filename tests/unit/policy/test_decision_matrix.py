"""The delegated-administration decision matrix (DESIGN.md §1), driven from a table.

The expected answers are written out below by hand from DESIGN.md §1 — never computed from
policies/*.toml — so a wrong line in the policy files (or in idp/policy/decisions.py) makes a
case here fail. Every case is: actor × target account type × action × same/other centre.

Reading of DESIGN.md §1 encoded here (where the text is silent, the choice is marked "interp."):

- board staff create (invite), edit and delete board accounts ("who creates / deletes it: board
  staff") and EOs, and replace EOs; they also edit/delete admin and user accounts (interp.: the
  operator of the provider can always act), reset the MFA of any account, unlock any account;
  they grant no access profiles and change nobody's account type (interp.: personnel changes of
  an EO are a replacement, not a role change).
- an EO, or an admin holding ``users.manage``, invites/edits/deletes/changes the type of/resets the
  MFA of/unlocks admin and user accounts of its own centre only, never the EO's; the new type can
  only be admin or user (the EO is made only by the board).
- an admin without ``users.manage`` and a user manage nobody.
- a profile is granted only if the target's type may hold it and the granter holds it; the EO holds
  every profile; nobody grants to (or takes from) an EO; revoking also needs the revoker to hold it.
- nobody acts on another centre; nobody deletes themselves or changes their own type.
- the board's helpdesk (issue: "a read-only helpdesk role that can look but only unlock and resend
  invites") unlocks and resends the invites of centre accounts anywhere, and does nothing else;
  board staff manage helpdesk accounts as they manage their own.
- resending an invite is for whoever may invite that type of account (the helpdesk aside).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from idp import policy
from idp.policy.decisions import Checks, Decision, Party

HOME, OTHER = "11111", "22222"

# ------------------------------------------------------------------ DESIGN.md §1, by hand
ALL_PROFILES = (
    "resources", "a2c_keys", "iamis", "access_arrangements", "entries.make", "entries.view",
    "results.embargoed", "results.view", "scripts.view", "training.book", "users.manage",
)
#: "never" for a user account (the catalogue table of §1)
USER_NEVER = frozenset({"a2c_keys", "entries.make", "results.embargoed", "users.manage"})
#: which profiles an account type may hold at all
MAY_HOLD = {
    "board": frozenset(),
    "helpdesk": frozenset(),
    "eo": frozenset(ALL_PROFILES),
    "admin": frozenset(ALL_PROFILES),
    "user": frozenset(ALL_PROFILES) - USER_NEVER,
}
ROLES = ("board", "helpdesk", "eo", "admin", "user")

#: an admin who manages users but lacks a few profiles (so "grant only what you hold" shows)
ADMIN_UM_HOLDS = frozenset(ALL_PROFILES) - {"a2c_keys", "results.embargoed", "scripts.view"}
ADMIN_PLAIN_HOLDS = frozenset(ALL_PROFILES) - {"users.manage"}
USER_HOLDS = frozenset({"resources", "iamis", "results.view"})


@dataclass(frozen=True)
class Actor:
    role: str
    centre: str | None
    stored: frozenset[str]   # the grants on file
    holds: frozenset[str]    # what DESIGN says the actor holds (an EO: everything)


ACTORS = {
    "board": Actor("board", None, frozenset(), frozenset()),
    "helpdesk": Actor("helpdesk", None, frozenset(), frozenset()),
    # the EO has nothing on file here on purpose: it holds every profile by its type
    "eo": Actor("eo", HOME, frozenset(), frozenset(ALL_PROFILES)),
    "admin+users.manage": Actor("admin", HOME, ADMIN_UM_HOLDS, ADMIN_UM_HOLDS),
    "admin-users.manage": Actor("admin", HOME, ADMIN_PLAIN_HOLDS, ADMIN_PLAIN_HOLDS),
    "user": Actor("user", HOME, USER_HOLDS, USER_HOLDS),
}

A, U, E, B, H = "admin", "user", "eo", "board", "helpdesk"
NOBODY: frozenset[str] = frozenset()
#: actor -> action -> account types it may act on (at its own centre; board: anywhere)
ACTS_ON = {
    "board": {
        "invite": {B, H, E}, "resend": {B, H, E, A, U}, "edit": {B, H, E, A, U}, "delete": {B, H, E, A, U},
        "change_role": NOBODY, "reset_mfa": {B, H, E, A, U}, "unlock": {B, H, E, A, U}, "grant": NOBODY,
    },
    "helpdesk": {
        "invite": NOBODY, "resend": {E, A, U}, "edit": NOBODY, "delete": NOBODY, "change_role": NOBODY,
        "reset_mfa": NOBODY, "unlock": {E, A, U}, "grant": NOBODY,
    },
    "eo": {
        "invite": {A, U}, "resend": {A, U}, "edit": {A, U}, "delete": {A, U}, "change_role": {A, U},
        "reset_mfa": {A, U}, "unlock": {A, U}, "grant": {A, U},
    },
    "admin+users.manage": {
        "invite": {A, U}, "resend": {A, U}, "edit": {A, U}, "delete": {A, U}, "change_role": {A, U},
        "reset_mfa": {A, U}, "unlock": {A, U}, "grant": {A, U},
    },
    "admin-users.manage": dict.fromkeys(
        ("invite", "resend", "edit", "delete", "change_role", "reset_mfa", "unlock", "grant"), NOBODY),
    "user": dict.fromkeys(("invite", "resend", "edit", "delete", "change_role", "reset_mfa", "unlock", "grant"),
                          NOBODY),
}
#: actor -> the account types it may turn someone into
MAY_MAKE = {"board": NOBODY, "helpdesk": NOBODY, "eo": {A, U}, "admin+users.manage": {A, U},
            "admin-users.manage": NOBODY, "user": NOBODY}

#: what each target holds on file (an admin: everything, to test every removal a type change makes)
TARGET_HOLDS = {"board": NOBODY, "helpdesk": NOBODY, "eo": NOBODY, "admin": frozenset(ALL_PROFILES),
                "user": frozenset({"resources", "results.view"})}

ACTIONS = (["invite", "resend", "edit", "email", "delete", "reset_mfa", "unlock"]
           + [f"change_role:{r}" for r in ROLES]
           + [f"grant:{p}" for p in ALL_PROFILES]
           + [f"revoke:{p}" for p in ALL_PROFILES])


def expected(actor_key: str, action: str, target_role: str, same_centre: bool) -> bool:
    actor = ACTORS[actor_key]
    verb, _, arg = action.partition(":")
    if actor.centre is not None and not same_centre:
        return False  # nobody acts on another centre
    table_verb = {"grant": "grant", "revoke": "grant", "email": "edit"}.get(verb, verb)
    if target_role not in ACTS_ON[actor_key][table_verb]:
        return False
    if verb in ("email", "reset_mfa") and actor.centre is not None:
        # either lets the actor sign in as the person: at a centre, only with all they hold
        return TARGET_HOLDS[target_role] <= actor.holds
    if verb == "change_role":
        # the new type takes away what it may not hold: nobody removes what they do not hold
        lost = {p for p in TARGET_HOLDS[target_role] if p not in MAY_HOLD[arg]}
        return arg in MAY_MAKE[actor_key] and lost <= actor.holds
    if verb == "grant":
        return arg in MAY_HOLD[target_role] and arg in actor.holds
    if verb == "revoke":
        return arg in actor.holds
    return True


# ------------------------------------------------------------------ running the real checks
@pytest.fixture(scope="module")
def checks() -> Checks:
    return Checks(policy.load())


def actor_party(key: str) -> Party:
    a = ACTORS[key]
    return Party(sub=f"actor-{key}", role=a.role, centre=a.centre, profiles=a.stored)


def target_party(role: str, same_centre: bool) -> Party:
    centre = None if role in ("board", "helpdesk") else (HOME if same_centre else OTHER)
    return Party(sub=f"target-{role}-{centre}", role=role, centre=centre, profiles=TARGET_HOLDS[role])


def decide(checks: Checks, actor: Party, action: str, target_role: str, same_centre: bool) -> Decision:
    verb, _, arg = action.partition(":")
    target = target_party(target_role, same_centre)
    if verb == "invite":
        centre = None if target_role in ("board", "helpdesk") else (HOME if same_centre else OTHER)
        return checks.may_invite(actor, target_role, centre)
    if verb == "resend":
        return checks.may_resend_invite(actor, target)
    if verb == "edit":
        return checks.may_edit(actor, target)
    if verb == "email":
        return checks.may_change_email(actor, target)
    if verb == "delete":
        return checks.may_delete(actor, target)
    if verb == "reset_mfa":
        return checks.may_reset_mfa(actor, target)
    if verb == "unlock":
        return checks.may_unlock(actor, target)
    if verb == "change_role":
        return checks.may_change_role(actor, target, arg)
    if verb == "grant":
        return checks.may_grant(actor, target, arg)
    if verb == "revoke":
        return checks.may_revoke(actor, target, arg)
    raise AssertionError(action)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("actor_key", list(ACTORS))
def test_matrix(checks, actor_key, action):
    """One row of the matrix: every target type, at the actor's centre and at another one."""
    actor = actor_party(actor_key)
    wrong = []
    for target_role in ROLES:
        for same_centre in (True, False):
            decision = decide(checks, actor, action, target_role, same_centre)
            want = expected(actor_key, action, target_role, same_centre)
            where = "same centre" if same_centre else "other centre"
            if bool(decision) != want:
                wrong.append(f"{actor_key} {action} {target_role} ({where}): expected "
                             f"{'allow' if want else 'deny'}, got {decision!r}")
            if not decision and not decision.reason.strip():
                wrong.append(f"{actor_key} {action} {target_role} ({where}): denied without a reason")
    assert not wrong, "\n".join(wrong)


def test_table_covers_allow_and_deny():
    """The table is not degenerate: both answers occur for each verb, so each can fail."""
    for verb in ("invite", "edit", "delete", "reset_mfa", "unlock", "change_role", "grant", "revoke"):
        answers = {expected(k, a, r, s) for k in ACTORS for a in ACTIONS if a.partition(":")[0] == verb
                   for r in ROLES for s in (True, False)}
        assert answers == {True, False}, verb


def test_board_invites_an_eo_only_into_a_centre(checks):
    board = actor_party("board")
    assert checks.may_invite(board, "eo", HOME)
    missing = checks.may_invite(board, "eo", None)
    assert not missing and missing.reason.strip()


def test_board_replaces_eos_and_nobody_else_does(checks):
    for key in ACTORS:
        for role in ROLES:
            for centre in (HOME, OTHER):
                decision = checks.may_replace(actor_party(key), role, centre)
                assert bool(decision) == (key == "board" and role == "eo"), (key, role, centre, decision)
                if not decision:
                    assert decision.reason.strip()


# ------------------------------------------------------------------ acting on oneself
@pytest.mark.parametrize("actor_key", list(ACTORS))
def test_self(checks, actor_key):
    me = actor_party(actor_key)
    assert checks.may_edit(me, me), "everyone edits their own details"
    refused = [checks.may_delete(me, me)]
    refused += [checks.may_change_role(me, me, r) for r in ROLES if r != me.role]
    for decision in refused:
        assert not decision and decision.reason.strip(), decision


def test_the_eo_cannot_remove_its_own_users_manage(checks):
    eo = actor_party("eo")
    result, decision = checks.profile_set_for(eo, eo, set(ALL_PROFILES) - {"users.manage"})
    assert not decision and decision.reason.strip()
    assert result == frozenset()
    # nor can anyone else take it from an EO
    other_eo = Party("other-eo", "eo", HOME, frozenset())
    for key in ACTORS:
        _, decision = checks.profile_set_for(actor_party(key), other_eo, set(ALL_PROFILES) - {"users.manage"})
        assert not decision and decision.reason.strip(), key


def test_the_eo_holds_every_profile_whatever_is_on_file(checks):
    assert checks.held_profiles(actor_party("eo")) == frozenset(ALL_PROFILES)
    assert checks.held_profiles(actor_party("admin+users.manage")) == ADMIN_UM_HOLDS


# ------------------------------------------------------------------ whole profile sets (implied ones)
ADMIN_VIEW_ONLY = Party("admin-view-only", "admin", HOME,
                        frozenset({"users.manage", "entries.view", "results.view", "resources"}))


def admin_target(profiles=()) -> Party:
    return Party("t-admin", "admin", HOME, frozenset(profiles))


def user_target(profiles=()) -> Party:
    return Party("t-user", "user", HOME, frozenset(profiles))


# (actor, target, wanted) -> expected resulting set, or None for a refusal
PROFILE_SET_CASES = [
    ("EO grants make-entries: view comes with it",
     actor_party("eo"), admin_target(), {"entries.make"}, {"entries.make", "entries.view"}),
    ("EO grants embargoed results: results.view comes with it",
     actor_party("eo"), admin_target(), {"results.embargoed"}, {"results.embargoed", "results.view"}),
    ("implied profile cannot be dropped while its implier stays",
     actor_party("eo"), admin_target({"entries.make", "entries.view"}), {"entries.make"},
     {"entries.make", "entries.view"}),
    ("EO gives a user view-only results",
     actor_party("eo"), user_target({"resources"}), {"resources", "results.view"}, {"resources", "results.view"}),
    ("a user can never hold embargoed results, even from the EO",
     actor_party("eo"), user_target({"resources"}), {"resources", "results.embargoed"}, None),
    ("a user can never hold make-entries",
     actor_party("eo"), user_target(), {"entries.make"}, None),
    ("a user can never hold users.manage",
     actor_party("eo"), user_target(), {"users.manage"}, None),
    ("a user can never hold A2C keys",
     actor_party("eo"), user_target(), {"a2c_keys"}, None),
    ("view-only admin grants view only",
     ADMIN_VIEW_ONLY, user_target(), {"entries.view"}, {"entries.view"}),
    ("view-only admin cannot grant make-entries",
     ADMIN_VIEW_ONLY, admin_target(), {"entries.make"}, None),
    ("view-only admin cannot grant embargoed results",
     ADMIN_VIEW_ONLY, admin_target(), {"results.embargoed"}, None),
    ("keeping a profile the granter lacks is not granting it",
     ADMIN_VIEW_ONLY, user_target({"scripts.view"}), {"scripts.view", "resources"}, {"scripts.view", "resources"}),
    ("removing a profile the granter lacks is refused",
     ADMIN_VIEW_ONLY, user_target({"scripts.view", "resources"}), {"resources"}, None),
    ("admin without users.manage changes nothing",
     actor_party("admin-users.manage"), user_target(), {"resources"}, None),
    ("admin of another centre changes nothing",
     Party("far-admin", "admin", OTHER, frozenset(ALL_PROFILES)), user_target(), {"resources"}, None),
    ("board grants nothing",
     actor_party("board"), user_target(), {"resources"}, None),
    ("a user grants nothing",
     actor_party("user"), user_target(), {"resources"}, None),
    ("unknown profile",
     actor_party("eo"), user_target(), {"no.such.profile"}, None),
    ("unchanged set is allowed",
     actor_party("admin+users.manage"), user_target({"resources"}), {"resources"}, {"resources"}),
    # "setting" the profiles a target already has is still acting on it: the same who-may rules apply
    ("unchanged set from another centre's admin is refused",
     Party("far-admin", "admin", OTHER, frozenset(ALL_PROFILES)), user_target({"resources"}), {"resources"}, None),
    ("unchanged set from a user is refused",
     actor_party("user"), user_target({"resources"}), {"resources"}, None),
    ("unchanged set from an admin without users.manage is refused",
     actor_party("admin-users.manage"), user_target({"resources"}), {"resources"}, None),
    ("unchanged set on an EO by board staff is refused",
     actor_party("board"), Party("t-eo", "eo", HOME, frozenset()), set(ALL_PROFILES), None),
]


@pytest.mark.parametrize("label,actor,target,wanted,want", PROFILE_SET_CASES,
                         ids=[c[0] for c in PROFILE_SET_CASES])
def test_profile_set_for(checks, label, actor, target, wanted, want):
    result, decision = checks.profile_set_for(actor, target, set(wanted))
    if want is None:
        assert not decision, f"{label}: allowed {sorted(result)}"
        assert decision.reason.strip()
    else:
        assert decision, f"{label}: {decision.reason}"
        assert result == frozenset(want)


# ------------------------------------------------------------------ limits (§1 "limit" column)
@pytest.mark.parametrize("role,existing,allowed", [
    ("admin", 0, True), ("admin", 2, True), ("admin", 3, False), ("admin", 4, False),
    ("eo", 0, True), ("eo", 1, False),
    ("user", 0, True), ("user", 500, True),
])
def test_within_limit(checks, role, existing, allowed):
    decision = checks.within_limit(role, existing)
    assert bool(decision) == allowed
    if not allowed:
        assert decision.reason.strip()


@pytest.mark.parametrize("role,status,counts", [
    ("admin", "active", True), ("admin", "invited", True), ("admin", "disabled", False),
    ("eo", "active", True), ("eo", "invited", True), ("eo", "disabled", False),
])
def test_invited_accounts_count_towards_the_limit(checks, role, status, counts):
    assert checks.counts_towards_limit(role, status) is counts


#: what each account type may do beyond people (by hand: board staff run everything; the helpdesk
#: only reads the whole audit trail; centre accounts none of it)
CAN = {"board": {"centres", "clients", "keys", "audit", "every_centre"},
       "helpdesk": {"audit", "every_centre"},
       "eo": set(), "admin+users.manage": set(), "admin-users.manage": set(), "user": set()}


@pytest.mark.parametrize("actor_key", list(ACTORS))
def test_capabilities_and_reasons(checks, actor_key):
    actor = actor_party(actor_key)
    got = {name for name, decision in (
        ("centres", checks.may_manage_centres(actor)), ("clients", checks.may_manage_clients(actor)),
        ("keys", checks.may_manage_keys(actor)), ("audit", checks.may_read_audit(actor)),
        ("every_centre", checks.may_see_every_centre(actor))) if decision}
    assert got == CAN[actor_key]
    assert checks.needs_reason(actor) == (actor_key in ("board", "helpdesk"))
    assert bool(checks.may_view_centre(actor, OTHER)) == (actor_key in ("board", "helpdesk"))
