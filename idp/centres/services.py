"""Delegated administration: centres, invitations, access profiles, role changes, deletion.

Every decision comes from ``idp.policy.decisions``; this module applies it, keeps the
per-centre limits under concurrency (the centre row is locked for the length of the
transaction), writes the audit trail, and commits once per action so a refusal or
a failure leaves nothing half-written.
"""

from __future__ import annotations

import functools
import re
import secrets as _secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select

from .. import audit, clock, inputs, policy
from ..accounts import access, passwords
from ..accounts.models import Account
from ..clock import utcnow
from ..extensions import db
from ..policy.decisions import Decision, Party
from . import grants
from .models import AccessGrant, Centre

CENTRE_NUMBER = re.compile(r"^\d{5}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
PROFILE_FIELDS = ("title", "given_name", "family_name", "job_role", "language", "phone")
FIELD_LIMITS = {"title": 32, "given_name": 100, "family_name": 100, "job_role": 100}


class AdminError(Exception):
    """A refused or invalid administrative action. ``kind`` maps to an HTTP status."""

    kind = "invalid"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(AdminError):
    kind = "invalid"


class Denied(AdminError):
    kind = "denied"


class NotFound(AdminError):
    kind = "not_found"


class Conflict(AdminError):
    kind = "conflict"


def _require(decision: Decision) -> None:
    if not decision:
        raise Denied(decision.reason)


def action(event: str):
    """Make a service function one all-or-nothing action: on any error nothing it wrote stays in the
    session (so a later commit cannot save half of it), and a refusal is audited as ``denied``."""

    def wrap(func):
        @functools.wraps(func)
        def run(actor, *args, **kwargs):
            try:
                return func(actor, *args, **kwargs)
            except Exception as exc:
                db.session.rollback()
                if isinstance(exc, Denied):
                    audit.record(event, actor=actor.sub, outcome="denied", reason=exc.message)
                    db.session.commit()
                raise

        return run

    return wrap


# ------------------------------------------------------------------ parties
def party_of(account: Account) -> Party:
    return Party(sub=account.sub, role=account.role, centre=account.centre_number,
                 profiles=grants.profiles_of(account))


def operator() -> Party:
    """Board staff acting through the CLI."""
    return Party(sub="cli", role=policy.current().operator_role, centre=None)


def _actor_id(actor: Party) -> str:
    return actor.sub


# ------------------------------------------------------------------ validation
def _clean_fields(fields: dict, *, partial: bool) -> dict:
    out = {}
    for key, value in fields.items():
        if key not in PROFILE_FIELDS:
            raise Invalid(f"Unknown field {inputs.echo(key)!r}.", key)
        if not isinstance(value, str):
            raise Invalid(f"{key} must be text.", key)
        if inputs.has_control_characters(value):
            raise Invalid(f"{key.replace('_', ' ').capitalize()} must not contain control characters "
                          f"(such as a tab or line break).", key)
        value = value.strip()
        if key in FIELD_LIMITS and len(value) > FIELD_LIMITS[key]:
            raise Invalid(f"{key.replace('_', ' ').capitalize()} must be {FIELD_LIMITS[key]} characters or fewer.",
                          key)
        if key == "language" and value not in ("en", "cy"):
            raise Invalid("Language must be en (English) or cy (Welsh).", key)
        if key == "phone" and value and not E164.match(value):
            raise Invalid("Enter the phone number in international format, like +447700900123.", key)
        out[key] = value
    if not partial:
        for required in ("given_name", "family_name"):
            if not out.get(required):
                raise Invalid(f"Enter the {required.replace('_', ' ')}.", required)
    return out


def _clean_email(email) -> str:
    if not isinstance(email, str) or not EMAIL.match(email.strip()) or len(email.strip()) > 254 \
            or inputs.has_control_characters(email):
        raise Invalid("Enter an email address in the right format, like name@example.com.", "email")
    return email.strip()


def _centre(number: str | None, *, lock: bool = False) -> Centre:
    if not isinstance(number, str) or not CENTRE_NUMBER.match(number):
        raise Invalid("A centre number is 5 digits.", "centre")
    query = select(Centre).where(Centre.number == number)
    if lock:
        query = query.with_for_update()
    centre = db.session.scalar(query)
    if centre is None:
        raise NotFound(f"There is no centre {number}.", "centre")
    return centre


def account_by_sub(sub: str) -> Account:
    account = db.session.scalar(select(Account).where(Account.sub == sub)) if isinstance(sub, str) else None
    if account is None:
        raise NotFound("There is no such account.")
    return account


def account_by_email(email: str) -> Account:
    account = db.session.scalar(select(Account).where(Account.email_key == Account.key_for(email)))
    if account is None:
        raise NotFound("There is no account with that email address.")
    return account


# ------------------------------------------------------------------ centres
@action("centre.created")
def create_centre(actor: Party, number: str, name: str) -> Centre:
    if actor.role != policy.current().operator_role:
        raise Denied("Only exam board staff can create centres.")
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or inputs.has_control_characters(name):
        raise Invalid("Enter the centre name (200 characters or fewer, no control characters).", "name")
    if not isinstance(number, str) or not CENTRE_NUMBER.match(number):
        raise Invalid("A centre number is 5 digits.", "number")
    if db.session.scalar(select(Centre).where(Centre.number == number)) is not None:
        raise Conflict(f"Centre {number} already exists.", "number")
    centre = Centre(number=number, name=name.strip())
    db.session.add(centre)
    audit.record("centre.created", actor=_actor_id(actor), centre=number, after={"name": centre.name})
    db.session.commit()
    return centre


@action("centre.suspension_changed")
def set_centre_suspended(actor: Party, number: str, suspended: bool) -> Centre:
    if actor.role != policy.current().operator_role:
        raise Denied("Only exam board staff can suspend centres.")
    centre = _centre(number, lock=True)
    before = centre.suspended
    centre.suspended = suspended
    if suspended:
        for account in db.session.scalars(select(Account).where(Account.centre_id == centre.id)):
            access.end_access(account)
    audit.record("centre.suspended" if suspended else "centre.reinstated", actor=_actor_id(actor),
                 centre=number, before={"suspended": before}, after={"suspended": suspended})
    db.session.commit()
    return centre


def list_centres(actor: Party) -> list[Centre]:
    if actor.role != policy.current().operator_role:
        raise Denied("Only exam board staff can list centres.")
    return list(db.session.scalars(select(Centre).order_by(Centre.number)))


# ------------------------------------------------------------------ invitations
@dataclass(frozen=True)
class Invited:
    account: Account
    temporary_password: str


def temporary_password() -> str:
    rules = policy.current().sec("invite")
    return "".join(_secrets.choice(rules.temporary_password_alphabet)
                   for _ in range(rules.temporary_password_length))


def _count_towards_limit(centre: Centre, role: str) -> int:
    checks = policy.checks()
    rows = db.session.execute(select(Account.status).where(Account.centre_id == centre.id, Account.role == role))
    return sum(1 for (status,) in rows if checks.counts_towards_limit(role, status))


def _known_profiles(wanted) -> None:
    unknown = sorted(p for p in wanted if p not in policy.current().profiles)
    if unknown:
        raise Invalid(f"Unknown access profile {inputs.echo(unknown[0])!r}.", "profiles")


def _initial_profiles(actor: Party, target: Party, requested) -> frozenset[str]:
    pol, checks = policy.current(), policy.checks()
    if pol.role(target.role).holds_all_profiles:
        return pol.allowed_profiles(target.role)
    wanted = set(pol.default_profiles(target.role) if requested is None else requested)
    if not wanted:
        return frozenset()
    _known_profiles(wanted)
    result, decision = checks.profile_set_for(actor, target, wanted)
    _require(decision)
    return result


@action("account.invited")
def invite(actor: Party, *, email: str, role: str, centre: str | None, fields: dict,
           profiles=None, send=None, skip_limit: bool = False) -> Invited:
    """Create an ``invited`` account with a temporary password and email it (``send``)."""
    pol, checks = policy.current(), policy.checks()
    email = _clean_email(email)
    if not isinstance(role, str) or role not in pol.roles:
        raise Invalid(f"Account type must be one of: {', '.join(pol.roles)}.", "role")
    clean = _clean_fields(fields, partial=False)
    _require(checks.may_invite(actor, role, centre))
    centre_row = _centre(centre, lock=True) if pol.role(role).centre else None
    if centre_row is not None and centre_row.suspended:
        raise Denied(f"Centre {centre} is suspended.")
    if centre_row is not None and not skip_limit:
        _require(checks.within_limit(role, _count_towards_limit(centre_row, role)))
    if db.session.scalar(select(Account.id).where(Account.email_key == Account.key_for(email))):
        raise Conflict("An account with this email address already exists.", "email")

    password = temporary_password()
    rules = pol.sec("invite")
    account = Account(email=email, email_key=Account.key_for(email), role=role, status="invited",
                      centre_id=centre_row.id if centre_row else None,
                      password_hash=passwords.hash_password(password), password_is_temporary=True,
                      invited_by=_actor_id(actor),
                      invite_expires_at=utcnow() + timedelta(days=rules.expires_days), **clean)
    db.session.add(account)
    db.session.flush()
    target = Party(sub=account.sub, role=role, centre=centre)
    granted = _initial_profiles(actor, target, profiles)
    for pid in sorted(granted):
        db.session.add(AccessGrant(account_id=account.id, profile=pid, granted_by=_actor_id(actor)))
    audit.record("account.invited", actor=_actor_id(actor), subject=account.sub, centre=centre,
                 after={"email": email, "role": role, "profiles": sorted(granted)})
    return _deliver_then_commit(Invited(account, password), send)


def _deliver_then_commit(invited: Invited, send) -> Invited:
    """Email the invite inside the transaction: if the mail server refuses it, nothing is kept."""
    try:
        if send is not None:
            send(invited)
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    return invited


def renew_invite(account: Account, *, actor: str, send=None) -> Invited:
    """A new temporary password and expiry; the old password stops working. If ``send``
    fails nothing changes. Commits."""
    if account.status != "invited":
        raise Conflict("This account has already been set up; it does not need an invite.")
    password = temporary_password()
    account.password_hash = passwords.hash_password(password)
    account.password_is_temporary = True
    account.invite_expires_at = utcnow() + timedelta(days=policy.current().sec("invite").expires_days)
    audit.record("account.invite_resent", actor=actor, subject=account.sub, centre=account.centre_number)
    return _deliver_then_commit(Invited(account, password), send)


@action("account.invite_resent")
def resend_invite(actor: Party, sub: str, send=None) -> Invited:
    """Resend by someone allowed to invite this type of account at this centre."""
    account = account_by_sub(sub)
    _require(policy.checks().may_invite(actor, account.role, account.centre_number))
    return renew_invite(account, actor=_actor_id(actor), send=send)


@action("account.replaced")
def replace(actor: Party, *, role: str, centre: str, email: str, fields: dict, send=None) -> Invited:
    """Replace the holder(s) of a one-per-centre role in one transaction: never zero, never two."""
    _require(policy.checks().may_replace(actor, role, centre))
    # Everything about the newcomer is checked before the old holder is touched.
    email = _clean_email(email)
    _clean_fields(fields, partial=False)
    if db.session.scalar(select(Account.id).where(Account.email_key == Account.key_for(email))):
        raise Conflict("An account with this email address already exists.", "email")
    centre_row = _centre(centre, lock=True)
    previous = list(db.session.scalars(select(Account).where(Account.centre_id == centre_row.id,
                                                            Account.role == role)))
    for old in previous:
        access.end_access(old)
        audit.record("account.deleted", actor=_actor_id(actor), subject=old.sub, centre=centre,
                     before={"email": old.email, "role": old.role}, reason="replaced")
        db.session.delete(old)
    db.session.flush()
    return invite.__wrapped__(actor, email=email, role=role, centre=centre, fields=fields, send=send,
                              skip_limit=True)


# ------------------------------------------------------------------ changes to an account
@action("account.updated")
def update_fields(actor: Party, sub: str, fields: dict) -> Account:
    account = account_by_sub(sub)
    _require(policy.checks().may_edit(actor, party_of(account)))
    clean = _clean_fields(fields, partial=True)
    before = {k: getattr(account, k) for k in clean}
    for key, value in clean.items():
        setattr(account, key, value)
    audit.record("account.updated", actor=_actor_id(actor), subject=account.sub, centre=account.centre_number,
                 before=before, after=clean)
    db.session.commit()
    return account


@action("account.profiles_changed")
def set_profiles(actor: Party, sub: str, wanted) -> frozenset[str]:
    if not isinstance(wanted, (list, set, tuple, frozenset)) or not all(isinstance(p, str) for p in wanted):
        raise Invalid("profiles must be a list of access profile ids.", "profiles")
    _known_profiles(wanted)
    account = account_by_sub(sub)
    target = party_of(account)
    result, decision = policy.checks().profile_set_for(actor, target, set(wanted))
    _require(decision)
    before = target.profiles
    grants.replace_profiles(account, before, result, _actor_id(actor))
    audit.record("account.profiles_changed", actor=_actor_id(actor), subject=account.sub,
                 centre=account.centre_number, before=sorted(before), after=sorted(result))
    db.session.commit()
    return result


@action("account.role_changed")
def change_role(actor: Party, sub: str, new_role: str) -> Account:
    pol, checks = policy.current(), policy.checks()
    if not isinstance(new_role, str) or new_role not in pol.roles:
        raise Invalid(f"Account type must be one of: {', '.join(pol.roles)}.", "role")
    account = account_by_sub(sub)
    target = party_of(account)
    _require(checks.may_change_role(actor, target, new_role))
    if new_role == account.role:
        return account
    centre_row = _centre(account.centre_number, lock=True)
    if checks.counts_towards_limit(new_role, account.status):
        _require(checks.within_limit(new_role, _count_towards_limit(centre_row, new_role)))
    # Keep what the new type may hold; a role that holds everything gets everything.
    if pol.role(new_role).holds_all_profiles:
        after = pol.allowed_profiles(new_role)
    else:
        after = frozenset(p for p in target.profiles if checks.may_hold(new_role, p))
    before_role = account.role
    account.role = new_role
    grants.replace_profiles(account, target.profiles, after, _actor_id(actor))
    audit.record("account.role_changed", actor=_actor_id(actor), subject=account.sub,
                 centre=account.centre_number, before={"role": before_role, "profiles": sorted(target.profiles)},
                 after={"role": new_role, "profiles": sorted(after)})
    db.session.commit()
    return account


@action("account.deleted")
def delete(actor: Party, sub: str) -> None:
    account = account_by_sub(sub)
    _require(policy.checks().may_delete(actor, party_of(account)))
    access.end_access(account)
    audit.record("account.deleted", actor=_actor_id(actor), subject=account.sub, centre=account.centre_number,
                 before={"email": account.email, "role": account.role})
    db.session.delete(account)
    db.session.commit()


@action("account.unlocked")
def unlock(actor: Party, sub: str) -> Account:
    """Clear a lockout now (board staff, or centre managers per policy)."""
    from ..accounts import lockout

    account = account_by_sub(sub)
    _require(policy.checks().may_unlock(actor, party_of(account)))
    lockout.unlock(account)
    audit.record("account.unlocked", actor=_actor_id(actor), subject=account.sub, centre=account.centre_number)
    db.session.commit()
    return account


# ------------------------------------------------------------------ reading
@dataclass(frozen=True)
class Page:
    items: list[Account]
    total: int
    page: int
    per_page: int


def search(actor: Party, *, centre: str | None, q: str = "", page: int = 1, per_page: int = 25) -> Page:
    checks = policy.checks()
    if centre is None and policy.current().role(actor.role).same_centre_only:
        centre = actor.centre
    _require(checks.may_view_centre(actor, centre))
    query = select(Account)
    if centre is not None:
        query = query.where(Account.centre_id == _centre(centre).id)
    if q:
        like = f"%{q.strip().lower()[:100]}%"
        query = query.where(or_(Account.email_key.like(like), func.lower(Account.given_name).like(like),
                                func.lower(Account.family_name).like(like)))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    items = list(db.session.scalars(query.order_by(Account.email_key).offset((page - 1) * per_page)
                                    .limit(per_page)))
    return Page(items, total, page, per_page)


def view(actor: Party, sub: str) -> Account:
    account = account_by_sub(sub)
    if actor.sub != account.sub:
        _require(policy.checks().may_view_centre(actor, account.centre_number))
    return account


def describe(account: Account) -> dict:
    return {
        "sub": account.sub, "email": account.email, "role": account.role, "status": account.status,
        "centre": account.centre_number, "title": account.title, "given_name": account.given_name,
        "family_name": account.family_name, "job_role": account.job_role, "language": account.language,
        "phone": account.phone, "profiles": sorted(grants.profiles_of(account)),
        "invite_expires_at": clock.iso(account.invite_expires_at), "created_at": clock.iso(account.created_at),
    }



def centre_audit(actor: Party, number: str, *, page: int = 1, per_page: int = 50) -> list:
    """A centre's audit trail, newest first: its EO/admins (with users.manage) and board staff."""
    from ..audit import AuditEvent

    _centre(number)
    _require(policy.checks().may_view_centre(actor, number))
    query = (select(AuditEvent).where(AuditEvent.centre == number).order_by(AuditEvent.at.desc())
             .offset((page - 1) * per_page).limit(per_page))
    return list(db.session.scalars(query))
