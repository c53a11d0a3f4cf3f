"""The access profiles a person holds (claim ``profiles``): read and written here only."""

from __future__ import annotations

from sqlalchemy import select

from ..clock import utcnow
from ..extensions import db
from .models import AccessGrant


def profiles_of(account) -> frozenset[str]:
    """The profiles granted to ``account`` (what a token's ``profiles`` claim and every policy
    check about what someone holds start from)."""
    return frozenset(db.session.scalars(select(AccessGrant.profile).where(AccessGrant.account_id == account.id)))


def replace_profiles(account, before: frozenset[str], after: frozenset[str], by: str) -> None:
    """Grant what ``after`` adds to ``before`` and remove what it drops. The caller commits."""
    if before != after:
        account.updated_at = utcnow()  # the person's claims changed (idp.accounts.models.CLAIM_COLUMNS)
    for profile in before - after:
        db.session.delete(db.session.get(AccessGrant, (account.id, profile)))
    for profile in after - before:
        db.session.add(AccessGrant(account_id=account.id, profile=profile, granted_by=by))
