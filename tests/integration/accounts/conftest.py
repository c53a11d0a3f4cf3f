"""Fixtures for the sign-in journey tests: a real SMTP server (aiosmtpd) that receives the
provider's emails, an app configured to send through it, and a small browser over the Flask
test client that fills in the forms (CSRF token included) the way a person would.

Helpers are handed out through fixtures (``smtp``, ``mail_app``, ``browser``, ``kit``) so the
test modules need no shared import path.
"""

from __future__ import annotations

import concurrent.futures
import email
import email.policy
import html
import re
import socket
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from idp import create_app
from idp.accounts.models import Account, SsoSession
from idp.admin import people
from idp.audit import AuditEvent
from idp.centres.models import AccessGrant
from idp.extensions import db

INVITE_SUBJECT = "You have been invited to exam board services"
RESET_SUBJECT = "Your password reset code"
CHANGED_SUBJECT = "Your password has been changed"
LOCKED_SUBJECT = "Your account has been locked"
MFA_CODE_SUBJECT = "Your sign-in code"

BAD_CREDENTIALS = "The email address or password is incorrect."
LOCKED = "Your account is locked for up to 60 minutes"
BAD_CODE = "The code is incorrect or has expired. Check the email we sent, or ask for a new code."
TOO_MANY_CODES = "Too many wrong codes. Wait an hour, then ask for a new code."
INVITE_EXPIRED = "This invite has expired — ask your Exams Officer or admin for a new one"


# ------------------------------------------------------------------ a real SMTP server
@dataclass
class Received:
    to: list[str]
    subject: str
    text: str
    message: email.message.EmailMessage


