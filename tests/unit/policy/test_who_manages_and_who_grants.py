"""Two questions the pages ask the policy instead of testing a role name: may this person manage
users at all (the header's "Manage users"), and can someone at their own centre change what they
may use (All services: whom to ask for a missing service). Expected answers written out by hand
from DESIGN.md §1."""

from __future__ import annotations

import pytest

from idp import policy
from idp.policy.decisions import Checks, Party

EVERYTHING = frozenset(policy.load().profiles)


@pytest.fixture(scope="module")
def checks() -> Checks:
    return Checks(policy.load())


@pytest.mark.parametrize("party,manages", [
    (Party("b", "board", None), True),
    (Party("e", "eo", "11111"), True),                          # holds every profile, users.manage too
    (Party("a", "admin", "11111", frozenset({"users.manage", "resources"})), True),
    (Party("a", "admin", "11111", frozenset({"resources"})), False),  # an admin without users.manage
    (Party("u", "user", "11111", frozenset({"resources", "iamis"})), False),
    (Party("x", "wizard", "11111"), False),
])
def test_who_may_manage_users(checks, party, manages):
    decision = checks.may_manage_users(party)
    assert bool(decision) is manages
    assert manages or decision.reason  # a refusal says why


def test_an_admin_without_users_manage_is_told_which_profile_is_missing(checks):
    reason = checks.may_manage_users(Party("a", "admin", "11111", frozenset({"resources"}))).reason
    assert "Manage user accounts" in reason


@pytest.mark.parametrize("party,at_centre", [
    (Party("u", "user", "11111"), True),       # an EO or an admin gives a user access
    (Party("a", "admin", "11111"), True),
    (Party("e", "eo", "11111"), False),        # nobody at the centre grants to the EO: the board
    (Party("b", "board", None), False),
    (Party("x", "wizard", "11111"), False),
])
def test_whose_access_is_given_at_their_centre(checks, party, at_centre):
    assert bool(checks.access_given_at_centre(party)) is at_centre
