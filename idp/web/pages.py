"""What every feature's views share: rendering a page with its form, the signed-in person's
session (looked up once per request), what every page's header knows about them, words and times
in the page's language, and the journey's CSP."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import g, has_request_context, make_response, redirect, render_template, request, url_for
from flask_babel import format_datetime, get_locale
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError

from .. import cookies, headers, inputs, journey, policy
from ..accounts import sessions
from ..admin import board, people
from ..mfa import services as mfa

#: the times people read are the UK's
LONDON = ZoneInfo("Europe/London")
_SIGNED_IN = "idp_signed_in"
#: the sign-in journey's pages (and a forgotten password's): whoever is signing in there may not be
#: the person this browser is still signed in as (prompt=login, a shared computer), so their
#: headers name no one
JOURNEY_PATHS = ("/signin", "/forgot")


def actor_of(entry):
    """The signed-in person as an actor of administration: who they are, and whether they passed
    a second factor within ``[mfa] fresh_seconds`` (handing someone's account over asks for it)."""
    return replace(people.party_of(entry.account), recent_second_factor=mfa.is_fresh(entry))


def confirm_it_is_you():
    """To the second-factor check, and back to this page once it is passed."""
    return redirect(url_for("mfa.verify", next=request.path), code=303)


def page(template: str, form=None, *, error: str | None = None, status: int | None = None, **context):
    """Render a page (400 after a refused POST unless told otherwise)."""
    if status is None:
        status = 400 if request.method == "POST" else 200
    return make_response(render_template(template, form=form, error=error, **context), status)


def signed_in():
    """The SSO session of this browser's cookie, if live (touching its idle timer). Looked up once
    per request: the rate limiter's key, the view and the page's header share it."""
    # kept with the request it is for: ``g`` is the app context's, which several requests share
    # when they are made inside one (as tests do)
    this_request = request._get_current_object()
    found = g.get(_SIGNED_IN)
    if found is None or found[0] is not this_request:
        # noted first: if the lookup fails (the database gone), the error page does not try again
        setattr(g, _SIGNED_IN, (this_request, None))
        setattr(g, _SIGNED_IN, (this_request, sessions.find(cookies.read())))
    return g.get(_SIGNED_IN)[1]


@dataclass(frozen=True)
class Person:
    """The signed-in person as the header shows them: plain values, so a page drawn after the
    request's transaction was abandoned (an error page) can still show them."""

    name: str


def header_context() -> dict:
    """``person``, ``may_manage_users`` and ``may_open_board`` for every page's header (base.html), while this browser
    has a live session; nothing otherwise, and nothing on the sign-in journey's pages."""
    if not has_request_context() or not cookies.read():
        return {}
    if any(request.path == path or request.path.startswith(path + "/") for path in JOURNEY_PATHS):
        return {}
    try:
        entry = signed_in()
        if entry is None or entry.ended_at is not None:  # (ended by this very request: signing out)
            return {}
        account = entry.account
        party = people.party_of(account)
        return {"person": Person(name=account.name or account.email),
                "may_manage_users": bool(policy.checks().may_manage_users(party)),
                "may_open_board": bool(board.may_open(party, "home"))}
    except SQLAlchemyError:
        # the page is the one saying the database cannot be reached (or another error page, drawn
        # after the transaction was abandoned): it is shown without the header's name and links
        return {}


def in_page_language(english: str, welsh: str = "") -> str:
    """The Welsh of a name or description from the policy or a client's registration on a Welsh
    page, where there is one; else the English."""
    return welsh if welsh and str(get_locale()) == "cy" else english


# ------------------------------------------------------------------ what the consoles share
def page_number() -> int:
    """The ``page`` asked for: anything but a sensible whole number is the first page."""
    raw = request.args.get("page", "1")
    # ASCII digits only: str.isdigit() is true of '¹' and other digits int() refuses
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 6 and int(raw) > 0 else 1


def pagination(current: int, pages: int, link) -> dict | None:
    """GOV.UK pagination's parameters: the first, last and nearby pages, with gaps shown as
    ellipses. ``link(n)`` is the URL of page n."""
    if pages <= 1:
        return None
    shown = sorted({1, pages, *range(max(1, current - 1), min(pages, current + 1) + 1)})
    items, last = [], 0
    for number in shown:
        if number - last > 1:
            items.append({"ellipsis": True})
        items.append({"number": number, "href": link(number), "current": number == current,
                      "visuallyHiddenText": _("Page %(number)s", number=number)})
        last = number
    return {
        "items": items,
        "landmarkLabel": _("Pages"),
        "previous": {"href": link(current - 1), "text": _("Previous")} if current > 1 else None,
        "next": {"href": link(current + 1), "text": _("Next")} if current < pages else None,
    }


def role_name(role_id: str) -> str:
    role = policy.current().roles.get(role_id)
    if role is None:
        return role_id
    return in_page_language(role.name, role.name_cy)


def profile_name(profile_id: str) -> str:
    profile = policy.current().profiles.get(profile_id)
    if profile is None:
        return profile_id
    return in_page_language(profile.name, profile.name_cy)


def local_time(moment: datetime | None) -> str:
    """A point in time as a person reads it: UK time, in the page's language ("2 December 2026, 14:05")."""
    if moment is None:
        return ""
    return format_datetime(moment.astimezone(LONDON), "d MMMM yyyy, HH:mm", rebase=False)


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


def init_app(app) -> None:
    """What every page's template gets: the header's ``person`` and ``may_manage_users``, and the
    helpers ``in_page_language``, ``local_time`` and ``readable_phone_number``."""
    app.context_processor(header_context)
    app.jinja_env.globals.update(in_page_language=in_page_language, local_time=local_time,
                                 readable_phone_number=inputs.readable_phone_number)
