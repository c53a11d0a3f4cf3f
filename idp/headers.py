"""Strict security headers on every response (and ``Cache-Control: no-store`` unless a response
says otherwise), added as WSGI middleware.

Done at the WSGI layer (a set lookup and a list append per response) rather than with
werkzeug's Headers.setdefault, which scans the header list for each name: these headers
are on every response, the token endpoint's included.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask

_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action {form_action}; frame-ancestors 'none'; base-uri 'none'")
#: Forms post to this provider only. A page whose form may end in a redirect to a relying party
#: (the last sign-in step, the sign-out confirmation) names that one client's origin as well
#: (``allow_form_redirect``): browsers check form-action on the redirects after a submission.
CSP = _CSP.format(form_action="'self'")


def allow_form_redirect(response, uri: str | None):
    """Let this response's forms lead, through redirects, to ``uri``'s origin (a registered
    redirect URI the protocol is about to send the browser to)."""
    parts = urlsplit(uri or "")
    if parts.scheme in ("https", "http") and parts.netloc and all(c not in parts.netloc for c in " ;,'\"\\"):
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        response.headers["Content-Security-Policy"] = _CSP.format(form_action=f"'self' {origin}")
    return response


class SecurityHeaders:
    def __init__(self, wsgi_app, headers: list[tuple[str, str]]) -> None:
        self.wsgi_app = wsgi_app
        self.headers = headers

    def __call__(self, environ, start_response):
        def start(status, response_headers, exc_info=None):
            present = {name.lower() for name, _ in response_headers}
            response_headers.extend(h for h in self.headers if h[0].lower() not in present)
            return start_response(status, response_headers, exc_info)

        return self.wsgi_app(environ, start)


def init_app(app: Flask) -> None:
    settings = app.config["IDP_SETTINGS"]
    headers = [
        ("Content-Security-Policy", CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        # The full Referer to this site's own pages (Flask-WTF refuses a form posted over HTTPS without
        # one from this origin), and nothing to any other site: no code, state or path leaks out.
        ("Referrer-Policy", "same-origin"),
        # Nothing this provider answers may be kept by a cache (pages with codes and names, tokens,
        # introspection): the one place that says so. What may be cached (JWKS, discovery, static
        # files) says so itself, and a response's own Cache-Control is never replaced.
        ("Cache-Control", "no-store"),
    ]
    if not settings.issuer_is_local_http:
        headers.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
    app.wsgi_app = SecurityHeaders(app.wsgi_app, headers)
