"""Results service. `results.embargoed` sees results at any time; `results.view` only from 08:00
(local time) on results day. Config: issuer, audience (client_id), results_day (YYYY-MM-DD),
optional timezone (default Europe/London)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Flask

from examboard_rp import InsufficientProfile, ResourceServer
from examboard_rp.flask import current_token, error_response, init_app, require_profile

RELEASE_TIME = dt.time(8, 0)
RESULTS = {"12345": [{"candidate": "0001", "subject": "Mathematics", "grade": "A"},
                     {"candidate": "0002", "subject": "Welsh", "grade": "B"}]}


def create_app(config: dict) -> Flask:
    app = Flask(__name__)
    init_app(app, ResourceServer(config["issuer"], audience=config["audience"]))
    zone = ZoneInfo(config.get("timezone", "Europe/London"))
    day = config["results_day"]
    release = dt.datetime.combine(day if isinstance(day, dt.date) else dt.date.fromisoformat(day),
                                  RELEASE_TIME, zone)

    @app.get("/results")
    @require_profile()
    def results():
        token = current_token()
        released = dt.datetime.now(zone) >= release
        if not token.has_profile("results.embargoed"):
            if not released:
                return error_response(InsufficientProfile(
                    "results.embargoed", f"results are under embargo until {release:%H:%M on %Y-%m-%d}"))
            if not token.has_profile("results.view"):
                return error_response(InsufficientProfile("results.view"))
        return {"centre": token.centre, "released": released, "results": RESULTS.get(token.centre, [])}

    return app
