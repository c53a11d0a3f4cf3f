"""Second-factor pages: the sign-in challenge, setting a method up (during sign-in or from My
account), and managing methods. The same set-up pages serve both places through a small
``Context``. The rules are in idp.mfa.services and idp.journey."""

from __future__ import annotations

import re
from collections.abc import Callable
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
from flask_babel import ngettext

from ... import journey, policy, protocol
from ...accounts import remembered
from ...clock import utcnow
from ...extensions import client_ip, rate_limited
from ...forms import TextForm
from ...mfa import services
from ..pages import journey_form_targets, limit, local_time, signed_in
from .forms import AnswerForm

bp = Blueprint("mfa", __name__)
bp.after_request(journey_form_targets)


def _continue(pending):
    return journey.continue_journey(pending, ip=client_ip(), user_agent=request.user_agent.string)


# ------------------------------------------------------------------ where we are
@dataclass
class Context:
    account: object
    after_added: Callable
    base: str  # endpoint prefix for set-up pages: "mfa.signin_setup" or "mfa.account_setup"
    #: a sign-in's set-up: only while the account has no method (else: start again)
    first_only: bool = False
    #: the sign-in it is, to end when its set-up is refused
    pending: object = None


def _signin_context() -> Context | None:
    pending = journey.current({journey.STAGE_MFA_ENROL})
    if pending is None:
        return None

    def after_added(method, shown):
        passed = services.passed_with(method.kind, method.device_type)
        try:
            moved = journey.second_factor_passed(pending, passed, recovery_codes=shown, enrolled_method=method.id)
        except journey.JourneyError as exc:
            flash(exc.message)
            return redirect(url_for("mfa.signin_setup"))
        return _continue(moved)

    return Context(pending.account(), after_added, "mfa.signin_setup", first_only=True, pending=pending)


def _account_context() -> Context | None:
    entry = signed_in()
    if entry is None or not services.is_fresh(entry):
        return None

    def after_added(method, shown):
        flash(_("%(method)s has been added.", method=services.describe(method)))
        if shown:
            services.hold_recovery_codes(entry.sid, shown)
            return redirect(url_for("mfa.account_recovery_codes"))
        return redirect(url_for("mfa.manage"))

    return Context(entry.account, after_added, "mfa.account_setup")


# ------------------------------------------------------------------ set-up pages (both contexts)
def _setup(ctx: Context | None, kind: str):
    if ctx is None:
        return redirect(url_for("signin.signin"))
    if kind not in protocol.SECOND_FACTOR_KINDS:
        return (render_template("mfa/choose.html", base=ctx.base)), 404
    form = AnswerForm()
    error = None
    extra = {}
    action = request.form.get("action", "")
    try:
        if request.method == "POST" and form.validate_on_submit():
            if kind == "totp":
                method, shown = services.confirm_totp(ctx.account, form.code.data, form.label.data,
                                                      first_only=ctx.first_only)
                return ctx.after_added(method, shown)
            if kind == "email":
                if action == "send":
                    services.start_email(ctx.account)
                    extra["sent"] = True
                else:
                    method, shown = services.confirm_email(ctx.account, form.code.data, first_only=ctx.first_only)
                    return ctx.after_added(method, shown)
            if kind == "sms":
                if action == "send":
                    services.start_sms(ctx.account, form.phone.data)
                    extra["sent"] = True
                else:
                    method, shown = services.confirm_sms(ctx.account, form.code.data, first_only=ctx.first_only)
                    return ctx.after_added(method, shown)
            if kind == "webauthn":
                method, shown = services.confirm_webauthn(ctx.account, form.ceremony.data, form.credential.data,
                                                          form.label.data, first_only=ctx.first_only)
                return ctx.after_added(method, shown)
        elif request.method == "POST":
            error = _("The form could not be read. Try again.")
    except (services.MfaError, services.codes.CodeError) as exc:
        if exc.code == "restart" and ctx.pending is not None:
            journey.end(ctx.pending)
            flash(exc.message)
            return redirect(url_for("signin.signin"))
        error = exc.message
        extra["sent"] = action == "send" or kind in ("sms", "email") and exc.code == "bad_code"
    if kind == "totp":
        extra.update(services.start_totp(ctx.account))
    if kind == "webauthn":
        extra["ceremony"], extra["options"] = services.start_webauthn(ctx.account)
    status = 400 if error else 200
    return (render_template(f"mfa/setup_{kind}.html", form=form, error=error, base=ctx.base,
                                     kind=kind, **extra)), status


@bp.get("/signin/mfa/setup")
def signin_choose():
    ctx = _signin_context()
    if ctx is None:
        return redirect(url_for("signin.signin"))
    return (render_template("mfa/choose.html", base=ctx.base, first=True))


