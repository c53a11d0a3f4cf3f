"""Reading people as the consoles and the API show them: search with filters and pages, one
person's status (active, invited, invite expired, locked, second factor not set up), what an
inviter may choose on the invite form, and what a granter may tick on the access form, each with
the policy's reason when it is not allowed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select

from .. import clock, inputs, policy
from ..accounts import lockout
from ..accounts.models import ACTIVE, DISABLED, Account, AttemptCounter
from ..centres import grants
from ..extensions import db
from ..i18n import lazy_gettext as _l
from ..mfa.models import MfaMethod
from ..policy.decisions import Decision, Party
from .centres import CENTRE_NUMBER, centre_row
from .errors import Conflict, Denied, Invalid, action, all_or_nothing, require
from .people import (
    HANDING_OVER,
    NOT_DISABLED,
    ONLY_IN_USE,
    _count_towards_limit,
    _initial_profiles,
    account_by_sub,
    clean_email,
    clean_fields,
    party_of,
    require_recent_second_factor,
)

#: a person's status, most pressing first (the one shown is the first that applies)
STATUSES = ("locked", "invite_expired", "invited", "mfa_not_set_up", "active", "disabled")
MAX_PER_PAGE = 200
#: the characters of a search that are used (the rest of a longer one is ignored)
SEARCH_LIMIT = 100


@dataclass(frozen=True)
class Status:
    name: str
    locked_until: datetime | None = None


@dataclass(frozen=True)
class Page:
    items: list[Account]
    total: int
    page: int
    per_page: int
    statuses: dict[str, Status] = field(default_factory=dict)  # by sub

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _statuses(accounts: list[Account]) -> dict[str, Status]:
    """The status of each account, with two queries whatever the number of accounts."""
    if not accounts:
        return {}
    keys = {lockout.password_key(a.email): a for a in accounts}
    now = clock.utcnow().timestamp()
    locks = {key: until for key, until in db.session.execute(
        select(AttemptCounter.key, AttemptCounter.locked_until).where(AttemptCounter.key.in_(list(keys))))
        if until is not None and until > now}
    with_methods = set(db.session.scalars(select(MfaMethod.account_id).where(
        MfaMethod.account_id.in_([a.id for a in accounts])).distinct()))
    found = {}
    for key, account in keys.items():
        if account.status == DISABLED:  # first: unlocking would not let them in
            found[account.sub] = Status(DISABLED)
        elif key in locks:
            found[account.sub] = Status("locked", clock.from_timestamp(locks[key]))
        elif account.status == "invited":
            expired = account.invite_expires_at is not None and account.invite_expires_at <= clock.utcnow()
            found[account.sub] = Status("invite_expired" if expired else "invited")
        elif account.status == "active":
            found[account.sub] = Status("active" if account.id in with_methods else "mfa_not_set_up")
        else:
            found[account.sub] = Status(account.status)
    return found


def status_of(account: Account) -> Status:
    return _statuses([account])[account.sub]


#: a refused read is audited as ``denied`` under these (a read allowed is not audited)
VIEWED_ACCOUNT, VIEWED_CENTRE = "account.viewed", "centre.viewed"


@action(VIEWED_CENTRE)
def search(actor: Party, *, centre: str | None, q: str = "", role: str | None = None, status: str | None = None,
           page: int = 1, per_page: int = 25, by_name: bool = False) -> Page:
    """People the actor may see, matched on email or name, sorted by email (``by_name``: by family
    then given name); ``status`` filters on the status above (worked out here, so it is exact
    whatever the number of people)."""
    checks = policy.checks()
    if centre is None and policy.current().role(actor.role).same_centre_only:
        centre = actor.centre
    require(checks.may_view_centre(actor, centre))
    if role is not None and role not in policy.current().roles:
        raise Invalid(_l("Choose an account type from the list."), "role")
    if status is not None and status not in STATUSES:
        raise Invalid(_l("Choose a status from the list."), "status")
    if not 1 <= per_page <= MAX_PER_PAGE or page < 1:
        raise Invalid(_l("Pages hold 1 to %(most)d people.", most=MAX_PER_PAGE), "per_page")
    q = inputs.flatten_pasted(q or "")
    if inputs.has_control_characters(q):  # PostgreSQL refuses a NUL in text outright
        raise Invalid(_l("%(name)s: enter letters, numbers, spaces and punctuation only.", name="q"), "q")
    query = select(Account)
    if centre is not None:
        query = query.where(Account.centre_id == centre_row(centre).id)
    if role is not None:
        query = query.where(Account.role == role)
    if q and q.strip():
        like = "%" + q.strip().lower()[:SEARCH_LIMIT].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Account.email_key.like(like, escape="\\"),
                                func.lower(Account.given_name).like(like, escape="\\"),
                                func.lower(Account.family_name).like(like, escape="\\")))
    order = (func.lower(Account.family_name), func.lower(Account.given_name), Account.email_key) if by_name \
        else (Account.email_key,)
    if status is None:
        total = db.session.scalar(select(func.count()).select_from(query.subquery()))
        items = list(db.session.scalars(query.order_by(*order).offset((page - 1) * per_page).limit(per_page)))
        return Page(items, total, page, per_page, _statuses(items))
    everyone = list(db.session.scalars(query.order_by(*order)))
    statuses = _statuses(everyone)
    matching = [a for a in everyone if statuses[a.sub].name == status]
    shown = matching[(page - 1) * per_page:page * per_page]
    return Page(shown, len(matching), page, per_page, {a.sub: statuses[a.sub] for a in shown})


@action(VIEWED_ACCOUNT)
def view(actor: Party, sub: str) -> Account:
    account = account_by_sub(sub)
    if actor.sub != account.sub:
        require(policy.checks().may_view_centre(actor, account.centre_number))
    return account


def describe(account: Account) -> dict:
    """An account as the API answers it."""
    return {
        "sub": account.sub, "email": account.email, "role": account.role, "status": account.status,
        "state": status_of(account).name, "centre": account.centre_number, "title": account.title,
        "given_name": account.given_name, "family_name": account.family_name, "job_role": account.job_role,
        "language": account.language, "phone": account.phone, "profiles": sorted(grants.profiles_of(account)),
        "invite_expires_at": clock.iso(account.invite_expires_at), "created_at": clock.iso(account.created_at),
        "last_sign_in_at": clock.iso(account.last_sign_in_at), "version": account.version,
    }


# ------------------------------------------------------------------ what a form may offer
@dataclass(frozen=True)
class Choice:
    """One option on a form: whether the actor may choose it, and if not, the policy's reason."""

    value: str
    allowed: bool
    reason: str = ""
    checked: bool = False


