"""The sign-in journey's pages (email, password, first password), forgotten password, My account
(details, email address, where you are signed in), sign out. Views parse, call one service, render:
the journey's rules are in idp.journey, the account's in idp.accounts.services and idp.admin.people."""

from __future__ import annotations

from dataclasses import dataclass

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from ... import cookies, i18n, inputs, journey, policy, secrets
from ...accounts import remembered, services, sessions
from ...admin import errors, people
from ...extensions import client_ip, pepper, rate_limited
from ...mfa.services import MfaError
from ..pages import in_page_language, journey_form_targets, limit, local_time, page, signed_in
from . import devices
from .forms import (
    ChangePasswordForm,
    ConfirmForm,
    EmailCodeForm,
    EmailStepForm,
    EndSessionForm,
    ForgetDeviceForm,
    ForgotForm,
    NewEmailForm,
    NewPasswordForm,
    PasskeyForm,
    PasswordStepForm,
    ProfileForm,
    ResetForm,
)

bp = Blueprint("signin", __name__)
bp.after_request(journey_form_targets)


def _email_limit_key(email: str) -> str:
    # a keyed hash: the rate limiter's store never lists which addresses were tried
    return "email:" + secrets.email_digest(email, pepper())


def _pending_email_key() -> str:
    pending = journey.current()
    return _email_limit_key(pending.email) if pending else "ip:" + (request.remote_addr or "")


def _form_email_key() -> str:
    return _email_limit_key(request.form.get("email", "")[:254])


def _continue(pending):
    return journey.continue_journey(pending, ip=client_ip(), user_agent=request.user_agent.string)


@bp.app_errorhandler(journey.JourneyError)
def start_again(exc):
    """A step of a sign-in that ended meanwhile (another copy of this browser's cookie finished it,
    or ended it on a lock) and no page of its own to show the refusal: this browser starts again,
    told why."""
    session.pop(journey.SESSION_KEY, None)
    flash(exc.message)
    return redirect(url_for("signin.signin"), code=303)


# ------------------------------------------------------------------ sign in
@bp.route("/signin", methods=["GET", "POST"])
@rate_limited(limit("sign_in_per_ip"), methods=["POST"])
def signin():
    form = EmailStepForm()
    if request.method == "GET":
        form.authreq.data = request.args.get("authreq", "")[:64]
        form.email.data = request.args.get("login_hint", "")[:254]
    if form.validate_on_submit():
        journey.begin(form.email.data, form.authreq.data)
        return redirect(url_for("signin.password"), code=303)
    return _email_page(form)


def _email_page(form, *, error: str | None = None):
    """The email page, with "Sign in with a passkey" (a new single-use ceremony each time);
    ``error``: why a passkey did not sign in."""
    ceremony, options = journey.passkey_options()
    passkey_form = PasskeyForm(formdata=None, authreq=form.authreq.data or "", ceremony=ceremony)
    return page("accounts/signin_email.html", form, error=error, status=400 if error else None,
                passkey_form=passkey_form, passkey_options=options, passkey_error=bool(error))


@bp.post("/signin/passkey")
@rate_limited(limit("mfa_per_ip"), methods=["POST"])
def passkey():
    """Passkey-first sign-in (the email page's button, or the browser's passkey autofill)."""
    form = PasskeyForm()
    if not form.validate_on_submit():
        return _email_page(EmailStepForm(formdata=None, authreq=(form.authreq.data or "")[:64]),
                           error=_("Your passkey could not be used. Try again, or sign in with your email address."))
    try:
        pending = journey.sign_in_with_passkey(form.ceremony.data, form.credential.data, form.authreq.data or "")
    except (journey.JourneyError, MfaError) as exc:
        return _email_page(EmailStepForm(formdata=None, authreq=form.authreq.data or ""), error=exc.message)
    return _continue(pending)


@bp.route("/signin/password", methods=["GET", "POST"])
@rate_limited(limit("sign_in_per_ip"), methods=["POST"])
@rate_limited(limit("sign_in_per_email"), methods=["POST"], key_func=_pending_email_key)
def password():
    pending = journey.current({journey.STAGE_PASSWORD})
    if pending is None:
        return redirect(url_for("signin.signin"))
    form = PasswordStepForm()
    error = None
    if form.validate_on_submit():
        try:
            pending = journey.check_password(pending, form.password.data, cookies.read_device())
        except journey.JourneyError as exc:
            if exc.code == journey.RESTART:
                raise
            return page("accounts/signin_password.html", form, error=exc.message, email=pending.email,
                         locked=exc.code == "locked")
        return _continue(pending)
    return page("accounts/signin_password.html", form, error=error, email=pending.email, locked=False)


