"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint
from flask import Blueprint, make_response, render_template, request
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from ... import cookies, headers, inputs
from ...accounts import services, sessions
from ...extensions import authorization_server, keys, settings
from .. import tokens

bp = Blueprint("end_session", __name__)


class EndSessionEndpoint(_EndSessionEndpoint):
    def get_server_jwks(self):
        return keys().jwks(settings().max_jwt_lifetime)

    def _validate_id_token_hint(self, id_token_hint: str) -> dict:
        """Only an ID token issued here will do (an access token is signed by the same keys, so the
        signature alone is not enough); expired ones are accepted, as the spec allows."""
        data = tokens.decode_own(id_token_hint, typ="jwt")
        if data is None or "aud" not in data or "sub" not in data:
            raise InvalidRequestError("id_token_hint is not an ID token issued by this provider.")
        return data

    def _is_valid_post_logout_redirect_uri(self, client, post_logout_redirect_uri: str) -> bool:
        # a URI registered before registration refused control characters and spaces could not go
        # into a Location header (a 500 once the session had ended): not redirected to, as an
        # unregistered one is not
        return (not inputs.has_control_characters(post_logout_redirect_uri) and " " not in post_logout_redirect_uri
                and super()._is_valid_post_logout_redirect_uri(client, post_logout_redirect_uri))

    def end_session(self, end_session_request) -> None:
        """Nothing left to do here: the view has ended the sessions (it knows which)."""


def _csrf_ok() -> bool:
    # /logout is CSRF-exempt so relying parties may POST to it; the confirmation form is not.
    try:
        validate_csrf(request.form.get("csrf_token", ""))
        return True
    except ValidationError:
        return False


def register(server) -> None:
    server.register_endpoint(EndSessionEndpoint)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    server = authorization_server()
    try:
        validated = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return render_template("oidc/error.html", error=error.error, description=error.description or ""), 400
    confirmed = request.method == "POST" and request.form.get("confirm") == "yes" and _csrf_ok()
    cookie = cookies.read()
    entry = sessions.find(cookie)
    # a hint whose audience is a client here names, by its sid, the session to end (RP-Initiated
    # Logout §2), with or without this browser's cookie
    hint = validated.id_token_claims if validated.client is not None else None
    client_id = validated.client.client_id if validated.client is not None else None
    # A hint naming someone else, or another sign-in than this browser's (an old ID token, sent
    # at any later time), is suspect (RP-Initiated Logout §2): never sign this person out silently.
    claims = validated.id_token_claims or {}
    suspect = entry is not None and bool(claims) and (
        claims.get("sub") != entry.account.sub or ("sid" in claims and claims["sid"] != entry.sid))
    if (validated.needs_confirmation or suspect) and not confirmed:
        # the hint's own session ends now, as it would have without this cookie (the form does not
        # carry the hint); this browser's person is asked about theirs
        services.sign_out_at_logout(None, hint=hint, client_id=client_id)
        # Without a valid id_token_hint anyone could sign a person out by a link: ask first.
        page = make_response(render_template("oidc/logout_confirm.html", params=request.values))
        # confirming redirects to the client's registered post-logout URI: let the form lead there
        return headers.allow_form_redirect(page, validated.redirect_uri)
    services.sign_out_at_logout(entry, hint=hint, client_id=client_id)
    response = server.create_endpoint_response("end_session", validated)
    if response is None:
        response = make_response(render_template("oidc/signed_out.html"))
    if cookie is not None:
        # only a cookie this request carried: a cross-site POST carries none, and the browser may
        # hold someone else's session, not the one the hint ended
        cookies.clear(response)
    return response

