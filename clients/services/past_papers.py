"""Past papers service: anyone holding `resources` lists and downloads past papers.
Config: issuer, audience (client_id)."""

from __future__ import annotations

from flask import Flask, abort

from examboard_rp import ResourceServer
from examboard_rp.flask import init_app, require_profile

PAPERS = {"maths-2024-p1": {"title": "Mathematics 2024 Paper 1", "url": "/files/maths-2024-p1.pdf"},
          "welsh-2024-p1": {"title": "Welsh 2024 Paper 1", "url": "/files/welsh-2024-p1.pdf"}}


def create_app(config: dict) -> Flask:
    app = Flask(__name__)
    init_app(app, ResourceServer(config["issuer"], audience=config["audience"]))

    @app.get("/papers")
    @require_profile("resources")
    def list_papers():
        return {"papers": [{"id": pid, "title": p["title"]} for pid, p in PAPERS.items()]}

    @app.get("/papers/<paper_id>")
    @require_profile("resources")
    def paper(paper_id: str):
        if paper_id not in PAPERS:
            abort(404)
        return {"id": paper_id, **PAPERS[paper_id]}

    return app
