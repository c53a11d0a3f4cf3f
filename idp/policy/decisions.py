"""Named checks: "may A do X to B?", each answering allow/deny with a reason a person can read.

Every decision about who may manage whom is made here, from policies/roles.toml and
policies/profiles.toml. Services call these and never test a role name themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import inputs
from . import Policy


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)


def deny(reason: str) -> Decision:
    return Decision(False, reason)


@dataclass(frozen=True)
class Party:
    """What the policy needs to know about an actor or a target account."""

    sub: str
    role: str
    centre: str | None  # centre number
    profiles: frozenset[str] = frozenset()


class Checks:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    # ---- helpers ----
    def held_profiles(self, party: Party) -> frozenset[str]:
        """What a party holds: everything its role allows if the role holds all profiles."""
        role = self.policy.role(party.role)
        return self.policy.allowed_profiles(party.role) if role.holds_all_profiles else party.profiles

    def role_name(self, role_id: str) -> str:
        return self.policy.role(role_id).name

    def _may(self, actor: Party, action: str, target_role: str, target_centre: str | None,
             verb: str) -> Decision:
        if actor.role not in self.policy.roles or target_role not in self.policy.roles:
            return deny("Unknown account type.")
        role = self.policy.role(actor.role)
        if target_role not in role.may[action]:
            return deny(f"{role.name} accounts cannot {verb} {self.role_name(target_role)} accounts.")
        if role.same_centre_only and actor.centre != target_centre:
            return deny("You can only manage accounts at your own centre.")
        if role.manage_requires and role.manage_requires not in self.held_profiles(actor):
            profile = self.policy.profiles[role.manage_requires]
            return deny(f"You need the '{profile.name}' access profile to manage accounts.")
        return ALLOW

    # ---- named checks ----
    def may_invite(self, actor: Party, target_role: str, centre: str | None) -> Decision:
        if target_role in self.policy.roles and self.policy.role(target_role).centre and not centre:
            return deny(f"{self.role_name(target_role)} accounts belong to a centre: give its number.")
        return self._may(actor, "invite", target_role, centre, "invite")

    def may_edit(self, actor: Party, target: Party) -> Decision:
        if actor.sub == target.sub:
            return ALLOW  # everyone edits their own profile details
        return self._may(actor, "edit", target.role, target.centre, "edit")

    def may_delete(self, actor: Party, target: Party) -> Decision:
        if actor.sub == target.sub:
            return deny("You cannot delete your own account.")
        return self._may(actor, "delete", target.role, target.centre, "delete")

    def may_replace(self, actor: Party, target_role: str, centre: str | None) -> Decision:
        return self._may(actor, "replace", target_role, centre, "replace")

    def may_reset_mfa(self, actor: Party, target: Party) -> Decision:
        if actor.sub == target.sub:
            return deny("You cannot reset your own MFA; ask someone who manages your account.")
        return self._may(actor, "reset_mfa", target.role, target.centre, "reset the MFA of")

    def may_unlock(self, actor: Party, target: Party) -> Decision:
        return self._may(actor, "unlock", target.role, target.centre, "unlock")

    def may_change_role(self, actor: Party, target: Party, new_role: str) -> Decision:
        if new_role not in self.policy.roles:
            return deny(f"Unknown account type {inputs.echo(new_role)!r}.")
        if actor.sub == target.sub:
            return deny("You cannot change your own account type.")
        decision = self._may(actor, "change_role", target.role, target.centre, "change the type of")
        if not decision:
            return decision
        if new_role not in self.policy.role(actor.role).may["change_role"]:
            return deny(f"You cannot make someone a {self.role_name(new_role)}.")
        return ALLOW

    def may_hold(self, role_id: str, profile_id: str) -> Decision:
        """The role ceiling: may an account of this type hold this profile at all?"""
        profile = self.policy.profiles.get(profile_id)
        if profile is None:
            return deny(f"Unknown access profile {inputs.echo(profile_id)!r}.")
        if profile.availability(role_id) == "never":
            return deny(f"{self.role_name(role_id)} accounts cannot have '{profile.name}'.")
        return ALLOW

    def may_grant(self, actor: Party, target: Party, profile_id: str) -> Decision:
        ceiling = self.may_hold(target.role, profile_id)
        if not ceiling:
            return ceiling
        decision = self._may(actor, "grant", target.role, target.centre, "change the access of")
        if not decision:
            return decision
        if profile_id not in self.held_profiles(actor):
            name = self.policy.profiles[profile_id].name
            return deny(f"You cannot grant '{name}' because you do not have it yourself.")
        return ALLOW

    def may_revoke(self, actor: Party, target: Party, profile_id: str) -> Decision:
        if profile_id not in self.policy.profiles:
            return deny(f"Unknown access profile {inputs.echo(profile_id)!r}.")
        role = self.policy.role(target.role)
        if role.holds_all_profiles:
            return deny(f"{role.name} accounts always have every access profile.")
        decision = self._may(actor, "grant", target.role, target.centre, "change the access of")
        if not decision:
            return decision
        if profile_id not in self.held_profiles(actor):
            name = self.policy.profiles[profile_id].name
            return deny(f"You cannot remove '{name}' because you do not have it yourself.")
        return ALLOW

    def profile_set_for(self, actor: Party, target: Party, wanted: set[str]) -> tuple[frozenset[str], Decision]:
        """Check replacing the target's profiles by ``wanted`` (implied profiles added).
        Returns (the resulting set, the first refusal or ALLOW)."""
        unknown = sorted(p for p in wanted if p not in self.policy.profiles)
        if unknown:
            return frozenset(), deny(f"Unknown access profile {inputs.echo(unknown[0])!r}.")
        # May the actor change this account's access at all? (Asked even when nothing would change.)
        role = self.policy.role(target.role)
        if role.holds_all_profiles:
            return frozenset(), deny(f"{role.name} accounts always have every access profile.")
        decision = self._may(actor, "grant", target.role, target.centre, "change the access of")
        if not decision:
            return frozenset(), decision
        result = self.policy.with_implied(wanted)
        current = self.held_profiles(target)
        for pid in sorted(result - current):
            decision = self.may_grant(actor, target, pid)
            if not decision:
                return frozenset(), decision
        for pid in sorted(current - result):
            decision = self.may_revoke(actor, target, pid)
            if not decision:
                return frozenset(), decision
        return frozenset(result), ALLOW

    def _can(self, actor: Party, capability: str, refusal: str) -> Decision:
        role = self.policy.roles.get(actor.role)
        return ALLOW if role is not None and capability in role.can else deny(refusal)

    def may_manage_clients(self, actor: Party) -> Decision:
        """Registering and changing client services (and their secrets and tokens)."""
        return self._can(actor, "manage_clients", "Only exam board staff can register or change client services.")

    def may_manage_centres(self, actor: Party) -> Decision:
        """Creating, renaming, suspending and reinstating centres."""
        return self._can(actor, "manage_centres", "Only exam board staff can create, rename or suspend centres.")

    def may_manage_keys(self, actor: Party) -> Decision:
        """Rotating and retiring the provider's signing keys."""
        return self._can(actor, "manage_keys", "Only exam board staff can rotate or retire signing keys.")

    def may_read_audit(self, actor: Party) -> Decision:
        """Searching the whole audit trail (a centre's own trail is may_view_centre's)."""
        return self._can(actor, "read_audit", "Only exam board staff can search the whole audit trail.")

    def may_see_every_centre(self, actor: Party) -> Decision:
        """Board staff and the helpdesk see every centre and its people."""
        role = self.policy.roles.get(actor.role)
        if role is None or role.centre:
            return deny("Only exam board staff can see every centre.")
        return ALLOW

    def may_resend_invite(self, actor: Party, target: Party) -> Decision:
        return self._may(actor, "resend", target.role, target.centre, "resend the invite of")

    def needs_reason(self, actor: Party) -> bool:
        """Whether the actor's actions on people are audited with a reason they give (helpdesk work)."""
        role = self.policy.roles.get(actor.role)
        return bool(role and role.reason_required)

    def may_manage_users(self, actor: Party) -> Decision:
        """May the actor manage anyone's account at all (the header's "Manage users")?"""
        if actor.role not in self.policy.roles:
            return deny("Unknown account type.")
        role = self.policy.role(actor.role)
        if not any(role.may.values()):
            return deny(f"{role.name} accounts cannot manage other people's accounts.")
        if role.manage_requires and role.manage_requires not in self.held_profiles(actor):
            profile = self.policy.profiles[role.manage_requires]
            return deny(f"You need the '{profile.name}' access profile to manage accounts.")
        return ALLOW

    def access_given_at_centre(self, party: Party) -> Decision:
        """Can someone at the party's own centre change what the party may use (its access
        profiles)? If not, only the exam board can (an Exams Officer's access, board staff's)."""
        if party.role in self.policy.roles and party.centre and any(
                role.centre and party.role in role.may["grant"] for role in self.policy.roles.values()):
            return ALLOW
        return deny("Only the exam board can change what this account can use.")

    def may_view_centre(self, actor: Party, centre: str | None) -> Decision:
        """May the actor see a centre's accounts and audit trail?"""
        role = self.policy.role(actor.role)
        if not role.same_centre_only:
            return ALLOW
        if actor.centre != centre:
            return deny("You can only see your own centre.")
        if not any(role.may.values()):
            return deny(f"{role.name} accounts cannot see other people's accounts.")
        if role.manage_requires and role.manage_requires not in self.held_profiles(actor):
            profile = self.policy.profiles[role.manage_requires]
            return deny(f"You need the '{profile.name}' access profile to see your centre's accounts.")
        return ALLOW

    def within_limit(self, role_id: str, existing: int) -> Decision:
        """May one more account of this type join a centre that has ``existing`` of them?"""
        role = self.policy.role(role_id)
        if role.limit_per_centre and existing >= role.limit_per_centre:
            if role.exact_per_centre:
                return deny(f"A centre has exactly one {role.name}; ask the exam board to replace them.")
            return deny(f"A centre can have at most {role.limit_per_centre} {role.name} accounts "
                        f"(invited ones count).")
        return ALLOW

    def counts_towards_limit(self, role_id: str, status: str) -> bool:
        role = self.policy.role(role_id)
        return status == "active" or (status == "invited" and role.limit_counts_invited)
