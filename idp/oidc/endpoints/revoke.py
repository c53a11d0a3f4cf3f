"""Token revocation (RFC 7009)."""

from __future__ import annotations

from flask import Blueprint, current_app

bp = Blueprint("revoke", __name__)


@bp.post("/revoke")
def revoke():
    response = current_app.extensions["idp.oauth"].create_endpoint_response("revocation")
    return response
