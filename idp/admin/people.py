"""The account lifecycle: invite, resend, replace the Exams Officer, edit, grant access profiles,
change account type, unlock, reset MFA, disable and enable, delete; and who may see whom.

Every decision comes from ``idp.policy``; this module applies it, keeps the per-centre limits
under concurrency (the centre row is locked for the length of the transaction), writes the audit
trail, and commits once per action, so a refusal or a failure leaves nothing half-written. The
JSON API, the command line and the consoles all call these functions: none of them decides who
may act.
"""

from __future__ import annotations

import re
import secrets as _secrets
from dataclasses import dataclass
from dataclasses import replace as replaced
from datetime import timedelta

from sqlalchemy import select, update

from .. import audit, inputs, policy
from ..accounts import access, emails, lockout, passwords
from ..accounts.models import ACTIVE, DISABLED, Account
from ..centres import grants
from ..centres.models import AccessGrant
from ..clock import utcnow
from ..extensions import db, hold_row
from ..i18n import lazy_gettext as _l
from ..mfa import codes
from ..mfa import services as mfa
from ..notify import background
from ..policy.decisions import Party
from ..records import Record
from .centres import centre_row as find_centre
from .errors import Conflict, Denied, Invalid, NotFound, SecondFactorNeeded, action, require

#: one mailbox, as RFC 5321 writes it with a dot-atom (no quoted local part): a display name
#: ("Head <me@elsewhere>") or a list ("a@x, b@y") would reach another mailbox, or several
EMAIL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                   r"@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$")
PROFILE_FIELDS = ("title", "given_name", "family_name", "job_role", "language", "phone")
FIELD_LIMITS = {"title": 32, "given_name": 100, "family_name": 100, "job_role": 100}
#: the fields' names in messages about them
FIELD_NAMES = {"title": _l("Title"), "given_name": _l("Given name"), "family_name": _l("Family name"),
               "job_role": _l("Job role"), "language": _l("Language"), "phone": _l("Phone number")}
#: the longest subject identifier stored
SUB_LIMIT = Account.__table__.c.sub.type.length
MISSING = {"given_name": _l("Enter the given name."), "family_name": _l("Enter the family name.")}


# ------------------------------------------------------------------ parties
def party_of(account: Account) -> Party:
    return Party(sub=account.sub, role=account.role, centre=account.centre_number,
                 profiles=grants.profiles_of(account))


def operator() -> Party:
    """Board staff acting through the CLI."""
    return Party(sub="cli", role=policy.current().operator_role, centre=None)


#: an actor whose account was disabled, deleted or suspended while their change waited its turn
NO_LONGER = _l("Your account can no longer make this change.")


def _hold(actor: Party, *, centre: str | None = None, account: Account | None = None) -> tuple:
    """Hold, for the rest of the transaction, the centre's row (``centre``: its number) and then the
    accounts of the actor and of the person acted on (``account``), in one order, so that two
    changes at once cannot wait for each other; return the centre and the actor as committed now.

    Who may act was decided on the actor as their request found them: two admins demoting each
    other at the same moment were each decided to be admins, and both changes went through,
    leaving the centre with none. A change to someone's standing holds their account (and their
    centre), so once the rows are held the actor read again is what every change before this one
    left, and no change after it can land until this one commits. The caller decides again on
    the actor returned (and on ``account``, read again here too)."""
    row = find_centre(centre, lock=True) if centre is not None else None
    for sub in sorted({actor.sub, account.sub if account is not None else actor.sub} - {operator().sub}):
        hold_row(Account.sub, sub)
    if account is not None:
        db.session.refresh(account)
    if actor.sub == operator().sub:
        return row, actor
    now = db.session.scalar(select(Account).where(Account.sub == actor.sub)
                            .execution_options(populate_existing=True))
    if now is None or now.status == DISABLED or (now.centre is not None and now.centre.suspended):
        raise Denied(NO_LONGER)
    return row, replaced(party_of(now), recent_second_factor=actor.recent_second_factor)


