"""Centres as board staff run them: create, rename, suspend and reinstate, list; and a centre's
audit trail for the people allowed to read it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select

from .. import audit, inputs, policy
from ..accounts import access
from ..accounts.models import Account
from ..audit import AuditEvent
from ..centres.models import Centre
from ..extensions import db
from ..policy.decisions import Party
from .errors import Conflict, Invalid, NotFound, action, require

CENTRE_NUMBER = re.compile(r"^\d{5}$")


def centre_row(number: str | None, *, lock: bool = False) -> Centre:
    """The centre with this number (its row locked for the transaction if ``lock``)."""
    if not isinstance(number, str) or not CENTRE_NUMBER.match(number):
        raise Invalid("A centre number is 5 digits.", "centre")
    query = select(Centre).where(Centre.number == number)
    if lock:
        query = query.with_for_update()
    centre = db.session.scalar(query)
    if centre is None:
        raise NotFound(f"There is no centre {number}.", "centre")
    return centre


@action("centre.created")
def create_centre(actor: Party, number: str, name: str) -> Centre:
    require(policy.checks().may_manage_centres(actor))
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or inputs.has_control_characters(name):
        raise Invalid("Enter the centre name (200 characters or fewer, no control characters).", "name")
    if not isinstance(number, str) or not CENTRE_NUMBER.match(number):
        raise Invalid("A centre number is 5 digits.", "number")
    if db.session.scalar(select(Centre).where(Centre.number == number)) is not None:
        raise Conflict(f"Centre {number} already exists.", "number")
    centre = Centre(number=number, name=name.strip())
    db.session.add(centre)
    audit.record("centre.created", actor=actor.sub, centre=number, after={"name": centre.name})
    db.session.commit()
    return centre


@action("centre.suspension_changed")
def set_centre_suspended(actor: Party, number: str, suspended: bool) -> Centre:
    require(policy.checks().may_manage_centres(actor))
    centre = centre_row(number, lock=True)
    before = centre.suspended
    centre.suspended = suspended
    if suspended:
        for account in db.session.scalars(select(Account).where(Account.centre_id == centre.id)):
            access.end_access(account)
    audit.record("centre.suspended" if suspended else "centre.reinstated", actor=actor.sub,
                 centre=number, before={"suspended": before}, after={"suspended": suspended})
    db.session.commit()
    return centre


def list_centres(actor: Party) -> list[Centre]:
    require(policy.checks().may_manage_centres(actor))
    return list(db.session.scalars(select(Centre).order_by(Centre.number)))


@dataclass(frozen=True)
class AuditPage:
    """One page of a centre's audit trail, with the accounts its rows name (by sub; someone
    since deleted is missing)."""

    items: list[AuditEvent]
    total: int
    page: int
    per_page: int
    people: dict[str, Account] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def centre_audit(actor: Party, number: str, *, page: int = 1, per_page: int = 50) -> list:
    """A centre's audit trail, newest first: its EO/admins (with users.manage) and board staff."""
    return audit_page(actor, number, page=page, per_page=per_page).items


def audit_page(actor: Party, number: str, *, page: int = 1, per_page: int = 50, person: str | None = None,
               who: str = "", events=None, quiet=()) -> AuditPage:
    """A page of a centre's audit trail, newest first, optionally only the rows by or about one
    person (``person``: a sub), about people whose name or email contains ``who``, or of the
    ``events`` named; without the successes of the ``quiet`` events (the steps of a sign-in, whose
    end has its own row)."""
    centre = centre_row(number)
    require(policy.checks().may_view_centre(actor, number))
    if page < 1 or not 1 <= per_page <= 200:
        raise Invalid("Pages hold 1 to 200 events.", "per_page")
    query = select(AuditEvent).where(AuditEvent.centre == number)
    if person:
        query = query.where(or_(AuditEvent.actor == person, AuditEvent.subject == person))
    if who and who.strip():
        like = "%" + _escape_like(who.strip().lower()[:100]) + "%"
        matching = select(Account.sub).where(Account.centre_id == centre.id, or_(
            Account.email_key.like(like, escape="\\"),
            func.lower(Account.given_name + " " + Account.family_name).like(like, escape="\\")))
        query = query.where(or_(AuditEvent.actor.in_(matching), AuditEvent.subject.in_(matching)))
    if events is not None:
        query = query.where(AuditEvent.event.in_(list(events)))
    if quiet:
        query = query.where(or_(AuditEvent.event.not_in(list(quiet)), AuditEvent.outcome != "success"))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    items = list(db.session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id)
                                    .offset((page - 1) * per_page).limit(per_page)))
    subs = {s for e in items for s in (e.actor, e.subject) if s}
    people = {a.sub: a for a in db.session.scalars(select(Account).where(Account.sub.in_(subs)))} if subs else {}
    return AuditPage(items, total, page, per_page, people)


def _escape_like(text: str) -> str:
    """Text matched literally inside a LIKE pattern (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def find_centres(actor: Party, q: str = "", *, limit: int = 50) -> list[Centre]:
    """Centres whose number starts with, or whose name contains, ``q`` (board staff choosing a
    centre to look at), by number."""
    require(policy.checks().may_manage_centres(actor))
    query = select(Centre)
    if q and q.strip():
        text = q.strip().lower()[:200]
        query = query.where(or_(Centre.number.like(_escape_like(text) + "%", escape="\\"),
                                func.lower(Centre.name).like("%" + _escape_like(text) + "%", escape="\\")))
    return list(db.session.scalars(query.order_by(Centre.number).limit(limit)))