@bp.route("/signin/mfa/setup/<kind>", methods=["GET", "POST"])
def signin_setup(kind):
    return _setup(_signin_context(), kind)


@bp.route("/signin/mfa/recovery-codes", methods=["GET", "POST"])
def signin_recovery_codes():
    pending = journey.current({journey.STAGE_RECOVERY_CODES})
    if pending is None:
        return redirect(url_for("signin.signin"))
    form = TextForm()
    if request.method == "POST" and form.validate_on_submit():
        return _continue(journey.recovery_codes_seen(pending))
    return (render_template("mfa/recovery_codes.html", form=form,
                                     codes=services.held_recovery_codes(pending.id) or [],
                                     action=url_for("mfa.signin_recovery_codes"),
                                     download=url_for("mfa.signin_recovery_codes_file")))


@bp.get("/signin/mfa/recovery-codes/recovery-codes.txt")
def signin_recovery_codes_file():
    pending = journey.current({journey.STAGE_RECOVERY_CODES})
    shown = services.held_recovery_codes(pending.id) if pending else None
    if shown is None:
        return redirect(url_for("signin.signin"))
    return _codes_file(pending.account(), shown)


def _codes_file(account, shown: list[str]):
    """The recovery codes being shown, as a text file to keep. Only the sign-in or session they are
    being shown to has them (they are held under its id); no cache keeps them (the default no-store)."""
    response = make_response(render_template("mfa/recovery_codes.txt", account=account, codes=shown,
                                             made=local_time(utcnow())))
    response.mimetype = "text/plain"
    response.headers["Content-Disposition"] = 'attachment; filename="recovery-codes.txt"'
    return response


# ------------------------------------------------------------------ the challenge
def _challenge(account, answer, on_passed, action_url: str, require_webauthn: bool = False,
               remember_days: int = 0, why: str = ""):
    """The challenge page for ``account``; ``answer(**fields)`` checks a submitted answer (raising
    MfaError or JourneyError) and ``on_passed(result)`` makes the response. ``remember_days``:
    offer "Do not ask for a code on this device for N days" (at sign-in)."""
    form = AnswerForm()
    chosen = request.values.get("method") or ""
    error = sent = None
    if request.method == "POST" and form.validate_on_submit():
        kind = request.form.get("kind", "")
        try:
            if request.form.get("action") == "send":
                services.send_challenge_code(account, services.method_of(account, form.method_id.data))
                chosen, sent = form.method_id.data, True
            else:
                fields = {"remember_device": bool(form.remember.data)} if remember_days else {}
                return on_passed(answer(kind=kind, method_id=form.method_id.data or None, code=form.code.data,
                                        ceremony=form.ceremony.data, credential=form.credential.data, **fields))
        except (services.MfaError, services.codes.CodeError, journey.JourneyError) as exc:
            if getattr(exc, "code", "") in ("ended", "locked", "restart"):
                session.pop(journey.SESSION_KEY, None)
                flash(exc.message)
                return redirect(url_for("signin.signin"))
            error, chosen = exc.message, request.form.get("method_id") or request.form.get("kind") or chosen
    elif request.method == "POST":
        error = _("The form could not be read. Try again.")
    methods = services.methods_of(account)  # read for the page only: a passed answer needs none
    if require_webauthn:
        methods = [m for m in methods if m.kind == "webauthn"]
    current = None
    if chosen == "recovery":
        current = "recovery"
    elif chosen == "webauthn":
        current = "webauthn"
    else:
        current = next((m for m in methods if m.id == chosen), None) or (methods[0] if methods else None)
        if current is not None and current.kind == "webauthn":
            current = "webauthn"
    ceremony = options = None
    keys = [m for m in methods if m.kind == "webauthn"]
    if current == "webauthn" and keys:
        ceremony, options = services.webauthn.authentication_options(account, keys)
    status = 400 if error else 200
    return (render_template(
        "mfa/challenge.html", form=form, error=error, methods=methods, current=current, sent=sent,
        ceremony=ceremony, options=options, action=action_url, describe=services.describe,
        require_webauthn=require_webauthn, remember_days=remember_days, why=why)), status


def _answering_account_key() -> str:
    """Rate-limit key for second-factor answers: the account being answered for (the pending
    sign-in's, or the signed-in person's), never the cookie."""
    pending = journey.current()
    account_id = pending.account_id if pending else None
    if account_id is None:
        entry = signed_in()
        account_id = entry.account_id if entry else None
    return "mfa-account:" + (account_id or "none:" + (request.remote_addr or ""))


def _rate_limited_answers(view):
    view = rate_limited(limit("mfa_per_account"), methods=["POST"], key_func=_answering_account_key)(view)
    return rate_limited(limit("mfa_per_ip"), methods=["POST"])(view)


