"""What the board console's pages share: the blueprint, who is looking (signed in, or sent to sign
in), the part of the console each page belongs to (refused with a 403 page, and audited, for
anyone the policy does not let in), a refusal from a service shown with its reason, and the words
and dates the templates show."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, redirect, url_for
from flask_babel import format_date, format_time
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...accounts.models import SsoSession
from ...admin import board, errors
from ...policy.decisions import Party
from ..pages import actor_of, confirm_it_is_you, page, profile_name, role_name, signed_in

bp = Blueprint("board", __name__, url_prefix="/board")
LONDON = ZoneInfo("Europe/London")
PER_PAGE = 25
#: an HTTP status for each kind of refusal
STATUS = {"denied": 403, "not_found": 404, "conflict": 409, "invalid": 400}
#: the console's parts, in the order the home page and the navigation show them
AREAS = (
    ("centres", "board.centres", _l("Centres")),
    ("people", "board.people_search", _l("Helpdesk")),
    ("clients", "board.clients", _l("Client services")),
    ("keys", "board.keys", _l("Signing keys")),
    ("audit", "board.audit", _l("Audit trail")),
    ("staff", "board.staff", _l("Board staff")),
)
STATUS_NAMES = {
    "locked": _l("Locked"), "invite_expired": _l("Invite expired"), "invited": _l("Invited"),
    "mfa_not_set_up": _l("Second factor not set up"), "active": _l("Active"), "disabled": _l("Disabled"),
}
#: GOV.UK tag colours: what needs someone to act stands out; the words always say it too
STATUS_COLOURS = {"locked": "red", "invite_expired": "orange", "invited": "blue", "mfa_not_set_up": "yellow",
                  "active": "green", "disabled": "grey"}
METHOD_NAMES = {"totp": _l("Authenticator app"), "webauthn": _l("Passkey or security key"),
                "sms": _l("Text message"), "email": _l("Email code")}


@dataclass(frozen=True)
class Viewer:
    """The signed-in person looking at the board console, and what the policy knows of them."""

    entry: SsoSession
    actor: Party

    @property
    def account(self):
        return self.entry.account


def board_page(area: str):
    """A page of one part of the console: for signed-in people (others go to sign in) whom the
    policy lets into that part (anyone else gets a 403 page, audited, whatever the method and
    whatever the form holds); a refusal from the services is shown as a page with its reason."""

    def decorate(view):
        @functools.wraps(view)
        def run(*args, **kwargs):
            entry = signed_in()
            if entry is None:
                return redirect(url_for("signin.signin"))
            viewer = Viewer(entry, actor_of(entry))
            try:
                board.open_area(viewer.actor, area)
                return view(viewer, *args, **kwargs)
            except errors.SecondFactorNeeded:
                return confirm_it_is_you()
            except errors.AdminError as exc:
                return refused(viewer, exc)

        return run

    return decorate


def render(viewer: Viewer, template: str, form=None, *, status: int | None = None, **context):
    areas = [(name, url_for(endpoint), label) for name, endpoint, label in AREAS
             if board.may_open(viewer.actor, name)]
    return page(template, form, status=status, person=viewer.account, may_manage_users=True,
                board_areas=areas, **context)


def refused(viewer: Viewer, exc: errors.AdminError):
    return render(viewer, "board/refused.html", status=STATUS.get(exc.kind, 400), message=exc.message,
                  kind=exc.kind)


def form_error(form, exc: errors.AdminError, fields: dict[str, str] | None = None) -> str | None:
    """Put a service's refusal on the form field it is about (``fields`` maps the service's field
    names to the form's); a refusal about no field of the form is returned, for the page to show
    above the form."""
    name = (fields or {}).get(exc.field or "", exc.field)
    if name and name in form and form[name].type not in ("HiddenField", "CSRFTokenField"):
        form[name].errors = [*(form[name].errors or []), exc.message]
        return None
    return exc.message


def when(moment: datetime | None) -> str:
    """A moment as people in the UK read it: the date and the time in London."""
    if moment is None:
        return ""
    local = moment.astimezone(LONDON)
    return _("%(date)s at %(time)s", date=format_date(local, "d MMMM yyyy", rebase=False),
             time=format_time(local, "HH:mm", rebase=False))


@bp.context_processor
def _words():
    return {"role_name": role_name, "profile_name": profile_name, "when": when, "status_names": STATUS_NAMES,
            "status_colours": STATUS_COLOURS, "method_names": METHOD_NAMES}
