"""Deleting rows that nothing can use any more: the provider's janitor, run by the operator on a
schedule (`idp db purge`, hourly from cron or a systemd timer; docs/operations.md).

Every sign-in leaves a session row and every refresh a token row, so without this the tables only
grow. Nothing a check still needs is deleted:

- refresh tokens go a whole grant at a time, once every token of the grant has expired: until then
  a rotated token presented again is reuse and ends the grant, so its row must stay;
- sessions go once ended or timed out for longer than ``[session] kept_after_end_days`` (the
  helpdesk and the person can still see a recent one; nothing signs in with it);
- remembered devices once expired; initial access tokens once expired or used up;
- failure counters only when they hold nothing: no failures and no lock in force (a count of
  wrong passwords "in a row" is kept however old, as the lockout rule says).

Deletes go in batches, each its own transaction, so a large backlog never holds long locks."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import delete, func, or_, select

from .. import policy
from ..accounts.models import AttemptCounter, RememberedDevice, SsoSession
from ..clock import utcnow
from ..extensions import db
from ..oidc.models import InitialAccessToken, RefreshToken

log = logging.getLogger(__name__)

#: rows per delete statement
BATCH = 2000
#: grants per delete statement (a grant has a row per refresh it has had)
GRANT_BATCH = 200


def _in_batches(key_column, condition) -> int:
    """Delete the rows matching ``condition`` BATCH at a time; the number deleted."""
    table = key_column.class_
    total = 0
    while True:
        keys = select(key_column).where(condition).limit(BATCH).scalar_subquery()
        # the condition again on the rows themselves: one changed since the subquery looked stays
        deleted = db.session.execute(delete(table).where(key_column.in_(keys), condition)).rowcount
        db.session.commit()
        total += deleted
        if deleted < BATCH:
            return total


def _finished_grants(epoch: int) -> int:
    """Delete the refresh tokens of grants whose every token has expired, GRANT_BATCH grants at a
    time (a finished grant gets no new token: only a live one can be rotated)."""
    finished = (select(RefreshToken.grant_id).group_by(RefreshToken.grant_id)
                .having(func.max(RefreshToken.expires_at) <= epoch))
    total = 0
    while True:
        grant_ids = db.session.scalars(finished.limit(GRANT_BATCH)).all()
        if not grant_ids:
            return total
        total += db.session.execute(delete(RefreshToken).where(RefreshToken.grant_id.in_(grant_ids))).rowcount
        db.session.commit()


def purge() -> dict[str, int]:
    """Delete what can no longer be used; the number of rows deleted per table."""
    now, epoch = utcnow(), int(time.time())
    sessions = policy.current().sec("session")
    kept = timedelta(days=sessions.kept_after_end_days)
    counts = {
        "refresh_tokens": _finished_grants(epoch),
        "sso_sessions": _in_batches(SsoSession.id_hash, or_(
            SsoSession.ended_at < now - kept,
            SsoSession.created_at < now - kept - timedelta(seconds=sessions.absolute_timeout_seconds),
            SsoSession.last_seen_at < now - kept - timedelta(seconds=sessions.idle_timeout_seconds))),
        "remembered_devices": _in_batches(RememberedDevice.id, RememberedDevice.expires_at <= now),
        "initial_access_tokens": _in_batches(InitialAccessToken.token_hash, or_(
            InitialAccessToken.expires_at <= now, InitialAccessToken.uses_left <= 0)),
        "attempt_counters": _in_batches(AttemptCounter.key, (AttemptCounter.failures == 0) & or_(
            AttemptCounter.locked_until.is_(None), AttemptCounter.locked_until <= epoch)),
    }
    log.info("housekeeping: deleted %s", ", ".join(f"{n} {table}" for table, n in counts.items()))
    return counts


__all__ = ["BATCH", "GRANT_BATCH", "purge"]
