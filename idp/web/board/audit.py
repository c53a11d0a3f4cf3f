"""The whole audit trail: search by person, centre, client service, event and dates, a page at a
time, and the same rows as a CSV download."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from urllib.parse import urlencode

from flask import Response, request, stream_with_context, url_for
from flask_babel import gettext as _
from wtforms.fields.choices import SelectChoice

from ...admin import audit as admin_audit
from ...admin import errors
from ..pages import page_number, pagination
from .base import LONDON, board_page, bp, form_error, render
from .forms import AuditForm

PER_PAGE = 50
FIELDS = ("person", "centre", "client", "event", "since", "until")


def _day(text: str | None, *, end: bool) -> datetime | None:
    """A date typed on the form as a moment: the start of that day in London (``end``: of the next
    day, so the day itself is included)."""
    if not text or not text.strip():
        return None
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise errors.Invalid(_("Enter a real date, like 2026-03-31."), "until" if end else "since") from None
    return datetime.combine(day + timedelta(days=1) if end else day, time(), LONDON)


def _filters(form: AuditForm) -> admin_audit.Filters:
    return admin_audit.Filters(person=(form.person.data or "").strip(), centre=(form.centre.data or "").strip(),
                               client=(form.client.data or "").strip(), event=form.event.data or "",
                               since=_day(form.since.data, end=False), until=_day(form.until.data, end=True))


def _form():
    form = AuditForm(request.args)
    form.event.choices = [SelectChoice("", _("Any event"))] + [SelectChoice(e, e) for e in admin_audit.event_names()]
    return form


@bp.get("/audit")
@board_page("audit")
def audit(viewer):
    form, error, status = _form(), None, 200
    filters = admin_audit.Filters()
    if form.validate():
        try:
            filters = _filters(form)
            found = admin_audit.search(viewer.actor, filters, page=page_number(), per_page=PER_PAGE)
        except errors.Invalid as exc:
            error, status, filters = form_error(form, exc), 400, admin_audit.Filters()
            found = admin_audit.search(viewer.actor, filters, per_page=PER_PAGE)
    else:
        status = 400
        found = admin_audit.search(viewer.actor, filters, per_page=PER_PAGE)
    query = {name: (getattr(form, name).data or "").strip() for name in FIELDS} if status == 200 else {}
    query = {k: v for k, v in query.items() if v}

    def link(number):
        return url_for("board.audit") + "?" + urlencode({**query, "page": number})

    return render(viewer, "board/audit.html", form, error=error, status=status, found=found,
                  filtered=bool(query), pages=pagination(found.page, found.pages, link),
                  csv_url=url_for("board.audit_csv") + ("?" + urlencode(query) if query else ""))


@bp.get("/audit.csv")
@board_page("audit")
def audit_csv(viewer):
    form = _form()
    if not form.validate():
        raise errors.Invalid(_("The search could not be read: go back to the audit trail and search again."))
    rows = admin_audit.export(viewer.actor, _filters(form))
    stamp = datetime.now(LONDON).strftime("%Y%m%d-%H%M")
    response = Response(stream_with_context(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response
