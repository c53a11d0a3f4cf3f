"""Flask glue (``pip install examboard-rp[flask]``).

    from examboard_rp.flask import init_app, require_profile, current_token

    init_app(app, ResourceServer(issuer, audience=client_id))

    @app.get("/results")
    @require_profile("results.view")
    def results():
        return {"centre": current_token().centre}
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Flask, current_app, g, jsonify, request

from .errors import RPError
from .logout import LogoutRequest, LogoutTokenValidator, logout_response
from .resource import ResourceServer
from .tokens import AccessToken

EXTENSION = "examboard_rp"


def init_app(app: Flask, server: ResourceServer) -> ResourceServer:
    """Make ``server`` the one the decorators of this app use."""
    app.extensions[EXTENSION] = server
    return server


def resource_server() -> ResourceServer:
    try:
        return current_app.extensions[EXTENSION]
    except KeyError:
        raise RuntimeError("examboard_rp: call init_app(app, ResourceServer(...)) first") from None


def error_response(exc: RPError):
    """The Flask response for an RPError (401 + WWW-Authenticate, 403 with the missing profile …)."""
    server = current_app.extensions.get(EXTENSION)
    status, headers, body = exc.http_response(server.realm if server else "examboard")
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response


def require_profile(*profiles: str):
    """Decorator: a valid access token holding every one of ``profiles`` (none: any valid token);
    a token bound to a key (DPoP) with its proof for this request. The token is then
    ``current_token()``. Behind a proxy, let Flask see the URL the client used (werkzeug's
    ProxyFix): a proof names it."""

    def decorate(view: Callable):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            try:
                g.examboard_rp_token = resource_server().authorize(
                    request.headers.get("Authorization"), *profiles, dpop=request.headers.getlist("DPoP"),
                    method=request.method, url=request.base_url)
            except RPError as exc:
                return error_response(exc)
            return view(*args, **kwargs)

        return wrapper

    return decorate


require_token = require_profile()


def current_token() -> AccessToken:
    """The validated access token of this request (inside a decorated view)."""
    token = g.get("examboard_rp_token")
    if token is None:
        raise RuntimeError("examboard_rp: current_token() outside a @require_profile view")
    return token


def logout_view(validator: LogoutTokenValidator, on_logout: Callable[[LogoutRequest], object]) -> Callable:
    """A view for the back-channel logout URI: 200 when the session was ended, else 400 with
    {"error": ...}; always Cache-Control: no-store.

        app.add_url_rule("/backchannel-logout", view_func=logout_view(validator, end_sessions),
                         methods=["POST"])
    """

    def backchannel_logout():
        token = request.form.get("logout_token") if request.mimetype == "application/x-www-form-urlencoded" \
            else None
        status, headers, body = logout_response(validator, token, on_logout)
        response = jsonify(body) if body is not None else current_app.response_class(b"", status=status)
        response.status_code = status
        response.headers.update(headers)
        return response

    return backchannel_logout
