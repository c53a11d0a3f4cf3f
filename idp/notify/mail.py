"""Email: SMTP (STARTTLS, implicit TLS or plain to a local relay) or an outbox folder of .eml files.

Both implement ``Mailer.send``; a refused message raises ``DeliveryError`` so the action
that needed it can fail cleanly instead of leaving something half done. A mail server that is
down or answers "try again later" is not a refusal: SMTP then keeps the message in the durable
queue (idp.notify.queue), in the caller's transaction, and sends it when the server is back.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from abc import ABC, abstractmethod
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path

from .. import metrics
from ..extensions import settings as app_settings
from . import queue
from .errors import DeliveryError, MailServerUnavailable

__all__ = ["DeliveryError", "MailServerUnavailable", "Mailer", "OutboxMailer", "SmtpMailer", "init_app", "mailer"]


def _temporary(code) -> bool:
    return isinstance(code, int) and 400 <= code < 500


def _message_id(from_address: str) -> str:
    """A Message-ID (RFC 5322 §3.6.4) at the sender's domain. Not email.utils.make_msgid: it draws
    from the random module's shared generator, whose state everything else in the process shares
    (Hypothesis, in the tests, warned of it)."""
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "localhost"
    return f"<{uuid.uuid4().hex}@{domain}>"


class Mailer(ABC):
    def __init__(self, from_address: str) -> None:
        self.from_address = from_address

    def build(self, to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = _message_id(self.from_address)
        message.set_content(text)
        if html:
            message.add_alternative(html, subtype="html")
        return message

    def send(self, to: str, subject: str, text: str, html: str | None = None) -> None:
        self.deliver(self.build(to, subject, text, html))

    @abstractmethod
    def deliver(self, message: EmailMessage) -> None: ...


class OutboxMailer(Mailer):
    """Writes each message to ``<outbox>/<time>-<id>.eml``: the quick start's inbox."""

    def __init__(self, from_address: str, folder: Path) -> None:
        super().__init__(from_address)
        self.folder = Path(folder)

    def deliver(self, message: EmailMessage) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = uuid.uuid1().hex
            partial = self.folder / f".{name}.partial"
            partial.write_bytes(bytes(message))
            partial.replace(self.folder / f"{name}.eml")  # readers never see half a message
        except OSError as exc:
            raise DeliveryError(f"could not write to the outbox ({exc.strerror})") from exc


class SmtpMailer(Mailer):
    def __init__(self, settings) -> None:
        super().__init__(settings.from_address)
        self.s = settings

    def send(self, to: str, subject: str, text: str, html: str | None = None) -> None:
        """Deliver now or, if the server cannot take it now, keep it in the durable queue."""
        message = self.build(to, subject, text, html)
        if queue.holding():  # it failed a moment ago: do not make this request wait for it again
            queue.enqueue(message, "the mail server failed a moment ago")
            return
        try:
            self.deliver(message)
        except MailServerUnavailable as exc:
            queue.note_unavailable()
            queue.enqueue(message, str(exc))
            return
        metrics.mail("sent")

    def deliver(self, message: EmailMessage) -> None:
        s = self.s
        try:
            if s.smtp_security == "tls":
                smtp = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
            with smtp:
                if s.smtp_security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_username:
                    smtp.login(s.smtp_username, s.smtp_password)
                refused = smtp.send_message(message)
            if refused:  # (not naming the address: this message reaches logs and API answers)
                if all(_temporary(code) for code, _ in refused.values()):
                    raise MailServerUnavailable("the mail server deferred the recipient (4xx)")
                raise DeliveryError("the mail server refused the recipient")
        except DeliveryError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            if all(_temporary(code) for code, _ in exc.recipients.values()):
                raise MailServerUnavailable("the mail server deferred the recipient (4xx)") from exc
            raise DeliveryError("the mail server did not accept the message (SMTPRecipientsRefused)") from exc
        except smtplib.SMTPResponseException as exc:
            if _temporary(exc.smtp_code) or isinstance(exc, smtplib.SMTPAuthenticationError):
                # a 4xx, or our credentials refused (fixed by the operator): kept and tried again
                raise MailServerUnavailable(f"the mail server answered {exc.smtp_code} "
                                            f"({exc.__class__.__name__})") from exc
            raise DeliveryError(f"the mail server did not accept the message ({exc.__class__.__name__})") from exc
        except (smtplib.SMTPException, OSError) as exc:  # no answer, a dropped connection, TLS failed
            raise MailServerUnavailable(f"the mail server did not answer ({exc.__class__.__name__})") from exc


def mailer() -> Mailer:
    settings = app_settings()
    if settings.mail.backend == "smtp":
        return SmtpMailer(settings.mail)
    return OutboxMailer(settings.mail.from_address, settings.mail_outbox_dir)


def init_app(app) -> None:
    """With SMTP, this process also sends what the durable queue holds (queued before a restart too)."""
    if app.config["IDP_SETTINGS"].mail.backend == "smtp":
        queue.start(app, mailer)
