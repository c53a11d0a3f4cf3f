"""What every feature's views share: rendering a page with its form, the signed-in person's
session, and the journey's CSP."""

from __future__ import annotations

from flask import make_response, render_template, request

from .. import cookies, headers, journey, policy
from ..accounts import sessions


def page(template: str, form=None, *, error: str | None = None, status: int | None = None, **context):
    """Render a page (400 after a refused POST unless told otherwise)."""
    if status is None:
        status = 400 if request.method == "POST" else 200
    return make_response(render_template(template, form=form, error=error, **context), status)


def signed_in():
    """The SSO session of this browser's cookie, if live (touching its idle timer)."""
    return sessions.find(cookies.read())


def limit(name: str):
    """A rate limit from policies/security.toml [rate_limits], read when it is checked."""
    return lambda: getattr(policy.current().sec("rate_limits"), name)


def journey_form_targets(response):
    """While a sign-in for a relying party is under way, its pages' forms may end (through
    /authorize) at that client's redirect URI: the page's CSP form-action names that origin."""
    if response.mimetype == "text/html" and response.status_code < 500:
        target = journey.form_redirect_target(journey.current())
        if target:
            headers.allow_form_redirect(response, target)
    return response
