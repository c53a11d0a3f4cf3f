"""What a caller gets when a request cannot be served: never a stack trace, always in the form the
caller understands (a page for a person, RFC 9457 problem+json under /api/v1, an OAuth error
object at the protocol endpoints), with the request id to quote.

- 503 with Retry-After when PostgreSQL or Redis cannot be reached: requests fail closed and the
  next one tries again (the pool and the store reconnect by themselves).
- 400 with a page a person can act on when a form comes back without its CSRF token (the page
  was left open past the session, or was not this site's own).
- 413 when a body is over the size limit, 429 when a rate limit is reached, 500 for anything else.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFError
from limits.errors import StorageError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import InternalServerError, RequestEntityTooLarge, TooManyRequests

from . import metrics
from .extensions import db, request_id, server_gone
from .store import StoreUnavailable

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
#: the largest request body accepted anywhere (the biggest legitimate one, a client registration
#: with an inline JWK Set or a WebAuthn answer, is a few kilobytes)
MAX_REQUEST_BYTES = 256 * 1024
API_PREFIX = "/api/v1/"
#: protocol endpoints that answer machines in JSON (RFC 6749 §5.2, RFC 6750 §3, RFC 7591 §3.2.2,
#: RFC 9126 §2.3)
PROTOCOL_PATHS = ("/token", "/introspect", "/revoke", "/register", "/userinfo", "/par")


def _wants_problem() -> bool:
    return request.path.startswith(API_PREFIX)


def _wants_oauth_json() -> bool:
    return request.path.startswith(PROTOCOL_PATHS)


def _answer(status: int, *, title: str, detail: str, oauth_error: str, page: str, headers=None) -> Response:
    if _wants_problem():
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    elif _wants_oauth_json():
        body = {"error": oauth_error, "error_description": detail}
        response = Response(json.dumps(body), status=status, mimetype="application/json")
    else:
        response = Response(render_template(page, request_id=request_id()), status=status, mimetype="text/html")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _forget_the_transaction() -> None:
    """Whatever this request had in its database session is abandoned; a dead connection is
    discarded by the pool (and replaced at the next checkout, pool_pre_ping)."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection may be gone: removing the session is enough
        pass
    db.remove()


def unavailable(error):
    metrics.backend_unavailable("database" if isinstance(error, DBAPIError) else "store")
    _forget_the_transaction()
    log.warning("backend unavailable: %s", error.__class__.__name__, extra={"error": str(error)[:300]})
    return _answer(503, title="Service unavailable", oauth_error="temporarily_unavailable",
                   detail="The service is briefly unavailable. Try again in a few seconds.",
                   page="errors/unavailable.html", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def database_error(error: DBAPIError):
    if server_gone(error):
        return unavailable(error)
    return _server_error(error)  # a statement the database refused (a constraint, a bug): ours


def too_large(_error):
    return _answer(413, title="Request too large", oauth_error="invalid_request",
                   detail=f"The request is larger than {MAX_REQUEST_BYTES // 1024} KB.", page="errors/too_large.html")


def too_many(_error):
    return _answer(429, title="Too many requests", oauth_error="slow_down",
                   detail="Too many attempts in a short time. Wait a few minutes and try again.",
                   page="errors/too_many.html", headers={"Retry-After": "60"})


def form_refused(error: CSRFError):
    log.info("form refused: %s", error.description)
    return _answer(400, title="Form not accepted", oauth_error="invalid_request",
                   detail="The form could not be accepted. Reload the page and try again.",
                   page="errors/form_refused.html")


def internal_error(error):
    original = getattr(error, "original_exception", None) or error
    if isinstance(original, (StoreUnavailable, StorageError)):
        return unavailable(original)
    if isinstance(original, DBAPIError):
        return database_error(original)
    return _server_error(original)


def _server_error(original):
    _forget_the_transaction()
    log.error("unhandled error", exc_info=original if isinstance(original, BaseException) else None)
    return _answer(500, title="Internal error", oauth_error="server_error",
                   detail="Something went wrong on our side. Quote the request id if you contact the helpdesk.",
                   page="errors/internal.html")


def _refuse_oversized_bodies() -> None:
    """Before anything reads the body (some readers treat a body they cannot read as empty):
    a declared length over the limit is refused at once; an undeclared one is cut by werkzeug."""
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        raise RequestEntityTooLarge()


def init_app(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_oversized_bodies)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_REQUEST_BYTES
    app.register_error_handler(StoreUnavailable, unavailable)
    app.register_error_handler(StorageError, unavailable)
    app.register_error_handler(DBAPIError, database_error)
    app.register_error_handler(RequestEntityTooLarge, too_large)
    app.register_error_handler(TooManyRequests, too_many)
    app.register_error_handler(CSRFError, form_refused)
    app.register_error_handler(InternalServerError, internal_error)


