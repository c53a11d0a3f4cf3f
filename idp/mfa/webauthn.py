"""Passkeys and security keys (WebAuthn) via py_webauthn.

Challenges are single use: kept in the shared store under the ceremony id and taken
(get-and-delete) when the browser answers. The relying-party id and the allowed origins
come from config (default: the issuer's host and origin).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import webauthn as pywebauthn
from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, TimestampSigner
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .. import inputs, secrets
from ..extensions import settings as app_settings
from ..records import Record
from .models import MfaMethod

#: a ceremony's challenge, single use (taken when the browser answers)
CHALLENGES = Record("webauthn", ttl=300)


class WebAuthnError(Exception):
    """The browser's answer did not verify."""


def rp_id() -> str:
    settings = app_settings()
    return settings.mfa.webauthn_rp_id or urlsplit(settings.server.issuer).hostname


def origins() -> list[str]:
    settings = app_settings()
    if settings.mfa.webauthn_origins:
        return [o.strip() for o in settings.mfa.webauthn_origins.split(",") if o.strip()]
    parts = urlsplit(settings.server.issuer)
    return [f"{parts.scheme}://{parts.netloc}"]


def _credential(credential: str) -> dict:
    """A browser's answer as JSON, its depth bounded before parsing (py_webauthn's own json.loads
    recurses: a few kilobytes of brackets would be a RecursionError, not a refusal)."""
    try:
        data = inputs.loads(credential if isinstance(credential, str) else "")
    except (inputs.BadJson, ValueError):
        raise WebAuthnError("The browser's answer was not understood.") from None
    if not isinstance(data, dict):
        raise WebAuthnError("The browser's answer was not understood.")
    return data


def _descriptor(method: MfaMethod) -> PublicKeyCredentialDescriptor:
    transports = []
    for t in method.transports or []:
        try:
            transports.append(AuthenticatorTransport(t))
        except ValueError:
            continue
    return PublicKeyCredentialDescriptor(id=method.credential_id, transports=transports or None)


def _remember(challenge: bytes, purpose: str, subject: str) -> str:
    ceremony = secrets.token(16)
    CHALLENGES.put_json(ceremony, {"challenge": bytes_to_base64url(challenge), "purpose": purpose,
                                   "subject": subject})
    return ceremony


def _recall(ceremony: str, purpose: str, subject: str) -> bytes:
    from webauthn.helpers import base64url_to_bytes

    data = CHALLENGES.take_json(ceremony) if isinstance(ceremony, str) and ceremony and len(ceremony) < 64 else None
    if data is None:
        raise WebAuthnError(_("This request has expired. Try again."))
    if data["purpose"] != purpose or data["subject"] != subject:
        raise WebAuthnError(_("This request was not for this step. Try again."))
    return base64url_to_bytes(data["challenge"])


def registration_options(account, existing: list[MfaMethod]) -> tuple[str, dict]:
    """(ceremony id, options for navigator.credentials.create, as JSON-ready data: a page must
    put them in a <script> with ``|tojson``, which escapes markup in a person's name)."""
    settings = app_settings()
    options = pywebauthn.generate_registration_options(
        rp_id=rp_id(), rp_name=settings.mfa.issuer_name, user_id=account.sub.encode(),
        user_name=account.email, user_display_name=account.name or account.email,
        exclude_credentials=[_descriptor(m) for m in existing],
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED))
    ceremony = _remember(options.challenge, "register", account.id)
    return ceremony, json.loads(pywebauthn.options_to_json(options))


def verify_registration(account, ceremony: str, credential: str):
    challenge = _recall(ceremony, "register", account.id)
    try:
        return pywebauthn.verify_registration_response(
            credential=_credential(credential), expected_challenge=challenge, expected_rp_id=rp_id(),
            expected_origin=origins())
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise WebAuthnError(_("The security key's answer could not be verified (%(detail)s).", detail=exc)) from None


def authentication_options(account, methods: list[MfaMethod]) -> tuple[str, dict]:
    options = pywebauthn.generate_authentication_options(
        rp_id=rp_id(), allow_credentials=[_descriptor(m) for m in methods],
        user_verification=UserVerificationRequirement.PREFERRED)
    ceremony = _remember(options.challenge, "authenticate", account.id)
    return ceremony, json.loads(pywebauthn.options_to_json(options))


def verify_authentication(account, ceremony: str, credential: str, methods: list[MfaMethod]):
    """(method used, verification). Rejects unknown credentials and sign-count regressions."""
    from webauthn.helpers import parse_authentication_credential_json

    challenge = _recall(ceremony, "authenticate", account.id)
    try:
        parsed = parse_authentication_credential_json(_credential(credential))
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise WebAuthnError(_("The security key's answer was not understood (%(detail)s).", detail=exc)) from None
    method = next((m for m in methods if m.credential_id == parsed.raw_id), None)
    if method is None:
        raise WebAuthnError(_("This passkey or security key is not registered to your account."))
    try:
        verified = pywebauthn.verify_authentication_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp_id(),
            expected_origin=origins(), credential_public_key=method.public_key,
            credential_current_sign_count=method.sign_count)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise WebAuthnError(_("The security key's answer could not be verified (%(detail)s).", detail=exc)) from None
    return method, verified


# ------------------------------------------------------------------ passkey-first sign-in
#: the ceremony of "Sign in with a passkey": no account is known until the passkey names it
PASSKEY_SIGN_IN = "passkey-signin"


def _ceremony_signer() -> TimestampSigner:
    return TimestampSigner(current_app.secret_key, salt=PASSKEY_SIGN_IN)


def discoverable_options() -> tuple[str, dict]:
    """Options for a sign-in that starts with the passkey (a discoverable credential picks the
    account). User verification is required: the passkey is then two factors at once.

    Every view of the email page offers one, so nothing is stored for it: the ceremony id is the
    challenge itself, signed and timed with the secret key. It is made single use when it is
    answered (a store record of the used challenge), so the page is served even while the store is
    unreachable, and anonymous page views cost the store nothing."""
    options = pywebauthn.generate_authentication_options(
        rp_id=rp_id(), allow_credentials=[], user_verification=UserVerificationRequirement.REQUIRED)
    ceremony = _ceremony_signer().sign(bytes_to_base64url(options.challenge)).decode()
    return ceremony, json.loads(pywebauthn.options_to_json(options))


def parse_discoverable(ceremony: str, credential: str):
    """(challenge, parsed credential) of a passkey-first answer; the challenge is used up here."""
    from webauthn.helpers import base64url_to_bytes, parse_authentication_credential_json

    try:
        challenge = _ceremony_signer().unsign(ceremony if isinstance(ceremony, str) else "",
                                              max_age=CHALLENGES.ttl).decode()
    except (BadSignature, UnicodeDecodeError):  # (SignatureExpired is a BadSignature)
        raise WebAuthnError("This request has expired. Try again.") from None
    if not CHALLENGES.add("used:" + challenge):
        raise WebAuthnError("This request has already been answered. Try again.")
    try:
        return base64url_to_bytes(challenge), parse_authentication_credential_json(_credential(credential))
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise WebAuthnError(f"The passkey's answer was not understood ({exc}).") from None


def verify_discoverable(challenge: bytes, parsed, method: MfaMethod):
    try:
        return pywebauthn.verify_authentication_response(
            credential=parsed, expected_challenge=challenge, expected_rp_id=rp_id(), expected_origin=origins(),
            credential_public_key=method.public_key, credential_current_sign_count=method.sign_count,
            require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise WebAuthnError(f"The passkey's answer could not be verified ({exc}).") from None
