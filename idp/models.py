"""Every model module, imported once so Alembic and the tests see the whole schema."""

from .accounts.models import Account, AttemptCounter, SsoSession  # noqa: F401
from .audit import AuditEvent  # noqa: F401
from .centres.models import AccessGrant, Centre  # noqa: F401
from .extensions import Base
from .mfa.models import MfaMethod, RecoveryCode  # noqa: F401
from .notify.queue import QueuedMail  # noqa: F401
from .oidc.models import Client, InitialAccessToken, RefreshToken  # noqa: F401

metadata = Base.metadata
