"""Entries service: `entries.view` reads a centre's entries, `entries.make` adds to them.
Config: issuer, audience (client_id)."""

from __future__ import annotations

from flask import Flask, request

from examboard_rp import ResourceServer
from examboard_rp.flask import current_token, init_app, require_profile


def create_app(config: dict) -> Flask:
    app = Flask(__name__)
    init_app(app, ResourceServer(config["issuer"], audience=config["audience"]))
    entries: dict[str, list[dict]] = {}  # centre number -> entries (a real service has a database)

    @app.get("/entries")
    @require_profile("entries.view")
    def list_entries():
        return {"centre": current_token().centre, "entries": entries.get(current_token().centre, [])}

    @app.post("/entries")
    @require_profile("entries.make")
    def make_entry():
        body = request.get_json(silent=True) or {}
        candidate, subject = body.get("candidate"), body.get("subject")
        if not (isinstance(candidate, str) and candidate and isinstance(subject, str) and subject):
            return {"error": "invalid_request", "error_description": "candidate and subject are required"}, 400
        entry = {"candidate": candidate, "subject": subject, "entered_by": current_token().sub}
        entries.setdefault(current_token().centre, []).append(entry)
        return entry, 201

    return app
