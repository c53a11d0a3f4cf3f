"""One-time codes sent by SMS or email: 6 digits, 5 minutes, single use, resend throttled
(policies/security.toml [otp]). Codes live in the shared store as keyed hashes.

Wrong codes are counted per account over a window, whatever the purpose and however many new
codes are sent: asking for another code never buys more guesses."""

from __future__ import annotations

import json
import secrets as _secrets
import time

from flask import current_app
from flask_babel import force_locale, gettext as _

from .. import policy, secrets
from ..extensions import store


class CodeError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def _key(purpose: str, subject: str) -> str:
    return f"otp:{purpose}:{subject}"


def issue(purpose: str, subject: str, deliver) -> None:
    """Make a code and hand it to ``deliver(code)``. Refuses if one was sent too recently."""
    rules = policy.current().sec("otp")
    if not store.add(f"otp-resend:{purpose}:{subject}", "1", rules.resend_interval_seconds):
        raise CodeError(_("Wait %(n)d seconds before asking for another code.", n=rules.resend_interval_seconds),
                        "throttled")
    code = "".join(_secrets.choice("0123456789") for _ in range(rules.digits))
    record = {"hash": secrets.fast_hash(code, current_app.extensions["idp.pepper"]),
              "expires_at": int(time.time()) + rules.lifetime_seconds}
    store.put(_key(purpose, subject), json.dumps(record), rules.lifetime_seconds)
    deliver(code)


def check(purpose: str, subject: str, code: str) -> bool:
    """True once for the right code. Every check uses one try of the subject's budget, taken
    before the code is compared (so parallel guesses cannot overrun it); with the budget spent
    the code is void and nothing is compared (raises)."""
    rules = policy.current().sec("otp")
    attempts = store.incr(f"otp-attempts:{subject}", rules.attempt_window_seconds)
    if attempts > rules.max_attempts:
        store.delete(_key(purpose, subject))
        minutes = max(1, rules.attempt_window_seconds // 60)
        raise CodeError(_("Too many wrong codes. Wait %(minutes)d minutes, then ask for a new code.",
                          minutes=minutes), "too_many")
    raw = store.get(_key(purpose, subject))
    if raw is None:
        return False
    record = json.loads(raw)
    digest = secrets.fast_hash((code or "").strip(), current_app.extensions["idp.pepper"])
    if record["expires_at"] <= time.time() or not secrets.same(digest, record["hash"]):
        return False
    if store.take(_key(purpose, subject)) is None:  # single use, even under a race
        return False
    store.delete(f"otp-attempts:{subject}")
    return True


def sms_text(code: str, language: str) -> str:
    with force_locale(language or "en"):
        minutes = policy.current().sec("otp").lifetime_seconds // 60
        return _("Your exam board services code is %(code)s. It expires in %(minutes)d minutes. Never share it.",
                 code=code, minutes=minutes)
