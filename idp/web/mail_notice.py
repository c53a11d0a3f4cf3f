"""A notice on the pages that promise an email, while the mail server is not taking mail and
messages wait in the durable queue (idp.notify.queue): the email is coming, but may be late."""

from __future__ import annotations

from flask import Flask, request

from ..extensions import settings
from ..notify import queue

#: the pages right after an email was promised: a code, an invite, a notice of a change
EMAIL_PAGES = frozenset({
    "signin.reset", "signin.confirm_email", "mfa.signin_challenge", "mfa.verify", "mfa.signin_setup",
    "mfa.account_setup", "users.person", "users.index", "board.person", "board.centre", "board.staff",
})


def mail_may_be_late() -> bool:
    return (request.endpoint in EMAIL_PAGES and settings().mail.backend == "smtp" and queue.delayed())


def init_app(app: Flask) -> None:
    app.jinja_env.globals["mail_may_be_late"] = mail_may_be_late
