"""Lockout: N consecutive failures lock an account for a while (policies/security.toml [lockout]).

The count and the lock live on the account row and change in one atomic UPDATE, so every
server process sees the same count and a restart forgets nothing. Emails that match no
account get the same treatment through a store counter, so a locked message never tells
whether an address is registered.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from sqlalchemy import case, update

from .. import audit, policy
from ..audit import utcnow
from ..extensions import db, store
from .models import Account


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _unknown_key(email: str) -> str:
    return "lockout:unknown:" + hashlib.sha256(Account.key_for(email).encode()).hexdigest()


def is_locked(account: Account | None, email: str) -> bool:
    rules = policy.current().sec("lockout")
    if account is None:
        count = store.get(_unknown_key(email))
        return count is not None and int(count) >= rules.max_failures
    until = _aware(account.locked_until)
    return until is not None and until > utcnow()


def register_failure(account: Account | None, email: str, *, reason: str) -> bool:
    """Count one failure; True if this one locked the account. Commits."""
    rules = policy.current().sec("lockout")
    if account is None:
        count = store.incr(_unknown_key(email), rules.lock_seconds)
        return count == rules.max_failures
    until = utcnow() + timedelta(seconds=rules.lock_seconds)
    reaches = Account.failed_logins + 1 >= rules.max_failures
    row = db.session.execute(
        update(Account).where(Account.id == account.id)
        .values(failed_logins=case((reaches, 0), else_=Account.failed_logins + 1),
                locked_until=case((reaches, until), else_=Account.locked_until))
        .returning(Account.failed_logins, Account.locked_until)
        .execution_options(synchronize_session=False)).one()
    locked_now = row.failed_logins == 0 and _aware(row.locked_until) is not None and \
        abs((_aware(row.locked_until) - until).total_seconds()) < 1
    db.session.expire(account, ["failed_logins", "locked_until"])
    if locked_now:
        audit.record("account.locked", subject=account.sub, centre=account.centre_number, reason=reason,
                     until=until.isoformat())
    db.session.commit()
    return locked_now


def register_success(account: Account) -> None:
    """A correct password resets the count (the caller commits)."""
    if account.failed_logins:
        account.failed_logins = 0


def unlock(account: Account) -> None:
    """Clear the count and the lock (password reset, board unlock). The caller commits."""
    account.failed_logins = 0
    account.locked_until = None
