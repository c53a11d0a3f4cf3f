"""Centres as board staff run them (list and search, create, rename, suspend and reinstate, a
centre's page with its people) and their Exams Officers (invite, replace, resend the invite)."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ... import policy
from ...accounts.emails import send_invite
from ...admin import centres as admin_centres
from ...admin import directory, errors, people
from ...notify.mail import DeliveryError
from ..pages import page_number, pagination
from .base import PER_PAGE, board_page, bp, form_error, render
from .forms import CentreForm, CentreSearchForm, ConfirmForm, PersonForm, RenameForm, ReplaceForm

NOT_EMAILED = _l("The invite could not be emailed, so nothing was changed. Try again in a few minutes.")


@bp.get("/centres")
@board_page("centres")
def centres(viewer):
    form = CentreSearchForm(request.args)
    status = 200
    if not form.validate():
        form.q.data, form.suspended.data, status = "", "", 400
    suspended = {"yes": True, "no": False}.get(form.suspended.data or "")
    found = admin_centres.overview(viewer.actor, q=form.q.data or "", suspended=suspended, page=page_number(),
                                   per_page=PER_PAGE)
    query = {k: v for k, v in (("q", form.q.data), ("suspended", form.suspended.data)) if v}

    def link(number):
        return url_for("board.centres") + "?" + urlencode({**query, "page": number})

    return render(viewer, "board/centres.html", form, status=status, found=found, filtered=bool(query),
                  pages=pagination(found.page, found.pages, link),
                  may_manage=bool(policy.checks().may_manage_centres(viewer.actor)))


@bp.route("/centres/new", methods=["GET", "POST"])
@board_page("manage_centres")
def new_centre(viewer):
    form, error = CentreForm(), None
    if form.validate_on_submit():
        try:
            centre = admin_centres.create_centre(viewer.actor, form.number.data.strip(), form.name.data)
        except (errors.Invalid, errors.Conflict) as exc:
            error = form_error(form, exc)
        else:
            flash(_("Centre %(number)s, %(name)s, has been created. Now invite its Exams Officer.",
                    number=centre.number, name=centre.name))
            return redirect(url_for("board.new_eo", number=centre.number), code=303)
    return render(viewer, "board/centre_new.html", form, error=error)


@bp.get("/centres/<number>")
@board_page("centres")
def centre(viewer, number):
    summary = admin_centres.summary(viewer.actor, number)
    found = directory.search(viewer.actor, centre=number, page=page_number(), per_page=PER_PAGE, by_name=True)
    checks = policy.checks()
    return render(viewer, "board/centre.html", ConfirmForm(), summary=summary, found=found,
                  pages=pagination(found.page, found.pages,
                                   lambda n: url_for("board.centre", number=number, page=n)),
                  may_manage=bool(checks.may_manage_centres(viewer.actor)),
                  may_replace=bool(checks.may_replace(viewer.actor, policy.current().centre_head_role, number)),
                  may_invite_head=bool(checks.may_invite(viewer.actor, policy.current().centre_head_role, number)))


@bp.route("/centres/<number>/rename", methods=["GET", "POST"])
@board_page("manage_centres")
def rename_centre(viewer, number):
    summary = admin_centres.summary(viewer.actor, number)
    form, error = RenameForm(data={"name": summary.centre.name} if request.method == "GET" else None), None
    if form.validate_on_submit():
        try:
            admin_centres.rename_centre(viewer.actor, number, form.name.data)
        except errors.Invalid as exc:
            error = form_error(form, exc)
        else:
            flash(_("The centre's name has been changed."))
            return redirect(url_for("board.centre", number=number), code=303)
    return render(viewer, "board/centre_rename.html", form, error=error, summary=summary)


@bp.route("/centres/<number>/suspension", methods=["GET", "POST"])
@board_page("manage_centres")
def suspension(viewer, number):
    """Suspend an active centre, or reinstate a suspended one, after a confirmation page."""
    summary = admin_centres.summary(viewer.actor, number)
    form = ConfirmForm()
    if form.validate_on_submit():
        suspend = not summary.centre.suspended
        admin_centres.set_centre_suspended(viewer.actor, number, suspend)
        flash(_("Centre %(number)s has been suspended. Its people cannot sign in.", number=number) if suspend
              else _("Centre %(number)s has been reinstated. Its people can sign in again.", number=number))
        return redirect(url_for("board.centre", number=number), code=303)
    return render(viewer, "board/centre_suspension.html", form, summary=summary)


# ------------------------------------------------------------------ Exams Officers
@bp.route("/centres/<number>/exams-officer/new", methods=["GET", "POST"])
@board_page("manage_centres")
def new_eo(viewer, number):
    summary = admin_centres.summary(viewer.actor, number)
    people.require_recent_second_factor(viewer.actor)  # asked before the form is filled in, not after
    form, error = PersonForm(), None
    if form.validate_on_submit():
        try:
            invited = people.invite(viewer.actor, email=form.email.data, role=policy.current().centre_head_role,
                                    centre=number, fields=form.fields(), send=send_invite)
        except errors.AdminError as exc:
            error = form_error(form, exc)
        except DeliveryError:
            error = NOT_EMAILED
        else:
            flash(_("The invite has been sent to %(email)s.", email=invited.account.email))
            return redirect(url_for("board.centre", number=number), code=303)
    return render(viewer, "board/eo_new.html", form, error=error, summary=summary)


@bp.route("/centres/<number>/exams-officer/replace", methods=["GET", "POST"])
@board_page("manage_centres")
def replace_eo(viewer, number):
    summary = admin_centres.summary(viewer.actor, number)
    people.require_recent_second_factor(viewer.actor)  # asked before the form is filled in, not after
    choices = directory.keep_as_choices(viewer.actor, number)
    form, error = ReplaceForm(), None
    if form.validate_on_submit():
        try:
            invited = people.replace(viewer.actor, role=policy.current().centre_head_role, centre=number,
                                     email=form.email.data, fields=form.fields(), send=send_invite,
                                     keep_as=form.keep_as.data or None)
        except errors.AdminError as exc:
            error = form_error(form, exc)
            choices = directory.keep_as_choices(viewer.actor, number)  # the room at the centre now
        except DeliveryError:
            error = NOT_EMAILED
        else:
            flash(_("%(email)s is now the Exams Officer, invited by email.", email=invited.account.email))
            return redirect(url_for("board.centre", number=number), code=303)
    return render(viewer, "board/eo_replace.html", form, error=error, summary=summary, choices=choices)
