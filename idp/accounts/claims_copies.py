"""Copies of what a person's claims are made of (their account row, their centre's number and
standing, the profiles they hold), kept in the store for UserInfo, the protocol's busiest read,
and dropped in every process the moment any of it changes.

Why a copy never says what the database no longer does:

- Each person, and everyone together, has a **count of changes in progress** and a **version**.
  A change to a person (their account row, the grants they hold) counts one up for them as it is
  first flushed; a change that may touch many people (a centre's standing, a bulk statement that
  does not name whom it touches) counts one up for everyone. A store that cannot be reached stops
  the change: nothing is committed that a copy could contradict.
- When the transaction ends (committed or not), each of its people gets a new random version,
  their copy is deleted (a deleted person's details leave the store at once), and only then is the
  count taken down again.
- A reader fetches the copy, the versions and the counts in one round trip (with the token's
  revocation markers). It uses the copy only if nothing is in progress and the versions are those
  the copy was made under; it keeps a copy only if nothing was in progress when it fetched, under
  the versions it fetched before reading.

So between a change's flush and the end of its transaction (its commit, and whatever runs after the
commit) nobody uses or keeps a copy of the people it touches: they read the database. A copy made
from a read that began before the change is under a version the change's end replaces. If the
store fails after a commit, the count stays up until it expires (ten minutes after the last change
began, longer than any copy made before it lives) and UserInfo reads the database meanwhile: a
failure costs speed, never a stale answer.

The watching is done once, for every session (``sqlalchemy.orm.Session`` events): a service that
changes an account, a grant or a centre has nothing to remember. A bulk statement on those tables
may name the people it touches with ``execution_options(claims_of=[sub, ...])`` (or ``()``: no
claims change); without it, it counts for everyone, as does any SQL text that is not a SELECT.
Copies are kept only in a store every process shares (Redis): with the in-process store a change
made by another process (an ``idp`` command) could not reach them, so every reader reads.
"""

from __future__ import annotations

import logging
import secrets
from itertools import chain

from flask import has_app_context
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import TextClause

from ..centres.models import AccessGrant, Centre
from ..extensions import store
from ..records import Record
from ..store import StoreUnavailable
from .models import CLAIM_COLUMNS, STANDING_COLUMNS, Account, claims_changed

log = logging.getLogger(__name__)

#: the copies, short-lived: what a person's read costs is paid again at most every five minutes
COPIES = Record("claims-copy", ttl=300)
#: the versions outlive every copy made under them: a version that expired could otherwise come
#: back as "none" and match a copy made before it was written
VERSIONS = Record("claims-version", ttl=2 * COPIES.ttl)
#: changes in progress: outlive every copy made before the last of them began
IN_PROGRESS = Record("claims-changing", ttl=2 * COPIES.ttl)
EVERYONE = "*"
#: the execution option by which a bulk statement names the people (subs) it changes
CLAIMS_OF = "claims_of"
#: what a centre row holds that claims are made of (its name is not in any claim)
_CENTRE_CLAIMS = ("number", "suspended")
#: what an account row holds that UserInfo's answer depends on (its sign-ins, password and second
#: factors are not among it: signing in leaves the copy in place)
_ACCOUNT_CLAIMS = (*CLAIM_COLUMNS, *STANDING_COLUMNS, "updated_at")
_WATCHED = frozenset({Account.__tablename__, AccessGrant.__tablename__, Centre.__tablename__})
_CHANGED = "idp.claims_changed"
_NONE = "-"


def keys(sub: str) -> list[str]:
    """The store keys a reader fetches (with anything else it needs, in one round trip); none
    with a store of this process only, where every reader reads the database."""
    if not store.shared:
        return []
    return [COPIES.key(sub), VERSIONS.key(sub), VERSIONS.key(EVERYONE), IN_PROGRESS.key(sub),
            IN_PROGRESS.key(EVERYONE)]


