"""Failure budgets: wrong passwords, and wrong second-factor answers, lock an account for a while
(policies/security.toml [lockout] and [mfa]).

The counts live in the database, one ``AttemptCounter`` row per key, and change only by single
atomic statements, so every server process sees the same count and a restart forgets nothing:

    pwd:<keyed hash of the email>   wrong passwords in a row for an address, and the lock. Kept
                                    the same way whether or not an account has the address, so an
                                    unknown address costs the same work and gets the same answers.
    mfa:<account id>                wrong second-factor answers in a row, across sign-in attempts
                                    (a new attempt, a correct password or a replayed cookie do not
                                    reset it; only a passed second factor or an unlock do).

A slot in the budget is taken *before* the secret is checked (``reserve_*``). Of any number of
concurrent attempts at most ``max_failures`` are evaluated before the lock; the others are refused
without being looked at. Each statement commits at once so the row is never held locked while a
password is hashed.
"""

from __future__ import annotations

import time
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .. import audit, clock, policy, secrets
from ..extensions import db, pepper
from .models import AttemptCounter


def password_key(email: str) -> str:
    # keyed, so the table does not list which addresses were tried
    return "pwd:" + secrets.email_digest(email, pepper())


def _mfa_key(account) -> str:
    return f"mfa:{account.id}"


def _insert():
    return (postgresql.insert if db.is_postgres else sqlite.insert)(AttemptCounter)


def _reserve(key: str, max_failures: int) -> int | None:
    """Take the next slot of the key's budget: its number (1..max), or None when the budget is
    spent or the key is locked. A lock that has run out starts a new budget. Commits."""
    now = int(time.time())
    counter = AttemptCounter
    lock_over = counter.locked_until.is_not(None) & (counter.locked_until <= now)
    statement = (
        _insert().values(key=key, failures=1, locked_until=None, updated_at=now)
        .on_conflict_do_update(
            index_elements=[counter.key],
            set_={"failures": case((lock_over, 1), else_=counter.failures + 1),
                  "locked_until": case((lock_over, None), else_=counter.locked_until),
                  "updated_at": now},
            where=lock_over | (counter.locked_until.is_(None) & (counter.failures < max_failures)))
        .returning(counter.failures))
    slot = db.session.execute(statement).scalar()
    db.session.commit()
    return slot


def _set(key: str, **values) -> None:
    db.session.execute(update(AttemptCounter).where(AttemptCounter.key == key)
                       .values(updated_at=int(time.time()), **values)
                       .execution_options(synchronize_session=False))


def _locked_until(key: str) -> int | None:
    until = db.session.scalar(select(AttemptCounter.locked_until).where(AttemptCounter.key == key))
    return until if until is not None and until > time.time() else None


def _lock(key: str, until: int) -> None:
    """Lock the key until ``until``. Its count stays spent, so attempts already past the check
    cannot take new slots; the first attempt after the lock starts a new budget."""
    now = int(time.time())
    db.session.execute(_insert().values(key=key, failures=0, locked_until=until, updated_at=now)
                       .on_conflict_do_update(index_elements=[AttemptCounter.key],
                                              set_={"locked_until": until, "updated_at": now}))


def _lock_account(email: str, mfa_key: str | None, *, subject, centre, reason: str) -> None:
    until = int(time.time()) + policy.current().sec("lockout").lock_seconds
    _lock(password_key(email), until)
    if mfa_key:
        _lock(mfa_key, until)
    audit.record("account.locked", subject=subject, centre=centre, reason=reason,
                 until=clock.from_timestamp(until).isoformat())


def lock_message() -> str:
    """What a person is told while their account is locked (and how to unlock it now)."""
    minutes = policy.current().sec("lockout").lock_seconds // 60
    return _("Your account is locked for up to %(minutes)d minutes because of too many wrong attempts. "
             "Reset your password to unlock it now.", minutes=minutes)


# ------------------------------------------------------------------ passwords
def reserve_password(email: str) -> int | None:
    """A slot for checking one password for this address, or None: locked (say so, check nothing)."""
    return _reserve(password_key(email), policy.current().sec("lockout").max_failures)


def password_failed(email: str, slot: int, *, subject=None, centre=None, reason: str) -> bool:
    """The password of ``slot`` was wrong. True if that spent the budget and locked the address
    (audited here; the caller commits)."""
    if slot < policy.current().sec("lockout").max_failures:
        return False
    _lock_account(email, None, subject=subject, centre=centre, reason=reason)
    return True


def password_ok(email: str) -> None:
    """A correct password: the count starts again (the caller commits)."""
    _set(password_key(email), failures=0)


def locked_until(email: str) -> datetime | None:
    """When the lock on this address ends, or None if it is not locked."""
    until = _locked_until(password_key(email))
    return None if until is None else clock.from_timestamp(until)


# ------------------------------------------------------------------ second factors
def reserve_second_factor(account) -> int | None:
    """A slot for checking one second-factor answer of this account, or None: the account is
    locked or its budget is spent (check nothing)."""
    if _locked_until(password_key(account.email)) is not None:
        return None
    return _reserve(_mfa_key(account), policy.current().sec("mfa").max_failures)


def second_factor_failed(account, slot: int) -> bool:
    """The answer of ``slot`` was wrong. True if that spent the budget: the account is then locked
    like after wrong passwords (audited; the caller commits)."""
    if slot < policy.current().sec("mfa").max_failures:
        return False
    _lock_account(account.email, _mfa_key(account), subject=account.sub, centre=account.centre_number,
                  reason="mfa")
    return True


def second_factor_ok(account) -> None:
    _set(_mfa_key(account), failures=0)


def second_factor_not_counted(account) -> None:
    """The answer of a slot was right but stands for nothing (its method was removed while it was
    checked): the slot is given back, neither a failure nor a success (the caller commits)."""
    db.session.execute(update(AttemptCounter).where(AttemptCounter.key == _mfa_key(account),
                                                    AttemptCounter.failures > 0)
                       .values(failures=AttemptCounter.failures - 1, updated_at=int(time.time()))
                       .execution_options(synchronize_session=False))


# ------------------------------------------------------------------ unlock
def unlock(account) -> None:
    """Clear both counts and the lock (password reset, unlock by a manager). The caller commits."""
    db.session.execute(delete(AttemptCounter).where(
        AttemptCounter.key.in_([password_key(account.email), _mfa_key(account)])))