class SmtpSink:
    """aiosmtpd handler: keeps every accepted message; can be told to refuse (5xx)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.taken: set[int] = set()
        self.refuse_rcpt: str | None = None
        self.refuse_data: str | None = None
        self.cond = threading.Condition()
        self.port = 0

    # --- aiosmtpd hooks (run in the controller's event-loop thread)
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_data:
            return self.refuse_data
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        with self.cond:
            self.received.append(Received([a.lower() for a in envelope.rcpt_tos], str(message["Subject"]),
                                          text, message))
            self.cond.notify_all()
        return "250 Message accepted for delivery"

    # --- for tests
    def _find(self, to: str | None, subject: str | None) -> int | None:
        for i, msg in enumerate(self.received):
            if i in self.taken:
                continue
            if to is not None and to.lower() not in msg.to:
                continue
            if subject is not None and subject not in msg.subject:
                continue
            return i
        return None

    def take(self, to: str | None = None, subject: str | None = None, timeout: float = 5.0) -> Received:
        """The oldest message not yet taken that matches; waits (emails are often sent after the
        response, from a background thread)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                i = self._find(to, subject)
                if i is not None:
                    self.taken.add(i)
                    return self.received[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [(m.to, m.subject) for m in self.received]
                    raise AssertionError(f"no email to {to!r} with subject {subject!r} within {timeout}s; "
                                         f"received: {got}")
                self.cond.wait(left)

    def assert_none(self, to: str | None = None, subject: str | None = None, wait: float = 0.5) -> None:
        deadline = time.monotonic() + wait
        with self.cond:
            while True:
                i = self._find(to, subject)
                assert i is None, f"unexpected email: {self.received[i].to} {self.received[i].subject!r}"
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.cond.wait(left)

    def settings(self) -> dict:
        return {"backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_security": "none",
                "smtp_timeout": 5.0, "from_address": "no-reply@board.example"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp():
    sink = SmtpSink()
    sink.port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture(autouse=True)
def background_sends(smtp, monkeypatch, make_settings):
    """Emails sent after the response (idp.notify.background): each test waits for its own before the
    SMTP server stops, and a notice that failed (a template error, a refused message) fails the test."""
    # (depends on make_settings so it is torn down first: background work ends before the
    # database is emptied for the next test)
    from idp.notify import background

    futures: list[concurrent.futures.Future] = []
    real = background.submit

    def tracking(func, *args, **kwargs):
        future = real(func, *args, **kwargs)
        futures.append(future)
        return future

    monkeypatch.setattr(background, "submit", tracking)
    yield futures
    done, pending = concurrent.futures.wait(futures, timeout=15)
    assert not pending, f"{len(pending)} background email(s) still unsent after 15 s"
    failed = [f"{type(f.exception()).__name__}: {f.exception()}" for f in done if f.exception() is not None]
    assert not failed, f"background email(s) failed: {failed}"


def build_app(settings):
    application = create_app(settings)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def mail_app(make_settings, smtp):
    """The provider, sending its email to the ``smtp`` fixture's server."""
    application = build_app(make_settings(mail=smtp.settings()))
    yield application
    application.extensions["idp.db"].dispose()
    application.extensions["idp.store"].close()


# ------------------------------------------------------------------ a browser
CSRF_MARKER = 'name="csrf_token" type="hidden" value="'


def csrf_of(page: str) -> str:
    start = page.index(CSRF_MARKER) + len(CSRF_MARKER)
    return page[start:page.index('"', start)]


def messages(response) -> list[str]:
    """The error summary's messages and flashed notices, as plain text."""
    page = response.get_data(as_text=True)
    found = []
    blocks = re.findall(r'<ul class="govuk-list govuk-error-summary__list">(.*?)</ul>'
                        r'|<div class="govuk-notification-banner__content">(.*?)</div>', page, re.DOTALL)
    for block in ("".join(parts) for parts in blocks):
        for item in re.findall(r"<(?:li|p)\b[^>]*>(.*?)</(?:li|p)>", block, re.DOTALL):
            found.append(html.unescape(re.sub(r"<[^>]+>", "", item)).strip())
    return found


class Browser:
    """One person's browser: its own cookie jar, forms filled in with their CSRF token."""

    def __init__(self, app) -> None:
        self.app = app
        self.http = app.test_client()

    def get(self, path: str):
        return self.http.get(path)

    def csrf(self, path: str) -> str:
        page = self.http.get(path)
        assert page.status_code == 200, (path, page.status_code, page.location)
        return csrf_of(page.get_data(as_text=True))

    def submit(self, path: str, data: dict, *, csrf_from: str | None = None):
        token = self.csrf(csrf_from or path)
        return self.http.post(path, data={**data, "csrf_token": token})

    # the journey, step by step
    def begin(self, email_address: str):
        step = self.submit("/signin", {"email": email_address})
        assert step.status_code == 303 and step.location.endswith("/signin/password"), \
            (step.status_code, step.location, messages(step))
        return step

    def password(self, password: str):
        return self.submit("/signin/password", {"password": password})

    def sign_in(self, email_address: str, password: str):
        """Email and password steps; returns the password step's response."""
        self.begin(email_address)
        return self.password(password)

    def sign_in_fully(self, email_address: str, password: str):
        """Email, password and (for accounts from ``make_account``) the test passkey's challenge;
        returns the last response: a 303 to /account when it all worked."""
        from tests.support import pass_passkey_challenge

        step = self.sign_in(email_address, password)
        if step.status_code == 303 and step.location.endswith("/signin/mfa"):
            step = pass_passkey_challenge(self.http, email_address, step.location)
        return step

    def enrol_email_codes(self, smtp, email_address: str):
        """First sign-in's second-factor set-up with email codes (received by ``smtp``), then the
        recovery codes page; returns the last response (a 303 to /account when it all worked)."""
        sent = self.submit("/signin/mfa/setup/email", {"action": "send"})
        assert sent.status_code == 200, (sent.status_code, sent.location, messages(sent))
        mail = smtp.take(email_address, MFA_CODE_SUBJECT)
        code = re.search(r"sign-in code is: (\d+)", mail.text)
        assert code, mail.text
        done = self.submit("/signin/mfa/setup/email", {"action": "confirm", "code": code.group(1)})
        if done.status_code == 303 and done.location.endswith("/signin/mfa/recovery-codes"):
            done = self.submit("/signin/mfa/recovery-codes", {"action": "done"})
        return done

    def new_password(self, password: str):
        return self.submit("/signin/new-password", {"password": password})

    def forgot(self, email_address: str):
        return self.submit("/forgot", {"email": email_address})

    def reset(self, code: str, password: str):
        return self.submit("/forgot/code", {"code": code, "password": password})

    def change_password(self, current: str, new: str):
        return self.submit("/account/password", {"current": current, "password": new})

    def sign_out(self, everywhere: bool = False):
        return self.submit("/signout", {"everywhere": "1"} if everywhere else {}, csrf_from="/account")

    def signed_in(self) -> bool:
        response = self.http.get("/account")
        assert response.status_code in (200, 302), response.status_code
        return response.status_code == 200

    def cookie(self, name: str) -> str | None:
        found = self.http.get_cookie(name)
        return found.value if found else None

    def set_cookie(self, name: str, value: str) -> None:
        self.http.set_cookie(name, value)


@pytest.fixture
def browser():
    """``browser(app)``: a new browser (cookie jar) for ``app``."""
    return Browser


# ------------------------------------------------------------------ database helpers
ROW_FIELDS = [c.key for c in Account.__table__.columns]


def account_row(app, email_address: str) -> dict | None:
    with app.app_context():
        row = db.session.execute(select(Account.__table__).where(
            Account.email_key == Account.key_for(email_address))).mappings().one_or_none()
        return dict(row) if row is not None else None


def lock_state(app, email_address: str) -> dict:
    """The address's password failure count and lock (idp.accounts.lockout)."""
    from idp.accounts import lockout
    from idp.accounts.models import AttemptCounter

    with app.app_context():
        row = db.session.get(AttemptCounter, lockout.password_key(email_address))
        return {"failures": row.failures if row else 0, "locked_until": lockout.locked_until(email_address)}


def audit_events(app, event: str | None = None, subject: str | None = None) -> list[AuditEvent]:
    with app.app_context():
        query = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
        if event:
            query = query.where(AuditEvent.event == event)
        if subject:
            query = query.where(AuditEvent.subject == subject)
        found = list(db.session.scalars(query))
        db.session.expunge_all()
        return found


def live_sessions(app, email_address: str) -> list[str]:
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.email_key == Account.key_for(email_address)))
        return list(db.session.scalars(select(SsoSession.sid).where(
            SsoSession.account_id == account.id, SsoSession.ended_at.is_(None))))


