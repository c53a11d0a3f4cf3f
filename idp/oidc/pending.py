"""Authorization requests waiting for the person to sign in (one record kind, one module): the
authorize endpoint remembers them, the sign-in journey reads what they ask for (acr, where they
answer to) and consumes each once, when the session starts, to resume it."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import session, url_for

from .. import protocol, secrets
from ..records import Record

REQUESTS = Record("authreq", ttl=1800)  # seconds a person has to sign in before the client must start again
#: the query parameter, and the key in the signed state cookie, that mark a request resumed after sign-in
RESUME_PARAM = "_resume"
_RESUMED = "resumed"


def remember(args: dict, *, pushed: bool = False) -> str:
    """Keep a validated authorization request (its redirect URI already matched) until the person
    has signed in; its id goes to the sign-in pages. ``pushed``: it came through the pushed
    authorization request endpoint, and resumes the same way."""
    request_id = secrets.token(16)
    REQUESTS.put_json(request_id, {"args": args, "pushed": pushed})
    return request_id


def _read(request_id: str | None) -> dict | None:
    if not isinstance(request_id, str) or not request_id or len(request_id) >= 64:
        return None
    record = REQUESTS.get_json(request_id)
    return None if record is None else record["args"]


def requested_acr(request_id: str | None) -> str:
    """The strongest second factor the request asked for (acr_values), if any: a phishing-resistant
    one, or any (a remembered device does not stand in for it)."""
    args = _read(request_id) or {}
    wanted = str(args.get("acr_values", "")).split()
    for acr in (protocol.ACR_PHISHING_RESISTANT, protocol.ACR_MFA):
        if acr in wanted:
            return acr
    return ""


def redirect_uri_of(request_id: str | None) -> str | None:
    """The registered redirect URI the request will answer to."""
    return (_read(request_id) or {}).get("redirect_uri")


def resume_url(request_id: str | None) -> str | None:
    """Consume the request (once: a second sign-in cannot resume it again) and return where the
    browser goes to finish it; the state cookie remembers that it was resumed (``prompt=login``
    and ``max_age`` are then satisfied by the sign-in just made)."""
    if not isinstance(request_id, str) or not request_id or len(request_id) >= 64:
        return None
    record = REQUESTS.take_json(request_id)
    if record is None:
        return None
    session[_RESUMED] = request_id
    args = record["args"]
    if record["pushed"]:
        # Pushed again, under a new single-use reference: the browser still carries nothing it
        # could change, and a client that must push its requests is satisfied.
        from . import par

        request_uri, _ = par.push(args["client_id"], args)
        args = {"client_id": args["client_id"], "request_uri": request_uri}
    return url_for("authorize.authorize") + "?" + urlencode({**args, RESUME_PARAM: request_id})


def was_resumed(resume_id: str | None) -> bool:
    """True (once) if this browser has just signed in for the request ``resume_id``."""
    return bool(resume_id) and session.pop(_RESUMED, None) == resume_id
