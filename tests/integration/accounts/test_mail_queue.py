"""The mail server down: nothing is lost (docs/operations.md, "When the mail server is down").

An email the server cannot take yet (no answer, or a 4xx "try later") waits in the durable queue in
the database, sealed, and is sent once the server is back, by any process, after a restart too,
once. The pages that promised an email say it may be late. A permanent refusal (5xx, a bad address)
is still refused at once: tests/integration/accounts/test_invite_delivery.py."""

from __future__ import annotations

from datetime import timedelta

from aiosmtpd.controller import Controller
from sqlalchemy import select

from idp.clock import utcnow
from idp.extensions import db
from idp.notify import queue
from idp.notify.mail import mailer
from tests.support import make_account

EO = "eo@centre.example"
STARTER = "new.starter@centre.example"
PASSWORD = "correct horse battery staple"
NOTICE = 'id="mail-may-be-late"'


def queued(app) -> list:
    with app.app_context():
        return db.session.scalars(select(queue.QueuedMail)).all()


def send_due(app, later: float = 3600) -> int:
    """What a process's poller does once the retry is due (``later`` seconds from now)."""
    with app.app_context():
        return queue.deliver_due(mailer(), now=utcnow() + timedelta(seconds=later))


def test_mail_is_kept_while_the_server_is_down_and_sent_once_when_it_is_back(
        make_settings, smtp, browser, kit, background_sends):
    from tests.integration.accounts.conftest import SmtpSink, build_app, free_port

    down_port = free_port()  # nothing listens here yet
    settings = make_settings(mail={**smtp.settings(), "smtp_port": down_port})
    app = build_app(settings)
    with app.app_context():
        make_account(EO, password=PASSWORD)

    person = browser(app)
    page = person.forgot(EO)
    assert page.status_code == 303
    for future in background_sends:
        future.result(timeout=15)
    shown = person.get("/forgot/code").get_data(as_text=True)
    assert NOTICE in shown and "taking longer than usual" in shown

    # an invite made while the server is down is kept, with its email
    sub = kit.invite(app, STARTER)
    assert kit.account_row(app, STARTER)["status"] == "invited"
    rows = queued(app)
    assert len(rows) == 2
    for row in rows:  # sealed at rest: neither the address nor the text is readable in the database
        assert b"centre.example" not in row.sealed and b"Subject" not in row.sealed

    # the server comes back; the process that sends is another one (a restart): nothing was lost
    app.extensions["idp.db"].dispose()
    restarted = build_app(settings)
    sink = SmtpSink()
    sink.port = down_port
    controller = Controller(sink, hostname="127.0.0.1", port=down_port)
    controller.start()
    try:
        assert send_due(restarted, later=0) == 0  # not due yet: retries wait their turn
        assert send_due(restarted) == 2
        assert send_due(restarted) == 0  # once each
        code = kit.reset_code(sink.take(EO, kit.RESET_SUBJECT))
        temporary = kit.temporary_password(sink.take(STARTER, kit.INVITE_SUBJECT))
        assert len(sink.received) == 2
    finally:
        controller.stop()
    assert queued(restarted) == []
    with restarted.app_context():
        assert queue.delayed() is False
        assert kit.audit_events(restarted, "mail.failed") == []

    # the late email's code and temporary password still work
    assert person.reset(code, "a brand new passphrase 42").status_code == 303
    assert browser(restarted).sign_in(STARTER, temporary).status_code == 303
    assert kit.account_row(restarted, STARTER)["sub"] == sub
    restarted.extensions["idp.db"].dispose()


def test_a_try_later_answer_is_retried_and_a_message_refused_for_good_is_given_up(mail_app, smtp, kit):
    app = mail_app
    with app.app_context():
        make_account(EO, password=PASSWORD)
    smtp.refuse_rcpt = "451 4.3.0 Mailbox busy, try again later"
    kit.invite(app, STARTER)  # a 4xx is not a refusal: the invite stands, its email waits
    assert len(queued(app)) == 1 and kit.account_row(app, STARTER)["status"] == "invited"

    smtp.refuse_rcpt = None
    assert send_due(app) == 1
    smtp.take(STARTER, kit.INVITE_SUBJECT)

    # a message the server keeps deferring is given up after the last retry, audited
    smtp.refuse_rcpt = "451 4.3.0 try again later"
    kit.resend(app, kit.account_row(app, STARTER)["sub"])
    with app.app_context():
        row = db.session.scalars(select(queue.QueuedMail)).one()
        row.attempts = len(queue.BACKOFF)
        db.session.commit()
    assert send_due(app) == 0
    assert queued(app) == []
    assert [e.details["attempts"] for e in kit.audit_events(app, "mail.failed")] == [len(queue.BACKOFF)]
