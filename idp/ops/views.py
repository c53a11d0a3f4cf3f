"""/healthz: the process answers. /readyz: the database and the store answer too."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text

from ..extensions import csrf, db, store

bp = Blueprint("ops", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks = {}
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # report, never raise: this endpoint exists to say what is down
        log.warning("readyz: database unreachable", extra={"error": str(exc)})
        checks["database"] = "unreachable"
    try:
        store.ping()
        checks["store"] = "ok"
    except Exception as exc:
        log.warning("readyz: store unreachable", extra={"error": str(exc)})
        checks["store"] = "unreachable"
    ready = all(v == "ok" for v in checks.values())
    response = jsonify(status="ok" if ready else "unavailable", checks=checks)
    response.status_code = 200 if ready else 503
    return response


csrf.exempt(bp)
