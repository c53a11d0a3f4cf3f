"""Sign-in journey pages, forgotten password, my account, sign out. Views parse, call one
service, render; the rules are in services.py."""

from __future__ import annotations

from flask import (Blueprint, current_app, flash, make_response, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _

from .. import headers, i18n, policy, secrets
from ..extensions import client_ip, rate_limited
from ..oidc.endpoints import authorize
from .. import cookies
from . import services, sessions
from .forms import (ChangePasswordForm, ConfirmForm, EmailStepForm, ForgotForm, NewPasswordForm,
                    PasswordStepForm, ProfileForm, ResetForm)

bp = Blueprint("signin", __name__)


def journey_form_targets(response):
    """While a sign-in for a relying party is under way, its pages' forms may end (through
    /authorize) at that client's redirect URI: the page's CSP form-action names that origin."""
    if response.mimetype == "text/html" and session.get("signin") and response.status_code < 500:
        pending = services.Pending.load(session.get("signin"))
        if pending is not None and pending.authreq:
            headers.allow_form_redirect(response, authorize.redirect_uri_of(pending.authreq))
    return response


bp.after_request(journey_form_targets)


def _limits(name: str):
    return lambda: getattr(policy.current().sec("rate_limits"), name)


def _email_limit_key(email: str) -> str:
    # a keyed hash: the rate limiter's store never lists which addresses were tried
    return "email:" + secrets.email_digest(email, current_app.extensions["idp.pepper"])


def _pending_email_key() -> str:
    pending = services.Pending.load(session.get("signin"))
    return _email_limit_key(pending.email) if pending else "ip:" + (request.remote_addr or "")


def _form_email_key() -> str:
    return _email_limit_key(request.form.get("email", "")[:254])


def _page(template: str, form, *, error: str | None = None, status: int | None = None, **context):
    if status is None:
        status = 400 if request.method == "POST" else 200
    response = make_response(render_template(template, form=form, error=error, **context), status)
    response.headers["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------------ sign in
@bp.route("/signin", methods=["GET", "POST"])
@rate_limited(_limits("sign_in_per_ip"), methods=["POST"])
def signin():
    form = EmailStepForm()
    if request.method == "GET":
        form.authreq.data = request.args.get("authreq", "")[:64]
        form.email.data = request.args.get("login_hint", "")[:254]
    if form.validate_on_submit():
        pending = services.begin(form.email.data, form.authreq.data,
                                 require_acr=authorize.requested_acr(form.authreq.data))
        session["signin"] = pending.id
        return redirect(url_for("signin.password"), code=303)
    return _page("accounts/signin_email.html", form)


def _require_pending(stage: str):
    pending = services.Pending.load(session.get("signin"))
    if pending is None or pending.stage != stage:
        return None
    return pending


@bp.route("/signin/password", methods=["GET", "POST"])
@rate_limited(_limits("sign_in_per_ip"), methods=["POST"])
@rate_limited(_limits("sign_in_per_email"), methods=["POST"], key_func=_pending_email_key)
def password():
    pending = _require_pending(services.STAGE_PASSWORD)
    if pending is None:
        return redirect(url_for("signin.signin"))
    form = PasswordStepForm()
    error = None
    if form.validate_on_submit():
        try:
            pending = services.check_password(pending, form.password.data)
        except services.JourneyError as exc:
            return _page("accounts/signin_password.html", form, error=exc.message, email=pending.email,
                         locked=exc.code == "locked")
        return continue_journey(pending)
    return _page("accounts/signin_password.html", form, error=error, email=pending.email, locked=False)


@bp.route("/signin/new-password", methods=["GET", "POST"])
def new_password():
    pending = _require_pending(services.STAGE_NEW_PASSWORD)
    if pending is None:
        return redirect(url_for("signin.signin"))
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            pending = services.choose_first_password(pending, form.password.data)
        except services.JourneyError as exc:
            form.password.errors = [exc.message]
            return _page("accounts/new_password.html", form, rules=policy.current().sec("password"))
        return continue_journey(pending)
    return _page("accounts/new_password.html", form, rules=policy.current().sec("password"))


STAGE_PAGES = {
    services.STAGE_NEW_PASSWORD: "signin.new_password",
    services.STAGE_MFA_ENROL: "mfa.signin_choose",
    services.STAGE_MFA: "mfa.signin_challenge",
    services.STAGE_RECOVERY_CODES: "mfa.signin_recovery_codes",
}


def continue_journey(pending: services.Pending):
    """Send the browser to the step the pending sign-in has reached; at the end, start the session."""
    if pending.stage in STAGE_PAGES:
        return redirect(url_for(STAGE_PAGES[pending.stage]), code=303)
    try:
        completed = services.complete(pending, ip=client_ip(), user_agent=request.user_agent.string)
    except services.JourneyError as exc:
        session.pop("signin", None)
        flash(exc.message)
        return redirect(url_for("signin.signin"), code=303)
    session.pop("signin", None)
    i18n.remember_account_language(completed.account.language)
    target = authorize.resume_url(completed.authreq) or url_for("signin.account")
    response = redirect(target, code=303)
    cookies.attach(response, completed.started.cookie_value)
    return response


# ------------------------------------------------------------------ forgotten password
@bp.route("/forgot", methods=["GET", "POST"])
@rate_limited(_limits("forgot_password_per_ip"), methods=["POST"])
@rate_limited(_limits("sign_in_per_email"), methods=["POST"], key_func=_form_email_key)
def forgot():
    form = ForgotForm()
    if request.method == "GET":
        # the address being signed in with, if any (never carried in a URL, where logs keep it)
        pending = services.Pending.load(session.get("signin"))
        form.email.data = pending.email if pending else ""
    if form.validate_on_submit():
        services.request_reset(form.email.data)
        session["reset_email"] = form.email.data.strip()
        return redirect(url_for("signin.reset"), code=303)
    return _page("accounts/forgot.html", form)


@bp.route("/forgot/code", methods=["GET", "POST"])
@rate_limited(_limits("sign_in_per_ip"), methods=["POST"])
def reset():
    email = session.get("reset_email")
    if not email:
        return redirect(url_for("signin.forgot"))
    form = ResetForm()
    if form.validate_on_submit():
        try:
            services.reset_password(email, form.code.data, form.password.data)
        except services.JourneyError as exc:
            getattr(form, exc.field or "code").errors = [exc.message]
            return _page("accounts/reset.html", form, email=email, rules=policy.current().sec("password"))
        session.pop("reset_email", None)
        flash(_("Your password has been changed. Sign in with your new password."))
        return redirect(url_for("signin.signin"), code=303)
    return _page("accounts/reset.html", form, email=email, rules=policy.current().sec("password"))


# ------------------------------------------------------------------ my account
def _current():
    return sessions.find(cookies.read())


@bp.get("/account")
def account():
    entry = _current()
    if entry is None:
        return redirect(url_for("signin.signin"))
    live = sessions.live_for(entry.account_id)
    return _page("accounts/account.html", ConfirmForm(), account=entry.account, entry=entry, live=live,
                 status=200)


@bp.get("/")
def home():
    return redirect(url_for("signin.account"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    entry = _current()
    if entry is None:
        return redirect(url_for("signin.signin"))
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            services.change_password(entry, form.current.data, form.password.data)
        except services.JourneyError as exc:
            getattr(form, exc.field if exc.field in ("current", "password") else "current").errors = [exc.message]
            return _page("accounts/change_password.html", form, rules=policy.current().sec("password"))
        flash(_("Your password has been changed. You have been signed out on your other devices."))
        return redirect(url_for("signin.account"), code=303)
    return _page("accounts/change_password.html", form, rules=policy.current().sec("password"))


@bp.route("/account/profile", methods=["GET", "POST"])
def edit_profile():
    from ..admin import errors, people

    entry = _current()
    if entry is None:
        return redirect(url_for("signin.signin"))
    account = entry.account
    form = ProfileForm(obj=account if request.method == "GET" else None)
    if form.validate_on_submit():
        fields = {name: getattr(form, name).data or "" for name in people.PROFILE_FIELDS}
        try:
            people.update_fields(people.party_of(account), account.sub, fields)
        except errors.AdminError as exc:
            getattr(form, exc.field if exc.field in people.PROFILE_FIELDS else "given_name").errors = [exc.message]
            return _page("accounts/profile.html", form)
        i18n.remember_account_language(account.language)
        flash(_("Your details have been updated."))
        return redirect(url_for("signin.account"), code=303)
    return _page("accounts/profile.html", form)


@bp.post("/signout")
def signout():
    form = ConfirmForm()
    entry = _current()
    if form.validate_on_submit() and entry is not None:
        services.sign_out(entry, everywhere=request.form.get("everywhere") == "1")
    response = make_response(render_template("oidc/signed_out.html"))
    cookies.clear(response)
    response.headers["Cache-Control"] = "no-store"
    return response

