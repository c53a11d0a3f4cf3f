"""Authorization endpoint (OIDC Core 3.1.2): validate, make sure the person is signed in as the
request demands, then answer with a code.

An unknown client or an unregistered redirect URI gets an error page and never a
redirect. Every other error goes back to the client's redirect URI with ``state``
and ``iss`` (RFC 9207).

A pushed request (RFC 9126) arrives as ``client_id`` and ``request_uri`` only; every other
parameter in the query is ignored and the pushed ones are used, validated again through the same
pipeline (``idp.oidc.authorization``). A ``request_uri`` that cannot be used gets an error page: no
redirect URI is known to be the client's.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from ... import cookies, protocol
from ...accounts import sessions
from ...extensions import authorization_server
from .. import authorization, par, pending, tokens

bp = Blueprint("authorize", __name__)


def _error_redirect(redirect_uri: str, error: str, description: str, state: str | None):
    params = {"error": error, "error_description": description, "iss": tokens.issuer()}
    if state:
        params["state"] = state
    return redirect(add_params_to_uri(redirect_uri, params), code=302)


def _error_page(error: OAuth2Error):
    return render_template("oidc/error.html", error=error.error,
                           description=error.description or ""), 400


def _authorization_params() -> MultiDict:
    source = request.form if request.method == "POST" else request.args
    return MultiDict([(k, v) for k, v in source.items(multi=True)
                      if k != pending.RESUME_PARAM and k != "csrf_token"])


def _login_satisfied(entry, args: dict, resumed: bool) -> tuple[bool, bool]:
    """(signed in well enough, hint names someone else)."""
    if entry is None:
        return False, False
    prompts = args.get("prompt", "").split()
    if "login" in prompts and not resumed:
        return False, False
    max_age = args.get("max_age")
    if max_age is not None:
        try:
            limit = int(max_age)
        except ValueError:
            limit = 0
        if time.time() - entry.auth_time > limit and not resumed:
            return False, False
    wanted = args.get("acr_values", "").split()
    if protocol.ACR_PHISHING_RESISTANT in wanted and entry.acr != protocol.ACR_PHISHING_RESISTANT:
        return False, False  # step up: sign in again with a passkey or security key
    if protocol.ACR_MFA in wanted and entry.acr not in (protocol.ACR_MFA, protocol.ACR_PHISHING_RESISTANT):
        return False, False  # signed in on a remembered device: a second factor now
    hint = args.get("id_token_hint")
    if hint:
        data = tokens.decode_own(hint, typ="jwt")
        if data is None or data.get("sub") != entry.account.sub:
            return False, True
    return True, False


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    server = authorization_server()
    params = _authorization_params()
    try:
        request_uri = authorization.pushed_reference(params)
    except OAuth2Error as error:
        return _error_page(error)
    pushed = request_uri is not None
    if pushed:
        try:
            params = MultiDict(par.redeem(params.get("client_id"), request_uri))
        except par.Refused as refused:
            return _error_page(OAuth2Error(error="invalid_request_uri", description=str(refused)))
    args = authorization.first_values(params)
    resumed = pending.was_resumed(request.values.get(pending.RESUME_PARAM))
    entry = sessions.find(cookies.read())
    ok, other_person = _login_satisfied(entry, args, resumed)
    principal = None
    if ok:
        principal = tokens.Principal(account=entry.account, auth_time=entry.auth_time, amr=list(entry.amr),
                                     acr=entry.acr, sid=entry.sid)
    try:
        grant = authorization.validate(server, params, end_user=principal, pushed=pushed)
    except OAuth2Error as error:
        if error.redirect_uri:
            # error.state: the request's, or none when state itself is given twice
            return _error_redirect(error.redirect_uri, error.error, error.description or "", error.state)
        return _error_page(error)

    redirect_uri, state = grant.redirect_uri, args.get("state")
    if principal is None:
        if "none" in args.get("prompt", "").split():
            return _error_redirect(redirect_uri, "login_required", "The person must sign in.", state)
        target = {"authreq": pending.remember(args, pushed=pushed)}
        for passed in ("login_hint", "ui_locales"):
            if args.get(passed):
                target[passed] = args[passed]
        if other_person:
            target["switch"] = "1"
        return redirect(url_for("signin.signin") + "?" + urlencode(target))

    return server.create_authorization_response(grant=grant, grant_user=principal)
