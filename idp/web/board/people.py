"""The helpdesk (find anyone, see their status, and unlock, reset the second factor, resend the
invite, disable or enable, or change the email address, each with a reason kept in the audit
trail) and the board's own staff (invite, remove)."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ... import policy
from ...accounts.emails import send_invite
from ...admin import board, directory, errors, people
from ...notify.mail import DeliveryError
from ..pages import page_number, pagination
from .base import PER_PAGE, board_page, bp, form_error, render
from .centres import NOT_EMAILED
from .forms import ConfirmForm, EmailChangeForm, PeopleSearchForm, ReasonForm, StaffForm


@bp.get("/people")
@board_page("people")
def people_search(viewer):
    form = PeopleSearchForm(request.args)
    q, status = (form.q.data or "").strip(), 200
    if not form.validate():
        q, status = "", 400
    found = directory.search(viewer.actor, centre=None, q=q, page=page_number(), per_page=PER_PAGE,
                             by_name=True) if q else None

    def link(number):
        return url_for("board.people_search") + "?" + urlencode({"q": q, "page": number})

    return render(viewer, "board/people.html", form, status=status, found=found,
                  pages=pagination(found.page, found.pages, link) if found else None)


@bp.get("/people/<sub>")
@board_page("people")
def person(viewer, sub):
    view = directory.support_view(viewer.actor, sub)
    return render(viewer, "board/person.html", ConfirmForm(), view=view, account=view.account,
                  console_url=_console_url(view.account))


def _console_url(account) -> str | None:
    """The person's page in the centre console, when that console is part of this provider."""
    return url_for("users.person", sub=account.sub) if account.centre_number else None


# ------------------------------------------------------------------ the helpdesk's actions
ACTIONS = {
    # name: (service call, what the page is called, what the button says, what is flashed after)
    "unlock": (lambda actor, sub, form: people.unlock(actor, sub, reason=form.typed_reason()),
               _l("Unlock the account"), _l("Unlock account"), _l("The account has been unlocked.")),
    "reset_mfa": (lambda actor, sub, form: people.reset_mfa(actor, sub, reason=form.typed_reason()),
                  _l("Reset the second factor"), _l("Reset second factor"),
                  _l("Their second factors have been removed. They will set up a new one when they next sign in, "
                     "and we have emailed them to say so.")),
    "resend": (lambda actor, sub, form: people.resend_invite(actor, sub, send=send_invite, reason=form.typed_reason()),
               _l("Resend the invite"), _l("Resend invite"),
               _l("A new invite has been emailed. The temporary password in the old one no longer works.")),
    "disable": (lambda actor, sub, form: people.disable(actor, sub, reason=form.typed_reason()),
                _l("Disable the account"), _l("Disable account"),
                _l("The account has been disabled. They have been signed out everywhere.")),
    "enable": (lambda actor, sub, form: people.enable(actor, sub, reason=form.typed_reason()),
               _l("Enable the account"), _l("Enable account"), _l("The account has been enabled. They can sign in again.")),
}


def _action_page(viewer, sub: str, name: str):
    account = board.open_person_action(viewer.actor, sub, name)
    run, title, button, done = ACTIONS[name]
    form, error = ReasonForm(), None
    if form.validate_on_submit():
        try:
            run(viewer.actor, sub, form)
        except errors.Invalid as exc:
            error = form_error(form, exc)
        except DeliveryError:
            error = str(NOT_EMAILED)
        else:
            flash(str(done))
            return redirect(url_for("board.person", sub=sub), code=303)
    return render(viewer, "board/person_action.html", form, error=error, account=account, action=name,
                  title=str(title), button_text=str(button),
                  needs_reason=policy.checks().needs_reason(viewer.actor))


@bp.route("/people/<sub>/unlock", methods=["GET", "POST"])
@board_page("people")
def unlock(viewer, sub):
    return _action_page(viewer, sub, "unlock")


