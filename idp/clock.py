"""The clock, and the one column type for points in time.

Every datetime the provider handles is timezone-aware UTC. ``UTCDateTime`` stores them as
``timestamp with time zone`` on PostgreSQL and hands them back aware on every engine (SQLite keeps
no zone and returns naive values, which are UTC), so no code compares naive with aware times.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, for JSON answers."""
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class UTCDateTime(TypeDecorator):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: use idp.clock.utcnow() or an aware value")
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
