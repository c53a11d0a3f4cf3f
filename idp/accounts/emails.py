"""The emails people receive about their account, in their own language."""

from __future__ import annotations

from types import SimpleNamespace
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from flask import render_template
from flask_babel import force_locale
from sqlalchemy import select

from .. import policy
from ..extensions import db
from ..extensions import settings as app_settings
from ..notify.mail import mailer
from .models import Account

LONDON = ZoneInfo("Europe/London")


def _send(account, template: str, **context) -> None:
    """Render ``mail/<template>.subject.txt``, ``.txt`` and ``.html`` in the person's language (each
    a template, so the catalogue has every word of it) and send them."""
    settings = app_settings()
    with force_locale(account.language or "en"):
        context.update(account=account, issuer=settings.server.issuer,
                       when=lambda moment: _when(moment, account.language))
        subject = " ".join(render_template(f"mail/{template}.subject.txt", **context).split())
        text = render_template(f"mail/{template}.txt", **context)
        html = render_template(f"mail/{template}.html", **context)
        mailer().send(account.email, subject, text, html)


def _when(moment, language: str | None) -> dict:
    """A moment as the recipient reads it, in their language: the date and the time in London
    (British English, not Babel's American "en")."""
    local, locale = moment.astimezone(LONDON), "cy" if language == "cy" else "en_GB"
    return {"date": format_date(local, "long", locale=locale), "time": format_time(local, "HH:mm", locale=locale)}


def recipient(account) -> SimpleNamespace:
    """What an email needs of an account, as a plain copy a background thread can use."""
    return SimpleNamespace(email=account.email, given_name=account.given_name, language=account.language,
                           invite_expires_at=account.invite_expires_at)


def send_invite(invited) -> None:
    """The invite: the sign-in link and the temporary password, the centre, who invited them, and
    whom to ask for a new invite if it expires: someone at their centre when the centre's own
    staff may invite their type of account (an admin or user), else the exam board (an Exams
    Officer)."""
    account = invited.account
    pol = policy.current()
    inviter = db.session.scalar(select(Account).where(Account.sub == account.invited_by)) \
        if account.invited_by else None
    _send(account, "invite", temporary_password=invited.temporary_password,
          inviter=inviter.name or inviter.email if inviter is not None else None,
          inviter_is_board=inviter is None or inviter.centre_id is None,
          ask_centre=any(role.centre and account.role in role.may["invite"] for role in pol.roles.values()),
          board=_board_name(account.language))


def _board_name(language: str | None) -> str:
    branding = app_settings().branding
    return branding.board_name_cy if language == "cy" and branding.board_name_cy else branding.board_name


def send_reset_code(account, code: str, minutes: int) -> None:
    _send(account, "reset_code", code=code, minutes=minutes)


def send_password_changed(account, everywhere: bool = True) -> None:
    """``everywhere``: every session ended (a reset); otherwise all but the one it was changed in."""
    _send(account, "password_changed", everywhere=everywhere)


def send_locked(account, minutes: int) -> None:
    _send(account, "locked", minutes=minutes)


def send_mfa_code(account, code: str) -> None:
    _send(account, "mfa_code", code=code)


def send_recovery_code_used(account, remaining: int) -> None:
    _send(account, "recovery_code_used", remaining=remaining)


def send_mfa_reset(account) -> None:
    _send(account, "mfa_reset")


def send_email_changed(account, *, new_email: str, to_old_address: bool) -> None:
    """To both addresses when the sign-in address changes: the old one hears where it went (and
    whom to tell if nobody asked for it), the new one that it is now the username."""
    _send(account, "email_changed", new_email=new_email, to_old_address=to_old_address)


def send_email_change_code(account, *, code: str, new_email: str) -> None:
    """To the new address a person asked to sign in with: the code that proves it is theirs."""
    account = SimpleNamespace(**{**vars(account), "email": new_email})
    _send(account, "email_change_code", code=code, new_email=new_email)
