"""Token introspection (RFC 7662): authenticated clients, their own tokens only."""

from __future__ import annotations

from flask import Blueprint

from ...extensions import authorization_server

bp = Blueprint("introspect", __name__)


@bp.post("/introspect")
def introspect():
    response = authorization_server().create_endpoint_response("introspection")
    return response
