"""The sign-in journey, in one place: its stages, the steps that move a sign-in from one to the
next, which page shows each stage, and "continue the journey" (where the browser goes next; at
the end, the SSO session starts and a waiting authorization request resumes).

    email -> password -> (first password) -> (set up a second factor -> recovery codes)
                                          -> (second-factor challenge) -> done: session

A sign-in in progress is a ``Pending`` record in the store; the browser holds only its random id
(in the signed state cookie). Messages never tell whether an email is registered: unknown
addresses take the same steps, the same argon2 work and get the same answers.

A remembered device (idp.accounts.remembered) stands in for the second-factor challenge: after the
password, a browser holding one of the account's live remembered devices goes straight to the end,
unless the waiting request asks for a second factor (acr_values urn:idp:acr:mfa or :phr). Such a
sign-in claims only what was done: amr ["pwd"], acr urn:idp:acr:mfa-remembered.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field

from flask import flash, g, redirect, session, url_for
from flask_babel import gettext as _
from sqlalchemy import update

from . import audit, cookies, i18n, policy, protocol, secrets
from .accounts import emails, lockout, passwords, remembered, sessions
from .accounts.models import ACTIVE, DISABLED, Account
from .accounts.services import find_by_email
from .clock import utcnow
from .extensions import db, hold_row
from .mfa import services as mfa
from .notify import background
from .oidc import pending as authorization_requests
from .records import Record

SIGN_INS = Record("signin", ttl=900)  # a sign-in must be finished within 15 minutes
#: where the browser keeps the id of its sign-in in progress (the signed state cookie)
SESSION_KEY = "signin"

STAGE_PASSWORD = "password"
STAGE_NEW_PASSWORD = "new_password"
STAGE_MFA_ENROL = "mfa_enrol"            # no second factor yet (first sign-in, or after an MFA reset)
STAGE_MFA = "mfa"                        # answer the second-factor challenge
STAGE_RECOVERY_CODES = "recovery_codes"  # the first method's recovery codes, shown once
STAGE_DONE = "done"

#: the page that shows each stage (the email and password pages start the journey)
STAGE_PAGES = {
    STAGE_PASSWORD: "signin.password",
    STAGE_NEW_PASSWORD: "signin.new_password",
    STAGE_MFA_ENROL: "mfa.signin_choose",
    STAGE_MFA: "mfa.signin_challenge",
    STAGE_RECOVERY_CODES: "mfa.signin_recovery_codes",
}


class JourneyError(Exception):
    """A step refused, with a message a person can act on."""

    def __init__(self, message: str, *, code: str = "refused", field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.field = message, code, field


#: the code of a refusal that ends this browser's sign-in: it starts again
RESTART = "restart"


def _restart() -> JourneyError:
    return JourneyError(_("Start signing in again."), code=RESTART)


# ------------------------------------------------------------------ the record
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
    #: the waiting authorization request, if the sign-in is for a relying party
    authreq: str = ""
    #: the remembered device that stood in for the second factor (its id), if one did
    remembered_device: str = ""
    #: the person ticked "Do not ask for a code on this device for N days"
    remember_device: bool = False
    #: the account's credentials when its password (or passkey) was accepted (``credentials_of``)
    credentials: str = ""
    #: the second factor this sign-in set up (the account had none), while its recovery codes are shown
    enrolled_method: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def start(self) -> None:
        SIGN_INS.put_json(self.id, asdict(self))

    def save(self) -> None:
        """Write a step's outcome, unless the sign-in has ended meanwhile (finished, or ended on
        a lock, by another copy of this browser's cookie): then it stays ended, and this copy
        starts again, rather than bring it back."""
        if not SIGN_INS.replace_json(self.id, asdict(self)):
            raise _restart()

    @classmethod
    def load(cls, pending_id: str | None) -> Pending | None:
        if not isinstance(pending_id, str) or not pending_id or len(pending_id) > 64:
            return None
        data = SIGN_INS.get_json(pending_id)
        return cls(**data) if data else None

    def drop(self) -> None:
        SIGN_INS.delete(self.id)

    def claim(self) -> bool:
        """Take this sign-in out of the store to finish it: True for one caller only, of copies
        of its last step sent at once (a replayed cookie) from however many processes."""
        return SIGN_INS.take(self.id) is not None

    def account(self, *, hold: bool = False) -> Account | None:
        """The account this sign-in is for, while its credentials are those the sign-in was begun
        with. A password reset or change, a renewed invite, a corrected address or a disabled
        account in the meantime ends it (None: start again): else a sign-in begun with a password
        that no longer works (a mistyped invite's) could go on to set the account up. ``hold``:
        its row is held, and read as committed, until the transaction ends."""
        if hold and self.account_id:
            hold_row(Account.id, self.account_id)
        account = db.session.get(Account, self.account_id, populate_existing=hold) if self.account_id else None
        if account is None or not secrets.same(credentials_of(account), self.credentials):
            return None
        # held for the rest of the request: the session's identity map keeps an account only while
        # something refers to it, and the rate limit's key, the view and the page's form targets
        # each ask again (each a SELECT, until this)
        g.journey_account = account
        return account

    def bind(self, account: Account) -> None:
        self.account_id, self.credentials = account.id, credentials_of(account)
        g.journey_account = account  # (as in ``account``)


def credentials_of(account: Account) -> str:
    """What a sign-in in progress holds to: the password (its hash), the address, the account's
    standing and its last MFA reset, as a digest (the hash itself is not copied into the store).
    An MFA reset changes none of the first three: a second factor passed just before one would
    otherwise still have started a session (and remembered a device) after it."""
    reset = account.mfa_reset_at.isoformat() if account.mfa_reset_at else ""
    return hashlib.sha256("\x00".join((account.password_hash or "", account.email_key, account.status, reset))
                          .encode()).hexdigest()


def current(stages=None) -> Pending | None:
    """This browser's sign-in in progress (at one of ``stages``, if given)."""
    pending = Pending.load(session.get(SESSION_KEY))
    if pending is None or (stages is not None and pending.stage not in stages):
        return None
    if pending.account_id and pending.account() is None:  # its credentials changed meanwhile
        end(pending)
        return None
    return pending


# ------------------------------------------------------------------ the steps
def begin(email: str, authreq: str = "") -> Pending:
    """The email step: a new sign-in, for a waiting authorization request if ``authreq``."""
    require_acr = authorization_requests.requested_acr(authreq)
    pending = Pending(id=secrets.token(16), email=email.strip(), authreq=authreq or "",
                      require_acr=require_acr if require_acr in protocol.ACR_VALUES else "")
    pending.start()
    session[SESSION_KEY] = pending.id
    return pending


def check_password(pending: Pending, password: str, device_token: str | None = None) -> Pending:
    """The password step. Raises JourneyError (bad credentials, locked, expired invite).
    ``device_token``: the browser's remembered-device token, if it has one.

    Known and unknown addresses take the same steps: one slot taken from the address's failure
    budget (refused unseen when locked), one argon2 verification (a dummy hash when there is no
    usable account), one audit row."""
    account = find_by_email(pending.email)
    usable = account is not None and account.status in (ACTIVE, "invited", DISABLED)
    # A suspended centre's people, and a disabled account's owner, are told so, but only once the
    # password proves who they are.
    suspended = usable and account.centre is not None and account.centre.suspended
    disabled = usable and account.status == DISABLED
    who = {"subject": account.sub if account else None, "centre": account.centre_number if account else None}
    slot = lockout.reserve_password(pending.email)
    if slot is None:
        audit.record("signin.password", outcome="failure", reason="locked", **who)
        db.session.commit()
        raise JourneyError(lockout.lock_message(), code="locked")
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
            raise JourneyError(lockout.lock_message(), code="locked")
        raise JourneyError(_("The email address or password is incorrect."), code="bad_credentials",
                           field="password")
    lockout.password_ok(pending.email)
    if disabled:
        audit.record("signin.password", outcome="failure", reason="account_disabled", **who)
        db.session.commit()
        raise JourneyError(_("Your account has been disabled. Contact your Exams Officer or the exam board."),
                           code="account_disabled")
    if suspended:
        audit.record("signin.password", outcome="failure", reason="centre_suspended", **who)
        db.session.commit()
        raise JourneyError(_("Your centre's access has been suspended. Contact the exam board."),
                           code="centre_suspended")
    if account.status == "invited" and account.invite_expires_at and account.invite_expires_at <= utcnow():
        audit.record("signin.password", outcome="failure", reason="invite_expired", **who)
        db.session.commit()
        raise JourneyError(_("This invite has expired — ask your Exams Officer or admin for a new one."),
                           code="invite_expired")
    if needs_rehash:
        account.password_hash = passwords.hash_password(candidate)
    audit.record("signin.password", actor=account.sub, **who)
    db.session.commit()
    pending.bind(account)
    pending.amr = [protocol.AMR_PASSWORD]
    pending.stage = STAGE_NEW_PASSWORD if account.password_is_temporary else _second_factor_stage(account)
    if pending.stage == STAGE_MFA and not pending.require_acr:
        device = remembered.recognise(account, device_token)
        if device is not None:
            pending.remembered_device, pending.acr, pending.stage = device.id, protocol.ACR_REMEMBERED_DEVICE, STAGE_DONE
            db.session.commit()  # its last use
    pending.save()
    return pending


def passkey_options() -> tuple[str, dict]:
    """(ceremony, options) for "Sign in with a passkey" (and the browser's passkey autofill)."""
    return mfa.passkey_sign_in_options()


def sign_in_with_passkey(ceremony: str, credential: str, authreq: str = "") -> Pending:
    """Passkey-first: a passkey with user verification stands for both the password and the second
    factor (amr [hwk|swk, mfa], acr phishing-resistant; no ``pwd``: no password was used). The
    account must be one that could sign in with its password now: active, its own password chosen,
    not locked, its centre not suspended. Raises MfaError or JourneyError."""
    account, passed = mfa.sign_in_with_passkey(ceremony, credential)
    who = {"subject": account.sub, "centre": account.centre_number}
    refusal = None
    if account.status != "active" or account.password_is_temporary or not account.can_sign_in:
        refusal = JourneyError(_("Sign in with your email address and password."), code="use_password")
    elif account.centre is not None and account.centre.suspended:
        refusal = JourneyError(_("Your centre's access has been suspended. Contact the exam board."),
                               code="centre_suspended")
    elif lockout.locked_until(account.email) is not None:
        refusal = JourneyError(lockout.lock_message(), code="locked")
    if refusal is not None:
        audit.record("signin.passkey", outcome="failure", reason=refusal.code, **who)
        db.session.commit()
        raise refusal
    require_acr = authorization_requests.requested_acr(authreq)
    pending = Pending(id=secrets.token(16), email=account.email, stage=STAGE_DONE,
                      amr=sorted(passed.amr), acr=passed.acr, authreq=authreq or "",
                      require_acr=require_acr if require_acr in protocol.ACR_VALUES else "")
    pending.bind(account)
    pending.start()
    session[SESSION_KEY] = pending.id
    return pending


def _second_factor_stage(account: Account) -> str:
    return STAGE_MFA if mfa.has_a_method(account) else STAGE_MFA_ENROL


def choose_first_password(pending: Pending, new_password: str) -> Pending:
    """After a temporary password: the person's own password; the invite becomes an active account."""
    account = pending.account()
    if pending.stage != STAGE_NEW_PASSWORD or account is None:
        raise _restart()
    problems = passwords.problems_with_new_password(new_password, email=account.email)
    if not problems and passwords.verify(account.password_hash, new_password.strip())[0]:
        problems.append(_("Choose a password that is different from your temporary password."))
    if problems:
        raise JourneyError(" ".join(problems), code="weak_password", field="password")
    # the temporary password is exchanged once: of copies of this step sent at once (a replayed
    # cookie), one sets the password and the others start again
    claimed = db.session.execute(update(Account).where(Account.id == account.id,
                                                       Account.password_is_temporary.is_(True),
                                                       Account.password_hash == account.password_hash)
                                 .values(password_is_temporary=False)
                                 .execution_options(synchronize_session=False, claims_of=[account.sub]))
    if claimed.rowcount != 1:
        db.session.rollback()
        raise _restart()
    passwords.set_password(account, new_password)
    was = account.status
    account.status = "active"
    account.email_verified = True  # the temporary password was read at this address
    account.invite_expires_at = None
    audit.record("account.password_set", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 first=was == "invited")
    db.session.commit()
    pending.bind(account)  # its own new password, and now active
    pending.stage = _second_factor_stage(account)
    # written afresh: the copies of this step that lost the claim above see credentials changed
    # and end the sign-in; this copy alone set them, and its sign-in goes on
    pending.start()
    return pending


def answer_challenge(pending: Pending, *, remember_device: bool = False, **answer) -> Pending:
    """The second-factor challenge. When the answer spends the account's budget or the account is
    locked, the sign-in is deleted: no later answer for it (a replayed cookie) is looked at.
    ``remember_device``: the person ticked "Do not ask for a code on this device" (kept only if
    their account type is offered it)."""
    account = pending.account()
    if account is None or pending.stage != STAGE_MFA:
        raise _restart()
    pending.remember_device = bool(remember_device) and remembered.offered_days(account) > 0
    try:
        passed = mfa.verify_answer(account, **answer)
    except mfa.MfaError as exc:
        if exc.code in ("ended", "locked"):
            pending.drop()
        raise
    return second_factor_passed(pending, passed)


def second_factor_passed(pending: Pending, passed: mfa.Passed, recovery_codes: list | None = None, *,
                         enrolled_method: str = "") -> Pending:
    """Record a passed (or newly set up: ``enrolled_method``, its id) second factor; the journey
    then shows the new recovery codes or finishes."""
    if pending.stage not in (STAGE_MFA, STAGE_MFA_ENROL) or pending.account() is None:
        raise _restart()
    if pending.require_acr == protocol.ACR_PHISHING_RESISTANT and passed.acr != protocol.ACR_PHISHING_RESISTANT:
        raise JourneyError(_("This service needs you to use a passkey or security key."), code="need_webauthn")
    if recovery_codes:
        mfa.hold_recovery_codes(pending.id, recovery_codes)
    pending.amr = sorted(set(pending.amr) | set(passed.amr))
    pending.acr = passed.acr
    pending.enrolled_method = enrolled_method
    pending.stage = STAGE_RECOVERY_CODES if recovery_codes else STAGE_DONE
    pending.save()
    return pending


def end(pending: Pending) -> None:
    """This browser's sign-in in progress ends where it is (the next page starts again)."""
    pending.drop()
    session.pop(SESSION_KEY, None)


def recovery_codes_seen(pending: Pending) -> Pending:
    if pending.stage != STAGE_RECOVERY_CODES:
        raise _restart()
    mfa.drop_held_recovery_codes(pending.id)
    pending.stage = STAGE_DONE
    pending.save()
    return pending


@dataclass(frozen=True)
class Completed:
    account: Account
    started: sessions.Started
    authreq: str
    #: a newly remembered device: (token for the cookie, days)
    device: tuple[str, int] | None = None


def complete(pending: Pending, *, ip: str | None, user_agent: str) -> Completed:
    """Start the SSO session once every step is done (a new session id every time), once per
    sign-in. A locked account gets no session, whatever it answered: the lock is checked here
    again."""
    # held from this check to the session's commit: a password reset, a disable or an address
    # change committing meanwhile waits, then ends this session with the others (else it ended
    # those there were, and this one began after); one committed first is seen here
    account = pending.account(hold=True)
    # No session, and so no token, without a second factor passed now or on a remembered device.
    passed_now = protocol.AMR_MFA in pending.amr
    if pending.stage != STAGE_DONE or account is None or not account.can_sign_in \
            or not (passed_now or remembered.still_live(account, pending.remembered_device)):
        raise _restart()
    # a factor this sign-in set up must still be the account's: an MFA reset while its recovery
    # codes were on the screen (someone else had the password) ends the sign-in there
    if pending.enrolled_method and not mfa.is_method_of(account, pending.enrolled_method):
        pending.drop()
        raise _restart()
    # a sign-in is finished once: of copies of its last step sent at once, one starts a session
    # and the others start again (each with a session of its own, the copies' holders had
    # sessions the person's sign-out did not end); from here on it is ended whatever happens
    if not pending.claim():
        raise _restart()
    if lockout.locked_until(account.email) is not None:
        audit.record("signin.completed", outcome="failure", subject=account.sub, centre=account.centre_number,
                     reason="locked")
        db.session.commit()
        raise JourneyError(lockout.lock_message(), code="locked")
    started = sessions.start(account, amr=pending.amr, acr=pending.acr, ip=ip, user_agent=user_agent)
    if passed_now:  # (a remembered device is not a recent second factor: changing methods asks for one)
        started.session.mfa_at = int(time.time())
    device = remembered.remember(account, user_agent=user_agent, ip=ip) if passed_now and pending.remember_device \
        else None
    account.last_sign_in_at = utcnow()
    audit.record("signin.completed", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 sid=started.session.sid, amr=pending.amr,
                 **({"remembered_device": pending.remembered_device} if pending.remembered_device else {}))
    db.session.commit()
    return Completed(account, started, pending.authreq, device)


# ------------------------------------------------------------------ where the browser goes next
def continue_journey(pending: Pending, *, ip: str | None, user_agent: str):
    """The response that takes the browser to the page of the stage the sign-in has reached; at
    the end, the session cookie and the way back to the waiting service (or My account)."""
    if pending.stage in STAGE_PAGES:
        return redirect(url_for(STAGE_PAGES[pending.stage]), code=303)
    try:
        completed = complete(pending, ip=ip, user_agent=user_agent)
    except JourneyError as exc:
        session.pop(SESSION_KEY, None)
        flash(exc.message)
        return redirect(url_for("signin.signin"), code=303)
    session.pop(SESSION_KEY, None)
    i18n.remember_account_language(completed.account.language)
    target = authorization_requests.resume_url(completed.authreq) or url_for("signin.account")
    response = redirect(target, code=303)
    cookies.attach(response, completed.started.cookie_value)
    if completed.device:
        cookies.attach_device(response, *completed.device)
    return response


def form_redirect_target(pending: Pending | None) -> str | None:
    """Where a form on this sign-in's pages may end up: the waiting client's redirect URI (the
    page's CSP form-action names its origin)."""
    if pending is None or not pending.authreq:
        return None
    return authorization_requests.redirect_uri_of(pending.authreq)
