"""A minimal protected Flask service for kit tests (not a test module)."""

from __future__ import annotations

from examboard_rp.flask import current_token, init_app, require_profile
from flask import Flask


def protected_app(rs) -> Flask:
    """GET /results needs a valid token holding results.view; answers {"sub": ...}."""
    app = Flask("protected")
    init_app(app, rs)

    @app.get("/results")
    @require_profile("results.view")
    def results():
        return {"sub": current_token().sub}

    return app
