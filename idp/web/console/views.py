"""The console's reading pages: a centre's people (search, filters, pages), the centre chooser for
board staff, a person's page, and the centre's activity. The invite steps are in ``invite``, the
changes to a person in ``actions``; who may see and do what is decided in idp.admin."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import redirect, request, url_for
from flask_babel import gettext as _

from ...admin import centres as admin_centres
from ...admin import directory, errors
from ..pages import page_number, pagination, role_name
from . import actions, activity, base, invite  # noqa: F401 (the invite and action pages join bp)
from .base import HELPDESK_ACTIONS, PER_PAGE, bp, console, render
from .forms import ActivityForm, CentreSearchForm, ConfirmForm, SearchForm

#: on a person's page, their latest events (the activity page has the rest)
PERSON_EVENTS = 10


@bp.get("/users", defaults={"number": None})
@bp.get("/centres/<number>/users")
@console
def index(viewer, number):
    if number is None and viewer.actor.centre is None:
        return choose_centre(viewer)
    centre = directory.console_centre(viewer.actor, number)
    form = SearchForm(request.args)
    form.role.choices = [("", _("Any type"))] + [(r, role_name(r)) for r in directory.centre_roles()]
    form.status.choices = [("", _("Any status"))] + [(s, str(base.STATUS_NAMES[s])) for s in directory.STATUSES]
    filters = {"q": form.q.data or "", "role": form.role.data or None, "status": form.status.data or None}
    error_status = None
    if not form.validate():
        filters, error_status = {}, 400
    try:
        found = directory.search(viewer.actor, centre=centre.number, page=page_number(), per_page=PER_PAGE,
                                 by_name=True, **filters)
    except errors.Invalid as exc:
        getattr(form, exc.field if exc.field in ("q", "role", "status") else "q").errors = [exc.message]
        filters, error_status = {}, 400
        found = directory.search(viewer.actor, centre=centre.number, per_page=PER_PAGE, by_name=True)
    if not found.items and found.page > found.pages:
        found = directory.search(viewer.actor, centre=centre.number, page=found.pages, per_page=PER_PAGE,
                                 by_name=True, **filters)
    query = {k: v for k, v in filters.items() if v}

    def link(number_of_page):
        return viewer.list_url(centre.number) + "?" + urlencode({**query, "page": number_of_page})

    return render(viewer, "console/people.html", form, status=error_status or 200, centre=centre, found=found,
                  filtered=bool(query), pages=pagination(found.page, found.pages, link),
                  invite_url=viewer.centre_url("users.invite", centre.number),
                  activity_url=viewer.centre_url("users.activity", centre.number))


def choose_centre(viewer):
    """Board staff: find a centre by number or name, then see its people."""
    form = CentreSearchForm(request.args)
    if not form.validate():
        return render(viewer, "console/centres.html", form, status=400, centres=[], searched=False)
    q = (form.q.data or "").strip()
    centres = admin_centres.find_centres(viewer.actor, q)
    exact = [c for c in centres if c.number == q]
    if exact:
        return redirect(url_for("users.index", number=exact[0].number), code=303)
    return render(viewer, "console/centres.html", form, status=200, centres=centres, searched=bool(q))


@bp.get("/users/<sub>")
@console
def person(viewer, sub):
    account = directory.person(viewer.actor, sub)
    status = directory.status_of(account)
    may = directory.person_actions(viewer.actor, account)
    trail = None if account.centre_number is None else admin_centres.audit_page(
        viewer.actor, account.centre_number, person=account.sub, per_page=PERSON_EVENTS, quiet=activity.QUIET)
    return render(viewer, "console/person.html", ConfirmForm(), status=200, account=account, state=status,
                  account_profiles=directory.held_profiles(account), actions=may, trail=trail,
                  describe=activity.describe,
                  helpdesk={action: viewer.helpdesk_url(action, sub) for action in HELPDESK_ACTIONS},
                  list_url=viewer.list_url(account.centre_number),
                  activity_url=viewer.centre_url("users.activity", account.centre_number, person=account.sub))


@bp.get("/users/activity", defaults={"number": None}, endpoint="activity")
@bp.get("/centres/<number>/users/activity", endpoint="activity")
@console
def activity_page(viewer, number):
    centre = directory.console_centre(viewer.actor, number)
    form = ActivityForm(request.args)
    form.kind.choices = [("", _("Anything"))] + [(k, str(label)) for k, (label, _events) in activity.KINDS.items()]
    status = 200
    if not form.validate() or (form.kind.data and form.kind.data not in activity.KINDS):
        if form.kind.data and form.kind.data not in activity.KINDS:
            form.kind.errors = [_("Choose what happened from the list")]
        form.who.data = form.kind.data = form.person.data = ""
        status = 400
    filters = {"who": form.who.data or "", "person": form.person.data or None,
               "events": activity.KINDS[form.kind.data][1] if form.kind.data else None}
    trail = admin_centres.audit_page(viewer.actor, centre.number, page=page_number(), per_page=PER_PAGE,
                                     quiet=activity.QUIET, **filters)
    query = {k: v for k, v in {"who": form.who.data, "kind": form.kind.data, "person": form.person.data}.items()
             if v}

    def link(number_of_page):
        return viewer.centre_url("users.activity", centre.number) + "?" + urlencode({**query, "page": number_of_page})

    about = _about(viewer, form.person.data) if form.person.data else None
    return render(viewer, "console/activity.html", form, status=status, centre=centre, trail=trail,
                  describe=activity.describe, about=about, filtered=bool(query),
                  pages=pagination(trail.page, trail.pages, link),
                  list_url=viewer.list_url(centre.number),
                  everyone_url=viewer.centre_url("users.activity", centre.number))


def _about(viewer, sub: str):
    """The person the activity is filtered on, if they still have an account."""
    try:
        return directory.person(viewer.actor, sub)
    except errors.NotFound:
        return None
