"""The whole audit trail, as board staff and the helpdesk search it: by person (email address or
sub), centre, client service, event and time, a page at a time, or every matching row as CSV. A
centre's own trail, for its Exams Officer, is idp.admin.centres'."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, or_, select

from .. import audit, clock, inputs, policy
from ..accounts.models import Account
from ..audit import AuditEvent
from ..extensions import db
from ..i18n import lazy_gettext as _l
from ..policy.decisions import Party
from .centres import CENTRE_NUMBER, AuditPage
from .errors import Invalid, action, require

MAX_PER_PAGE = 200
#: rows read from the database at a time while a CSV is written
EXPORT_BATCH = 500
CSV_COLUMNS = ("at", "event", "outcome", "actor", "actor_email", "subject", "subject_email", "centre", "ip",
               "request_id", "details")
#: what a spreadsheet takes for the start of a formula (OWASP's CSV injection list)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Filters:
    """What to look for; everything given must match."""

    person: str = ""     # an email address or a sub: rows by or about them
    centre: str = ""     # a centre number
    client: str = ""     # a client_id: rows about the client service, or by it
    event: str = ""      # an event name ("account.unlocked"), or the start of one ending in "." ("client.")
    since: datetime | None = None
    until: datetime | None = None

    def as_dict(self) -> dict:
        found = {k: v for k, v in (("person", self.person), ("centre", self.centre), ("client", self.client),
                                   ("event", self.event)) if v}
        found.update({k: v.isoformat() for k, v in (("since", self.since), ("until", self.until)) if v})
        return found


def _text(value, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise Invalid(_l("%(name)s: enter text of at most %(limit)d characters.", name=name, limit=limit), name)
    value = inputs.flatten_pasted(value)
    if inputs.has_control_characters(value):
        raise Invalid(_l("%(name)s: enter letters, numbers, spaces and punctuation only.", name=name), name)
    return value.strip()


def _query(filters: Filters):
    person = _text(filters.person, "person", 254)
    centre = _text(filters.centre, "centre", 5)
    client = _text(filters.client, "client", 64)
    event = _text(filters.event, "event", 64)
    if filters.since and filters.until and filters.since > filters.until:
        raise Invalid(_l("The start of the time range must be before its end."), "since")
    query = select(AuditEvent)
    if person:
        subs = {person}
        if "@" in person:  # an address: the rows of the account that has it now
            subs = set(db.session.scalars(select(Account.sub).where(Account.email_key == Account.key_for(person))))
        query = query.where(or_(AuditEvent.actor.in_(subs), AuditEvent.subject.in_(subs))) if subs \
            else query.where(AuditEvent.id.is_(None))
    if centre:
        if not CENTRE_NUMBER.match(centre):
            raise Invalid(_l("A centre number is 5 digits."), "centre")
        query = query.where(AuditEvent.centre == centre)
    if client:
        query = query.where(or_(AuditEvent.subject == client, AuditEvent.actor == f"client:{client}"))
    if event:
        query = query.where(AuditEvent.event.startswith(event, autoescape=True) if event.endswith(".")
                            else AuditEvent.event == event)
    if filters.since:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.at < filters.until)
    return query


def _people(events) -> dict[str, Account]:
    subs = {s for e in events for s in (e.actor, e.subject) if s}
    if not subs:
        return {}
    return {a.sub: a for a in db.session.scalars(select(Account).where(Account.sub.in_(list(subs))))}


@action("audit.searched")
def search(actor: Party, filters: Filters, *, page: int = 1, per_page: int = 50) -> AuditPage:
    """One page of the matching rows, newest first."""
    require(policy.checks().may_read_audit(actor))
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise Invalid(_l("Pages hold 1 to %(most)d events.", most=MAX_PER_PAGE), "per_page")
    query = _query(filters)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    items = list(db.session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                                    .offset((page - 1) * per_page).limit(per_page)))
    return AuditPage(items, total, page, per_page, _people(items))


def event_names() -> list[str]:
    """Every event name in the trail, for the search form's list."""
    return list(db.session.scalars(select(AuditEvent.event).distinct().order_by(AuditEvent.event)))


def _cell(value) -> str:
    """A value as a spreadsheet shows it, never runs it: one that starts like a formula gets a
    leading apostrophe (and the CSV writer quotes every cell)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@action("audit.exported")
def export(actor: Party, filters: Filters) -> Iterator[str]:
    """Every matching row as CSV, newest first, written a batch at a time (the caller streams it):
    the trail as it was when the export was asked for (rows added while it is written, its own
    audit row among them, are not in it). The export itself is audited before the first row."""
    require(policy.checks().may_read_audit(actor))
    asked_at = clock.utcnow()
    query = _query(replace(filters, until=min(filters.until, asked_at) if filters.until else asked_at))
    audit.record("audit.exported", actor=actor.sub, filters=filters.as_dict())
    db.session.commit()
    return _rows(query)


def _rows(query) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    last = None  # keyset pagination (newest first): no row is skipped or repeated as rows are added
    while True:
        batch_query = query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(EXPORT_BATCH)
        if last is not None:
            batch_query = batch_query.where(or_(AuditEvent.at < last[0],
                                                (AuditEvent.at == last[0]) & (AuditEvent.id < last[1])))
        batch = list(db.session.scalars(batch_query))
        if not batch:
            break
        people = _people(batch)
        for e in batch:
            writer.writerow([_cell(v) for v in (
                clock.iso(e.at), e.event, e.outcome, e.actor, getattr(people.get(e.actor), "email", ""),
                e.subject, getattr(people.get(e.subject), "email", ""), e.centre, e.ip, e.request_id,
                json.dumps(e.details or {}, sort_keys=True, ensure_ascii=False))])
        yield flush()
        last = (batch[-1].at, batch[-1].id)
