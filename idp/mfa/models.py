"""A person's second-factor methods and recovery codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import UTCDateTime, utcnow
from ..extensions import Base


class MfaMethod(Base):
    __tablename__ = "mfa_methods"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(64), default="")
    preferred: Mapped[bool] = mapped_column(Boolean, default=False)
    #: TOTP: the secret, AES-GCM encrypted (idp.mfa.crypto)
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: TOTP: the time step of the last code accepted. A code is accepted once, and none of an
    #: earlier step after it (RFC 6238 §5.2), in every process, whatever the store has forgotten
    totp_step: Mapped[int | None] = mapped_column(Integer)
    #: SMS: the verified phone number (E.164)
    phone: Mapped[str | None] = mapped_column(String(16))
    #: WebAuthn: credential id, COSE public key, signature counter, transports, device type
    credential_id: Mapped[bytes | None] = mapped_column(LargeBinary, unique=True)
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    transports: Mapped[list] = mapped_column(JSON, default=list)
    device_type: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
