"""The emails people receive about their account, in their own language."""

from __future__ import annotations

from flask import current_app, render_template
from flask_babel import force_locale, gettext as _

from ..notify.mail import mailer


def _send(account, template: str, subject: str, **context) -> None:
    settings = current_app.config["IDP_SETTINGS"]
    with force_locale(account.language or "en"):
        context.update(account=account, issuer=settings.server.issuer)
        text = render_template(f"mail/{template}.txt", **context)
        html = render_template(f"mail/{template}.html", **context)
        mailer().send(account.email, _(subject), text, html)


def send_invite(invited) -> None:
    """The invite: the sign-in link and the temporary password."""
    _send(invited.account, "invite", "You have been invited to exam board services",
          temporary_password=invited.temporary_password)
