"""Authenticator apps (TOTP, RFC 6238) via pyotp: secrets, QR codes, and which time step a code
belongs to. Whether that step may still be used is the method's own record (``MfaMethod.totp_step``,
spent by idp.mfa.services)."""

from __future__ import annotations

import time

import pyotp
import segno

from .. import policy
from ..extensions import settings
from .crypto import box

STEP = 30
QUIET_ZONE = 4  # modules of light margin around a QR code (ISO/IEC 18004)


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits


def provisioning_uri(secret: str, email: str) -> str:
    issuer = settings().mfa.issuer_name
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The QR code as inline SVG: drawn here, no external service sees the secret. One unit a
    module, a viewBox and no width or height, so the page's CSS scales the whole code. The light
    background includes the quiet zone, so the code reads on any background."""
    return segno.make(uri, error="m").svg_inline(scale=1, border=QUIET_ZONE, omitsize=True,
                                                 dark="#0b0c0c", light="#ffffff")


def seal(secret: str, method_id: str) -> bytes:
    return box().encrypt(secret.encode(), method_id.encode())


def unseal(blob: bytes, method_id: str) -> str:
    return box().decrypt(blob, method_id.encode()).decode()


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step the code belongs to, within the policy's window (±1 step), or None."""
    code = (code or "").strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    now = time.time() if now is None else now
    totp = pyotp.TOTP(secret)
    window = policy.current().sec("mfa").totp_valid_window
    current = int(now // STEP)
    for step in range(current - window, current + window + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None
