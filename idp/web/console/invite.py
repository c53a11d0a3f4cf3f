"""Inviting someone, in the steps of the exam boards' guides: their details and type of account,
then what they can use (the access profiles), then a check of the answers before the invite is
sent. The answers wait between steps in the store, for this browser's session and this centre."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from ... import policy
from ...accounts import emails
from ...admin import directory, errors, people
from ...notify.mail import DeliveryError
from ...records import Record
from .base import STATUS, bp, console, render
from .forms import AccessForm, ConfirmForm, InviteForm

#: an invite being filled in, by session and centre: an hour to finish it
DRAFTS = Record("console-invite", ttl=3600)
DETAILS = ("title", "given_name", "family_name", "job_role", "language")


def _draft_key(viewer, centre: str) -> str:
    return f"{viewer.entry.sid}:{centre}"


def _draft(viewer, centre: str) -> dict | None:
    return DRAFTS.get_json(_draft_key(viewer, centre))


def _step_url(viewer, endpoint: str, centre: str, **values) -> str:
    return viewer.centre_url(endpoint, centre, **values)


@bp.route("/users/invite", methods=["GET", "POST"], defaults={"number": None})
@bp.route("/centres/<number>/users/invite", methods=["GET", "POST"])
@console
def invite(viewer, number):
    """Step 1: who they are, and the type of account (types not allowed shown with the reason)."""
    centre, roles = directory.open_invite(viewer.actor, number)
    draft = _draft(viewer, centre.number)
    changing = request.args.get("change") == "1" and draft is not None
    form = InviteForm(data={**draft["fields"], "email": draft["email"], "role": draft["role"]}
                      if changing and request.method == "GET" else None)
    if request.method == "GET" and not changing:
        DRAFTS.delete(_draft_key(viewer, centre.number))
    if form.validate_on_submit():
        fields = {name: getattr(form, name).data or "" for name in DETAILS}
        try:
            email, fields = directory.check_invite(viewer.actor, centre.number, email=form.email.data,
                                                   role=form.role.data, fields=fields)
        except errors.AdminError as exc:
            getattr(form, exc.field if exc.field in form else "email").errors = [exc.message]
        else:
            same_type = changing and draft["role"] == form.role.data
            DRAFTS.put_json(_draft_key(viewer, centre.number), {
                "email": email, "role": form.role.data, "fields": fields,
                "profiles": draft.get("profiles") if same_type else None})
            step = "users.invite_check" if same_type and draft.get("profiles") is not None else "users.invite_access"
            return redirect(_step_url(viewer, step, centre.number), code=303)
    return render(viewer, "console/invite.html", form, centre=centre, roles=roles, changing=changing,
                  list_url=viewer.list_url(centre.number))


@bp.route("/users/invite/access", methods=["GET", "POST"], defaults={"number": None})
@bp.route("/centres/<number>/users/invite/access", methods=["GET", "POST"])
@console
def invite_access(viewer, number):
    """Step 2: the access profiles, those the inviter may not give shown with the reason."""
    centre, _roles = directory.open_invite(viewer.actor, number)
    draft = _draft(viewer, centre.number)
    if draft is None:
        return redirect(_step_url(viewer, "users.invite", centre.number), code=303)
    choices = directory.profile_choices(viewer.actor, draft["role"])
    form = AccessForm()
    error = status = None
    if form.validate_on_submit():
        wanted = list(form.profiles.data or [])
        try:
            directory.invite_profiles(viewer.actor, draft["role"], centre.number, wanted)
        except errors.AdminError as exc:
            error, status = exc.message, STATUS.get(exc.kind, 400)
        else:
            DRAFTS.put_json(_draft_key(viewer, centre.number), {**draft, "profiles": sorted(set(wanted))})
            return redirect(_step_url(viewer, "users.invite_check", centre.number), code=303)
    ticked = set(form.profiles.data or []) if request.method == "POST" else \
        set(draft["profiles"]) if draft.get("profiles") is not None else \
        {c.value for c in choices if c.checked and c.allowed}
    # what they get whatever is ticked (an Exams Officer has everything) is shown ticked
    ticked |= directory.invite_profiles_shown(viewer.actor, draft["role"], centre.number, [])
    return render(viewer, "console/invite_access.html", form, status=status, centre=centre,
                  draft=draft, choices=choices, ticked=ticked, error=error,
                  back_url=_step_url(viewer, "users.invite", centre.number, change=1))


@bp.route("/users/invite/check", methods=["GET", "POST"], defaults={"number": None})
@bp.route("/centres/<number>/users/invite/check", methods=["GET", "POST"])
@console
def invite_check(viewer, number):
    """Step 3: the answers, each with a Change link; then the invite is sent."""
    centre, _roles = directory.open_invite(viewer.actor, number)
    draft = _draft(viewer, centre.number)
    if draft is None or draft.get("profiles") is None:
        return redirect(_step_url(viewer, "users.invite", centre.number), code=303)
    form = ConfirmForm()
    error, status = None, None
    if form.validate_on_submit():
        try:
            invited = people.invite(viewer.actor, email=draft["email"], role=draft["role"], centre=centre.number,
                                    fields=draft["fields"], profiles=draft["profiles"], send=emails.send_invite)
        except errors.AdminError as exc:
            error, status = exc.message, STATUS.get(exc.kind, 400)
        except DeliveryError:
            error, status = _("The invite email could not be sent, so nobody has been invited. Check the email "
                              "address and try again."), 503
        else:
            DRAFTS.delete(_draft_key(viewer, centre.number))
            flash(_("Invite sent to %(email)s.", email=invited.account.email))
            return redirect(url_for("users.person", sub=invited.account.sub), code=303)
    try:
        granted = directory.invite_profiles_shown(viewer.actor, draft["role"], centre.number, draft["profiles"])
    except errors.AdminError as exc:
        granted, error, status = frozenset(draft["profiles"]), error or exc.message, status or 403
    return render(viewer, "console/invite_check.html", form, status=status, centre=centre, draft=draft,
                  granted=[p for p in policy.current().profiles if p in granted], error=error,
                  expires_days=policy.current().sec("invite").expires_days,
                  change_details=_step_url(viewer, "users.invite", centre.number, change=1),
                  change_access=_step_url(viewer, "users.invite_access", centre.number))