def role_choices(actor: Party, centre: str | None) -> list[Choice]:
    """The account types the actor may invite at this centre (the limits counted now)."""
    checks, pol = policy.checks(), policy.current()
    row = None  # looked up only once some type may be invited there (a refusal tells nothing of it)
    found = []
    for role_id, role in pol.roles.items():
        decision = checks.may_invite(actor, role_id, centre)
        if decision and centre and role.centre:
            row = row or centre_row(centre)
            decision = checks.within_limit(role_id, _count_towards_limit(row, role_id))
        if not decision and role_id not in pol.role(actor.role).may["invite"]:
            continue  # never offered at all (a user account cannot invite an Exams Officer)
        found.append(Choice(role_id, bool(decision), decision.reason))
    return found


def profile_choices(actor: Party, target_role: str, *, target: Party | None = None) -> list[Choice]:
    """Each access profile for a person of ``target_role`` (an existing ``target``, or a new one):
    ticked if they hold it (or, for someone new, if it is on by default), and whether the actor may
    change it, with the reason if not ("You can only give access you have yourself")."""
    checks, pol = policy.checks(), policy.current()
    holder = target or Party(sub="", role=target_role, centre=actor.centre)
    held = checks.held_profiles(holder) if target is not None else pol.default_profiles(target_role)
    found = []
    for profile_id in pol.profiles:
        ceiling = checks.may_hold(target_role, profile_id)
        if not ceiling:
            found.append(Choice(profile_id, False, ceiling.reason, False))
            continue
        decision = checks.may_revoke(actor, holder, profile_id) if profile_id in held \
            else checks.may_grant(actor, holder, profile_id)
        found.append(Choice(profile_id, bool(decision), decision.reason, profile_id in held))
    return found


