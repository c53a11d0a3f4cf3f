"""One-time codes sent by SMS or email: 6 digits, 5 minutes, single use, resend throttled
(policies/security.toml [otp]). Codes live in the shared store as keyed hashes.

Wrong codes are counted per account over a window, whatever the purpose and however many new
codes are sent: asking for another code never buys more guesses."""

from __future__ import annotations

import secrets as _secrets
import time

from flask_babel import force_locale
from flask_babel import gettext as _

from .. import policy, secrets
from ..extensions import pepper
from ..records import Record


class CodeError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message, self.code = message, code


CODES = Record("otp", ttl=300)               # lifetime from [otp] lifetime_seconds
RESENDS = Record("otp-resend", ttl=30)       # a code was sent a moment ago ([otp] resend_interval_seconds)
SENDS = Record("otp-sends", ttl=3600)        # codes sent per account and purpose ([otp] send_window_seconds)
TRIES = Record("otp-attempts", ttl=900)      # wrong codes per account ([otp] attempt_window_seconds)


def _id(purpose: str, subject: str) -> str:
    return f"{purpose}:{subject}"


def issue(purpose: str, subject: str, deliver) -> None:
    """Make a code and hand it to ``deliver(code)``. Refuses if one was sent too recently, or if
    the subject has had its window's codes for this purpose (counted in the shared store, so
    parallel requests and several workers cannot send more)."""
    rules = policy.current().sec("otp")
    if not RESENDS.add(_id(purpose, subject), ttl=rules.resend_interval_seconds):
        raise CodeError(_("Wait %(n)d seconds before asking for another code.", n=rules.resend_interval_seconds),
                        "throttled")
    if SENDS.incr(_id(purpose, subject), rules.send_window_seconds) > rules.max_sends:
        raise CodeError(_("You have asked for too many codes. Wait %(minutes)d minutes, then ask again.",
                          minutes=max(1, rules.send_window_seconds // 60)), "too_many_sends")
    code = "".join(_secrets.choice("0123456789") for _ in range(rules.digits))
    record = {"hash": secrets.fast_hash(code, pepper()),
              "expires_at": int(time.time()) + rules.lifetime_seconds}
    CODES.put_json(_id(purpose, subject), record, rules.lifetime_seconds)
    deliver(code)


def check(purpose: str, subject: str, code: str) -> bool:
    """True once for the right code. Every check uses one try of the subject's budget, taken
    before the code is compared (so parallel guesses cannot overrun it); with the budget spent
    the code is void and nothing is compared (raises)."""
    rules = policy.current().sec("otp")
    attempts = TRIES.incr(subject, rules.attempt_window_seconds)
    if attempts > rules.max_attempts:
        CODES.delete(_id(purpose, subject))
        minutes = max(1, rules.attempt_window_seconds // 60)
        raise CodeError(_("Too many wrong codes. Wait %(minutes)d minutes, then ask for a new code.",
                          minutes=minutes), "too_many")
    record = CODES.get_json(_id(purpose, subject))
    if record is None:
        return False
    digest = secrets.fast_hash((code or "").strip(), pepper())
    if record["expires_at"] <= time.time() or not secrets.same(digest, record["hash"]):
        return False
    if CODES.take(_id(purpose, subject)) is None:  # single use, even under a race
        return False
    TRIES.delete(subject)
    return True


def sms_text(code: str, language: str) -> str:
    with force_locale(language or "en"):
        minutes = policy.current().sec("otp").lifetime_seconds // 60
        return _("Your exam board services code is %(code)s. It expires in %(minutes)d minutes. Never share it.",
                 code=code, minutes=minutes)
