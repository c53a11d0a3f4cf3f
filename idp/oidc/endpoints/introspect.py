"""Token introspection (RFC 7662): authenticated clients, their own tokens only."""

from __future__ import annotations

from flask import Blueprint, current_app

bp = Blueprint("introspect", __name__)


@bp.post("/introspect")
def introspect():
    response = current_app.extensions["idp.oauth"].create_endpoint_response("introspection")
    return response