# ------------------------------------------------------------------ the centre console
@action(VIEWED_CENTRE)
def console_centre(actor: Party, number: str | None = None):
    """The centre whose people the actor is looking at (``None``: their own), if they may see it.
    Asked before the centre is looked up, so centre staff cannot learn which numbers exist."""
    number = actor.centre if number is None else number
    if number is None:
        raise Invalid(_l("Choose a centre."), "centre")
    require(policy.checks().may_view_centre(actor, number))
    return centre_row(number)


@action(VIEWED_ACCOUNT)
def person(actor: Party, sub: str) -> Account:
    """One person of a centre the actor may see, for the console (unlike ``view``, seeing yourself
    there needs the same right as seeing anyone else)."""
    account = account_by_sub(sub)
    require(policy.checks().may_view_centre(actor, account.centre_number))
    return account


def person_actions(actor: Party, account: Account) -> dict[str, Decision | None]:
    """What the actor may do to this person from the console, each with the policy's reason when
    not; ``None`` for what does not apply to the person as they are now (unlocking someone who is
    not locked)."""
    checks, target, state = policy.checks(), party_of(account), status_of(account).name
    return {
        "access": checks.profile_set_for(actor, target, set(target.profiles))[1],
        "role": checks.may_change_role(actor, target, account.role),
        "email": checks.may_change_email(actor, target),
        "resend": checks.may_resend_invite(actor, target) if state in ("invited", "invite_expired") else None,
        "unlock": checks.may_unlock(actor, target) if state == "locked" else None,
        "reset_mfa": None if account.status == "invited" else checks.may_reset_mfa(actor, target),
        **_disable_or_enable(checks, actor, target, account),
        "remove": checks.may_delete(actor, target),
    }


def _disable_or_enable(checks, actor: Party, target: Party, account: Account) -> dict:
    """Disable for an account in use, enable for a disabled one; neither for an invited one."""
    return {"disable": checks.may_disable(actor, target) if account.status == ACTIVE else None,
            "enable": checks.may_disable(actor, target) if account.status == DISABLED else None}


#: the event each action of ``person_actions`` is audited as (its service's, idp.admin.people)
ACTION_EVENTS = {
    "access": "account.profiles_changed", "role": "account.role_changed", "email": "account.email_changed",
    "resend": "account.invite_resent", "unlock": "account.unlocked", "reset_mfa": "mfa.reset",
    "disable": "account.disabled", "enable": "account.enabled", "remove": "account.deleted",
}


def open_person_action(actor: Party, sub: str, name: str) -> Account:
    """The person, if the actor may see them and do ``name`` (a key of ``person_actions``) to them
    now, for a console page that shows or takes that action's form. A refusal is Denied, audited as
    ``denied`` under the action's own event as its service's refusal through the admin API is (an
    Exams Officer editing a URL or a form to act on another centre's person leaves a trace; the
    answer they get is the same); Conflict when the action does not apply to the person now."""
    with all_or_nothing(ACTION_EVENTS[name], actor, {"target": sub}):
        account = person(actor, sub)
        decision = person_actions(actor, account)[name]
        if decision is None:
            raise Conflict(NOT_APPLICABLE[name])
        require(decision)
        if name in HANDING_OVER:
            require_recent_second_factor(actor)
        return account


NOT_APPLICABLE = {
    "resend": _l("This person has already accepted their invite."),
    "unlock": _l("This account is not locked."),
    "reset_mfa": _l("This person has not set up a second factor yet."),
    "disable": ONLY_IN_USE,
    "enable": NOT_DISABLED,
}


