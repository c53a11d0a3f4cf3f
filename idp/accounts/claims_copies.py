"""Copies of what a person's claims are made of (their account row, their centre's number and
standing, the profiles they hold), kept in the store for UserInfo, the protocol's busiest read,
and dropped in every process the moment any of it changes.

Why it stays exact: every copy carries the two versions it was read under, the person's and
everyone's, and is used only while both are still current. A change to a person (their account
row, the profiles they hold) gives them a new random version; a change that may touch many people
(a centre renamed or suspended, a bulk statement that does not name whom it touches) gives
everyone one. Versions are written as the change is flushed (a store that cannot be reached stops
the change: nothing is committed that a copy could contradict) and again once it commits (so a
copy made from a read that raced the commit is dropped too). A reader stores its copy under the
versions it saw before it read the database, so a read that began before a change can never
bring the old values back once the change's version is written.

The watching is done once, for every session (``sqlalchemy.orm.Session`` events): a service that
changes an account, a grant or a centre has nothing to remember. A bulk statement on those tables
may name the people it touches with ``execution_options(claims_of=[sub, ...])`` (or ``()``: no
claims change); without it, everyone's version changes.
"""

from __future__ import annotations

import logging
import secrets
from itertools import chain

from flask import has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from ..centres.models import AccessGrant, Centre
from ..records import Record
from ..store import StoreUnavailable
from .models import Account

log = logging.getLogger(__name__)

#: the copies: short-lived, so even a version lost with a store that failed just after a commit
#: leaves a stale copy for minutes at most
COPIES = Record("claims-copy", ttl=300)
#: the versions outlive every copy made under them: a version that expired could otherwise come
#: back as "none" and match a copy made before it was written
VERSIONS = Record("claims-version", ttl=2 * COPIES.ttl)
EVERYONE = "*"
#: the execution option by which a bulk statement names the people (subs) it changes
CLAIMS_OF = "claims_of"
_WATCHED = frozenset({Account.__tablename__, AccessGrant.__tablename__, Centre.__tablename__})
_CHANGED = "idp.claims_changed"
_NONE = "-"


def keys(sub: str) -> list[str]:
    """The store keys a reader fetches (with anything else it needs, in one round trip)."""
    return [COPIES.key(sub), VERSIONS.key(sub), VERSIONS.key(EVERYONE)]


def current_copy(values: list[str | None]) -> str | None:
    """The copy among the values of ``keys()``, if it was made under the versions still current."""
    copy, person, everyone = values
    if copy is None:
        return None
    made_under, _, payload = copy.partition("\n")
    return payload if made_under == f"{person or _NONE} {everyone or _NONE}" else None


def keep_copy(sub: str, values: list[str | None], payload: str) -> None:
    """Store ``payload``, read from the database after ``values`` (of ``keys()``) were fetched. A
    store that fails now costs the next caller a read, not this one its answer."""
    _copy, person, everyone = values
    try:
        COPIES.put(sub, f"{person or _NONE} {everyone or _NONE}\n{payload}")
    except StoreUnavailable:
        log.warning("a claims copy was not kept: the store is unreachable")


# ------------------------------------------------------------------ noticing changes
def _note(session: Session, subs=(), *, everyone: bool = False) -> None:
    """Give these people (or everyone) new versions now, and again once the transaction commits."""
    subs = set(subs) | ({EVERYONE} if everyone else set())
    if not subs or not has_app_context():  # no app, no store: nothing of the app's is cached
        return
    _write_versions(subs)
    session.info.setdefault(_CHANGED, set()).update(subs)


def _write_versions(subs) -> None:
    for sub in subs:
        VERSIONS.put(sub, secrets.token_urlsafe(12))


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context) -> None:
    # the new, dirty and deleted lists still hold what this flush wrote
    subs, everyone = set(), False
    for item in chain(session.dirty, session.deleted):
        if isinstance(item, Account):
            subs.add(item.sub)
        elif isinstance(item, Centre):
            everyone = True
    for item in chain(session.new, session.dirty, session.deleted):
        if isinstance(item, AccessGrant):
            holder = session.identity_map.get(identity_key(Account, item.account_id))
            if holder is None:
                everyone = True  # the holder is not at hand, and no SQL may run here
            else:
                subs.add(holder.sub)
    _note(session, subs, everyone=everyone)


@event.listens_for(Session, "do_orm_execute")
def _bulk_statement(state) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) not in _WATCHED:
        return
    named = state.execution_options.get(CLAIMS_OF)
    if named is None:
        _note(state.session, everyone=True)
    else:
        _note(state.session, named)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    # kept across a rollback on purpose: a version written for a change that did not happen only
    # costs a fresh read
    subs = session.info.pop(_CHANGED, None)
    if subs:
        try:
            _write_versions(subs)
            # and the copies themselves go: a deleted person's details leave the store now
            COPIES.delete(*(sub for sub in subs if sub != EVERYONE))
        except Exception:  # the commit stands; the copies made meanwhile expire with their ttl
            log.exception("claims versions not written after a commit")