# ------------------------------------------------------------------ validation
def clean_fields(fields: dict, *, partial: bool) -> dict:
    out = {}
    for key, value in fields.items():
        if key not in PROFILE_FIELDS:
            raise Invalid(_l("Unknown field %(name)s.", name=repr(inputs.echo(key))), key)
        if not isinstance(value, str):
            raise Invalid(_l("%(name)s must be text.", name=key), key)
        if inputs.has_control_characters(value):
            raise Invalid(_l("%(field)s must not contain control characters (such as a tab or line break).",
                             field=FIELD_NAMES[key]), key)
        value = "" if inputs.is_blank(value) else value.strip()
        if key in FIELD_LIMITS and len(value) > FIELD_LIMITS[key]:
            raise Invalid(_l("%(field)s must be %(limit)d characters or fewer.",
                             field=FIELD_NAMES[key], limit=FIELD_LIMITS[key]), key)
        if key == "language" and value not in ("en", "cy"):
            raise Invalid(_l("Language must be en (English) or cy (Welsh)."), key)
        if key == "phone" and value:
            try:
                value = inputs.phone_number(value)  # stored as E.164, however it was typed
            except inputs.BadPhoneNumber as exc:
                raise Invalid(exc.message, key) from None
        out[key] = value
    for required in ("given_name", "family_name"):  # given, or (a change) left out, never emptied
        if (required in out or not partial) and not out.get(required):
            raise Invalid(MISSING[required], required)
    return out


def clean_email(email) -> str:
    wrong = Invalid(_l("Enter an email address in the right format, like name@example.com."), "email")
    if not isinstance(email, str) or inputs.has_control_characters(email):
        raise wrong
    email = email.strip()
    if not email.isascii():
        # letters that look like others (a full-width "ｅ", a Cyrillic "е") would make a second
        # account that reads as someone else's, in every list and to every service; and mail to
        # them needs SMTPUTF8, which not every server relays
        raise Invalid(_l("Use only English letters, digits and the usual punctuation in an email address "
                         "(an address with accented or other letters cannot be used here)."), "email")
    if not EMAIL.match(email) or len(email) > 254 or len(email.partition("@")[0]) > 64:
        raise wrong
    return email


REASON_LIMIT = 500


def reason_given(actor: Party, account: Account, reason) -> str | None:
    """The reason the actor gives for acting on someone's account, cleaned. Required when the
    policy says the actor's actions need one (board staff and the helpdesk working on other
    people's accounts: policy.checks().needs_reason); kept in the action's audit row."""
    if reason is not None and not isinstance(reason, str):
        raise Invalid(_l("%(name)s must be text.", name="reason"), "reason")
    reason = (reason or "").strip()
    if inputs.has_control_characters(reason):
        raise Invalid(_l("The reason must not contain control characters (such as a tab or line break)."),
                      "reason")
    if len(reason) > REASON_LIMIT:
        raise Invalid(_l("The reason must be %(limit)d characters or fewer.", limit=REASON_LIMIT), "reason")
    if not any(ch.isalnum() for ch in reason):  # blank, or only punctuation or invisible characters
        reason = ""
    if not reason and actor.sub != account.sub and policy.checks().needs_reason(actor):
        raise Invalid(_l("Enter the reason for this change (for example, the helpdesk ticket number)."), "reason")
    return reason or None


def _reason_detail(reason: str | None) -> dict:
    return {"reason": reason} if reason else {}


def account_by_sub(sub: str) -> Account:
    # a sub from a URL: one that could not be any account's is looked up nowhere (PostgreSQL
    # refuses a NUL in text with an error)
    plausible = isinstance(sub, str) and len(sub) <= SUB_LIMIT and not inputs.has_control_characters(sub)
    account = db.session.scalar(select(Account).where(Account.sub == sub)) if plausible else None
    if account is None:
        raise NotFound(_l("There is no such account."))
    return account


