"""Single-sign-on sessions: created at sign-in, read on every authorization request.

The browser holds a random id in a ``__Host-`` cookie; the database holds only its
hash, so a database leak does not hand out live sessions. Idle and absolute
timeouts come from policies/security.toml.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from .. import events, policy, secrets
from ..clock import utcnow
from ..extensions import db, hold_row
from .models import Account, SsoSession


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Started:
    cookie_value: str
    session: SsoSession


def start(account: Account, *, amr: list[str], acr: str = "", ip: str | None = None,
          user_agent: str = "") -> Started:
    """A new session (and so a new id) at every sign-in: no session fixation."""
    cookie_value = secrets.token(32)
    entry = SsoSession(id_hash=_hash(cookie_value), sid=secrets.token(24), account_id=account.id,
                       auth_time=int(time.time()), amr=list(amr), acr=acr, ip=ip,
                       user_agent=(user_agent or "")[:255])
    db.session.add(entry)
    return Started(cookie_value, entry)


def find(cookie_value: str | None) -> SsoSession | None:
    """The live session for a cookie, touching its idle timer; None if absent, ended or timed out."""
    if not cookie_value or len(cookie_value) > 100:
        return None
    entry = db.session.get(SsoSession, _hash(cookie_value))
    if entry is None or entry.ended_at is not None:
        return None
    now = utcnow()
    if _timed_out(entry, now):
        return None
    if not entry.account.can_sign_in:
        return None
    # Write the idle timer at most once a minute: reads stay reads.
    if now - entry.last_seen_at > timedelta(seconds=60):
        entry.last_seen_at = now
        db.session.commit()
    return entry


def _timed_out(entry: SsoSession, now) -> bool:
    limits = policy.current().sec("session")
    return (now - entry.created_at > timedelta(seconds=limits.absolute_timeout_seconds)
            or now - entry.last_seen_at > timedelta(seconds=limits.idle_timeout_seconds))


def by_sid(sid: str, *, hold: bool = False) -> SsoSession | None:
    """The session with this ``sid``. ``hold``: its row as committed, held until the transaction
    ends (as ``extensions.hold_row``), to be read and written back in one turn (``note_client``).
    On PostgreSQL the one SELECT is the locking one (FOR NO KEY UPDATE, of the session's row only:
    not its account's); SQLite ignores FOR UPDATE, so its write lock is taken first."""
    query = select(SsoSession).where(SsoSession.sid == sid)
    if hold:
        if db.session.get_bind().dialect.name == "sqlite":
            hold_row(SsoSession.sid, sid)
        else:
            query = query.with_for_update(key_share=True, of=SsoSession)
        query = query.execution_options(populate_existing=True)  # not a copy read earlier in the request
    return db.session.scalar(query)


def note_client(entry: SsoSession, client_id: str) -> None:
    """Note that ``client_id`` received tokens through this session (it is sent a back-channel
    logout when the session ends). ``entry`` must be held (``by_sid(..., hold=True)``): the list is
    read and written back, and of two services joining at once (a portal opening both), the second
    would otherwise write back the list it read before the first's commit, and the first would
    never be told of the sign-out (found by an outside probe)."""
    if client_id not in entry.clients:
        entry.clients = [*entry.clients, client_id]


def end(entry: SsoSession) -> bool:
    """End one session; its clients get a back-channel logout once the change commits (a
    receiver of ``events.session_ended``). Whether this call ended it (False: it had ended)."""
    if entry.ended_at is None:
        # held, then read again: a service whose code exchange is noting itself on the row at this
        # moment (it holds the row, ``by_sid``) is among those told, once it has committed
        hold_row(SsoSession.id_hash, entry.id_hash)
        db.session.refresh(entry, attribute_names=["clients", "ended_at"])
    if entry.ended_at is not None:
        return False
    entry.ended_at = utcnow()
    events.session_ended.send(entry)
    return True


def end_all(account_id: str, *, keep_sid: str | None = None) -> tuple[list[SsoSession], bool]:
    """End every live session of an account but ``keep_sid``'s: (those ended, whether the kept one
    is live, held until the transaction ends). (To end someone's access, tokens included, call
    ``access.end_access``.)"""
    # in one order, as each is held as it ends (the kept one too): two endings at once cannot
    # wait on each other
    live = list(db.session.scalars(select(SsoSession).where(
        SsoSession.account_id == account_id, SsoSession.ended_at.is_(None)).order_by(SsoSession.id_hash)))
    ended, kept = [], False
    for entry in live:
        if entry.sid == keep_sid:
            # held, then read again: an ending of it committed meanwhile ("sign out everywhere", an
            # MFA reset) is seen, and what the change keeps is decided on it
            hold_row(SsoSession.id_hash, entry.id_hash)
            db.session.refresh(entry, attribute_names=["ended_at"])
            kept = entry.ended_at is None
        elif end(entry):
            ended.append(entry)
    return ended, kept


def live_for(account_id: str) -> list[SsoSession]:
    """The account's live sessions (not ended, not timed out), newest first (for "my account")."""
    now = utcnow()
    return [entry for entry in db.session.scalars(select(SsoSession).where(
        SsoSession.account_id == account_id, SsoSession.ended_at.is_(None)).order_by(SsoSession.created_at.desc()))
        if not _timed_out(entry, now)]