def _settled(values: list[str | None]) -> bool:
    """No change to the person, or to everyone, in progress when ``values`` were fetched."""
    return all(int(count or 0) <= 0 for count in values[3:5])


def current_copy(values: list[str | None]) -> str | None:
    """The copy among the values of ``keys()``, if it may be used."""
    if not values or values[0] is None or not _settled(values):
        return None
    made_under, _, payload = values[0].partition("\n")
    return payload if made_under == _made_under(values) else None


def keep_copy(sub: str, values: list[str | None], payload: str) -> None:
    """Store ``payload``, read from the database after ``values`` (of ``keys()``) were fetched,
    unless a change was in progress then. A store that fails now costs the next caller a read,
    not this one its answer."""
    if not values or not _settled(values):
        return
    try:
        COPIES.put(sub, f"{_made_under(values)}\n{payload}")
    except StoreUnavailable:
        log.warning("a claims copy was not kept: the store is unreachable")


def _made_under(values: list[str | None]) -> str:
    return f"{values[1] or _NONE} {values[2] or _NONE}"


# ------------------------------------------------------------------ noticing changes
def _note(session: Session, subs=(), *, everyone: bool = False) -> None:
    """A change to these people (or everyone) is in progress until the transaction ends."""
    subs = set(subs) | ({EVERYONE} if everyone else set())
    noted = session.info.setdefault(_CHANGED, set())
    subs -= noted  # counted once per transaction
    if not subs:
        return
    if not has_app_context():
        log.warning("a change to people outside the app: UserInfo's copies of them are not told")
        return
    if not store.shared:
        return
    for sub in subs:
        IN_PROGRESS.add_to(sub, 1)
        noted.add(sub)


def _sub_of(account: Account) -> str | None:
    """The account's sub as loaded, without a query (None if it is not at hand)."""
    loaded = inspect(account).attrs.sub.loaded_value
    return None if loaded is NO_VALUE else loaded


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context) -> None:
    # the new, dirty and deleted lists, and the attributes' history, still hold what this flush wrote
    new_ids = {item.id for item in session.new if isinstance(item, Account)}
    known = {item.id: _sub_of(item) for item in session.deleted if isinstance(item, Account)}
    known |= {item.id: _sub_of(item) for item in session.dirty
              if isinstance(item, Account) and claims_changed(item, _ACCOUNT_CLAIMS)}
    subs = {sub for sub in known.values() if sub is not None}
    everyone = None in known.values()
    for item in chain(session.dirty, session.deleted):
        if isinstance(item, Centre):
            state = inspect(item)
            everyone |= state.deleted or any(state.attrs[name].history.has_changes() for name in _CENTRE_CLAIMS)
    for item in chain(session.new, session.dirty, session.deleted):
        if isinstance(item, AccessGrant) and item.account_id not in new_ids:  # a new account has no copy
            holder = session.identity_map.get(identity_key(Account, item.account_id))
            sub = known.get(item.account_id) or (_sub_of(holder) if holder is not None else None)
            if sub is None:
                everyone = True  # the holder is not at hand, and no SQL may run here
            else:
                subs.add(sub)
    _note(session, subs, everyone=everyone)


@event.listens_for(Session, "do_orm_execute")
def _statement(state) -> None:
    statement = state.statement
    if isinstance(statement, TextClause):
        if not statement.text.lstrip().upper().startswith("SELECT"):
            _note(state.session, everyone=True)  # SQL text says nothing of what it changes
        return
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    if getattr(getattr(statement, "table", None), "name", None) not in _WATCHED:
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
    try:
        for sub in subs:
            VERSIONS.put(sub, secrets.token_urlsafe(12))
        COPIES.delete(*(sub for sub in subs if sub != EVERYONE))
        for sub in subs:
            IN_PROGRESS.add_to(sub, -1)
    except Exception:  # the outcome stands; the counts stay up until they expire, and readers read
        log.exception("claims copies: a change's end not recorded")