def grants_for(app, email_address: str) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AccessGrant.profile).join(
            Account, Account.id == AccessGrant.account_id).where(Account.email_key == Account.key_for(email_address))))


def invite(app, email_address: str, *, by: str = "eo@centre.example", role: str = "user", send=True,
           given_name: str = "Grace", family_name: str = "Hopper"):
    """Invite through the service (as the EO ``by``), emailing through the app's mailer."""
    from idp.accounts.emails import send_invite

    with app.app_context():
        eo = db.session.scalar(select(Account).where(Account.email_key == Account.key_for(by)))
        invited = people.invite(people.party_of(eo), email=email_address, role=role, centre=eo.centre_number,
                                 fields={"given_name": given_name, "family_name": family_name},
                                 send=send_invite if send else None)
        return invited.account.sub


def resend(app, sub: str, *, by: str = "eo@centre.example") -> None:
    from idp.accounts.emails import send_invite

    with app.app_context():
        eo = db.session.scalar(select(Account).where(Account.email_key == Account.key_for(by)))
        people.resend_invite(people.party_of(eo), sub, send=send_invite)


def temporary_password(mail: Received) -> str:
    found = re.search(r"Temporary password: (\S+)", mail.text)
    assert found, mail.text
    return found.group(1)


def reset_code(mail: Received) -> str:
    found = re.search(r"Your code to reset your password is: (\d+)", mail.text)
    assert found, mail.text
    return found.group(1)


@pytest.fixture
def kit():
    """Database and email helpers, as one namespace."""
    return SimpleNamespace(
        account_row=account_row, lock_state=lock_state, audit_events=audit_events, live_sessions=live_sessions, grants_for=grants_for,
        invite=invite, resend=resend, temporary_password=temporary_password, reset_code=reset_code,
        messages=messages, csrf_of=csrf_of, build_app=build_app, free_port=free_port,
        INVITE_SUBJECT=INVITE_SUBJECT, RESET_SUBJECT=RESET_SUBJECT, CHANGED_SUBJECT=CHANGED_SUBJECT,
        LOCKED_SUBJECT=LOCKED_SUBJECT, BAD_CREDENTIALS=BAD_CREDENTIALS, LOCKED=LOCKED, BAD_CODE=BAD_CODE,
        TOO_MANY_CODES=TOO_MANY_CODES, INVITE_EXPIRED=INVITE_EXPIRED, ROW_FIELDS=ROW_FIELDS,
    )
