"""Named checks: "may A do X to B?", each answering allow/deny with a reason a person can read.

Every decision about who may manage whom is made here, from policies/roles.toml and
policies/profiles.toml. Services call these and never test a role name themselves.

A reason is a lazy string (idp.i18n): it is translated where it is shown, so a Welsh page shows it
in Welsh (with the roles' and profiles' Welsh names) and the admin API and audit trail in English.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import inputs
from ..i18n import N_, Text
from ..i18n import lazy_gettext as _l
from . import Policy

#: why an account type may not act on another, by action (policies/roles.toml ``may``)
ACTION_REFUSALS = {
    "invite": N_("%(actor)s accounts cannot invite %(target)s accounts."),
    "resend": N_("%(actor)s accounts cannot resend the invite of %(target)s accounts."),
    "edit": N_("%(actor)s accounts cannot edit %(target)s accounts."),
    "delete": N_("%(actor)s accounts cannot delete %(target)s accounts."),
    "replace": N_("%(actor)s accounts cannot replace %(target)s accounts."),
    "grant": N_("%(actor)s accounts cannot change the access of %(target)s accounts."),
    "change_role": N_("%(actor)s accounts cannot change the type of %(target)s accounts."),
    "reset_mfa": N_("%(actor)s accounts cannot reset the MFA of %(target)s accounts."),
    "unlock": N_("%(actor)s accounts cannot unlock %(target)s accounts."),
    "disable": N_("%(actor)s accounts cannot disable or enable %(target)s accounts."),
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Text = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)


def deny(reason: Text) -> Decision:
    return Decision(False, reason)


@dataclass(frozen=True)
class Party:
    """What the policy needs to know about an actor or a target account."""

    sub: str
    role: str
    centre: str | None  # centre number
    profiles: frozenset[str] = frozenset()
    #: an actor passed a second factor within ``[mfa] fresh_seconds`` (a page's signed-in person, or
    #: the session an admin-API token was issued in; the command line's operator counts as having)
    recent_second_factor: bool = True


class Checks:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    # ---- helpers ----
    def acts_on_others(self, role_id: str) -> bool:
        """An account of this type may do something to other accounts (the board, the helpdesk, an
        Exams Officer, an admin): bringing one in hands that power to whoever reads its invite."""
        role = self.policy.roles.get(role_id)
        return role is not None and any(role.may.get(action) for action in role.may)

    def empowering_profiles(self) -> frozenset[str]:
        """The profiles that let their holder act on others (``manage_requires``: users.manage)."""
        return frozenset(role.manage_requires for role in self.policy.roles.values() if role.manage_requires)

    def held_profiles(self, party: Party) -> frozenset[str]:
        """What a party holds: everything its role allows if the role holds all profiles."""
        role = self.policy.role(party.role)
        return self.policy.allowed_profiles(party.role) if role.holds_all_profiles else party.profiles

    def _may(self, actor: Party, action: str, target_role: str, target_centre: str | None) -> Decision:
        if actor.role not in self.policy.roles or target_role not in self.policy.roles:
            return deny(_l("Unknown account type."))
        role = self.policy.role(actor.role)
        if target_role not in role.may[action]:
            return deny(_l(ACTION_REFUSALS[action], actor=role.label, target=self.policy.role(target_role).label))
        if role.same_centre_only and actor.centre != target_centre:
            return deny(_l("You can only manage accounts at your own centre."))
        if role.manage_requires and role.manage_requires not in self.held_profiles(actor):
            return deny(_l("You need the '%(profile)s' access profile to manage accounts.",
                           profile=self.policy.profiles[role.manage_requires].label))
        return ALLOW

    # ---- named checks ----
    def may_invite(self, actor: Party, target_role: str, centre: str | None) -> Decision:
        if target_role in self.policy.roles and self.policy.role(target_role).centre and not centre:
            return deny(_l("%(role)s accounts belong to a centre: give its number.",
                           role=self.policy.role(target_role).label))
        return self._may(actor, "invite", target_role, centre)

    def may_edit(self, actor: Party, target: Party) -> Decision:
        if actor.sub == target.sub:
            return ALLOW  # everyone edits their own profile details
        return self._may(actor, "edit", target.role, target.centre)

    def may_change_email(self, actor: Party, target: Party) -> Decision:
        """Someone else's address, as editing them. One's own only from one's account, where a code
        sent to the new address proves it is theirs: the address is the username, and tokens say
        it is verified."""
        if actor.sub == target.sub:
            return deny(_l("Change your own email address from My account."))
        return self._may_take_over(actor, target, "edit", N_("You cannot change their email address: they "
                                                             "have '%(profile)s', which you do not have yourself."))

    def may_delete(self, actor: Party, target: Party) -> Decision:
        if actor.sub == target.sub:
            return deny(_l("You cannot delete your own account."))
        return self._may(actor, "delete", target.role, target.centre)

    def may_replace(self, actor: Party, target_role: str, centre: str | None) -> Decision:
        return self._may(actor, "replace", target_role, centre)

    def may_reset_mfa(self, actor: Party, target: Party) -> Decision:
        if actor.sub == target.sub:
            return deny(_l("You cannot reset your own MFA; ask someone who manages your account."))
        return self._may_take_over(actor, target, "reset_mfa", N_("You cannot reset their MFA: they have "
                                                                   "'%(profile)s', which you do not have yourself."))

    def _may_take_over(self, actor: Party, target: Party, action: str, refusal: str) -> Decision:
        """Changing the address an account signs in with, or removing its second factors, lets
        whoever does it sign in as that person. At a centre that is allowed only to someone who
        holds everything the person holds, as nobody grants a profile they do not hold. Board staff
        stand outside a centre's access (they hold none of it) and give a reason for the trail."""
        decision = self._may(actor, action, target.role, target.centre)
        if not decision or not self.policy.role(actor.role).centre:
            return decision
        beyond = sorted(self.held_profiles(target) - self.held_profiles(actor))
        if beyond:
            return deny(_l(refusal, profile=self.policy.profiles[beyond[0]].label))
        return ALLOW

    def may_unlock(self, actor: Party, target: Party) -> Decision:
        return self._may(actor, "unlock", target.role, target.centre)

    def may_disable(self, actor: Party, target: Party) -> Decision:
        """Disabling and enabling again are one permission: whoever may stop an account may restart it."""
        if actor.sub == target.sub:
            return deny(_l("You cannot disable or enable your own account."))
        return self._may(actor, "disable", target.role, target.centre)

    def may_change_role(self, actor: Party, target: Party, new_role: str) -> Decision:
        if new_role not in self.policy.roles:
            return deny(_l("Unknown account type %(value)s.", value=repr(inputs.echo(new_role))))
        if actor.sub == target.sub:
            return deny(_l("You cannot change your own account type."))
        decision = self._may(actor, "change_role", target.role, target.centre)
        if not decision:
            return decision
        if new_role not in self.policy.role(actor.role).may["change_role"]:
            # the name stands alone (no "a"/"an"): it is the policy's, in either language
            return deny(_l("You cannot change an account's type to %(role)s.", role=self.policy.role(new_role).label))
        # the new type takes away what it may not hold: as for any removal, only what the actor has
        if not self.policy.role(target.role).holds_all_profiles:
            mine = self.held_profiles(actor)
            not_mine = sorted(p for p in target.profiles if not self.may_hold(new_role, p) and p not in mine)
            if not_mine:
                return deny(_l("Changing the type to %(role)s would remove '%(profile)s', which you cannot "
                               "remove because you do not have it yourself.",
                               role=self.policy.role(new_role).label, profile=self.policy.profiles[not_mine[0]].label))
        return ALLOW

    def may_hold(self, role_id: str, profile_id: str) -> Decision:
        """The role ceiling: may an account of this type hold this profile at all?"""
        profile = self.policy.profiles.get(profile_id)
        if profile is None:
            return deny(_l("Unknown access profile %(value)s.", value=repr(inputs.echo(profile_id))))
        if profile.availability(role_id) == "never":
            return deny(_l("%(role)s accounts cannot have '%(profile)s'.",
                           role=self.policy.role(role_id).label, profile=profile.label))
        return ALLOW

    def may_grant(self, actor: Party, target: Party, profile_id: str) -> Decision:
        ceiling = self.may_hold(target.role, profile_id)
        if not ceiling:
            return ceiling
        decision = self._may(actor, "grant", target.role, target.centre)
        if not decision:
            return decision
        if profile_id not in self.held_profiles(actor):
            return deny(_l("You cannot grant '%(profile)s' because you do not have it yourself.",
                           profile=self.policy.profiles[profile_id].label))
        return ALLOW

    def may_revoke(self, actor: Party, target: Party, profile_id: str) -> Decision:
        if profile_id not in self.policy.profiles:
            return deny(_l("Unknown access profile %(value)s.", value=repr(inputs.echo(profile_id))))
        role = self.policy.role(target.role)
        if role.holds_all_profiles:
            return deny(_l("%(role)s accounts always have every access profile.", role=role.label))
        decision = self._may(actor, "grant", target.role, target.centre)
        if not decision:
            return decision
        if profile_id not in self.held_profiles(actor):
            return deny(_l("You cannot remove '%(profile)s' because you do not have it yourself.",
                           profile=self.policy.profiles[profile_id].label))
        return ALLOW

    def profile_set_for(self, actor: Party, target: Party, wanted: set[str]) -> tuple[frozenset[str], Decision]:
        """Check replacing the target's profiles by ``wanted`` (implied profiles added).
        Returns (the resulting set, the first refusal or ALLOW)."""
        unknown = sorted(p for p in wanted if p not in self.policy.profiles)
        if unknown:
            return frozenset(), deny(_l("Unknown access profile %(value)s.", value=repr(inputs.echo(unknown[0]))))
        # May the actor change this account's access at all? (Asked even when nothing would change.)
        if actor.sub == target.sub:  # as with one's own type: someone else who manages you decides
            return frozenset(), deny(_l("You cannot change your own access."))
        role = self.policy.role(target.role)
        if role.holds_all_profiles:
            return frozenset(), deny(_l("%(role)s accounts always have every access profile.", role=role.label))
        decision = self._may(actor, "grant", target.role, target.centre)
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

    def _can(self, actor: Party, capability: str, refusal: Text) -> Decision:
        role = self.policy.roles.get(actor.role)
        return ALLOW if role is not None and capability in role.can else deny(refusal)

    def may_manage_clients(self, actor: Party) -> Decision:
        """Registering and changing client services (and their secrets and tokens)."""
        return self._can(actor, "manage_clients", _l("Only exam board staff can register or change client services."))

    def may_manage_centres(self, actor: Party) -> Decision:
        """Creating, renaming, suspending and reinstating centres."""
        return self._can(actor, "manage_centres", _l("Only exam board staff can create, rename or suspend centres."))

    def may_manage_keys(self, actor: Party) -> Decision:
        """Rotating and retiring the provider's signing keys."""
        return self._can(actor, "manage_keys", _l("Only exam board staff can rotate or retire signing keys."))

    def may_read_audit(self, actor: Party) -> Decision:
        """Searching the whole audit trail (a centre's own trail is may_view_centre's)."""
        return self._can(actor, "read_audit", _l("Only exam board staff can search the whole audit trail."))

    def may_see_every_centre(self, actor: Party) -> Decision:
        """Board staff and the helpdesk see every centre and its people."""
        role = self.policy.roles.get(actor.role)
        if role is None or role.centre:
            return deny(_l("Only exam board staff can see every centre."))
        return ALLOW

    def may_resend_invite(self, actor: Party, target: Party) -> Decision:
        return self._may(actor, "resend", target.role, target.centre)

    def needs_reason(self, actor: Party) -> bool:
        """Whether the actor's actions on people are audited with a reason they give (helpdesk work)."""
        role = self.policy.roles.get(actor.role)
        return bool(role and role.reason_required)

    def may_manage_users(self, actor: Party) -> Decision:
        """May the actor manage anyone's account at all (the header's "Manage users")?"""
        if actor.role not in self.policy.roles:
            return deny(_l("Unknown account type."))
        role = self.policy.role(actor.role)
        if not any(role.may.values()):
            return deny(_l("%(role)s accounts cannot manage other people's accounts.", role=role.label))
        if role.manage_requires and role.manage_requires not in self.held_profiles(actor):
            return deny(_l("You need the '%(profile)s' access profile to manage accounts.",
                           profile=self.policy.profiles[role.manage_requires].label))
        return ALLOW

    def access_given_at_centre(self, party: Party) -> Decision:
        """Can someone at the party's own centre change what the party may use (its access
        profiles)? If not, only the exam board can (an Exams Officer's access, board staff's)."""
        if party.role in self.policy.roles and party.centre and any(
                role.centre and party.role in role.may["grant"] for role in self.policy.roles.values()):
            return ALLOW
        return deny(_l("Only the exam board can change what this account can use."))

    def may_view_centre(self, actor: Party, centre: str | None) -> Decision:
        """May the actor see a centre's accounts and audit trail?"""
        role = self.policy.role(actor.role)
        if not role.same_centre_only:
            return ALLOW
        if actor.centre != centre:
            return deny(_l("You can only see your own centre."))
        if not any(role.may.values()):
            return deny(_l("%(role)s accounts cannot see other people's accounts.", role=role.label))
        if role.manage_requires and role.manage_requires not in self.held_profiles(actor):
            return deny(_l("You need the '%(profile)s' access profile to see your centre's accounts.",
                           profile=self.policy.profiles[role.manage_requires].label))
        return ALLOW

    def within_limit(self, role_id: str, existing: int) -> Decision:
        """May one more account of this type join a centre that has ``existing`` of them?"""
        role = self.policy.role(role_id)
        if role.limit_per_centre and existing >= role.limit_per_centre:
            if role.exact_per_centre:
                return deny(_l("A centre has exactly one %(role)s; ask the exam board to replace them.",
                               role=role.label))
            return deny(_l("A centre can have at most %(limit)d %(role)s accounts (invited ones count).",
                           limit=role.limit_per_centre, role=role.label))
        return ALLOW

    def counts_towards_limit(self, role_id: str, status: str) -> bool:
        role = self.policy.role(role_id)
        return status == "active" or (status == "invited" and role.limit_counts_invited)
