"""Token revocation (RFC 7009)."""

from __future__ import annotations

from flask import Blueprint

from ...extensions import authorization_server

bp = Blueprint("revoke", __name__)


@bp.post("/revoke")
def revoke():
    response = authorization_server().create_endpoint_response("revocation")
    return response