@bp.route("/signin/mfa", methods=["GET", "POST"])
@_rate_limited_answers
def signin_challenge():
    pending = journey.current({journey.STAGE_MFA})
    if pending is None:
        return redirect(url_for("signin.signin"))
    account = pending.account()
    return _challenge(account, lambda **answer: journey.answer_challenge(pending, **answer),
                      _continue, url_for("mfa.signin_challenge"),
                      require_webauthn=pending.require_acr == protocol.ACR_PHISHING_RESISTANT,
                      remember_days=remembered.offered_days(account) if account else 0)


# ------------------------------------------------------------------ My account: managing methods
@bp.get("/account/mfa")
def manage():
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))
    return (render_template("mfa/manage.html", form=TextForm(), methods=services.methods_of(entry.account),
                                     describe=services.describe, fresh=services.is_fresh(entry),
                                     remaining=services.recovery.remaining(entry.account_id)))


#: where re-verifying may lead on to: a page of My account or of a console, as their paths are
#: written (nothing that could leave the site or break the Location header: no CR/LF, backslash,
#: "." or "..")
_ACCOUNT_PAGE = re.compile(r"/(account|users|centres|board)/[A-Za-z0-9_/-]*")


@bp.route("/account/mfa/verify", methods=["GET", "POST"])
@_rate_limited_answers
def verify():
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))

    def on_passed(_passed):
        wanted = request.args.get("next", "")
        return redirect(wanted if _ACCOUNT_PAGE.fullmatch(wanted) else url_for("mfa.manage"), code=303)

    minutes = max(1, policy.current().sec("mfa").fresh_seconds // 60)
    why = ngettext("What you are about to do changes how someone signs in, so we ask for your second factor if "
                   "you have not used it in the last minute.",
                   "What you are about to do changes how someone signs in, so we ask for your second factor if "
                   "you have not used it in the last %(num)d minutes.", minutes)
    return _challenge(entry.account, lambda **answer: services.reverify(entry, **answer), on_passed,
                      url_for("mfa.verify", next=request.args.get("next")), why=why)


@bp.route("/account/mfa/add/<kind>", methods=["GET", "POST"])
def account_setup(kind):
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))
    if not services.is_fresh(entry):
        return redirect(url_for("mfa.verify", next=request.path))
    return _setup(_account_context(), kind)


@bp.get("/account/mfa/add")
def account_choose():
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))
    if not services.is_fresh(entry):
        return redirect(url_for("mfa.verify", next=request.path))
    return (render_template("mfa/choose.html", base="mfa.account_setup", first=False))


@bp.post("/account/mfa/<method_id>/<action>")
def change(method_id, action):
    entry = signed_in()
    form = TextForm()
    if entry is None or not form.validate_on_submit():
        return redirect(url_for("signin.signin"))
    try:
        if action == "remove":
            services.remove(entry, method_id)
            flash(_("The method has been removed."))
        elif action == "preferred":
            services.set_preferred(entry, method_id)
            flash(_("Your preferred method has been changed."))
        else:
            return (render_template("oidc/error.html", error="not_found", description="")), 404
    except services.MfaError as exc:
        if exc.code == "not_fresh":
            return redirect(url_for("mfa.verify", next=url_for("mfa.manage")))
        flash(exc.message)
    return redirect(url_for("mfa.manage"), code=303)


@bp.route("/account/mfa/recovery-codes", methods=["GET", "POST"])
def account_recovery_codes():
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))
    form = TextForm()
    if request.method == "POST" and form.validate_on_submit():
        if request.form.get("action") == "regenerate":
            try:
                shown = services.regenerate_recovery_codes(entry)
            except services.MfaError:
                return redirect(url_for("mfa.verify", next=url_for("mfa.manage")))
            services.hold_recovery_codes(entry.sid, shown)
        else:
            services.drop_held_recovery_codes(entry.sid)
            return redirect(url_for("mfa.manage"), code=303)
    shown = services.held_recovery_codes(entry.sid)
    if shown is None:
        return redirect(url_for("mfa.manage"))
    return (render_template("mfa/recovery_codes.html", form=form, codes=shown,
                                     action=url_for("mfa.account_recovery_codes"),
                                     download=url_for("mfa.account_recovery_codes_file")))


@bp.get("/account/mfa/recovery-codes/recovery-codes.txt")
def account_recovery_codes_file():
    entry = signed_in()
    if entry is None:
        return redirect(url_for("signin.signin"))
    shown = services.held_recovery_codes(entry.sid)
    if shown is None:
        return redirect(url_for("mfa.manage"))
    return _codes_file(entry.account, shown)
