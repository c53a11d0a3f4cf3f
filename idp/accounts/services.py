"""What a person does with their own account outside the sign-in journey (idp.journey): a
forgotten password, a password change, signing out (here, everywhere, or one other browser).
Finding an account by its email address.

Messages never tell whether an email is registered: unknown addresses take the same steps and
get the same answers.
"""

from __future__ import annotations

import secrets as _secrets
import time

from flask_babel import gettext as _
from sqlalchemy import select

from .. import audit, policy, secrets
from ..extensions import after_commit, db, pepper
from ..notify import background
from ..records import Record
from . import access, emails, lockout, passwords, sessions
from .models import Account, SsoSession

RESET_CODES = Record("reset", ttl=600)        # lifetime from [reset_code] lifetime_seconds
RESET_TRIES = Record("reset-attempts", ttl=3600)  # window from [reset_code] attempt_window_seconds
RESET_EMAILS = Record("reset-emails", ttl=3600)   # window from [reset_code] email_window_seconds


class AccountError(Exception):
    """A refused step, with a message a person can act on (``field``: the form field it is about)."""

    def __init__(self, message: str, *, code: str = "refused", field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.field = message, code, field


def find_by_email(email: str) -> Account | None:
    if not isinstance(email, str) or not email.strip() or len(email) > 254:
        return None
    return db.session.scalar(select(Account).where(Account.email_key == Account.key_for(email)))


# ------------------------------------------------------------------ forgotten password
def _reset_key(email: str) -> str:
    return secrets.email_digest(email, pepper())


def request_reset(email: str) -> None:
    """Email a one-time code to an active account. Every address gets the same treatment: a code
    record is stored for each (one nobody can know when no code is sent), the same answer is
    given, and the email goes out after the response. An invited account is not touched: only
    someone who may invite can renew an invite. Past the address's budget of emails nothing
    is sent or replaced (the last code sent still works), and the answer is the same."""
    rules = policy.current().sec("reset_code")
    if RESET_EMAILS.incr(_reset_key(email), rules.email_window_seconds) > rules.max_emails:
        account = find_by_email(email)
        audit.record("password.reset_requested", outcome="failure", reason="too_many_emails",
                     subject=account.sub if account else None, centre=account.centre_number if account else None)
        db.session.commit()
        return
    account = find_by_email(email)
    usable = account is not None and account.status == "active" and account.can_sign_in
    code = "".join(_secrets.choice("0123456789") for _ in range(rules.digits))
    stored = code if usable else secrets.token(32)  # unguessable: no code was sent
    record = {"hash": secrets.fast_hash(stored, pepper()),
              "expires_at": int(time.time()) + rules.lifetime_seconds}
    RESET_CODES.put_json(_reset_key(email), record, rules.lifetime_seconds)
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
    wrong = AccountError(_("The code is incorrect or has expired. Check the email we sent, or ask for a new code."),
                         code="bad_code", field="code")
    # the new password's rules need no secret: checked first, so only code checks use the budget
    problems = passwords.problems_with_new_password(new_password, email=email)
    if problems:
        raise AccountError(" ".join(problems), code="weak_password", field="password")
    attempts = RESET_TRIES.incr(key, rules.attempt_window_seconds)
    if attempts > rules.max_attempts:
        # refused unseen; the code is left alone: a right one already being checked by a try within
        # the budget (copies of one submit sent at once) must still work, and past the budget nobody
        # can try it anyway
        raise AccountError(_("Too many wrong codes. Wait an hour, then ask for a new code."), code="too_many",
                           field="code")
    record = RESET_CODES.get_json(key)
    digest = secrets.fast_hash(str(code).strip(), pepper())
    if record is None or record["expires_at"] <= time.time() or not secrets.same(digest, record["hash"]):
        if attempts >= rules.max_attempts:
            # the budget's last wrong try voids the code: else a code asked for late in one window
            # would meet a fresh budget in the next while it lives
            RESET_CODES.delete(key)
        audit.record("password.reset", outcome="failure", reason="bad_code")
        db.session.commit()
        raise wrong
    account = find_by_email(email)
    if account is None:
        raise wrong
    if RESET_CODES.take(key) is None:  # another request used it a moment ago: single use
        raise wrong
    passwords.set_password(account, new_password)
    account.email_verified = True  # the code was read at this address
    lockout.unlock(account)
    ended = access.end_access(account)
    audit.record("password.reset", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 sessions_ended=len(ended))
    # the budget is refilled once the reset has committed, if the store can be reached then: a
    # store dropping at that moment must not turn a reset that happened into a "try again" (the
    # code is spent) with its notice unsent
    after_commit(lambda: RESET_TRIES.delete(key))
    db.session.commit()
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
        raise AccountError(" ".join(problems), code="weak_password", field="password")
    slot = lockout.reserve_password(account.email)
    if slot is None:
        raise AccountError(lockout.lock_message(), code="locked", field="current")
    if not passwords.verify(account.password_hash, current)[0]:
        locked_now = lockout.password_failed(account.email, slot, subject=account.sub,
                                             centre=account.centre_number, reason="change_password")
        db.session.commit()
        if locked_now:
            minutes = policy.current().sec("lockout").lock_seconds // 60
            background.submit(emails.send_locked, emails.recipient(account), minutes)
            raise AccountError(lockout.lock_message(), code="locked", field="current")
        raise AccountError(_("Your current password is incorrect."), code="bad_credentials", field="current")
    lockout.password_ok(account.email)
    passwords.set_password(account, new_password)
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


def sign_out_at_logout(this_browser: SsoSession | None, *, hint: dict | None, client_id: str | None) -> None:
    """RP-initiated logout: ends ``this_browser`` (the live session the cookie found, once it may
    be ended without asking) and the session that ``hint``, the claims of a valid ID token hint,
    names by its ``sid``, if that session is the hint's person's and has not ended. The cookie alone
    misses it when a cross-site POST withholds the SameSite cookie, or when the session has passed
    its idle timeout while its services went on refreshing; yet that sign-in's grants must end and
    its services be told. Nothing else is ended, nor anyone signed in."""
    ending = {} if this_browser is None else {this_browser.id_hash: (this_browser, "cookie")}
    named = _named_by_hint(hint)
    if named is not None:
        ending.setdefault(named.id_hash, (named, "id_token_hint"))
    ended = False
    for _key, (entry, found_by) in sorted(ending.items()):  # in one order, as sessions.end_all
        if sessions.end(entry):
            account = entry.account
            audit.record("session.ended", actor=account.sub, subject=account.sub, centre=account.centre_number,
                         reason="rp_logout", client_id=client_id, sid=entry.sid, found_by=found_by)
            ended = True
    if ended:
        db.session.commit()


def _named_by_hint(hint: dict | None) -> SsoSession | None:
    sub, sid = (hint.get("sub"), hint.get("sid")) if hint else (None, None)
    if not isinstance(sub, str) or not isinstance(sid, str) or not 0 < len(sid) <= 64:
        return None  # a hint without sid names no session
    entry = sessions.by_sid(sid)
    # a sid of someone else's session in a hint signed here can only be a flaw elsewhere: not followed
    if entry is None or entry.ended_at is not None or entry.account.sub != sub:
        return None
    return entry


def end_own_session(entry: SsoSession, sid: str) -> SsoSession:
    """End one of the signed-in person's sessions ("Where you are signed in": a browser left signed
    in elsewhere). Its services get a back-channel logout, as at a sign-out there. Someone else's
    session, an ended one and an unknown id get the same refusal (nothing tells whose it is); trying
    someone else's is audited."""
    account = entry.account
    target = sessions.by_sid(sid) if isinstance(sid, str) and 0 < len(sid) <= 64 else None
    if target is not None and target.account_id != account.id:
        audit.record("session.ended", outcome="denied", actor=account.sub, subject=account.sub,
                     centre=account.centre_number, reason="not_own_session")
        db.session.commit()
        target = None
    # (ended once: of two copies of this request, the second finds it ended once it is held)
    if target is None or target.ended_at is not None or not sessions.end(target):
        raise AccountError(_("That sign-in has already ended."), code="not_found")
    audit.record("session.ended", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 reason="sign_out_one", sid=target.sid)
    db.session.commit()
    return target
