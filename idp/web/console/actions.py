"""What can be done to one person from their page: manage access, change the account type or the
email address, resend the invite, unlock, reset the second factor, remove. Each page first asks
idp.admin whether the person looking may do it (a refusal is a page with the policy's reason, and
is audited there as the service's own refusal is);
each change carries the version the page showed, so a change someone made meanwhile is reported,
not overwritten; each that cannot be undone has a confirmation page first."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from ...accounts import emails
from ...admin import directory, errors, people
from ...notify.mail import DeliveryError
from ..pages import role_name
from .base import STATUS, bp, console, render, when
from .forms import ConfirmForm, EmailForm, ManageAccessForm, RoleForm


def _person_url(account) -> str:
    return url_for("users.person", sub=account.sub)


def _version(form) -> int:
    return int(form.version.data)


def _name(account) -> str:
    return account.name or account.email


# ------------------------------------------------------------------ manage access
@bp.route("/users/<sub>/access", methods=["GET", "POST"])
@console
def access(viewer, sub):
    account = directory.open_person_action(viewer.actor, sub, "access")
    form = ManageAccessForm()
    error = status = None
    if request.method == "POST":
        if form.validate_on_submit():
            # what they hold and the actor may not change is shown ticked but disabled (so not sent)
            kept = {c.value for c in _choices(viewer, account) if c.checked and not c.allowed}
            try:
                people.set_profiles(viewer.actor, sub, sorted(set(form.profiles.data or []) | kept),
                                    expected_version=_version(form))
            except errors.AdminError as exc:
                error, status = exc.message, STATUS.get(exc.kind, 400)
            else:
                flash(_("%(name)s's access has been updated.", name=_name(account)))
                return redirect(_person_url(account), code=303)
        else:
            status = 409 if form.version.errors else 400
        account = directory.person(viewer.actor, sub)
    choices = _choices(viewer, account)
    # after a conflict the page shows what is saved now; after any other refusal, what was ticked
    ticked = {c.value for c in choices if c.checked} if request.method == "GET" or status == 409 else \
        set(form.profiles.data or []) | {c.value for c in choices if c.checked and not c.allowed}
    form.version.data = str(account.version) if request.method == "GET" or status == 409 else form.version.data
    return render(viewer, "console/access.html", form, status=status, account=account, choices=choices,
                  ticked=ticked, error=error, conflict=status == 409)


def _choices(viewer, account):
    return directory.profile_choices(viewer.actor, account.role, target=people.party_of(account))


# ------------------------------------------------------------------ account type
@bp.route("/users/<sub>/type", methods=["GET", "POST"])
@console
def change_type(viewer, sub):
    account = directory.open_person_action(viewer.actor, sub, "role")
    form = RoleForm()
    error = status = None
    if request.method == "GET":
        form.role.data, form.version.data = account.role, str(account.version)
    elif form.validate_on_submit():
        lost = directory.profiles_lost(account, form.role.data)
        if form.role.data not in {c.value for c in directory.type_choices(viewer.actor, account)}:
            form.role.errors = [_("Choose the type of account")]
            status = 400
        elif form.role.data == account.role:
            form.role.errors = [_("They are already this type of account. Choose another type, or cancel.")]
        elif lost and form.confirmed.data != "1":
            return render(viewer, "console/type_confirm.html", form, status=200, account=account, lost=lost,
                          new_role=form.role.data)
        else:
            try:
                people.change_role(viewer.actor, sub, form.role.data, expected_version=_version(form))
            except errors.AdminError as exc:
                if exc.field == "role":
                    form.role.errors = [exc.message]
                else:
                    error = exc.message
                status = STATUS.get(exc.kind, 400)
            else:
                flash(_("%(name)s is now %(type)s.", name=_name(account), type=role_name(form.role.data)))
                return redirect(_person_url(account), code=303)
    else:
        status = 409 if form.version.errors else 400
    account = directory.person(viewer.actor, sub)
    if status == 409:
        form.role.data, form.version.data = account.role, str(account.version)
    return render(viewer, "console/type.html", form, status=status, account=account, error=error,
                  choices=directory.type_choices(viewer.actor, account), conflict=status == 409)


# ------------------------------------------------------------------ email address
@bp.route("/users/<sub>/email", methods=["GET", "POST"])
@console
def change_email(viewer, sub):
    account = directory.open_person_action(viewer.actor, sub, "email")
    if helpdesk := viewer.helpdesk_url("email", sub):
        return redirect(helpdesk, code=303)
    form = EmailForm()
    error = status = None
    if request.method == "GET":
        form.version.data = str(account.version)
    elif form.validate_on_submit():
        old, invited = account.email, account.status == "invited"
        try:
            people.change_email(viewer.actor, sub, form.email.data, expected_version=_version(form))
        except DeliveryError:  # an invite not yet accepted: its new invite could not be sent
            return render(viewer, "console/refused.html", status=503, kind="unsent", message=_(
                "The new invite could not be sent, so nothing has changed: the address is still %(email)s. "
                "Try again later.", email=old))
        except errors.AdminError as exc:
            if exc.field == "email":
                form.email.errors = [exc.message]
            else:
                error = exc.message
            status = STATUS.get(exc.kind, 400)
        else:
            if invited:
                flash(_("%(old)s is now %(new)s. A new invite has been sent to the new address; the temporary "
                        "password sent before no longer works.", old=old, new=form.email.data.strip()))
            else:
                flash(_("%(old)s is now %(new)s. Both addresses have been emailed, and %(name)s has been signed "
                        "out everywhere: they sign in with the new address.", old=old, new=form.email.data.strip(),
                        name=_name(account)))
            return redirect(_person_url(account), code=303)
    else:
        status = 409 if form.version.errors else 400
    account = directory.person(viewer.actor, sub)
    if status == 409:
        form.version.data = str(account.version)
    return render(viewer, "console/email.html", form, status=status, account=account, error=error)


# ------------------------------------------------------------------ invites and locks
@bp.post("/users/<sub>/resend")
@console
def resend(viewer, sub):
    account = directory.open_person_action(viewer.actor, sub, "resend")
    if helpdesk := viewer.helpdesk_url("resend", sub):
        return redirect(helpdesk, code=303)
    if not ConfirmForm().validate_on_submit():
        raise errors.Invalid(_("The form could not be read. Go back and try again."))
    try:
        invited = people.resend_invite(viewer.actor, sub, send=emails.send_invite)
    except DeliveryError:
        return render(viewer, "console/refused.html", status=503, kind="unsent", message=_(
            "The invite email could not be sent, so the old invite still stands. Try again later."))
    flash(_("A new invite has been sent to %(email)s. It expires on %(date)s.", email=invited.account.email,
            date=when(invited.account.invite_expires_at)))
    return redirect(_person_url(account), code=303)


@bp.post("/users/<sub>/unlock")
@console
def unlock(viewer, sub):
    account = directory.open_person_action(viewer.actor, sub, "unlock")
    if helpdesk := viewer.helpdesk_url("unlock", sub):
        return redirect(helpdesk, code=303)
    if not ConfirmForm().validate_on_submit():
        raise errors.Invalid(_("The form could not be read. Go back and try again."))
    people.unlock(viewer.actor, sub)
    flash(_("%(name)s's account is unlocked: they can sign in now.", name=_name(account)))
    return redirect(_person_url(account), code=303)


# ------------------------------------------------------------------ what cannot be undone
@bp.route("/users/<sub>/reset-mfa", methods=["GET", "POST"])
@console
def reset_mfa(viewer, sub):
    account = directory.open_person_action(viewer.actor, sub, "reset_mfa")
    if helpdesk := viewer.helpdesk_url("reset_mfa", sub):
        return redirect(helpdesk, code=303)
    form = ConfirmForm()
    if form.validate_on_submit():
        people.reset_mfa(viewer.actor, sub)
        flash(_("%(name)s's second factor has been reset. They have been signed out everywhere and will set "
                "up a new one when they next sign in.", name=_name(account)))
        return redirect(_person_url(account), code=303)
    return render(viewer, "console/reset_mfa.html", form, account=account)


@bp.route("/users/<sub>/disable", methods=["GET", "POST"], defaults={"action": "disable"}, endpoint="disable")
@bp.route("/users/<sub>/enable", methods=["GET", "POST"], defaults={"action": "enable"}, endpoint="enable")
@console
def disable_or_enable(viewer, sub, action):
    account = directory.open_person_action(viewer.actor, sub, action)
    if helpdesk := viewer.helpdesk_url(action, sub):
        return redirect(helpdesk, code=303)
    form = ConfirmForm()
    if form.validate_on_submit():
        if action == "disable":
            people.disable(viewer.actor, sub)
            flash(_("%(name)s's account is disabled: they have been signed out everywhere and cannot sign in "
                    "until it is enabled again.", name=_name(account)))
        else:
            people.enable(viewer.actor, sub)
            flash(_("%(name)s's account is enabled: they can sign in again.", name=_name(account)))
        return redirect(_person_url(account), code=303)
    return render(viewer, "console/disable.html", form, account=account, action=action)


@bp.route("/users/<sub>/remove", methods=["GET", "POST"])
@console
def remove(viewer, sub):
    account = directory.open_person_action(viewer.actor, sub, "remove")
    form = ConfirmForm()
    if form.validate_on_submit():
        name, number = _name(account), account.centre_number
        people.delete(viewer.actor, sub)
        flash(_("%(name)s's account has been removed.", name=name))
        return redirect(viewer.list_url(number), code=303)
    return render(viewer, "console/remove.html", form, account=account)