@bp.route("/signin/new-password", methods=["GET", "POST"])
def new_password():
    pending = journey.current({journey.STAGE_NEW_PASSWORD})
    if pending is None:
        return redirect(url_for("signin.signin"))
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            pending = journey.choose_first_password(pending, form.password.data)
        except journey.JourneyError as exc:
            if exc.code == journey.RESTART:
                raise
            form.password.errors = [exc.message]
            return page("accounts/new_password.html", form, rules=policy.current().sec("password"))
        return _continue(pending)
    return page("accounts/new_password.html", form, rules=policy.current().sec("password"))


# ------------------------------------------------------------------ forgotten password
@bp.route("/forgot", methods=["GET", "POST"])
@rate_limited(limit("forgot_password_per_ip"), methods=["POST"])
@rate_limited(limit("sign_in_per_email"), methods=["POST"], key_func=_form_email_key)
def forgot():
    form = ForgotForm()
    if request.method == "GET":
        # the address being signed in with, if any (never carried in a URL, where logs keep it)
        pending = journey.current()
        form.email.data = pending.email if pending else ""
    if form.validate_on_submit():
        services.request_reset(form.email.data)
        session["reset_email"] = form.email.data.strip()
        return redirect(url_for("signin.reset"), code=303)
    return page("accounts/forgot.html", form)


@bp.route("/forgot/code", methods=["GET", "POST"])
@rate_limited(limit("sign_in_per_ip"), methods=["POST"])
def reset():
    email = session.get("reset_email")
    if not email:
        return redirect(url_for("signin.forgot"))
    form = ResetForm()
    if form.validate_on_submit():
        try:
            services.reset_password(email, form.code.data, form.password.data)
        except services.AccountError as exc:
            getattr(form, exc.field or "code").errors = [exc.message]
            return page("accounts/reset.html", form, email=email, rules=policy.current().sec("password"))
        session.pop("reset_email", None)
        flash(_("Your password has been changed. Sign in with your new password."))
        return redirect(url_for("signin.signin"), code=303)
    return page("accounts/reset.html", form, email=email, rules=policy.current().sec("password"))


# ------------------------------------------------------------------ my account
@dataclass(frozen=True)
class Browser:
    """One line of "Where you are signed in"."""

    sid: str
    device: str
    ip: str
    last_active: str
    this_one: bool


@dataclass(frozen=True)
class Remembered:
    """One line of "Devices that do not ask for a code"."""

    id: str
    device: str
    since: str
    until: str


def _account_page(entry, *, error: str | None = None):
    account = entry.account
    pol = policy.current()
    held = people.party_of(account).profiles
    role = pol.roles.get(account.role)
    browsers = [Browser(sid=s.sid, device=devices.describe(s.user_agent), ip=s.ip or "",
                        last_active=local_time(s.last_seen_at), this_one=s.sid == entry.sid)
                for s in sessions.live_for(entry.account_id)]
    remembered_devices = [Remembered(id=d.id, device=devices.describe(d.user_agent), since=local_time(d.created_at),
                                     until=local_time(d.expires_at))
                          for d in remembered.live_for(entry.account_id)]
    return page("accounts/account.html", ConfirmForm(), error=error, status=400 if error else 200,
                remembered_devices=remembered_devices,
                account=account, role_name=in_page_language(role.name, role.name_cy) if role else account.role,
                profiles=[profile for pid, profile in pol.profiles.items() if pid in held],
                browsers=browsers, pending_email=people.pending_own_email_change(entry))


@bp.get("/account")
def account():
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))
    return _account_page(entry)


@bp.get("/")
def home():
    return redirect(url_for("signin.account"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(entry, form.current.data, form.password.data)
        except services.AccountError as exc:
            getattr(form, exc.field if exc.field in ("current", "password") else "current").errors = [exc.message]
            return page("accounts/change_password.html", form, rules=policy.current().sec("password"))
        flash(_("Your password has been changed. You have been signed out on your other devices."))
        return redirect(url_for("signin.account"), code=303)
    return page("accounts/change_password.html", form, rules=policy.current().sec("password"))


@bp.route("/account/profile", methods=["GET", "POST"])
def edit_profile():
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))
    account = entry.account
    form = ProfileForm(obj=account if request.method == "GET" else None)
    if request.method == "GET" and account.phone:
        form.phone.data = inputs.readable_phone_number(account.phone)
    if form.validate_on_submit():
        fields = {name: getattr(form, name).data or "" for name in people.PROFILE_FIELDS}
        try:
            people.update_fields(people.party_of(account), account.sub, fields)
        except errors.AdminError as exc:
            getattr(form, exc.field if exc.field in people.PROFILE_FIELDS else "given_name").errors = [exc.message]
            return page("accounts/profile.html", form)
        i18n.remember_account_language(account.language)
        flash(_("Your details have been updated."))
        return redirect(url_for("signin.account"), code=303)
    return page("accounts/profile.html", form)


