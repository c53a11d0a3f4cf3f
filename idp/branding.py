"""How the pages look: GOV.UK Frontend's components through its Jinja macros (govuk-frontend-jinja,
imported as ``govuk_frontend_jinja/components/...``), its compiled CSS and JavaScript in
static/govuk/ (built by frontend/build.sh, with GOV.UK's crown and typeface off), and the board's
own names and logo from ``[branding]``.

Templates get ``branding`` (the names in the page's language, the logo's URL) and ``form_problems`` (a form's errors for the error
summary, each linked to its field)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    has_request_context,
    request,
    url_for,
)
from flask_babel import get_locale, gettext
from jinja2 import ChoiceLoader, PackageLoader, PrefixLoader

from .config import LOGO_TYPES
from .i18n import N_

bp = Blueprint("branding", __name__)
LOGO = "idp.branding.logo"
#: the default [branding] service_name (idp.config), named here so its Welsh is in the catalogue
DEFAULT_SERVICE_NAME = N_("Exam board services")


@dataclass(frozen=True)
class Branding:
    service_name: str
    #: empty when the header shows service_name alone
    board_name: str
    logo_url: str | None


def _in_page_language(english: str, welsh: str) -> str:
    if str(get_locale()) != "cy":
        return english
    # no Welsh name configured: the catalogue's translation of the name (the default has one)
    return welsh or gettext(english)


def current() -> Branding:
    branding = current_app.config["IDP_SETTINGS"].branding
    logo = current_app.extensions.get(LOGO)
    return Branding(service_name=_in_page_language(branding.service_name, branding.service_name_cy),
                    board_name=_in_page_language(branding.board_name, branding.board_name_cy)
                    if branding.board_name else "",
                    logo_url=url_for("branding.logo", v=logo[2]) if logo else None)


@bp.get("/branding/logo")
def logo():
    found = current_app.extensions.get(LOGO)
    if found is None:
        abort(404)
    data, media_type, version = found
    response = Response(data, mimetype=media_type)
    # the URL carries the file's digest, so a new logo is a new URL
    response.cache_control.public = True
    response.cache_control.max_age = 31536000 if request.args.get("v") == version else 300
    return response


def form_problems(form, error: str | None = None, error_field: str | None = None,
                  order: tuple[str, ...] = ()) -> list[dict]:
    """Every error on the page, for GOV.UK's error summary: each field's messages linked to that
    field, in the page's order (``order`` names the fields as the page shows them, when that is not
    the form's own order), then the page's own ``error`` linked to ``error_field`` (the field it is
    about). Errors of hidden fields (an expired CSRF token) are listed without a link: there is
    nothing to go to."""
    problems = []
    if form is not None:
        fields = list(form)
        fields.sort(key=lambda f: order.index(f.name) if f.name in order else len(order))
        for field in fields:
            hidden = field.type in ("HiddenField", "CSRFTokenField")
            for message in field.errors or ():
                problems.append({"text": message, "href": None if hidden else f"#{field.id}"})
    if error:
        problems.append({"text": error, "href": f"#{error_field}" if error_field else None})
    return problems


def init_app(app: Flask) -> None:
    # GOV.UK Frontend's macros beside the provider's own templates
    app.jinja_loader = ChoiceLoader([
        app.jinja_loader,
        PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
    ])
    path = app.config["IDP_SETTINGS"].logo_path
    if path is not None:  # checked when the settings were loaded
        data = path.read_bytes()
        app.extensions[LOGO] = (data, LOGO_TYPES[path.suffix.lower()], hashlib.sha256(data).hexdigest()[:16])
    app.register_blueprint(bp)
    # pages only: emails are rendered outside a request too (commands sending invites)
    app.context_processor(lambda: {"branding": current()} if has_request_context() else {})
    app.jinja_env.globals.update(form_problems=form_problems)
