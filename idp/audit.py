"""The audit trail: one row per security-relevant event.

``record`` adds the event to the current database session, so it commits or
rolls back with the action it describes: a failed action leaves neither the
change nor a claim that it happened. Events that stand alone (a failed
sign-in) are committed by the service that records them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from flask import has_request_context
from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from . import metrics
from .clock import UTCDateTime, utcnow
from .extensions import Base, after_commit, client_ip, db, request_id

OUTCOMES = frozenset({"success", "failure", "denied"})


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(64))  # sub of the person, or "client:<id>", "cli"
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    centre: Mapped[str | None] = mapped_column(String(5), index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_audit_events_centre_at", "centre", "at"),)


def record(event: str, *, actor: str | None = None, subject: str | None = None,
           centre: str | None = None, outcome: str = "success", **details) -> AuditEvent:
    """Add an audit event to the current transaction and return it."""
    if outcome not in OUTCOMES:
        raise ValueError(f"audit outcome must be one of {sorted(OUTCOMES)}, not {outcome!r}")
    in_request = has_request_context()
    entry = AuditEvent(
        event=event, outcome=outcome, actor=actor, subject=subject, centre=centre,
        ip=client_ip() if in_request else None,
        request_id=request_id() if in_request else None,
        details=details,
    )
    db.session.add(entry)
    if metrics.enabled():  # counted once committed: a rolled-back action counts nothing
        after_commit(lambda: metrics.audit_event(event, outcome, details))
    return entry
