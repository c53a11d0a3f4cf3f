"""The sign-in journey's pages (email, password, first password), forgotten password, My account,
sign out. Views parse, call one service, render: the journey's rules are in idp.journey, the
account's in idp.accounts.services."""

from __future__ import annotations

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

from ... import cookies, i18n, journey, policy, secrets
from ...accounts import services, sessions
from ...extensions import client_ip, pepper, rate_limited
from ..pages import journey_form_targets, limit, page, signed_in
from .forms import (
    ChangePasswordForm,
    ConfirmForm,
    EmailStepForm,
    ForgotForm,
    NewPasswordForm,
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
    return page("accounts/signin_email.html", form)


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
            pending = journey.check_password(pending, form.password.data)
        except journey.JourneyError as exc:
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
@bp.get("/account")
def account():
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))
    live = sessions.live_for(entry.account_id)
    return page("accounts/account.html", ConfirmForm(), account=entry.account, entry=entry, live=live,
                 status=200)


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
    from ...admin import errors, people

    entry = signed_in()
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
            return page("accounts/profile.html", form)
        i18n.remember_account_language(account.language)
        flash(_("Your details have been updated."))
        return redirect(url_for("signin.account"), code=303)
    return page("accounts/profile.html", form)


@bp.post("/signout")
def signout():
    form = ConfirmForm()
    entry = signed_in()
    if form.validate_on_submit() and entry is not None:
        services.sign_out(entry, everywhere=request.form.get("everywhere") == "1")
    response = make_response(render_template("oidc/signed_out.html"))
    cookies.clear(response)
    return response