def centre_roles() -> list[str]:
    """The account types of a centre's staff, in the policy's order."""
    return [role_id for role_id, role in policy.current().roles.items() if role.centre]


def open_invite(actor: Party, number: str | None):
    """The centre (``None``: the actor's own) and the account types offered there, for the console's
    invite steps, if the actor may invite someone to it; else Denied, audited as a refused invite
    through the admin API is (the centre named, when the URL named one that could be)."""
    named = number if isinstance(number, str) and CENTRE_NUMBER.match(number) else None
    with all_or_nothing("account.invited", actor, {"target": named}):
        centre = console_centre(actor, number)
        roles = invite_roles(actor, centre.number)
        if not roles:
            raise Denied(_l("You cannot invite anyone to this centre."))
        return centre, roles


def invite_roles(actor: Party, centre: str) -> list[Choice]:
    """The account types of a centre's staff the actor may invite there (``role_choices`` without
    the types that belong to no centre)."""
    return [c for c in role_choices(actor, centre) if c.value in centre_roles()]


def check_invite(actor: Party, centre: str, *, email: str, role: str, fields: dict) -> tuple[str, dict]:
    """The first step of an invite, checked before anything is written: the details, the account
    type (with the policy's reason if it is not allowed), and that no account has the address.
    Returns the cleaned address and fields. A refusal is audited as the service's (``account.invited``)."""
    with all_or_nothing("account.invited", actor, {"target": centre}):
        email = clean_email(email)
        clean = clean_fields(fields, partial=False)
        choice = next((c for c in invite_roles(actor, centre) if c.value == role), None)
        if choice is None:
            raise Invalid(_l("Choose the type of account."), "role")
        if not choice.allowed:
            raise Denied(choice.reason, "role")
        if db.session.scalar(select(Account.id).where(Account.email_key == Account.key_for(email))):
            raise Conflict(_l("An account with this email address already exists."), "email")
        return email, clean


def invite_profiles(actor: Party, role: str, centre: str, wanted) -> frozenset[str]:
    """What an invite with these profiles ticked would grant (implied ones added), or the policy's
    refusal: the check ``people.invite`` makes, without writing anything, for the invite's access
    step (a refusal audited as the invite's own)."""
    with all_or_nothing("account.invited", actor, {"target": centre}):
        return invite_profiles_shown(actor, role, centre, wanted)


def invite_profiles_shown(actor: Party, role: str, centre: str, wanted) -> frozenset[str]:
    """``invite_profiles`` for a page that only shows what would be granted (its refusal is not a
    refusal of anything asked for, and is not audited: the step that asks audits its own)."""
    if not isinstance(wanted, (list, set, tuple, frozenset)) or not all(isinstance(p, str) for p in wanted):
        raise Invalid(_l("profiles must be a list of access profile ids."), "profiles")
    return _initial_profiles(actor, Party(sub="", role=role, centre=centre), list(wanted))


def type_choices(actor: Party, account: Account) -> list[Choice]:
    """Each account type of a centre's staff the person could be changed to (theirs ticked), and
    whether the actor may, counting the centre's limits now, with the policy's reason if not."""
    checks, target = policy.checks(), party_of(account)
    found = []
    for role_id in centre_roles():
        decision = checks.may_change_role(actor, target, role_id)
        if decision and role_id != account.role and checks.counts_towards_limit(role_id, account.status):
            decision = checks.within_limit(role_id, _count_towards_limit(account.centre, role_id))
        found.append(Choice(role_id, bool(decision), decision.reason, role_id == account.role))
    return found


def profiles_lost(account: Account, new_role: str) -> list[str]:
    """The access profiles the person holds that an account of ``new_role`` cannot (a change of
    type takes them away)."""
    checks = policy.checks()
    if new_role not in policy.current().roles:
        return []
    return sorted(p for p in checks.held_profiles(party_of(account)) if not checks.may_hold(new_role, p))


