"""Remembered devices: after a passed second factor a person may ask not to be asked for a code on
this browser for a number of days (``policies/security.toml`` [remember_device], per account type;
off for board staff).

A remembered device is a database row bound to the account, holding the SHA-256 of a random
token; the browser holds the token (signed, in its own cookie: ``idp.cookies``). So it can be
revoked from the server at any time: removed from My account, and ended with everything else by
``end_access`` (a password change or reset, an MFA reset, "sign out everywhere", ...). Signing in
on one still needs the password, and is reported for what it is: ``amr`` ["pwd"] (no second factor
was performed this time) and ``acr`` urn:idp:acr:mfa-remembered, which a request asking for
``urn:idp:acr:mfa`` or ``urn:idp:acr:phr`` does not accept.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, select, update

from .. import audit, policy, secrets
from ..clock import utcnow
from ..extensions import db
from .models import Account, RememberedDevice


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def offered_days(account: Account) -> int:
    """For how many days this person may be remembered (0: not offered to their account type)."""
    return policy.current().remember_device_days(account.role)


def remember(account: Account, *, user_agent: str = "", ip: str | None = None) -> tuple[str, int] | None:
    """A new remembered device for the account: (token for the cookie, days), or None when its
    account type is not offered it. The caller commits."""
    days = offered_days(account)
    if days <= 0:
        return None
    # (the account's expired devices go now: rows never pile up past one per browser and period)
    db.session.execute(delete(RememberedDevice).where(RememberedDevice.account_id == account.id,
                                                      RememberedDevice.expires_at <= utcnow()))
    token = secrets.token(32)
    device = RememberedDevice(account_id=account.id, token_hash=_hash(token), user_agent=(user_agent or "")[:255],
                              ip=ip, expires_at=utcnow() + timedelta(days=days))
    db.session.add(device)
    db.session.flush()
    audit.record("mfa.device_remembered", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 device=device.id, days=days)
    return token, days


def recognise(account: Account, token: str | None) -> RememberedDevice | None:
    """The account's live remembered device for this token, or None: another person's device, an
    expired or removed one, or one of an account type no longer offered it, are not recognised."""
    if not isinstance(token, str) or not token or len(token) > 100 or offered_days(account) <= 0:
        return None
    device = db.session.scalar(select(RememberedDevice).where(RememberedDevice.token_hash == _hash(token)))
    if device is None or device.account_id != account.id or device.expires_at <= utcnow():
        return None
    # its last use, written only if it is still there: removed in another browser a moment ago, it
    # stands in for nothing (and a flush of a row gone would fail the sign-in with a 500)
    used = db.session.execute(update(RememberedDevice).where(RememberedDevice.id == device.id)
                              .values(last_used_at=utcnow()).execution_options(synchronize_session=False))
    return device if used.rowcount == 1 else None


def still_live(account: Account, device_id: str) -> bool:
    """The device that stood in for the second factor earlier in a sign-in is still the account's
    and live: removed in My account, or forgotten when the account's access ended, it is not."""
    device = db.session.get(RememberedDevice, device_id) if device_id else None
    return device is not None and device.account_id == account.id and device.expires_at > utcnow()


def live_for(account_id: str) -> list[RememberedDevice]:
    return list(db.session.scalars(select(RememberedDevice).where(
        RememberedDevice.account_id == account_id, RememberedDevice.expires_at > utcnow())
        .order_by(RememberedDevice.created_at.desc())))


def forget(account: Account, device_id: str) -> bool:
    """Remove one of the person's own remembered devices (My account); someone else's, or an
    unknown id, is simply not found. Commits."""
    device = db.session.get(RememberedDevice, device_id) if isinstance(device_id, str) and len(device_id) <= 36 \
        else None
    if device is None or device.account_id != account.id:
        return False
    db.session.delete(device)
    audit.record("mfa.device_forgotten", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 device=device_id, reason="removed")
    db.session.commit()
    return True


def forget_all(account: Account) -> int:
    """Every remembered device of the account ends (part of ending someone's access). The caller
    commits."""
    ended = db.session.execute(delete(RememberedDevice).where(RememberedDevice.account_id == account.id)).rowcount
    if ended:
        audit.record("mfa.device_forgotten", subject=account.sub, centre=account.centre_number, count=ended,
                     reason="access_ended")
    return ended
