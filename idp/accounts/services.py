"""Sign-in rules. (The full journey — invites, lockout, MFA — builds on this.)"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from .. import audit
from ..extensions import db
from ..oidc import claims
from . import passwords, sessions
from .models import Account


@dataclass(frozen=True)
class SignInResult:
    ok: bool
    account: Account | None = None
    started: sessions.Started | None = None
    message: str = ""


def find_by_email(email: str) -> Account | None:
    return db.session.scalar(select(Account).where(Account.email_key == Account.key_for(email)))


def sign_in_with_password(email: str, password: str, *, ip: str | None, user_agent: str) -> SignInResult:
    """Check email + password and start a session. The same message for every failure, and the
    same work (an argon2 verification) whether or not the email exists."""
    account = find_by_email(email)
    matches, needs_rehash = passwords.verify(account.password_hash if account else None, password)
    usable = account is not None and account.status == "active" and not (
        account.centre is not None and account.centre.suspended)
    if not (matches and usable):
        audit.record("signin.password", outcome="failure", subject=account.sub if account else None,
                     centre=account.centre_number if account else None,
                     reason="bad_credentials" if not matches else f"account_{account.status}")
        db.session.commit()
        return SignInResult(False, message="The email address or password is incorrect.")
    if needs_rehash:
        account.password_hash = passwords.hash_password(password)
    started = sessions.start(account, amr=["pwd"], acr=claims.ACR_PASSWORD, ip=ip, user_agent=user_agent)
    audit.record("signin.password", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 sid=started.session.sid)
    db.session.commit()
    return SignInResult(True, account=account, started=started)