def held_profiles(account: Account) -> list[str]:
    """The access profiles the person holds (all of them for a type that holds every one), in the
    catalogue's order."""
    held = policy.checks().held_profiles(party_of(account))
    return [p for p in policy.current().profiles if p in held]


# ------------------------------------------------------------------ the board console's helpdesk
#: sign-in failures shown on a person's helpdesk page
RECENT_FAILURES = 10


@dataclass(frozen=True)
class SupportView:
    """One person as the helpdesk sees them: their status, their second factors by kind (how
    many of each), their last sign-in and recent sign-in failures from the audit trail."""

    account: Account
    status: Status
    methods: dict[str, int]
    failures: list
    actions: dict


def support_view(actor: Party, sub: str) -> SupportView:
    """A person anywhere, for board staff and the helpdesk."""
    from ..audit import AuditEvent

    require(policy.checks().may_see_every_centre(actor))
    account = account_by_sub(sub)
    methods: dict[str, int] = {}
    for kind in db.session.scalars(select(MfaMethod.kind).where(MfaMethod.account_id == account.id)):
        methods[kind] = methods.get(kind, 0) + 1
    failures = list(db.session.scalars(
        select(AuditEvent).where(AuditEvent.subject == account.sub, AuditEvent.outcome == "failure",
                                 AuditEvent.event.startswith("signin."))
        .order_by(AuditEvent.at.desc()).limit(RECENT_FAILURES)))
    return SupportView(account, status_of(account), methods, failures, support_actions(actor, account))


def support_actions(actor: Party, account: Account) -> dict:
    """What the helpdesk page offers for this person, each with the policy's decision (and reason);
    None for what does not apply to them now (unlocking someone who is not locked). Whatever it
    shows, the service checks again when the action is taken."""
    from .people import party_of

    checks, target, state = policy.checks(), party_of(account), status_of(account).name
    return {
        "unlock": checks.may_unlock(actor, target) if state == "locked" else None,
        "reset_mfa": None if account.status == "invited" else checks.may_reset_mfa(actor, target),
        "resend": checks.may_resend_invite(actor, target) if account.status == "invited" else None,
        "email": checks.may_change_email(actor, target) if actor.sub != account.sub else None,
        **_disable_or_enable(checks, actor, target, account),
        # board accounts are removed from the board console; a centre's people from its console
        "remove": checks.may_delete(actor, target) if account.centre_id is None else None,
    }


# ------------------------------------------------------------------ the board console: staff and Exams Officers
def board_staff(actor: Party) -> Page:
    """Every account that belongs to no centre (board staff and the helpdesk), by email."""
    require(policy.checks().may_see_every_centre(actor))
    items = list(db.session.scalars(select(Account).where(Account.centre_id.is_(None)).order_by(Account.email_key)))
    return Page(items, len(items), 1, max(1, len(items)), _statuses(items))


def staff_role_choices(actor: Party) -> list[Choice]:
    """The account types that belong to no centre, and whether the actor may invite each."""
    checks, pol = policy.checks(), policy.current()
    found = []
    for role_id, role in pol.roles.items():
        if not role.centre:
            decision = checks.may_invite(actor, role_id, None)
            found.append(Choice(role_id, bool(decision), decision.reason))
    return found


def keep_as_choices(actor: Party, centre: str) -> list[Choice]:
    """When the centre's Exams Officer is replaced, what can become of the old one: deleted
    (value ""), or kept on as another type of account if the centre has room for one more."""
    from .people import keep_as_roles

    checks = policy.checks()
    head = policy.current().centre_head_role
    allowed = checks.may_replace(actor, head, centre)
    row = centre_row(centre) if allowed else None  # asked first: a refusal tells nothing of the centre
    found = [Choice("", bool(allowed), allowed.reason, True)]
    for role_id in keep_as_roles(head):
        decision = checks.within_limit(role_id, _count_towards_limit(row, role_id)) if allowed else allowed
        found.append(Choice(role_id, bool(decision), decision.reason))
    return found
