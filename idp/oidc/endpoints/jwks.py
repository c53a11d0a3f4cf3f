"""JWKS: the public half of every published signing key."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("jwks", __name__)


@bp.get("/jwks.json")
def jwks():
    settings = current_app.config["IDP_SETTINGS"]
    doc = current_app.extensions["idp.keys"].jwks(settings.max_jwt_lifetime)
    response = jsonify(doc)
    response.headers["Cache-Control"] = f"public, max-age={settings.keys.jwks_max_age}"
    return response
