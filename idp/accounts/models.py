"""People and their single-sign-on sessions."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, event, inspect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..centres.models import Centre
from ..clock import UTCDateTime, utcnow
from ..extensions import Base

#: the status of an account that may sign in (invited accounts have not yet; disabled ones may not)
ACTIVE = "active"
#: stopped by someone who manages the account (idp.admin.people.disable); enabling makes it active again
DISABLED = "disabled"
#: the account's columns its person's claims are made of (idp.oidc.claims): a change to any of them
#: moves ``updated_at``, the claim that tells relying parties the person's details changed (as does
#: a change to the profiles they hold: idp.centres.grants.replace_profiles)
CLAIM_COLUMNS = ("sub", "given_name", "family_name", "language", "email", "email_verified", "phone", "role",
                 "centre_id")
#: and whether the person may act at all: a token of someone who may not gets no claims
STANDING_COLUMNS = ("status",)


def full_name(given_name: str, family_name: str) -> str:
    return " ".join(p for p in (given_name, family_name) if p)


def new_sub() -> str:
    """A random, stable subject identifier: never derived from the email."""
    return secrets.token_urlsafe(16)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    sub: Mapped[str] = mapped_column(String(64), unique=True, default=new_sub)
    #: as entered (trimmed); the username
    email: Mapped[str] = mapped_column(String(254))
    #: lower-cased and trimmed: the unique key sign-in looks up
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    #: the person has shown they read mail at ``email``: they accepted the invite sent there, or
    #: used a code sent there (a password reset, their own change of address). Not when someone
    #: else typed it in: an invite not yet accepted, an address changed by an admin or the board
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)  # invited | active | disabled
    centre_id: Mapped[str | None] = mapped_column(ForeignKey("centres.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(32), default="")
    given_name: Mapped[str] = mapped_column(String(100), default="")
    family_name: Mapped[str] = mapped_column(String(100), default="")
    job_role: Mapped[str] = mapped_column(String(100), default="")
    language: Mapped[str] = mapped_column(String(2), default="en")
    phone: Mapped[str] = mapped_column(String(16), default="")  # E.164
    password_hash: Mapped[str | None] = mapped_column(String(255))
    #: the password is the invite's temporary one: the next sign-in must choose a new one
    password_is_temporary: Mapped[bool] = mapped_column(Boolean, default=False)
    invited_by: Mapped[str | None] = mapped_column(String(64))
    invite_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: the last MFA reset (kept once a method is set up again): a sign-in in progress holds to it
    #: (journey.credentials_of), so a reset ends the sign-ins begun before it
    mfa_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: bumped by every change someone makes to the account (details, type, access, email): a form
    #: sends the version it showed, and a change made meanwhile by someone else is refused, not lost
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when the person's claims last changed (OIDC's ``updated_at``): not on a sign-in, a password
    #: or a second factor changed, which say nothing new about who they are
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    centre: Mapped[Centre | None] = relationship(lazy="joined")

    @staticmethod
    def key_for(email: str) -> str:
        return email.strip().lower()

    @property
    def centre_number(self) -> str | None:
        return self.centre.number if self.centre else None

    @property
    def can_sign_in(self) -> bool:
        """Active, and its centre (if any) not suspended: may hold sessions and tokens."""
        return self.status == ACTIVE and not (self.centre is not None and self.centre.suspended)

    @property
    def name(self) -> str:
        return full_name(self.given_name, self.family_name)

    # Authlib's UserMixin
    def get_user_id(self) -> str:
        return self.sub


class SsoSession(Base):
    """A browser's sign-in. The cookie carries a random id; only its hash is stored."""

    __tablename__ = "sso_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: the `sid` claim: shared with relying parties, so distinct from the cookie value
    sid: Mapped[str] = mapped_column(String(43), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[int] = mapped_column(Integer)
    amr: Mapped[list] = mapped_column(JSON, default=list)
    acr: Mapped[str] = mapped_column(String(64), default="")
    #: when a second factor was last passed in this session (changing MFA methods needs a recent one)
    mfa_at: Mapped[int | None] = mapped_column(Integer)
    #: client ids that received tokens through this session (for back-channel logout)
    clients: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(255), default="")

    account: Mapped[Account] = relationship(lazy="joined")

    __table_args__ = (Index("ix_sso_sessions_account_ended", "account_id", "ended_at"),)


class RememberedDevice(Base):
    """A browser where the person passed a second factor and asked not to be asked again for a
    while (idp.accounts.remembered). The cookie carries a random token; only its hash is stored."""

    __tablename__ = "remembered_devices"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AttemptCounter(Base):
    """A failure budget (idp.accounts.lockout): wrong passwords for an address, or wrong
    second-factor answers of an account, and the lock they lead to."""

    __tablename__ = "attempt_counters"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    #: failures (and evaluations in flight) since the last success or lock
    failures: Mapped[int] = mapped_column(Integer, default=0)
    #: epoch seconds; locked while in the future
    locked_until: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer)


def claims_changed(account: Account, columns=CLAIM_COLUMNS) -> bool:
    """Whether a flush of ``account`` writes a new value to any of ``columns`` (its history is
    this flush's until the flush ends)."""
    state = inspect(account)
    return any(state.attrs[name].history.has_changes() for name in columns)


@event.listens_for(Account, "before_update")
def _claims_updated_at(_mapper, _connection, account: Account) -> None:
    if claims_changed(account):
        account.updated_at = utcnow()
