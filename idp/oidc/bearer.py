"""Bearer tokens as RFC 6750 has them sent and refused: one reader for every resource this
provider serves (userinfo, the admin API, client registration) and one way to say why a token was
refused in ``WWW-Authenticate``."""

from __future__ import annotations

from flask import request


class BearerProblem(Exception):
    """The request sent its token in a way RFC 6750 §2 does not allow (400 invalid_request)."""


def read(*, allow_form: bool = False) -> str | None:
    """The bearer token of this request, or None if it sent none. From the Authorization header,
    or (``allow_form``, userinfo only) an ``access_token`` form parameter of a POST; never both,
    never another scheme (BearerProblem)."""
    header = request.headers.get("Authorization", "")
    in_form = allow_form and request.method == "POST" and \
        request.mimetype == "application/x-www-form-urlencoded" and "access_token" in request.form
    if header:
        if in_form:
            raise BearerProblem("Send the token in one place only.")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise BearerProblem("Use the Bearer scheme.")
        return value.strip()
    if in_form:
        return request.form["access_token"] or None
    return None


def challenge(realm: str, error: str | None = None, description: str | None = None, scope: str | None = None) -> str:
    """A ``WWW-Authenticate`` value. Only fixed ASCII text goes in: never anything from the token."""
    parts = [f'Bearer realm="{realm}"']
    for name, value in (("error", error), ("error_description", description), ("scope", scope)):
        if value:
            safe = value.encode("ascii", "replace").decode().replace("\\", "").replace('"', "'")
            parts.append(f'{name}="{safe}"')
    return ", ".join(parts)
