"""UserInfo (OIDC Core 5.3): GET or POST, token in the Authorization header or (POST) the body."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ...extensions import client_cache
from .. import claims, tokens

bp = Blueprint("userinfo", __name__)


def _error(status: int, error: str, description: str):
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    challenge = 'Bearer realm="userinfo"'
    if error != "invalid_request" or status == 401:
        challenge += f', error="{error}", error_description="{description}"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def _bearer() -> tuple[str | None, str | None]:
    """(token, problem) per RFC 6750 §2: one method only."""
    header = request.headers.get("Authorization", "")
    in_body = request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded" \
        and "access_token" in request.form
    if header:
        if in_body:
            return None, "Send the token in one place only."
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None, "Use the Bearer scheme."
        return value.strip(), None
    if in_body:
        return request.form["access_token"], None
    return None, None


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    token, problem = _bearer()
    if problem:
        return _error(400, "invalid_request", problem)
    if token is None:
        response = jsonify(error="invalid_token", error_description="An access token is required.")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="userinfo"'
        return response
    data = tokens.verify_access_token(token)
    account = tokens.person_of(data) if data is not None else None
    if account is None:
        return _error(401, "invalid_token", "The access token is invalid, expired or revoked.")
    if "openid" not in str(data.get("scope", "")).split():
        return _error(403, "insufficient_scope", "The access token lacks the openid scope.")
    client = client_cache().get(data["client_id"])
    if client is None:
        return _error(401, "invalid_token", "The client of this token is no longer registered.")
    response = jsonify(claims.user_claims(account, data["scope"], client))
    return response
