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
from ..extensions import db, hold_row
from ..i18n import lazy_gettext as _l
from ..policy.decisions import Party
from .errors import Conflict, Invalid, NotFound, action, require

NAME_LIMIT = 200

#: five ASCII digits (a bare \d would also take other scripts' digits, like "５")
CENTRE_NUMBER = re.compile(r"^[0-9]{5}$")


def centre_row(number: str | None, *, lock: bool = False) -> Centre:
    """The centre with this number (its row locked for the transaction if ``lock``)."""
    if not isinstance(number, str) or not CENTRE_NUMBER.match(number):
        raise Invalid(_l("A centre number is 5 digits."), "centre")
    if lock:  # a second writer waits here, and what it counts next includes what this one added
        hold_row(Centre.number, number)
    centre = db.session.scalar(select(Centre).where(Centre.number == number))
    if centre is None:
        raise NotFound(_l("There is no centre %(number)s.", number=number), "centre")
    return centre


@action("centre.created")
def create_centre(actor: Party, number: str, name: str) -> Centre:
    require(policy.checks().may_manage_centres(actor))
    name = _clean_name(name)
    if not isinstance(number, str) or not CENTRE_NUMBER.match(number):
        raise Invalid(_l("A centre number is 5 digits."), "number")
    if db.session.scalar(select(Centre).where(Centre.number == number)) is not None:
        raise Conflict(_l("Centre %(number)s already exists.", number=number), "number")
    centre = Centre(number=number, name=name)
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


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_LIMIT \
            or inputs.has_control_characters(name):
        raise Invalid(_l("Enter the centre name (%(limit)d characters or fewer, no control characters).",
                         limit=NAME_LIMIT), "name")
    return name.strip()


@action("centre.renamed")
def rename_centre(actor: Party, number: str, name: str) -> Centre:
    require(policy.checks().may_manage_centres(actor))
    name = _clean_name(name)
    centre = centre_row(number, lock=True)
    if centre.name == name:
        return centre
    before = centre.name
    centre.name = name
    audit.record("centre.renamed", actor=actor.sub, centre=number, before={"name": before}, after={"name": name})
    db.session.commit()
    return centre


# ------------------------------------------------------------------ the board's view of centres
@dataclass(frozen=True)
class CentreSummary:
    centre: Centre
    people: int
    #: the holders of the one-per-centre role (the Exams Officer): normally one, none while a
    #: new centre waits for its first
    heads: list[Account] = field(default_factory=list)


@dataclass(frozen=True)
class CentrePage:
    items: list[CentreSummary]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _summaries(centres: list[Centre]) -> list[CentreSummary]:
    """Each centre with its number of people and its Exams Officer, in two queries."""
    ids = [c.id for c in centres]
    if not ids:
        return []
    counts = dict(db.session.execute(select(Account.centre_id, func.count()).where(Account.centre_id.in_(ids))
                                     .group_by(Account.centre_id)).all())
    heads: dict[str, list[Account]] = {}
    for account in db.session.scalars(select(Account).where(Account.centre_id.in_(ids),
                                                            Account.role == policy.current().centre_head_role)
                                      .order_by(Account.email_key)):
        heads.setdefault(account.centre_id, []).append(account)
    return [CentreSummary(c, counts.get(c.id, 0), heads.get(c.id, [])) for c in centres]


def _like(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@action("centre.listed")
def overview(actor: Party, *, q: str = "", suspended: bool | None = None, page: int = 1,
             per_page: int = 25) -> CentrePage:
    """Centres by number, for board staff and the helpdesk: those whose number starts with, or
    whose name contains, ``q``; only the suspended (or the active) ones if ``suspended`` says so."""
    require(policy.checks().may_see_every_centre(actor))
    if page < 1 or not 1 <= per_page <= 200:
        raise Invalid(_l("Pages hold 1 to %(most)d centres.", most=200), "per_page")
    query = select(Centre)
    text = (q or "").strip().lower()[:NAME_LIMIT]
    if text:
        query = query.where(or_(Centre.number.like(_like(text) + "%", escape="\\"),
                                func.lower(Centre.name).like("%" + _like(text) + "%", escape="\\")))
    if suspended is not None:
        query = query.where(Centre.suspended.is_(suspended))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    found = list(db.session.scalars(query.order_by(Centre.number).offset((page - 1) * per_page).limit(per_page)))
    return CentrePage(_summaries(found), total, page, per_page)


@action("centre.viewed")
def summary(actor: Party, number: str) -> CentreSummary:
    """One centre as the board sees it (its people are directory.search's)."""
    require(policy.checks().may_see_every_centre(actor))
    return _summaries([centre_row(number)])[0]


def list_centres(actor: Party) -> list[Centre]:
    require(policy.checks().may_manage_centres(actor))
    return list(db.session.scalars(select(Centre).order_by(Centre.number)))


@dataclass(frozen=True)
class AuditPage:
    """One page of an audit trail (a centre's, or the board's search), with the accounts its rows
    name (by sub; someone since deleted is missing)."""

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


@action("centre.viewed")
def audit_page(actor: Party, number: str, *, page: int = 1, per_page: int = 50, person: str | None = None,
               who: str = "", events=None, quiet=()) -> AuditPage:
    """A page of a centre's audit trail, newest first, optionally only the rows by or about one
    person (``person``: a sub), about people whose name or email contains ``who``, or of the
    ``events`` named; without the successes of the ``quiet`` events (the steps of a sign-in, whose
    end has its own row). Asked before the centre is looked up, as ``directory.console_centre``:
    centre staff get the same refusal for a number nobody has as for another centre's."""
    require(policy.checks().may_view_centre(actor, number))
    centre = centre_row(number)
    if page < 1 or not 1 <= per_page <= 200:
        raise Invalid(_l("Pages hold 1 to %(most)d events.", most=200), "per_page")
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
