"""UserInfo (OIDC Core 5.3): GET or POST, token in the Authorization header (Bearer, or DPoP with
a proof when the token is bound to a key) or, a bearer token, in a POST body."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .. import bearer, claims, tokens

bp = Blueprint("userinfo", __name__)


def _error(status: int, error: str, description: str, *, say_why: bool = True, dpop_scheme: bool | None = False,
           headers: dict | None = None):
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["WWW-Authenticate"] = bearer.challenge("userinfo", error, description, dpop_scheme=dpop_scheme) \
        if say_why else bearer.challenge("userinfo", dpop_scheme=dpop_scheme)
    response.headers.update(headers or {})
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    try:
        presented = bearer.read(allow_form=True)
    except bearer.BearerProblem as problem:
        return _error(400, "invalid_request", str(problem), say_why=False, dpop_scheme=None)
    if presented is None:  # RFC 6750 §3.1: no error code when no authentication was attempted
        return _error(401, "invalid_token", "An access token is required.", say_why=False, dpop_scheme=None)
    try:
        data, copy_values = bearer.verify_with(presented, tokens.subject_keys)
    except bearer.Refused as refused:
        return _error(401, refused.error, refused.description, dpop_scheme=refused.dpop_scheme,
                      headers=bearer.nonce_headers(presented, refused))
    account, profiles = tokens.person_and_profiles(data, copy_values)
    if account is None:
        return _error(401, "invalid_token", "The access token is invalid, expired or revoked.",
                      dpop_scheme=presented.is_dpop)
    if "openid" not in str(data.get("scope", "")).split():
        return _error(403, "insufficient_scope", "The access token lacks the openid scope.",
                      dpop_scheme=presented.is_dpop)
    client = bearer.client_of(data)
    if client is None:
        return _error(401, "invalid_token", "The client of this token is no longer registered.",
                      dpop_scheme=presented.is_dpop)
    response = jsonify(claims.user_claims(account, data["scope"], client, profiles=profiles))
    response.headers.update(bearer.nonce_headers(presented))
    return response
