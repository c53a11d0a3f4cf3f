"""UserInfo (OIDC Core 5.3): GET or POST, token in the Authorization header or (POST) the body."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ...extensions import client_cache
from .. import bearer, claims, tokens

bp = Blueprint("userinfo", __name__)


def _error(status: int, error: str, description: str, *, say_why: bool = True):
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["WWW-Authenticate"] = bearer.challenge("userinfo", error, description) if say_why \
        else bearer.challenge("userinfo")
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    try:
        token = bearer.read(allow_form=True)
    except bearer.BearerProblem as problem:
        return _error(400, "invalid_request", str(problem), say_why=False)
    if token is None:  # RFC 6750 §3.1: no error code when no authentication was attempted
        return _error(401, "invalid_token", "An access token is required.", say_why=False)
    data = tokens.verify_access_token(token)
    account, profiles = tokens.person_and_profiles(data) if data is not None else (None, None)
    if account is None:
        return _error(401, "invalid_token", "The access token is invalid, expired or revoked.")
    if "openid" not in str(data.get("scope", "")).split():
        return _error(403, "insufficient_scope", "The access token lacks the openid scope.")
    client = client_cache().get(data["client_id"])
    if client is None:
        return _error(401, "invalid_token", "The client of this token is no longer registered.")
    return jsonify(claims.user_claims(account, data["scope"], client, profiles=profiles))
