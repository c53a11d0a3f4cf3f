"""Centres as board staff run them: create, rename, suspend and reinstate, list; and a centre's
audit trail for the people allowed to read it."""

from __future__ import annotations

import re

from sqlalchemy import select

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


def centre_audit(actor: Party, number: str, *, page: int = 1, per_page: int = 50) -> list:
    """A centre's audit trail, newest first: its EO/admins (with users.manage) and board staff."""
    centre_row(number)
    require(policy.checks().may_view_centre(actor, number))
    query = (select(AuditEvent).where(AuditEvent.centre == number).order_by(AuditEvent.at.desc())
             .offset((page - 1) * per_page).limit(per_page))
    return list(db.session.scalars(query))
