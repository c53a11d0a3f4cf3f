"""What the console's pages share: the blueprint, who is looking (signed in, or sent to sign
in), a refusal shown as a page with the policy's reason, and the words and dates the templates
show (names of account types and access profiles in the page's language, London time)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from flask import Blueprint, redirect, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ... import policy
from ...accounts.models import SsoSession
from ...admin import errors
from ...policy.decisions import Party
from ..pages import (
    actor_of,
    confirm_it_is_you,
    in_page_language,
    page,
    profile_name,
    role_name,
    signed_in,
)

bp = Blueprint("users", __name__)
LONDON = ZoneInfo("Europe/London")
PER_PAGE = 25
#: console action -> the board helpdesk page that does it with a reason (endpoints in idp.web.board)
HELPDESK_ACTIONS = {"unlock": "unlock", "resend": "resend", "reset_mfa": "reset_mfa", "email": "change_email",
                    "disable": "disable", "enable": "enable"}
#: an HTTP status for each kind of refusal
STATUS = {"denied": 403, "not_found": 404, "conflict": 409, "invalid": 400}
STATUS_NAMES = {
    "locked": _l("Locked"), "invite_expired": _l("Invite expired"), "invited": _l("Invited"),
    "mfa_not_set_up": _l("Second factor not set up"), "active": _l("Active"), "disabled": _l("Disabled"),
}
#: GOV.UK tag colours: what needs someone to act stands out; the words always say it too
STATUS_COLOURS = {"locked": "red", "invite_expired": "orange", "invited": "blue", "mfa_not_set_up": "yellow",
                  "active": "green", "disabled": "grey"}


@dataclass(frozen=True)
class Viewer:
    """The signed-in person looking at the console, and what the policy knows of them."""

    entry: SsoSession
    actor: Party

    @property
    def account(self):
        return self.entry.account

    def list_url(self, number: str | None) -> str:
        """The list of a centre's people: /users for your own centre, else the centre's own URL."""
        if number is None or number == self.actor.centre:
            return url_for("users.index")
        return url_for("users.index", number=number)

    def helpdesk_url(self, action: str, sub: str) -> str | None:
        """Where this viewer does a helpdesk action (unlock, resend, reset_mfa, email) on a person:
        staff whose actions must carry a reason (board helpdesk) use the board's page for it, which
        asks for the reason; everyone else uses the console's own (None)."""
        if action in HELPDESK_ACTIONS and policy.checks().needs_reason(self.actor):
            return url_for(f"board.{HELPDESK_ACTIONS[action]}", sub=sub)
        return None

    def centre_url(self, endpoint: str, number: str | None, **values) -> str:
        """A centre-wide console page (invite, activity) for this centre, as ``list_url``."""
        if number is None or number == self.actor.centre:
            return url_for(endpoint, **values)
        return url_for(endpoint, number=number, **values)


def console(view):
    """A console page: for signed-in people (others go to sign in); a refusal from the services is
    shown as a page with its reason (403 for what the person may not do)."""

    @functools.wraps(view)
    def run(*args, **kwargs):
        entry = signed_in()
        if entry is None:
            return redirect(url_for("signin.signin"))
        viewer = Viewer(entry, actor_of(entry))
        try:
            return view(viewer, *args, **kwargs)
        except errors.SecondFactorNeeded:
            return confirm_it_is_you()
        except errors.AdminError as exc:
            if kwargs.get("number", "") is None and viewer.actor.centre is None and exc.field == "centre":
                return redirect(url_for("users.index"))  # board staff choose a centre first
            return refused(viewer, exc)

    return run


def render(viewer: Viewer, template: str, form=None, *, status: int | None = None, **context):
    return page(template, form, status=status, **context)


def refused(viewer: Viewer, exc: errors.AdminError):
    return render(viewer, "console/refused.html", status=STATUS.get(exc.kind, 400), message=exc.message,
                  kind=exc.kind)


# ------------------------------------------------------------------ words for the templates
def profile_description(profile_id: str) -> str:
    profile = policy.current().profiles[profile_id]
    return in_page_language(profile.description, profile.description_cy)


def profile_includes(profile_id: str) -> list[str]:
    """The names of the profiles this one brings with it ("Make entries" brings "View entries")."""
    profile = policy.current().profiles.get(profile_id)
    return [profile_name(p) for p in profile.implies] if profile else []


def when(moment: datetime | None) -> str:
    """A moment as people at the centre read it: the date and the time in London, written the
    British way in English ("2 March 2026", which Babel's plain "en" writes the American way)."""
    if moment is None:
        return ""
    local, locale = moment.astimezone(LONDON), "cy" if str(get_locale()) == "cy" else "en_GB"
    return _("%(date)s at %(time)s", date=format_date(local, "long", locale=locale),
             time=format_time(local, "HH:mm", locale=locale))


@bp.context_processor
def _words():
    return {"role_name": role_name, "profile_name": profile_name, "profile_description": profile_description,
            "profile_includes": profile_includes, "when": when, "status_names": STATUS_NAMES,
            "status_colours": STATUS_COLOURS}