@bp.route("/people/<sub>/reset-mfa", methods=["GET", "POST"])
@board_page("people")
def reset_mfa(viewer, sub):
    return _action_page(viewer, sub, "reset_mfa")


@bp.route("/people/<sub>/resend", methods=["GET", "POST"])
@board_page("people")
def resend(viewer, sub):
    return _action_page(viewer, sub, "resend")


@bp.route("/people/<sub>/disable", methods=["GET", "POST"])
@board_page("people")
def disable(viewer, sub):
    return _action_page(viewer, sub, "disable")


@bp.route("/people/<sub>/enable", methods=["GET", "POST"])
@board_page("people")
def enable(viewer, sub):
    return _action_page(viewer, sub, "enable")


@bp.route("/people/<sub>/email", methods=["GET", "POST"])
@board_page("people")
def change_email(viewer, sub):
    account = board.open_person_action(viewer.actor, sub, "email")
    form, error = EmailChangeForm(), None
    if request.method == "GET":
        form.version.data = str(account.version)
    if form.validate_on_submit():
        try:
            people.change_email(viewer.actor, sub, form.email.data, expected_version=int(form.version.data),
                                reason=form.typed_reason())
        except DeliveryError:  # an invite not yet accepted: its new invite could not be sent
            error = str(NOT_EMAILED)
        except (errors.Invalid, errors.Conflict) as exc:
            error = form_error(form, exc)
            if exc.field == "version":  # changed meanwhile: show what it is now, and take it from there
                account = people.account_by_sub(sub)
                form.version.data = str(account.version)
        else:
            if account.status == "invited":
                flash(_("Their email address has been changed and a new invite has been sent to it; the "
                        "temporary password sent before no longer works."))
            else:
                flash(_("Their email address has been changed. Both addresses have been told, and they have been "
                        "signed out everywhere."))
            return redirect(url_for("board.person", sub=sub), code=303)
    if form.version.errors:  # a page from before: the version it showed is taken as now
        form.version.data = str(account.version)
    return render(viewer, "board/person_email.html", form, error=error, account=account,
                  needs_reason=policy.checks().needs_reason(viewer.actor))


# ------------------------------------------------------------------ the board's own staff
@bp.get("/staff")
@board_page("staff")
def staff(viewer):
    found = directory.board_staff(viewer.actor)
    removable = {a.sub for a in found.items if directory.support_actions(viewer.actor, a)["remove"]}
    return render(viewer, "board/staff.html", found=found, removable=removable, status=200,
                  may_invite=bool(board.may_open(viewer.actor, "invite_staff")))


@bp.route("/staff/invite", methods=["GET", "POST"])
@board_page("invite_staff")
def invite_staff(viewer):
    choices = directory.staff_role_choices(viewer.actor)
    people.require_recent_second_factor(viewer.actor)  # asked before the form is filled in, not after
    form, error = StaffForm(), None
    if form.validate_on_submit():
        try:
            invited = people.invite(viewer.actor, email=form.email.data, role=form.role.data, centre=None,
                                    fields={"given_name": form.given_name.data, "family_name": form.family_name.data},
                                    send=send_invite)
        except errors.AdminError as exc:
            error = form_error(form, exc)
        except DeliveryError:
            error = str(NOT_EMAILED)
        else:
            flash(_("The invite has been sent to %(email)s.", email=invited.account.email))
            return redirect(url_for("board.staff"), code=303)
    return render(viewer, "board/staff_invite.html", form, error=error, choices=choices)


@bp.route("/staff/<sub>/remove", methods=["GET", "POST"])
@board_page("staff")
def remove_staff(viewer, sub):
    account = board.open_person_action(viewer.actor, sub, "remove")
    form = ConfirmForm()
    if form.validate_on_submit():
        people.delete(viewer.actor, sub)
        flash(_("%(email)s can no longer sign in: their account has been removed.", email=account.email))
        return redirect(url_for("board.staff"), code=303)
    return render(viewer, "board/staff_remove.html", form, account=account)
