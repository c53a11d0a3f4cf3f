"""Deleting rows that nothing can use any more: the provider's janitor, run by the server itself
every ``[housekeeping] purge_every_minutes`` (``PurgeSchedule``: one process of the whole service
each time), or by the operator (`idp db purge`, from cron or a systemd timer; docs/operations.md).

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
import os
import random
import socket
import threading
import time
import weakref
from datetime import timedelta

from flask import Flask, current_app
from sqlalchemy import delete, func, or_, select

from .. import policy
from ..accounts.models import AttemptCounter, RememberedDevice, SsoSession
from ..clock import utcnow
from ..extensions import db
from ..oidc.models import InitialAccessToken, RefreshToken
from ..records import Record
from ..store import StoreUnavailable

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


#: taken by the process that runs a purge, for the interval: one purge per interval in the whole
#: service, whichever processes and hosts serve it (the store is the one they share)
PURGE_TURN = Record("housekeeping-purge", ttl=3600)  # (each turn lives the configured interval)


class PurgeSchedule:
    """One thread per serving process, asking for the purge's turn as an app starts serving and
    then every ``CHECK_EVERY`` seconds (at a random offset, so processes started together do not
    keep asking together); the process that gets it purges. A process that stops, or a purge that
    fails, costs at most one interval."""

    CHECK_EVERY = 60.0
    _apps: weakref.WeakSet[Flask] = weakref.WeakSet()
    _thread: threading.Thread | None = None
    _pid: int | None = None
    _lock = threading.Lock()
    _ask_now = threading.Event()

    @classmethod
    def start(cls, app: Flask) -> None:
        if app.config["IDP_SETTINGS"].housekeeping.purge_every_minutes <= 0:
            return
        with cls._lock:
            cls._apps.add(app)
            if cls._thread is None or not cls._thread.is_alive() or cls._pid != os.getpid():
                cls._thread = threading.Thread(target=cls._run, name="idp-housekeeping", daemon=True)
                cls._pid = os.getpid()
                cls._thread.start()
        cls._ask_now.set()

    @classmethod
    def _run(cls) -> None:
        # its own generator: a background thread drawing from the module's shared one changes the
        # state everything else in the process draws from (Hypothesis, in the tests, warned of it)
        jitter = random.Random()
        while True:
            cls._ask_now.wait(cls.CHECK_EVERY * jitter.uniform(0.5, 1.5))
            cls._ask_now.clear()
            for app in list(cls._apps):
                try:
                    with app.app_context():
                        purge_if_due()
                except Exception:  # the next check tries again; the failure is logged
                    log.exception("housekeeping: the scheduled purge failed")


def purge_if_due() -> dict[str, int] | None:
    """Purge unless a process of the service has in this interval (taking the turn); the counts,
    or None when it was not this process's turn or the store cannot say whose it is."""
    every = current_app.config["IDP_SETTINGS"].housekeeping.purge_every_minutes * 60
    try:
        mine = PURGE_TURN.add("turn", f"{socket.gethostname()}:{os.getpid()}", every)
    except StoreUnavailable:
        return None
    return purge() if mine else None


__all__ = ["BATCH", "GRANT_BATCH", "PURGE_TURN", "PurgeSchedule", "purge", "purge_if_due"]
