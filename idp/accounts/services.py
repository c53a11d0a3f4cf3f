"""The sign-in journey: email -> password -> (new password) -> (second factor) -> session.

A sign-in in progress is a ``Pending`` record in the shared store; the browser holds
only its random id (in the signed Flask session). Each step moves it on; the last step
starts the SSO session. Messages never tell whether an email is registered: unknown
addresses take the same steps, the same argon2 work and get the same answers.
"""

from __future__ import annotations

import json
import secrets as _secrets
import time
from dataclasses import asdict, dataclass, field

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from .. import audit, policy, protocol, secrets
from ..clock import utcnow
from ..extensions import db, store
from ..notify import background
from . import access, emails, lockout, passwords, sessions
from .models import Account, SsoSession

PENDING_TTL = 900  # a sign-in must be finished within 15 minutes

STAGE_PASSWORD = "password"
STAGE_NEW_PASSWORD = "new_password"
STAGE_MFA_ENROL = "mfa_enrol"        # no second factor yet (first sign-in, or after an MFA reset)
STAGE_MFA = "mfa"                    # answer the second-factor challenge
STAGE_RECOVERY_CODES = "recovery_codes"  # the first method's recovery codes, shown once
STAGE_DONE = "done"


class JourneyError(Exception):
    """A step refused, with a message a person can act on."""

    def __init__(self, message: str, *, code: str = "refused", field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.field = message, code, field


def find_by_email(email: str) -> Account | None:
    if not isinstance(email, str) or not email.strip() or len(email) > 254:
        return None
    return db.session.scalar(select(Account).where(Account.email_key == Account.key_for(email)))


# ------------------------------------------------------------------ pending sign-ins
@dataclass
class Pending:
    id: str
    email: str
    stage: str = STAGE_PASSWORD
    account_id: str | None = None
    amr: list = field(default_factory=list)
    acr: str = ""
    #: an authorization request asked for this acr (phishing-resistant: WebAuthn only)
    require_acr: str = ""
    authreq: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def save(self) -> None:
        store.put(f"signin:{self.id}", json.dumps(asdict(self)), PENDING_TTL)

    @classmethod
    def load(cls, pending_id: str | None) -> "Pending | None":
        if not pending_id or len(pending_id) > 64:
            return None
        raw = store.get(f"signin:{pending_id}")
        return cls(**json.loads(raw)) if raw else None

    def drop(self) -> None:
        store.delete(f"signin:{self.id}")

    def account(self) -> Account | None:
        return db.session.get(Account, self.account_id) if self.account_id else None


def begin(email: str, authreq: str = "", require_acr: str = "") -> Pending:
    pending = Pending(id=secrets.token(16), email=email.strip(), authreq=authreq or "",
                      require_acr=require_acr if require_acr in protocol.ACR_VALUES else "")
    pending.save()
    return pending


# ------------------------------------------------------------------ password step
def _lock_message() -> str:
    minutes = policy.current().sec("lockout").lock_seconds // 60
    return _("Your account is locked for up to %(minutes)d minutes because the wrong password was entered "
             "too many times. Reset your password to unlock it now.", minutes=minutes)


def check_password(pending: Pending, password: str) -> Pending:
    """The password step. Raises JourneyError (bad credentials, locked, expired invite).

    Known and unknown addresses take the same steps: one slot taken from the address's failure
    budget (refused unseen when locked), one argon2 verification (a dummy hash when there is no
    usable account), one audit row."""
    account = find_by_email(pending.email)
    usable = account is not None and account.status in ("active", "invited") and not (
        account.centre is not None and account.centre.suspended)
    who = {"subject": account.sub if account else None, "centre": account.centre_number if account else None}
    slot = lockout.reserve_password(pending.email)
    if slot is None:
        audit.record("signin.password", outcome="failure", reason="locked", **who)
        db.session.commit()
        raise JourneyError(_lock_message(), code="locked")
    # Temporary passwords have no spaces: spaces pasted around one are ignored.
    candidate = password.strip() if usable and account.password_is_temporary else password
    matches, needs_rehash = passwords.verify(account.password_hash if usable else None, candidate)
    if not (matches and usable):
        locked_now = lockout.password_failed(pending.email, slot, reason="password", **who)
        audit.record("signin.password", outcome="failure",
                     reason="bad_credentials" if usable or account is None else f"account_{account.status}",
                     **who)
        db.session.commit()
        if locked_now:
            if usable:
                minutes = policy.current().sec("lockout").lock_seconds // 60
                background.submit(emails.send_locked, emails.recipient(account), minutes)
            raise JourneyError(_lock_message(), code="locked")
        raise JourneyError(_("The email address or password is incorrect."), code="bad_credentials",
                           field="password")
    lockout.password_ok(pending.email)
    if account.status == "invited" and account.invite_expires_at and account.invite_expires_at <= utcnow():
        audit.record("signin.password", outcome="failure", reason="invite_expired", **who)
        db.session.commit()
        raise JourneyError(_("This invite has expired — ask your Exams Officer or admin for a new one."),
                           code="invite_expired")
    if needs_rehash:
        account.password_hash = passwords.hash_password(candidate)
    audit.record("signin.password", actor=account.sub, **who)
    db.session.commit()
    pending.account_id = account.id
    pending.amr = ["pwd"]
    pending.stage = STAGE_NEW_PASSWORD if account.password_is_temporary else second_factor_stage(account)
    pending.save()
    return pending


def second_factor_stage(account: Account) -> str:
    from ..mfa.models import MfaMethod

    has_method = db.session.scalar(select(MfaMethod.id).where(MfaMethod.account_id == account.id).limit(1))
    return STAGE_MFA if has_method else STAGE_MFA_ENROL


def second_factor_passed(pending: Pending, passed, recovery_codes: list | None = None) -> Pending:
    """Record a passed second factor; the journey then shows new recovery codes or finishes."""
    if pending.stage not in (STAGE_MFA, STAGE_MFA_ENROL):
        raise JourneyError(_("Start signing in again."), code="restart")
    if pending.require_acr == protocol.ACR_PHISHING_RESISTANT and passed.acr != protocol.ACR_PHISHING_RESISTANT:
        raise JourneyError(_("This service needs you to use a passkey or security key."), code="need_webauthn")
    pending.amr = sorted(set(pending.amr) | set(passed.amr))
    pending.acr = passed.acr
    pending.stage = STAGE_RECOVERY_CODES if recovery_codes else STAGE_DONE
    pending.save()
    return pending


def recovery_codes_seen(pending: Pending) -> Pending:
    if pending.stage != STAGE_RECOVERY_CODES:
        raise JourneyError(_("Start signing in again."), code="restart")
    pending.stage = STAGE_DONE
    pending.save()
    return pending


def choose_first_password(pending: Pending, new_password: str) -> Pending:
    """After a temporary password: the person's own password; the invite becomes an active account."""
    account = pending.account()
    if pending.stage != STAGE_NEW_PASSWORD or account is None:
        raise JourneyError(_("Start signing in again."), code="restart")
    problems = passwords.problems_with_new_password(new_password, email=account.email)
    if not problems and passwords.verify(account.password_hash, new_password.strip())[0]:
        problems.append(_("Choose a password that is different from your temporary password."))
    if problems:
        raise JourneyError(" ".join(problems), code="weak_password", field="password")
    _set_password(account, new_password)
    was = account.status
    account.status = "active"
    account.invite_expires_at = None
    audit.record("account.password_set", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 first=was == "invited")
    db.session.commit()
    pending.stage = second_factor_stage(account)
    pending.save()
    return pending


def _set_password(account: Account, new_password: str) -> None:
    account.password_hash = passwords.hash_password(new_password)
    account.password_is_temporary = False
    account.password_changed_at = utcnow()


@dataclass(frozen=True)
class Completed:
    account: Account
    started: sessions.Started
    authreq: str


def complete(pending: Pending, *, ip: str | None, user_agent: str) -> Completed:
    """Start the SSO session once every step is done (a new session id every time). A locked
    account gets no session, whatever it answered: the lock is checked here again."""
    account = pending.account()
    # No session, and so no token, without a passed second factor.
    if pending.stage != STAGE_DONE or account is None or not account.can_sign_in or "mfa" not in pending.amr:
        raise JourneyError(_("Start signing in again."), code="restart")
    if lockout.locked_until(account.email) is not None:
        pending.drop()
        audit.record("signin.completed", outcome="failure", subject=account.sub, centre=account.centre_number,
                     reason="locked")
        db.session.commit()
        raise JourneyError(_lock_message(), code="locked")
    started = sessions.start(account, amr=pending.amr, acr=pending.acr, ip=ip, user_agent=user_agent)
    started.session.mfa_at = int(time.time())
    audit.record("signin.completed", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 sid=started.session.sid, amr=pending.amr)
    db.session.commit()
    pending.drop()
    return Completed(account, started, pending.authreq)


# ------------------------------------------------------------------ forgotten password
def _reset_key(email: str) -> str:
    return secrets.email_digest(email, current_app.extensions["idp.pepper"])


def request_reset(email: str) -> None:
    """Email a one-time code to an active account. Every address gets the same treatment: a code
    record is stored for each (one nobody can know when no code is sent), the same answer is
    given, and the email goes out after the response. An invited account is not touched: only
    someone who may invite can renew an invite."""
    rules = policy.current().sec("reset_code")
    account = find_by_email(email)
    usable = account is not None and account.status == "active" and account.can_sign_in
    code = "".join(_secrets.choice("0123456789") for _ in range(rules.digits))
    stored = code if usable else secrets.token(32)  # unguessable: no code was sent
    record = {"hash": secrets.fast_hash(stored, current_app.extensions["idp.pepper"]),
              "expires_at": int(time.time()) + rules.lifetime_seconds}
    store.put(f"reset:{_reset_key(email)}", json.dumps(record), rules.lifetime_seconds)
    if usable:
        audit.record("password.reset_requested", subject=account.sub, centre=account.centre_number)
    else:
        audit.record("password.reset_requested", outcome="failure", subject=account.sub if account else None,
                     reason=f"account_{account.status}" if account else "no_account")
    db.session.commit()
    if usable:
        background.submit(emails.send_reset_code, emails.recipient(account), code, rules.lifetime_seconds // 60)


def reset_password(email: str, code: str, new_password: str) -> Account | None:
    """Check the code (single use) against the address's budget of tries, which asking for a new
    code does not refill, and set the new password. A reset unlocks the account, ends every
    session, revokes refresh tokens and emails a notice."""
    rules = policy.current().sec("reset_code")
    key = _reset_key(email)
    wrong = JourneyError(_("The code is incorrect or has expired. Check the email we sent, or ask for a new code."),
                         code="bad_code", field="code")
    # the new password's rules need no secret: checked first, so only code checks use the budget
    problems = passwords.problems_with_new_password(new_password, email=email)
    if problems:
        raise JourneyError(" ".join(problems), code="weak_password", field="password")
    attempts = store.incr(f"reset-attempts:{key}", rules.attempt_window_seconds)
    if attempts > rules.max_attempts:
        store.delete(f"reset:{key}")
        raise JourneyError(_("Too many wrong codes. Wait an hour, then ask for a new code."), code="too_many",
                           field="code")
    raw = store.get(f"reset:{key}")
    record = json.loads(raw) if raw else None
    digest = secrets.fast_hash(str(code).strip(), current_app.extensions["idp.pepper"])
    if record is None or record["expires_at"] <= time.time() or not secrets.same(digest, record["hash"]):
        audit.record("password.reset", outcome="failure", reason="bad_code")
        db.session.commit()
        raise wrong
    account = find_by_email(email)
    if account is None:
        raise wrong
    if store.take(f"reset:{key}") is None:  # another request used it a moment ago: single use
        raise wrong
    _set_password(account, new_password)
    lockout.unlock(account)
    ended = access.end_access(account)
    audit.record("password.reset", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 sessions_ended=len(ended))
    db.session.commit()
    store.delete(f"reset-attempts:{key}")
    background.submit(emails.send_password_changed, emails.recipient(account))
    return account


# ------------------------------------------------------------------ signed in
def change_password(entry: SsoSession, current: str, new_password: str) -> None:
    """Needs the current password (wrong ones use the lockout budget); ends the other sessions."""
    account = entry.account
    problems = passwords.problems_with_new_password(new_password, email=account.email)
    if not problems and new_password == current:
        problems.append(_("Choose a password that is different from your current one."))
    if problems:
        raise JourneyError(" ".join(problems), code="weak_password", field="password")
    slot = lockout.reserve_password(account.email)
    if slot is None:
        raise JourneyError(_lock_message(), code="locked", field="current")
    if not passwords.verify(account.password_hash, current)[0]:
        locked_now = lockout.password_failed(account.email, slot, subject=account.sub,
                                             centre=account.centre_number, reason="change_password")
        db.session.commit()
        if locked_now:
            minutes = policy.current().sec("lockout").lock_seconds // 60
            background.submit(emails.send_locked, emails.recipient(account), minutes)
            raise JourneyError(_lock_message(), code="locked", field="current")
        raise JourneyError(_("Your current password is incorrect."), code="bad_credentials", field="current")
    lockout.password_ok(account.email)
    _set_password(account, new_password)
    others = access.end_access(account, keep_sid=entry.sid)
    audit.record("password.changed", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 sessions_ended=len(others))
    db.session.commit()
    background.submit(emails.send_password_changed, emails.recipient(account), everywhere=False)


def sign_out(entry: SsoSession, *, everywhere: bool) -> None:
    account = entry.account
    if everywhere:
        access.end_access(account)
    else:
        sessions.end(entry)
    audit.record("session.ended", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 reason="sign_out_everywhere" if everywhere else "sign_out", sid=entry.sid)
    db.session.commit()