def account_by_email(email: str) -> Account:
    account = db.session.scalar(select(Account).where(Account.email_key == Account.key_for(email)))
    if account is None:
        raise NotFound(_l("There is no account with that email address."))
    return account


# ------------------------------------------------------------------ invitations
@dataclass(frozen=True)
class Invited:
    account: Account
    temporary_password: str


def temporary_password() -> str:
    rules = policy.current().sec("invite")
    return "".join(_secrets.choice(rules.temporary_password_alphabet)
                   for _ in range(rules.temporary_password_length))


def _count_towards_limit(centre, role: str) -> int:
    checks = policy.checks()
    rows = db.session.execute(select(Account.status).where(Account.centre_id == centre.id, Account.role == role))
    return sum(1 for (status,) in rows if checks.counts_towards_limit(role, status))


def _known_profiles(wanted) -> None:
    unknown = sorted(p for p in wanted if p not in policy.current().profiles)
    if unknown:
        raise Invalid(_l("Unknown access profile %(value)s.", value=repr(inputs.echo(unknown[0]))), "profiles")


def _initial_profiles(actor: Party, target: Party, requested) -> frozenset[str]:
    pol, checks = policy.current(), policy.checks()
    if pol.role(target.role).holds_all_profiles:
        return pol.allowed_profiles(target.role)
    wanted = set(pol.default_profiles(target.role) if requested is None else requested)
    if not wanted:
        return frozenset()
    _known_profiles(wanted)
    result, decision = checks.profile_set_for(actor, target, wanted)
    require(decision)
    return result


