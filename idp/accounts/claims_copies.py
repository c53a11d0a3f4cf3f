"""Copies of what a person's claims are made of (their account row, their centre's number and
standing, the profiles they hold), kept in the store for UserInfo, the protocol's busiest read,
and dropped in every process the moment any of it changes.

Why it stays exact: every copy carries the two versions it was read under, the person's and
everyone's, and is used only while both are still current. A change to a person (their account
row, the profiles they hold) changes their version; a change that may touch many people (a centre
renamed or suspended, a bulk statement that does not name whom it touches) changes everyone's.

- As the change is flushed, the version becomes "changing" (a store that cannot be reached stops
  the change: nothing is committed that a copy could contradict). No copy is kept while a version
  it would be kept under is changing: a read then may see the database before or after the commit.
- When the transaction ends (committed or not), the version becomes a new random value, and the
  person's copy is deleted (a deleted person's details leave the store at once). If that write
  fails, the version stays "changing" until it expires: UserInfo reads the database meanwhile.
- A reader keeps its copy under the versions it fetched before it read, so a read that began
  before a change cannot bring the old values back once the change has ended. One gap is left:
  two changes to one person at once, the first ending before the second commits; between the
  second's commit and its end (the two store writes after it, well under a millisecond) a copy
  of the first's values may still be used.

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
from ..extensions import store
from ..records import Record
from ..store import StoreUnavailable
from .models import Account

log = logging.getLogger(__name__)

#: the copies, short-lived: what a person's read costs is paid again at most every five minutes
COPIES = Record("claims-copy", ttl=300)
#: the versions outlive every copy made under them: a version that expired could otherwise come
#: back as "none" and match a copy made before it was written
VERSIONS = Record("claims-version", ttl=2 * COPIES.ttl)
#: how a version under change begins (a random version never does: base64url has no "~")
CHANGING = "~"
EVERYONE = "*"
#: the execution option by which a bulk statement names the people (subs) it changes
CLAIMS_OF = "claims_of"
_WATCHED = frozenset({Account.__tablename__, AccessGrant.__tablename__, Centre.__tablename__})
_CHANGED = "idp.claims_changed"
_NONE = "-"


def keys(sub: str) -> list[str]:
    """The store keys a reader fetches (with anything else it needs, in one round trip). None
    with a store of this process only: a change made by another (an ``idp`` command) could not
    reach its copies, so every reader reads the database."""
    return [COPIES.key(sub), VERSIONS.key(sub), VERSIONS.key(EVERYONE)] if store.shared else []


def current_copy(values: list[str | None]) -> str | None:
    """The copy among the values of ``keys()``, if it was made under the versions still current."""
    if not values:
        return None
    copy, person, everyone = values
    if copy is None:
        return None
    made_under, _, payload = copy.partition("\n")
    return payload if made_under == f"{person or _NONE} {everyone or _NONE}" else None


def keep_copy(sub: str, values: list[str | None], payload: str) -> None:
    """Store ``payload``, read from the database after ``values`` (of ``keys()``) were fetched,
    unless a change was under way then. A store that fails now costs the next caller a read, not
    this one its answer."""
    if not values:
        return
    _copy, person, everyone = values
    if (person or "").startswith(CHANGING) or (everyone or "").startswith(CHANGING):
        return
    try:
        COPIES.put(sub, f"{person or _NONE} {everyone or _NONE}\n{payload}")
    except StoreUnavailable:
        log.warning("a claims copy was not kept: the store is unreachable")


# ------------------------------------------------------------------ noticing changes
def _note(session: Session, subs=(), *, everyone: bool = False) -> None:
    """These people (or everyone) are changing until the transaction ends."""
    subs = set(subs) | ({EVERYONE} if everyone else set())
    if not subs or not has_app_context() or not store.shared:  # nothing of the app's is copied
        return
    for sub in subs:
        VERSIONS.put(sub, CHANGING + secrets.token_urlsafe(12))
    session.info.setdefault(_CHANGED, set()).update(subs)


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


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction) -> None:
    if transaction.parent is not None:  # a savepoint: the change is still the outer transaction's
        return
    subs = session.info.pop(_CHANGED, None)
    if not subs:
        return
    if not has_app_context():
        log.warning("claims versions left changing: the transaction ended outside the app")
        return
    try:
        for sub in subs:
            VERSIONS.put(sub, secrets.token_urlsafe(12))
        COPIES.delete(*(sub for sub in subs if sub != EVERYONE))
    except Exception:  # the transaction's outcome stands; the versions stay "changing" until they expire
        log.exception("claims versions not settled after a transaction")
