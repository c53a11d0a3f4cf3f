"""Who may open each part of the board console: one named policy check per part, asked before a
page shows anything or takes any form, its refusal audited. What a page then does is checked
again by the service that does it."""

from __future__ import annotations

from .. import policy
from ..i18n import lazy_gettext as _l
from ..policy.decisions import Decision, Party
from . import directory
from .errors import Conflict, Invalid, action, require
from .people import HANDING_OVER, account_by_sub, require_recent_second_factor


def _checks(area: str):
    checks = policy.checks()
    return {
        "home": checks.may_see_every_centre,
        "centres": checks.may_see_every_centre,
        "manage_centres": checks.may_manage_centres,  # creating, renaming, suspending; Exams Officers
        "people": checks.may_see_every_centre,       # the helpdesk; each action its own check
        "staff": checks.may_see_every_centre,
        "invite_staff": _may_invite_staff,
        "clients": checks.may_manage_clients,
        "keys": checks.may_manage_keys,
        "audit": checks.may_read_audit,
    }.get(area)


def _may_invite_staff(actor: Party) -> Decision:
    """Whether the actor may invite some type of account that belongs to no centre."""
    choices = directory.staff_role_choices(actor)
    allowed = next((c for c in choices if c.allowed), None)
    if allowed is not None:
        return Decision(True)
    return Decision(False, next((c.reason for c in choices if c.reason), _l("You cannot invite board accounts.")))


def may_open(actor: Party, area: str) -> Decision:
    """Whether the actor may open this part of the board console (the home page lists the parts
    it may)."""
    check = _checks(area)
    if check is None:
        raise Invalid(_l("There is no part of the board console called %(area)s.", area=repr(area)))
    return check(actor)


@action("board.opened")
def open_area(actor: Party, area: str) -> None:
    """Go on if the actor may open this part of the board console; else Denied (audited)."""
    require(may_open(actor, area))


#: why an action on a person's helpdesk page is not offered when it does not apply to them now
NOT_APPLICABLE = {
    "unlock": _l("This account is not locked."),
    "reset_mfa": _l("This person has not set up a second factor yet: they will when they first sign in."),
    "resend": _l("This person has already accepted their invite."),
    "email": _l("Change your own email address from My account."),
    "remove": _l("Only board accounts are removed here; a centre's people are removed from its console."),
    "disable": directory.NOT_APPLICABLE["disable"],
    "enable": directory.NOT_APPLICABLE["enable"],
}


@action("board.action_opened")
def open_person_action(actor: Party, sub: str, name: str):
    """The account, if the actor may do ``name`` (a key of directory.support_actions) to it now;
    else Denied (audited) or Conflict (it does not apply to them)."""
    account = account_by_sub(sub)
    decision = directory.support_actions(actor, account).get(name)
    if decision is None:
        raise Conflict(NOT_APPLICABLE.get(name, _l("This cannot be done to this account now.")))
    require(decision)
    if name in HANDING_OVER:
        require_recent_second_factor(actor)
    return account