# ------------------------------------------------------------------ my account: email address
@bp.route("/account/email", methods=["GET", "POST"])
@rate_limited(limit("sign_in_per_ip"), methods=["POST"])
def change_email():
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))
    try:
        people.may_change_own_email(entry)  # asked before the address is typed
    except errors.SecondFactorNeeded:
        return redirect(url_for("mfa.verify", next=request.path), code=303)
    form = NewEmailForm()
    if form.validate_on_submit():
        try:
            people.request_own_email_change(entry, form.email.data)
        except errors.SecondFactorNeeded:
            return redirect(url_for("mfa.verify", next=request.path), code=303)
        except errors.AdminError as exc:
            form.email.errors = [exc.message]
            return page("accounts/change_email.html", form, account=entry.account)
        return redirect(url_for("signin.confirm_email"), code=303)
    return page("accounts/change_email.html", form, account=entry.account)


@bp.route("/account/email/code", methods=["GET", "POST"])
@rate_limited(limit("mfa_per_ip"), methods=["POST"])
def confirm_email():
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))
    pending = people.pending_own_email_change(entry)
    if pending is None:
        return redirect(url_for("signin.change_email"))
    form = EmailCodeForm()
    if form.validate_on_submit():
        try:
            people.confirm_own_email_change(entry, form.code.data)
        except errors.SecondFactorNeeded:
            return redirect(url_for("mfa.verify", next=request.path), code=303)
        except errors.AdminError as exc:
            form.code.errors = [exc.message]
            return page("accounts/confirm_email.html", form, new_email=pending)
        flash(_("Your email address is now %(email)s: sign in with it from now on. You have been signed out "
                "on your other devices.", email=pending))
        return redirect(url_for("signin.account"), code=303)
    return page("accounts/confirm_email.html", form, new_email=pending)


# ------------------------------------------------------------------ signing out
@bp.post("/account/sessions/end")
def end_session():
    """Sign out of one browser from "Where you are signed in"."""
    entry = signed_in()
    form = EndSessionForm()
    if entry is None:
        return redirect(url_for("signin.signin"))
    if not form.validate_on_submit():
        return _account_page(entry, error=_("The form could not be read. Try again."))
    if form.sid.data == entry.sid:  # this browser's own line: an ordinary sign-out
        services.sign_out(entry, everywhere=False)
        return _signed_out()
    try:
        ended = services.end_own_session(entry, form.sid.data)
    except services.AccountError as exc:
        return _account_page(entry, error=exc.message)
    flash(_("You have signed out of %(device)s.", device=devices.describe(ended.user_agent)))
    return redirect(url_for("signin.account"), code=303)


@bp.post("/account/devices/forget")
def forget_device():
    """Stop remembering one device: its next sign-in asks for a second factor again."""
    entry = signed_in()
    form = ForgetDeviceForm()
    if entry is None:
        return redirect(url_for("signin.signin"))
    if not form.validate_on_submit() or not remembered.forget(entry.account, form.device.data):
        return _account_page(entry, error=_("That device could not be found. It may have been removed already."))
    flash(_("That device will be asked for a code the next time you sign in on it."))
    return redirect(url_for("signin.account") + "#remembered", code=303)


@bp.route("/signout", methods=["GET", "POST"])
def signout():
    """Signing out is a POST (the header's button, My account, this page's own buttons); a typed or
    bookmarked /signout asks first."""
    form = ConfirmForm()
    entry = signed_in()
    if entry is None:
        return _signed_out()
    if request.method == "POST" and form.validate_on_submit():
        services.sign_out(entry, everywhere=request.form.get("everywhere") == "1")
        return _signed_out()
    return page("accounts/signout.html", form)


def _signed_out():
    response = make_response(render_template("oidc/signed_out.html"))
    cookies.clear(response)
    return response
