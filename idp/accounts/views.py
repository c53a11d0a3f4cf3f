"""Sign-in and sign-out pages."""

from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request, url_for

from ..extensions import client_ip
from ..oidc.endpoints import authorize
from . import cookies, services, sessions
from .forms import SignInForm

bp = Blueprint("signin", __name__)


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    form = SignInForm()
    if request.method == "GET":
        form.authreq.data = request.args.get("authreq", "")
        form.email.data = request.args.get("login_hint", "")[:254]
    error = None
    if form.validate_on_submit():
        result = services.sign_in_with_password(form.email.data, form.password.data, ip=client_ip(),
                                                user_agent=request.user_agent.string)
        if result.ok:
            target = authorize.resume_url(form.authreq.data or "") or url_for("signin.signed_in")
            response = redirect(target, code=303)
            cookies.attach(response, result.started.cookie_value)
            return response
        error = result.message
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/signin.html", form=form, error=error), status


@bp.get("/")
def signed_in():
    entry = sessions.find(cookies.read())
    if entry is None:
        return redirect(url_for("signin.signin"))
    response = make_response(render_template("accounts/signed_in.html", account=entry.account))
    response.headers["Cache-Control"] = "no-store"
    return response
