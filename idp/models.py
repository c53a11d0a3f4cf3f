"""Every model module, imported once so Alembic and the tests see the whole schema."""

from .audit import AuditEvent  # noqa: F401
from .extensions import Base

metadata = Base.metadata
