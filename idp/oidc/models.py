"""Registered clients and refresh tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..clock import UTCDateTime, utcnow
from ..extensions import Base


class Client(Base):
    """A relying party. Metadata names follow RFC 7591 / OpenID Connect Registration."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_name: Mapped[str] = mapped_column(String(200))
    #: what the service is for, shown on All services (English; Welsh in description_cy)
    description: Mapped[str] = mapped_column(Text, default="")
    description_cy: Mapped[str] = mapped_column(Text, default="")
    #: where All services sends a person to start the service (OIDC third-party initiated login)
    initiate_login_uri: Mapped[str | None] = mapped_column(String(2000))
    #: HMAC of the secret (idp.secrets.fast_hash); None for public and private_key_jwt clients
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    #: after a rotation with a grace period: the HMAC of the secret before, accepted until
    #: ``previous_secret_expires_at`` so the service can switch over without an outage
    previous_secret_hash: Mapped[str | None] = mapped_column(String(64))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    grant_types: Mapped[list] = mapped_column(JSON, default=list)
    response_types: Mapped[list] = mapped_column(JSON, default=list)
    #: the scopes it may ask for, space-separated
    scope: Mapped[str] = mapped_column(Text, default="")
    #: access profiles it may see in the `profiles` claim; None = all
    allowed_profiles: Mapped[list | None] = mapped_column(JSON)
    jwks: Mapped[dict | None] = mapped_column(JSON)
    jwks_uri: Mapped[str | None] = mapped_column(String(2000))
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(16))
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000))
    backchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=False)
    #: its authorization requests must come through the pushed request endpoint (RFC 9126 §6)
    require_pushed_authorization_requests: Mapped[bool] = mapped_column(Boolean, default=False)
    #: its tokens must be bound to a key it holds: no token without a DPoP proof (RFC 9449 §5.2)
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(Boolean, default=False)
    registration_token_hash: Mapped[str | None] = mapped_column(String(64))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ClientLogo(Base):
    """A client service's logo (PNG or WebP, small), served by the provider from its own origin so
    pages never load an image from elsewhere. Its own table: the token endpoint's reads of the
    client row never carry it."""

    __tablename__ = "client_logos"

    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(16))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    #: the start of the image's SHA-256: its URL carries it, so a new logo is a new URL
    digest: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RefreshToken(Base):
    """An opaque refresh token, stored as a keyed hash.

    Tokens from one authorization share a ``grant_id`` (the family). Each use
    rotates: the presented token is marked ``rotated_at`` and a successor issued.
    Presenting a rotated token again is reuse: the whole family is revoked. Read and written on
    the refresh path as plain rows (``idp.oidc.tokens.StoredRefresh``).
    """

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(43), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(Text)
    #: the SSO session the grant was made in (signing out ends the grants that are not offline)
    sid: Mapped[str | None] = mapped_column(String(43), index=True)
    auth_time: Mapped[int] = mapped_column(Integer)
    amr: Mapped[list] = mapped_column(JSON, default=list)
    acr: Mapped[str] = mapped_column(String(64), default="")
    issued_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    rotated_at: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[int | None] = mapped_column(Integer)
    #: a public client's token is bound to its DPoP key (RFC 9449 §5): the key's thumbprint
    dpop_jkt: Mapped[str | None] = mapped_column(String(43))

    __table_args__ = (Index("ix_refresh_tokens_account_revoked", "account_id", "revoked_at"),)


class InitialAccessToken(Base):
    """Lets its holder register clients at /register (RFC 7591 §3); issued by board staff."""

    __tablename__ = "initial_access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: registrations it may still make
    uses_left: Mapped[int] = mapped_column(Integer, default=1)
