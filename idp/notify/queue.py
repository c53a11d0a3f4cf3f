"""The durable mail queue: an email the mail server could not take *yet* is kept in the database and
sent again until it can, from whichever process gets to it first; it is never lost to an SMTP
outage, a restart or a crash (docs/operations.md, "When the mail server is down").

- ``SmtpMailer.send`` (idp.notify.mail) tries at once. A temporary failure (the server does not
  answer, a 4xx reply) puts the message here instead, in the caller's transaction: an invite and
  its email are kept together, or not at all. A permanent refusal (5xx: a bad address) is still
  the caller's error, as before.
- Every process polls for due messages (``deliver_due``); a row is claimed by one process at a time
  (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and retried with growing delays for a day, then given
  up, audited and counted.
- ``delayed()`` says whether mail is being held back right now, so the pages that promise an
  email can say it may be late.

The message (which may carry a temporary password or a code) is sealed at rest with AES-GCM under
a key derived from the secret key.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import threading
import time
import uuid
import weakref
from datetime import datetime, timedelta
from email import message_from_bytes
from email import policy as email_policy

from flask import Flask, current_app
from sqlalchemy import Index, Integer, LargeBinary, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from .. import metrics
from ..clock import UTCDateTime, utcnow
from ..extensions import Base, db
from .errors import DeliveryError, MailServerUnavailable

log = logging.getLogger(__name__)

#: seconds before each retry: quick at first (a relay restarting), then up to an hour; about a day
#: in all before the message is given up
BACKOFF = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 3600, 3600, 3600, 3600, 3600, 3600, 3600, 3600, 3600,
           3600, 3600, 3600, 3600, 3600, 3600, 3600, 3600, 3600)
#: how often each process looks for due messages
POLL_SECONDS = 5.0
#: after a temporary failure, messages in the next seconds go straight to the queue: a request does
#: not wait for a mail server that just failed to answer
HOLD_SECONDS = 30.0
#: how long ``delayed()`` trusts its last look at the queue
DELAYED_CACHE_SECONDS = 5.0


class QueuedMail(Base):
    __tablename__ = "mail_queue"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: failed attempts so far (the one that put it here included)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    #: the whole RFC 5322 message, sealed (``_seal``)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    last_error: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (Index("ix_mail_queue_due_at", "due_at"),)


# ------------------------------------------------------------------ sealing
def _box():
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = hashlib.sha256(b"idp mail queue\0" + current_app.config["SECRET_KEY"].encode()).digest()
    return AESGCM(key)


def _seal(raw: bytes, row_id: str) -> bytes:
    import os

    nonce = os.urandom(12)
    return nonce + _box().encrypt(nonce, raw, row_id.encode())


def _unseal(blob: bytes, row_id: str) -> bytes:
    return _box().decrypt(blob[:12], blob[12:], row_id.encode())


# ------------------------------------------------------------------ queueing
class _State:
    """This process's memory of the app's mail server (one per app)."""

    def __init__(self) -> None:
        self.held_until = 0.0  # until when new messages skip the immediate attempt
        self.delayed = (0.0, False)  # (when looked up, whether mail was waiting)


def _state() -> _State:
    return current_app.extensions.setdefault("idp.mail_queue", _State())


def holding() -> bool:
    """True for a few seconds after a temporary failure: send straight to the queue."""
    return time.monotonic() < _state().held_until


def note_unavailable() -> None:
    state = _state()
    state.held_until = time.monotonic() + HOLD_SECONDS
    state.delayed = (time.monotonic(), True)


def enqueue(message, error: str) -> None:
    """Keep ``message`` to be sent later. In the caller's transaction: it is kept if (and only if)
    the caller commits."""
    row = QueuedMail(id=uuid.uuid4().hex, attempts=1, last_error=error[:200],
                     due_at=utcnow() + timedelta(seconds=BACKOFF[0]))
    row.sealed = _seal(bytes(message), row.id)
    db.session.add(row)
    metrics.mail("queued")
    log.warning("mail held back to be sent again (%s)", error)
    _Poller.watch(current_app._get_current_object())


def delayed() -> bool:
    """Is mail being held back now (a message waiting for a retry)? Looked up at most every few
    seconds per process; a page that promises an email uses it to say that it may be late."""
    state = _state()
    seen_at, value = state.delayed
    if time.monotonic() - seen_at < DELAYED_CACHE_SECONDS:
        return value
    try:
        value = db.session.scalar(select(QueuedMail.id).limit(1)) is not None
    except Exception:  # noqa: BLE001 - a notice is not worth an error page
        db.session.rollback()
        value = False
    state.delayed = (time.monotonic(), value)
    return value


# ------------------------------------------------------------------ sending again
def deliver_due(mailer, now: datetime | None = None, limit: int = 20) -> int:
    """Send every message whose time has come, each by one process; returns how many were sent."""
    now = now or utcnow()
    query = select(QueuedMail).where(QueuedMail.due_at <= now).order_by(QueuedMail.due_at).limit(limit)
    if db.is_postgres:
        query = query.with_for_update(skip_locked=True)
    sent = 0
    for row in db.session.scalars(query).all():
        message = message_from_bytes(_unseal(row.sealed, row.id), policy=email_policy.default)
        try:
            mailer.deliver(message)
        except MailServerUnavailable as exc:
            note_unavailable()
            if row.attempts >= len(BACKOFF):
                _give_up(row, str(exc))
                continue
            row.due_at = now + timedelta(seconds=BACKOFF[row.attempts])
            row.attempts += 1
            row.last_error = str(exc)[:200]
            metrics.mail("retried")
            continue
        except DeliveryError as exc:  # refused for good (the address): nothing will change that
            _give_up(row, str(exc))
            continue
        db.session.execute(delete(QueuedMail).where(QueuedMail.id == row.id))  # sent: nothing kept
        metrics.mail("sent")
        sent += 1
    db.session.commit()
    if sent:
        _state().delayed = (0.0, False)  # look again
    return sent


def _give_up(row: QueuedMail, error: str) -> None:
    from .. import audit

    audit.record("mail.failed", outcome="failure", attempts=row.attempts, error=error[:200],
                 queued_at=row.created_at.isoformat())
    db.session.delete(row)
    metrics.mail("failed")
    log.error("mail given up after %d attempts (%s)", row.attempts, error)


class _Poller:
    """One thread per process sending due messages for every app using SMTP."""

    _apps: weakref.WeakSet[Flask] = weakref.WeakSet()
    _thread: threading.Thread | None = None
    _lock = threading.Lock()
    #: makes the app's mailer (idp.notify.mail.mailer), set by ``start``
    factory = None

    @classmethod
    def watch(cls, app: Flask) -> None:
        if cls.factory is None:
            return
        with cls._lock:
            cls._apps.add(app)
            if cls._thread is None or not cls._thread.is_alive():
                cls._thread = threading.Thread(target=cls._run, name="idp-mail-queue", daemon=True)
                cls._thread.start()

    _stopping = threading.Event()
    _failures: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @classmethod
    def _run(cls) -> None:
        atexit.register(cls._stopping.set)  # no rounds while the interpreter shuts down
        while not cls._stopping.wait(POLL_SECONDS):
            for app in list(cls._apps):
                if app.extensions["idp.db"].closed:  # the app was shut down
                    cls._apps.discard(app)
                    continue
                try:
                    with app.app_context():
                        deliver_due(cls.factory())
                    cls._failures.pop(app, None)
                except Exception:  # keep going (the database may be down: the next round retries)
                    failures = cls._failures[app] = cls._failures.get(app, 0) + 1
                    if failures == 1 or failures % 60 == 0:  # once, then every few minutes
                        log.warning("mail queue: a round failed (%d in a row)", failures, exc_info=True)


def start(app: Flask, mailer_factory) -> None:
    """This process sends what is queued for ``app`` (also what was queued before a restart)."""
    _Poller.factory = mailer_factory
    _Poller.watch(app)


__all__ = ["QueuedMail", "delayed", "deliver_due", "enqueue", "holding", "note_unavailable", "start"]