@action("account.invited")
def invite(actor: Party, *, email: str, role: str, centre: str | None, fields: dict,
           profiles=None, send=None, skip_limit: bool = False) -> Invited:
    """Create an ``invited`` account with a temporary password and email it (``send``)."""
    pol, checks = policy.current(), policy.checks()
    email = clean_email(email)
    if not isinstance(role, str) or role not in pol.roles:
        raise Invalid(_l("Account type must be one of: %(roles)s.", roles=", ".join(pol.roles)), "role")
    clean = clean_fields(fields, partial=False)
    require(checks.may_invite(actor, role, centre))
    if checks.acts_on_others(role):
        require_recent_second_factor(actor)
    centre_row, actor = _hold(actor, centre=centre if pol.role(role).centre else None)
    require(checks.may_invite(actor, role, centre))  # decided again on the actor as they are now
    if centre_row is not None and centre_row.suspended:
        raise Denied(_l("Centre %(number)s is suspended.", number=centre))
    if centre_row is not None and not skip_limit:
        require(checks.within_limit(role, _count_towards_limit(centre_row, role)))
    if db.session.scalar(select(Account.id).where(Account.email_key == Account.key_for(email))):
        raise Conflict(_l("An account with this email address already exists."), "email")

    password = temporary_password()
    rules = pol.sec("invite")
    account = Account(email=email, email_key=Account.key_for(email), role=role, status="invited",
                      centre_id=centre_row.id if centre_row else None,
                      password_hash=passwords.hash_password(password), password_is_temporary=True,
                      invited_by=actor.sub,
                      invite_expires_at=utcnow() + timedelta(days=rules.expires_days), **clean)
    db.session.add(account)
    db.session.flush()
    target = Party(sub=account.sub, role=role, centre=centre)
    granted = _initial_profiles(actor, target, profiles)
    for pid in sorted(granted):
        db.session.add(AccessGrant(account_id=account.id, profile=pid, granted_by=actor.sub))
    audit.record("account.invited", actor=actor.sub, subject=account.sub, centre=centre,
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


def renew_invite(account: Account, *, actor: str, send=None, reason: str | None = None) -> Invited:
    """A new temporary password and expiry; the old password stops working. If ``send``
    fails nothing changes. Commits."""
    if account.status != "invited":
        raise Conflict(_l("This account has already been set up; it does not need an invite."))
    password = temporary_password()
    account.password_hash = passwords.hash_password(password)
    account.password_is_temporary = True
    account.invite_expires_at = utcnow() + timedelta(days=policy.current().sec("invite").expires_days)
    audit.record("account.invite_resent", actor=actor, subject=account.sub, centre=account.centre_number,
                 **_reason_detail(reason))
    return _deliver_then_commit(Invited(account, password), send)


@action("account.invite_resent")
def resend_invite(actor: Party, sub: str, send=None, *, reason: str | None = None) -> Invited:
    """Resend by someone allowed to invite this type of account at this centre."""
    account = account_by_sub(sub)
    require(policy.checks().may_resend_invite(actor, party_of(account)))
    reason = reason_given(actor, account, reason)
    _, actor = _hold(actor, centre=account.centre_number, account=account)
    require(policy.checks().may_resend_invite(actor, party_of(account)))
    return renew_invite(account, actor=actor.sub, send=send, reason=reason)


@action("account.replaced")
def replace(actor: Party, *, role: str, centre: str, email: str, fields: dict, send=None,
            keep_as: str | None = None) -> Invited:
    """Replace the holder(s) of a one-per-centre role in one transaction: never zero, never two.
    The old holder is deleted, or (``keep_as``, e.g. "admin") stays at the centre as that type of
    account when the centre has room for one more: what they hold that the new type cannot is
    taken away, and their sessions end so their next sign-in carries the new type."""
    require(policy.checks().may_replace(actor, role, centre))
    require_recent_second_factor(actor)  # the centre's head passes to whoever reads the invite
    # Everything about the newcomer is checked before the old holder is touched.
    email = clean_email(email)
    clean_fields(fields, partial=False)
    if keep_as is not None:
        _check_keep_as(role, keep_as)
    if db.session.scalar(select(Account.id).where(Account.email_key == Account.key_for(email))):
        raise Conflict(_l("An account with this email address already exists."), "email")
    if centre is None:  # a one-per-centre role is replaced at a centre
        raise Invalid(_l("A centre number is 5 digits."), "centre")
    centre_row, actor = _hold(actor, centre=centre)
    require(policy.checks().may_replace(actor, role, centre))
    previous = list(db.session.scalars(select(Account).where(Account.centre_id == centre_row.id,
                                                            Account.role == role)))
    if keep_as is not None:
        checks = policy.checks()
        joining = sum(1 for old in previous if checks.counts_towards_limit(keep_as, old.status))
        if joining:
            require(checks.within_limit(keep_as, _count_towards_limit(centre_row, keep_as) + joining - 1))
    for old in previous:
        access.end_access(old)
        if keep_as is not None:
            _step_down(actor, old, keep_as, centre)
            continue
        audit.record("account.deleted", actor=actor.sub, subject=old.sub, centre=centre,
                     before={"email": old.email, "role": old.role}, reason="replaced")
        db.session.delete(old)
    db.session.flush()
    return invite.__wrapped__(actor, email=email, role=role, centre=centre, fields=fields, send=send,
                              skip_limit=True)


def keep_as_roles(role: str) -> list[str]:
    """The account types a replaced holder of ``role`` may stay on as: the centre's other types
    that are not one-per-centre, in the policy's order."""
    pol = policy.current()
    return [r.id for r in pol.roles.values() if r.centre and r.id != role and not r.exact_per_centre]


def _check_keep_as(role: str, keep_as) -> None:
    if not isinstance(keep_as, str) or keep_as not in keep_as_roles(role):
        raise Invalid(_l("The old account can only be kept as one of: %(roles)s.",
                         roles=", ".join(keep_as_roles(role)) or "none"), "keep_as")


def _step_down(actor: Party, old: Account, new_role: str, centre: str) -> None:
    """The replaced holder becomes ``new_role`` (the caller has checked the centre's limit)."""
    pol, checks = policy.current(), policy.checks()
    before = checks.held_profiles(party_of(old))
    after = pol.allowed_profiles(new_role) if pol.role(new_role).holds_all_profiles \
        else frozenset(p for p in before if checks.may_hold(new_role, p))
    before_role = old.role
    old.role = new_role
    old.version = Account.version + 1
    grants.replace_profiles(old, grants.profiles_of(old), after, actor.sub)
    audit.record("account.role_changed", actor=actor.sub, subject=old.sub, centre=centre,
                 before={"role": before_role, "profiles": sorted(before)},
                 after={"role": new_role, "profiles": sorted(after)}, reason="replaced")


# ------------------------------------------------------------------ changes to an account
def _claim_change(account: Account, expected_version: int | None) -> None:
    """Take the account's next version for this change, atomically. With ``expected_version`` (the
    version a form showed) a change someone else made meanwhile is refused rather than overwritten;
    of two changes at once, the second waits for the first and is refused."""
    query = update(Account).where(Account.id == account.id)
    if expected_version is not None:
        if not isinstance(expected_version, int) or isinstance(expected_version, bool):
            raise Invalid(_l("version must be a whole number."), "version")
        query = query.where(Account.version == expected_version)
    claimed = db.session.execute(query.values(version=Account.version + 1)
                                 .execution_options(synchronize_session=False, claims_of=[account.sub]))
    if claimed.rowcount != 1:
        raise Conflict(_l("Someone else changed this person's account while you were looking at it. "
                          "Check what it says now and make your change again."), "version")
    db.session.expire(account, ["version"])


@action("account.updated")
def update_fields(actor: Party, sub: str, fields: dict, *, expected_version: int | None = None) -> Account:
    account = account_by_sub(sub)
    require(policy.checks().may_edit(actor, party_of(account)))
    clean = clean_fields(fields, partial=True)
    _, actor = _hold(actor, centre=account.centre_number, account=account)
    require(policy.checks().may_edit(actor, party_of(account)))
    _claim_change(account, expected_version)
    before = {k: getattr(account, k) for k in clean}
    for key, value in clean.items():
        setattr(account, key, value)
    audit.record("account.updated", actor=actor.sub, subject=account.sub, centre=account.centre_number,
                 before=before, after=clean)
    db.session.commit()
    return account


@action("account.profiles_changed")
def set_profiles(actor: Party, sub: str, wanted, *, expected_version: int | None = None) -> frozenset[str]:
    if not isinstance(wanted, (list, set, tuple, frozenset)) or not all(isinstance(p, str) for p in wanted):
        raise Invalid(_l("profiles must be a list of access profile ids."), "profiles")
    _known_profiles(wanted)
    account = account_by_sub(sub)
    _, actor = _hold(actor, centre=account.centre_number, account=account)
    # claimed first, then decided on the account (and the actor) as it is now: a change of type committed a moment
    # ago decides what it may hold (the decision made before would let a User keep an admin's access)
    _claim_change(account, expected_version)
    db.session.refresh(account)
    target = party_of(account)
    result, decision = policy.checks().profile_set_for(actor, target, set(wanted))
    require(decision)
    before = target.profiles
    if (result - before) & policy.checks().empowering_profiles():
        require_recent_second_factor(actor)  # as inviting someone who may act on others
    grants.replace_profiles(account, before, result, actor.sub)
    audit.record("account.profiles_changed", actor=actor.sub, subject=account.sub,
                 centre=account.centre_number, before=sorted(before), after=sorted(result))
    db.session.commit()
    return result


@action("account.role_changed")
def change_role(actor: Party, sub: str, new_role: str, *, expected_version: int | None = None) -> Account:
    pol, checks = policy.current(), policy.checks()
    if not isinstance(new_role, str) or new_role not in pol.roles:
        raise Invalid(_l("Account type must be one of: %(roles)s.", roles=", ".join(pol.roles)), "role")
    account = account_by_sub(sub)
    require(checks.may_change_role(actor, party_of(account), new_role))
    if new_role == account.role:
        return account
    if account.centre_number is None:  # only a centre's people change type here
        raise Invalid(_l("A centre number is 5 digits."), "centre")
    centre_row, actor = _hold(actor, centre=account.centre_number, account=account)
    _claim_change(account, expected_version)
    # decided again on the account as it is now: access granted a moment ago is what the new type
    # must drop (or what this actor may not take away)
    db.session.refresh(account)
    target = party_of(account)
    require(checks.may_change_role(actor, target, new_role))
    if new_role == account.role:  # the same change, made by someone else first
        db.session.rollback()
        return account
    if checks.acts_on_others(new_role):
        require_recent_second_factor(actor)  # as inviting someone who may act on others
    if checks.counts_towards_limit(new_role, account.status):
        require(checks.within_limit(new_role, _count_towards_limit(centre_row, new_role)))
    # Keep what the new type may hold; a role that holds everything gets everything.
    if pol.role(new_role).holds_all_profiles:
        after = pol.allowed_profiles(new_role)
    else:
        after = frozenset(p for p in target.profiles if checks.may_hold(new_role, p))
    before_role = account.role
    account.role = new_role
    grants.replace_profiles(account, target.profiles, after, actor.sub)
    audit.record("account.role_changed", actor=actor.sub, subject=account.sub,
                 centre=account.centre_number, before={"role": before_role, "profiles": sorted(target.profiles)},
                 after={"role": new_role, "profiles": sorted(after)})
    db.session.commit()
    return account


@action("account.deleted")
def delete(actor: Party, sub: str) -> None:
    account = account_by_sub(sub)
    require(policy.checks().may_delete(actor, party_of(account)))
    _, actor = _hold(actor, centre=account.centre_number, account=account)
    require(policy.checks().may_delete(actor, party_of(account)))
    access.end_access(account)
    audit.record("account.deleted", actor=actor.sub, subject=account.sub, centre=account.centre_number,
                 before={"email": account.email, "role": account.role})
    db.session.delete(account)
    db.session.commit()


@action("account.unlocked")
def unlock(actor: Party, sub: str, *, reason: str | None = None) -> Account:
    """Clear a lockout now (board staff, or centre managers per policy)."""
    account = account_by_sub(sub)
    require(policy.checks().may_unlock(actor, party_of(account)))
    reason = reason_given(actor, account, reason)
    _, actor = _hold(actor, centre=account.centre_number, account=account)
    require(policy.checks().may_unlock(actor, party_of(account)))
    lockout.unlock(account)
    audit.record("account.unlocked", actor=actor.sub, subject=account.sub, centre=account.centre_number,
                 **_reason_detail(reason))
    db.session.commit()
    return account


@action("mfa.reset")
def reset_mfa(actor: Party, sub: str, *, reason: str | None = None) -> Account:
    """Remove every second factor: sessions end, tokens are revoked, enrolment is forced at the
    next sign-in, the person is emailed. Who may do it comes from the policy."""
    account = account_by_sub(sub)
    require(policy.checks().may_reset_mfa(actor, party_of(account)))
    require_recent_second_factor(actor)
    reason = reason_given(actor, account, reason)
    _, actor = _hold(actor, centre=account.centre_number, account=account)
    require(policy.checks().may_reset_mfa(actor, party_of(account)))
    removed = mfa.remove_every_method(account)
    access.end_access(account)
    audit.record("mfa.reset", actor=actor.sub, subject=account.sub, centre=account.centre_number,
                 before={"methods": removed}, **_reason_detail(reason))
    db.session.commit()
    background.submit(emails.send_mfa_reset, emails.recipient(account))
    return account


#: why an account cannot be disabled, or enabled, as it is now
ONLY_IN_USE = _l("Only an account that is in use can be disabled.")
NOT_DISABLED = _l("This account is not disabled.")


@action("account.disabled")
def disable(actor: Party, sub: str, *, reason: str | None = None) -> Account:
    """Stop an active account signing in without deleting it (someone away for a term, or an
    account thought to be misused): its sessions end and its tokens are revoked now. Enabling it
    gives it back as it was: its access profiles and second factors are kept."""
    account = account_by_sub(sub)
    require(policy.checks().may_disable(actor, party_of(account)))
    reason = reason_given(actor, account, reason)
    _, actor = _hold(actor, centre=account.centre_number, account=account)
    _claim_change(account, None)  # of two at once, the second waits and sees the first's
    db.session.refresh(account)
    if account.status != ACTIVE:
        raise Conflict(ONLY_IN_USE)
    require(policy.checks().may_disable(actor, party_of(account)))
    account.status = DISABLED
    ended = access.end_access(account)
    audit.record("account.disabled", actor=actor.sub, subject=account.sub, centre=account.centre_number,
                 before={"status": ACTIVE}, after={"status": DISABLED}, sessions_ended=len(ended),
                 **_reason_detail(reason))
    db.session.commit()
    return account


@action("account.enabled")
def enable(actor: Party, sub: str, *, reason: str | None = None) -> Account:
    """Let a disabled account sign in again. A disabled account does not count towards its
    centre's limit for its type, so the limit is checked again (with the centre locked, as an
    invite does: two at once cannot both take the last place)."""
    account = account_by_sub(sub)
    require(policy.checks().may_disable(actor, party_of(account)))
    reason = reason_given(actor, account, reason)
    centre_row, actor = _hold(actor, centre=account.centre_number, account=account)
    _claim_change(account, None)
    db.session.refresh(account)
    if account.status != DISABLED:
        raise Conflict(NOT_DISABLED)
    require(policy.checks().may_disable(actor, party_of(account)))
    if centre_row is not None:
        require(policy.checks().within_limit(account.role, _count_towards_limit(centre_row, account.role)))
    account.status = ACTIVE
    audit.record("account.enabled", actor=actor.sub, subject=account.sub, centre=account.centre_number,
                 before={"status": DISABLED}, after={"status": ACTIVE}, **_reason_detail(reason))
    db.session.commit()
    return account


# ------------------------------------------------------------------ email address
@action("account.email_changed")
def change_email(actor: Party, sub: str, new_email: str, *, expected_version: int | None = None,
                 reason: str | None = None) -> Account:
    """Someone else's address (never one's own: that is changed from one's account, where a code
    sent to the new address proves it is theirs, ``confirm_own_email_change``). The new address is
    the username at once; both addresses are told; every session of the person ends and their
    tokens are revoked (they sign in again with the new address)."""
    account = account_by_sub(sub)
    require(policy.checks().may_change_email(actor, party_of(account)))
    require_recent_second_factor(actor)
    _, actor = _hold(actor, centre=account.centre_number, account=account)
    require(policy.checks().may_change_email(actor, party_of(account)))
    return _set_email(actor, account, new_email, expected_version=expected_version, keep_sid=None, reason=reason)


@action("account.email_changed")
def _set_email(actor: Party, account: Account, new_email: str, *, expected_version: int | None,
               keep_sid: str | None, reason: str | None) -> Account:
    """The change itself, once who may make it is settled (an action of its own: the address taken
    by someone else at the same moment is a Conflict, not a 500, on every way here). ``keep_sid``:
    the session a person changing their own address did it in, which stays (their other sessions
    end)."""
    new_email = clean_email(new_email)
    reason = reason_given(actor, account, reason)
    if Account.key_for(new_email) == account.email_key:
        raise Invalid(_l("That is already this person's email address."), "email")
    if db.session.scalar(select(Account.id).where(Account.email_key == Account.key_for(new_email))):
        raise Conflict(_l("An account with this email address already exists."), "email")
    _claim_change(account, expected_version)
    old = emails.recipient(account)
    account.email, account.email_key = new_email, Account.key_for(new_email)
    # verified only when the person changed it themselves (with a code sent to the new address)
    account.email_verified = actor.sub == account.sub
    access.end_access(account, keep_sid=keep_sid)
    audit.record("account.email_changed", actor=actor.sub, subject=account.sub, centre=account.centre_number,
                 before={"email": old.email}, after={"email": new_email}, **_reason_detail(reason))
    if account.status == "invited":
        # the temporary password went to the old address (often a mistyped one): it stops working
        # and a new invite goes to the new address; the old one is told nothing, not even where
        # the invite went
        renew_invite(account, actor=actor.sub, send=emails.send_invite, reason=reason)
        return account
    db.session.commit()
    new = emails.recipient(account)
    background.submit(emails.send_email_changed, old, new_email=new_email, to_old_address=True)
    background.submit(emails.send_email_changed, new, new_email=new_email, to_old_address=False)
    return account


# ------------------------------------------------------------------ a person changing their own address
OWN_EMAIL_CHANGES = Record("email-change", ttl=900)


#: what would let whoever does it sign in as the person (directory.person_actions' names)
HANDING_OVER = ("email", "reset_mfa")
FRESH_FACTOR_NEEDED = _l("Confirm it is you with a second factor first.")


def require_recent_second_factor(actor: Party) -> None:
    """Changing someone's sign-in address or removing their second factors hands their account to
    whoever reads the new address or signs in next, as inviting someone who may act on others, or
    replacing a centre's Exams Officer, hands that power to whoever reads the invite: as for one's
    own address, a browser left signed in is not enough. So does making someone an account that
    may act on others, by a change of type or a grant of what manages others: an invite of a
    plain user, then promoted, would otherwise hand the same power to whoever reads it."""
    if not actor.recent_second_factor:
        raise SecondFactorNeeded(FRESH_FACTOR_NEEDED)


def may_change_own_email(entry) -> None:
    """The address is where a forgotten password's code goes, and an emailed second factor: moving
    it takes the account for good. As for adding or removing a second factor, a browser left
    signed in is not enough: one must have been passed within ``[mfa] fresh_seconds``."""
    if not mfa.is_fresh(entry):
        raise SecondFactorNeeded(FRESH_FACTOR_NEEDED)


def request_own_email_change(entry, new_email: str) -> None:
    """A signed-in person asks to sign in with another address: a code goes to that address, and
    only someone who can read it can finish the change. An address already in use gets no code
    and the same answer (a signed-in person cannot learn who else has an account)."""
    may_change_own_email(entry)
    account = entry.account
    new_email = clean_email(new_email)
    if Account.key_for(new_email) == account.email_key:
        raise Invalid(_l("That is already your email address."), "email")
    taken = db.session.scalar(select(Account.id).where(Account.email_key == Account.key_for(new_email)))

    def deliver(code: str) -> None:
        if not taken:
            background.submit(emails.send_email_change_code, emails.recipient(account), code=code,
                              new_email=new_email)

    try:
        codes.issue("email-change", account.id, deliver)
    except codes.CodeError as exc:
        raise Invalid(exc.message, "email") from None
    # only once its code is on its way: a refused request must not swap the address an earlier
    # code would confirm (that address would become the username unverified)
    OWN_EMAIL_CHANGES.put(account.id, new_email)


def confirm_own_email_change(entry, code: str) -> Account:
    """The code from the new address: the change is made (the other sessions end, this one stays)."""
    may_change_own_email(entry)
    account = entry.account
    new_email = OWN_EMAIL_CHANGES.get(account.id)
    try:
        matched = new_email is not None and codes.check("email-change", account.id, code)
    except codes.CodeError as exc:
        raise Invalid(exc.message, "code") from None
    if not matched:
        raise Invalid(_l("The code is not right or has expired. Check the email we sent to your new address."), "code")
    OWN_EMAIL_CHANGES.delete(account.id)
    return _set_email(party_of(account), account, new_email, expected_version=None, keep_sid=entry.sid, reason=None)


def pending_own_email_change(entry) -> str | None:
    """The address a signed-in person asked to change to and has not yet confirmed."""
    return OWN_EMAIL_CHANGES.get(entry.account.id)
