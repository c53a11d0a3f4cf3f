"""The MFA rules: enrolment, the sign-in challenge, changing methods, resets.

- No token without a passed second factor: the sign-in journey cannot finish before this
  module has added a method's ``amr`` to the pending sign-in.
- Adding or removing a method needs a second factor passed within [mfa] fresh_seconds.
- The last method cannot be removed; the first one gets recovery codes.
- ``[mfa] max_failures`` wrong answers in a row (per account, whatever the sign-in attempt) end the
  attempt and lock the account (idp.accounts.lockout).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from .. import audit, inputs, policy, protocol, secrets
from ..accounts import emails, lockout, sessions
from ..accounts.models import Account
from ..clock import utcnow
from ..extensions import after_commit, db, hold_row
from ..notify import background
from ..notify.mail import DeliveryError
from ..notify.sms import sender as sms_sender
from ..records import Record
from . import codes, crypto, recovery, totp, webauthn
from .models import MfaMethod, RecoveryCode

#: a method being set up, until its first code confirms it
TOTP_SET_UPS = Record("enrol:totp", ttl=600)
SMS_SET_UPS = Record("enrol:sms", ttl=600)
#: new recovery codes (sealed) until the page that shows them is read
SHOWN_CODES = Record("recovery-show", ttl=900)


class MfaError(Exception):
    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.message, self.code = message, code


def has_a_method(account: Account) -> bool:
    """Whether the account has any second factor (none: the next sign-in must set one up)."""
    return db.session.scalar(select(MfaMethod.id).where(MfaMethod.account_id == account.id).limit(1)) is not None


def methods_of(account: Account) -> list[MfaMethod]:
    return list(db.session.scalars(select(MfaMethod).where(MfaMethod.account_id == account.id)
                                   .order_by(MfaMethod.preferred.desc(), MfaMethod.created_at)))


def is_method_of(account: Account, method_id: str) -> bool:
    """Whether the method ``method_id`` is still one of the account's (not removed, nor reset)."""
    return db.session.scalar(select(MfaMethod.id).where(MfaMethod.id == method_id,
                                                        MfaMethod.account_id == account.id)) is not None


def method_of(account: Account, method_id: str) -> MfaMethod:
    # an id no method could have (PostgreSQL refuses a NUL in a query outright) is simply not found
    plausible = isinstance(method_id, str) and len(method_id) < 64 and not inputs.has_control_characters(method_id)
    method = db.session.get(MfaMethod, method_id, populate_existing=True) if plausible else None
    if method is None or method.account_id != account.id:
        raise MfaError(_("That sign-in method was not found."), "not_found")
    return method


def describe(method: MfaMethod) -> str:
    if method.kind == "totp":
        return method.label or _("Authenticator app")
    if method.kind == "webauthn":
        return method.label or _("Passkey or security key")
    if method.kind == "sms":
        return _("Text message to %(phone)s", phone=mask_phone(method.phone or ""))
    return _("Email code")


def mask_phone(phone: str) -> str:
    return phone[:3] + "•" * max(0, len(phone) - 6) + phone[-3:] if len(phone) > 6 else phone


# ------------------------------------------------------------------ enrolment
def start_totp(account: Account) -> dict:
    """A secret kept (encrypted) in the store until a code from the app confirms it. Showing the
    page again shows the same secret, so a mistyped code does not invalidate the scanned QR code."""
    try:
        secret = _pending_totp_secret(account)
    except MfaError:
        secret = totp.new_secret()
        TOTP_SET_UPS.put(account.id, totp.seal(secret, f"enrol:{account.id}").hex())
    uri = totp.provisioning_uri(secret, account.email)
    return {"secret": secret, "uri": uri, "qr_svg": totp.qr_svg(uri)}


def _pending_totp_secret(account: Account) -> str:
    raw = TOTP_SET_UPS.get(account.id)
    if raw is None:
        raise MfaError(_("The set-up has expired. Start again."), "expired")
    return totp.unseal(bytes.fromhex(raw), f"enrol:{account.id}")


def _add(account: Account, method: MfaMethod, *, actor: str, first_only: bool = False) -> list[str] | None:
    """Save a new method; the first one becomes preferred and comes with recovery codes.

    ``first_only``: the set-up a sign-in asks for because the account has no method. If it has one
    by now (its owner set one up elsewhere since this sign-in's password step), that sign-in may
    not add another: it must answer the owner's challenge. The account row is held from the count
    to the commit, so of two set-ups at once the second sees the first's method."""
    hold_row(Account.id, account.id)
    first = not methods_of(account)
    if first_only and not first:
        db.session.rollback()
        raise MfaError(_("Start signing in again."), "restart")
    method.preferred = first
    method.last_used_at = utcnow()
    db.session.add(method)
    codes_shown = recovery.regenerate(account.id) if first else None
    audit.record("mfa.method_added", actor=actor, subject=account.sub, centre=account.centre_number,
                 kind=method.kind, first=first)
    return codes_shown


def confirm_totp(account: Account, code: str, label: str = "", *,
                 first_only: bool = False) -> tuple[MfaMethod, list[str] | None]:
    """The app's first code makes the set-up a method, once: of two confirmations at once the
    second waits for the account row, then finds the set-up gone. The step confirmed is spent."""
    hold_row(Account.id, account.id)
    try:
        secret = _pending_totp_secret(account)
        step = totp.matching_step(secret, code)
        if step is None:
            raise MfaError(_("The code is not right. Enter the 6-digit code the app shows now."), "bad_code")
    except MfaError:
        db.session.rollback()  # the row is not held while the page is shown again
        raise
    method = MfaMethod(account_id=account.id, kind="totp", label=(label or "").strip()[:64], totp_step=step)
    method.id = secrets.token(16)
    method.secret = totp.seal(secret, method.id)
    shown = _add(account, method, actor=account.sub, first_only=first_only)
    TOTP_SET_UPS.delete(account.id)  # before the commit that lets a second confirmation go on
    db.session.commit()
    return method, shown


def start_email(account: Account) -> None:
    codes.issue("enrol-email", account.id, lambda code: background.submit(
        emails.send_mfa_code, emails.recipient(account), code))


def confirm_email(account: Account, code: str, *, first_only: bool = False) -> tuple[MfaMethod, list[str] | None]:
    if not codes.check("enrol-email", account.id, code):
        raise MfaError(_("The code is not right or has expired."), "bad_code")
    method = MfaMethod(account_id=account.id, kind="email")
    shown = _add(account, method, actor=account.sub, first_only=first_only)
    db.session.commit()
    return method, shown


def start_sms(account: Account, phone: str) -> None:
    try:
        phone = inputs.phone_number(phone, mobile=True)
    except inputs.BadPhoneNumber as exc:
        raise MfaError(str(exc), "bad_phone") from None

    def deliver(code):
        try:
            sms_sender().send(phone, codes.sms_text(code, account.language))
        except DeliveryError as exc:
            raise MfaError(_("We could not send a text message to that number. Check it and try again."),
                           "not_sent") from exc

    codes.issue("enrol-sms", account.id, deliver)
    # only once its code is on its way: a refused request must not swap the number an earlier
    # code would confirm
    SMS_SET_UPS.put(account.id, phone)


def confirm_sms(account: Account, code: str, *, first_only: bool = False) -> tuple[MfaMethod, list[str] | None]:
    phone = SMS_SET_UPS.get(account.id)
    if phone is None:
        raise MfaError(_("The set-up has expired. Start again."), "expired")
    if not codes.check("enrol-sms", account.id, code):
        raise MfaError(_("The code is not right or has expired."), "bad_code")
    method = MfaMethod(account_id=account.id, kind="sms", phone=phone)
    shown = _add(account, method, actor=account.sub, first_only=first_only)
    after_commit(lambda: SMS_SET_UPS.delete(account.id))  # (its code is spent: a leftover set-up is inert)
    db.session.commit()
    return method, shown


def start_webauthn(account: Account) -> tuple[str, str]:
    existing = [m for m in methods_of(account) if m.kind == "webauthn"]
    return webauthn.registration_options(account, existing)


def confirm_webauthn(account: Account, ceremony: str, credential: str, label: str = "", *, first_only: bool = False):
    try:
        verified = webauthn.verify_registration(account, ceremony, credential)
    except webauthn.WebAuthnError as exc:
        raise MfaError(str(exc), "bad_credential") from None
    duplicate = MfaError(_("This passkey or security key is already registered."), "duplicate")
    # looked for with the account's row held (as _add holds it), so of two tabs confirming the same
    # key at once the second sees the first's
    hold_row(Account.id, account.id)
    if db.session.scalar(select(MfaMethod.id).where(MfaMethod.credential_id == verified.credential_id)):
        db.session.rollback()
        raise duplicate
    transports = []
    try:
        transports = json.loads(credential).get("response", {}).get("transports", []) or []
    except (ValueError, AttributeError):
        pass
    method = MfaMethod(account_id=account.id, kind="webauthn", label=(label or "").strip()[:64],
                       credential_id=verified.credential_id, public_key=verified.credential_public_key,
                       sign_count=verified.sign_count, transports=[str(t) for t in transports][:8],
                       device_type=str(getattr(verified.credential_device_type, "value",
                                               verified.credential_device_type)))
    shown = _add(account, method, actor=account.sub, first_only=first_only)
    try:
        db.session.commit()
    except IntegrityError:  # the same key confirmed for another account at this moment
        db.session.rollback()
        raise duplicate from None
    return method, shown


# ------------------------------------------------------------------ recovery codes on their way to the page


def hold_recovery_codes(holder: str, shown: list[str]) -> None:
    """Keep new recovery codes until the page that shows them is read (``holder``: the pending
    sign-in's or the session's id). Sealed with the MFA encryption key: the store never holds them
    in clear, and they cannot be moved to another holder."""
    sealed = crypto.box().encrypt(json.dumps(shown).encode(), f"recovery-codes:{holder}".encode())
    SHOWN_CODES.put(holder, sealed.hex())


def held_recovery_codes(holder: str) -> list[str] | None:
    raw = SHOWN_CODES.get(holder)
    if raw is None:
        return None
    return json.loads(crypto.box().decrypt(bytes.fromhex(raw), f"recovery-codes:{holder}".encode()))


def drop_held_recovery_codes(holder: str) -> None:
    SHOWN_CODES.delete(holder)


# ------------------------------------------------------------------ sign-in challenge
def send_challenge_code(account: Account, method: MfaMethod) -> None:
    """Send a code for an SMS or email method (throttled)."""
    purpose = f"signin-{method.id}"
    if method.kind == "email":
        codes.issue(purpose, account.id, lambda code: background.submit(
            emails.send_mfa_code, emails.recipient(account), code))
    elif method.kind == "sms":
        def deliver(code):
            try:
                sms_sender().send(method.phone, codes.sms_text(code, account.language))
            except DeliveryError as exc:
                raise MfaError(_("We could not send the text message. Try another method."), "not_sent") from exc
        codes.issue(purpose, account.id, deliver)
    else:
        raise MfaError(_("This method does not use a sent code."))


@dataclass(frozen=True)
class Passed:
    amr: list[str]
    acr: str
    kind: str


def passed_with(kind: str, device_type: str = "") -> Passed:
    """What passing a second factor of ``kind`` adds to a sign-in."""
    return Passed(amr=[protocol.amr_of(kind, device_type), protocol.AMR_MFA], acr=protocol.acr_of(kind), kind=kind)


#: the code of an answer that was right for a method removed while it was checked
METHOD_REMOVED = "method_removed"


def _passed(account: Account, method: MfaMethod | None, kind: str) -> Passed:
    if method is not None:
        method.last_used_at = utcnow()
    audit.record("signin.mfa", actor=account.sub, subject=account.sub, centre=account.centre_number, kind=kind)
    try:
        db.session.commit()
    except StaleDataError:
        # the method was removed (by its owner, in My account, or an MFA reset) while its answer
        # was checked: an answer for a method the account no longer has, never a 500
        db.session.rollback()
        raise MfaError(_("That sign-in method was not found."), METHOD_REMOVED) from None
    return passed_with(kind, method.device_type if method is not None else "")


def verify_answer(account: Account, *, kind: str, method_id: str | None = None, code: str = "",
                  ceremony: str = "", credential: str = "") -> Passed:
    """Check one answer to the challenge against the account's failure budget.

    A slot of the budget is taken before anything secret is compared, so neither parallel
    requests nor a replayed cookie nor a new sign-in attempt gets more than ``[mfa] max_failures``
    guesses; a locked account is refused unseen (``locked``). The answer that spends the budget
    locks the account (``ended``)."""
    method = _answered_method(account, kind, method_id)
    return _within_budget(account, kind, lambda: _check(account, kind=kind, method=method, code=code,
                                                        ceremony=ceremony, credential=credential))


def _within_budget(account: Account, kind: str, check) -> Passed:
    """Run ``check()`` (a Passed, or MfaError) against the account's second-factor failure budget."""
    slot = lockout.reserve_second_factor(account)
    if slot is None:
        audit.record("signin.mfa", outcome="failure", subject=account.sub, centre=account.centre_number,
                     kind=kind, reason="locked")
        db.session.commit()
        raise MfaError(lockout.lock_message(), "locked")
    try:
        passed = check()
    except MfaError as exc:
        db.session.rollback()
        if exc.code == METHOD_REMOVED:  # a right answer for a method gone meanwhile: not a guess
            lockout.second_factor_not_counted(account)
            audit.record("signin.mfa", outcome="failure", subject=account.sub, centre=account.centre_number,
                         kind=kind, reason=exc.code)
            db.session.commit()
            raise
        locked_now = lockout.second_factor_failed(account, slot)
        audit.record("signin.mfa", outcome="failure", subject=account.sub, centre=account.centre_number,
                     kind=kind, reason=exc.code)
        db.session.commit()
        if locked_now:
            minutes = policy.current().sec("lockout").lock_seconds // 60
            background.submit(emails.send_locked, emails.recipient(account), minutes)
            raise MfaError(_("Too many wrong answers. Your account is locked for up to %(minutes)d minutes; "
                             "reset your password to unlock it now.", minutes=minutes), "ended") from None
        raise
    lockout.second_factor_ok(account)
    db.session.commit()
    return passed


def passkey_sign_in_options() -> tuple[str, dict]:
    """(ceremony, options) for "Sign in with a passkey" on the email page."""
    return webauthn.discoverable_options()


def sign_in_with_passkey(ceremony: str, credential: str) -> tuple[Account, Passed]:
    """Passkey-first sign-in: the passkey (a discoverable credential, with user verification) names
    its account and proves two factors at once, so no password is asked. A wrong answer from a
    known passkey uses its account's second-factor budget; an unknown passkey names nobody."""
    refused = MfaError(_("That passkey could not be used to sign in. Sign in with your email address instead."),
                       "bad_credential")
    try:
        challenge, parsed = webauthn.parse_discoverable(ceremony, credential)
    except webauthn.WebAuthnError:
        raise refused from None
    method = db.session.scalar(select(MfaMethod).where(MfaMethod.credential_id == parsed.raw_id,
                                                       MfaMethod.kind == "webauthn"))
    account = db.session.get(Account, method.account_id) if method is not None else None
    handle = parsed.response.user_handle
    if account is None or (handle is not None and handle != account.sub.encode()):
        raise refused

    def check() -> Passed:
        try:
            verified = webauthn.verify_discoverable(challenge, parsed, method)
        except webauthn.WebAuthnError:
            raise refused from None
        method.sign_count = verified.new_sign_count
        return _passed(account, method, "webauthn")

    return account, _within_budget(account, "webauthn", check)


def _answered_method(account: Account, kind: str, method_id: str | None) -> MfaMethod | None:
    """The method an answer is for, found before anything is checked (a missing method uses no
    budget: nothing secret was compared)."""
    if kind in ("recovery", "webauthn"):
        return None
    method = method_of(account, method_id or "")
    if method.kind != kind or kind not in ("totp", "sms", "email"):
        raise MfaError(_("That sign-in method was not found."), "not_found")
    return method


def _check(account, *, kind, method, code, ceremony, credential) -> Passed:
    if kind == "recovery":
        if not recovery.use(account.id, code):
            raise MfaError(_("That recovery code is not right or has been used."), "bad_code")
        left = recovery.remaining(account.id)
        audit.record("mfa.recovery_code_used", actor=account.sub, subject=account.sub,
                     centre=account.centre_number, remaining=left)
        background.submit(emails.send_recovery_code_used, emails.recipient(account), left)
        return _passed(account, None, "recovery")
    if kind == "webauthn":
        keys = [m for m in methods_of(account) if m.kind == "webauthn"]
        try:
            method, verified = webauthn.verify_authentication(account, ceremony, credential, keys)
        except webauthn.WebAuthnError as exc:
            raise MfaError(str(exc), "bad_credential") from None
        method.sign_count = verified.new_sign_count
        return _passed(account, method, "webauthn")
    if kind == "totp":
        step = totp.matching_step(totp.unseal(method.secret, method.id), code)
        ok = step is not None and _spend_totp_step(method, step)
    else:
        try:
            ok = codes.check(f"signin-{method.id}", account.id, code)
        except codes.CodeError as exc:
            raise MfaError(exc.message, exc.code) from None
    if not ok:
        raise MfaError(_("The code is not right or has expired."), "bad_code")
    return _passed(account, method, kind)


def _spend_totp_step(method: MfaMethod, step: int) -> bool:
    """Make ``step`` the method's last, if it is later than the last: one statement, so of two
    answers with the same code at once (in any processes) the second waits for the first's commit,
    then matches nothing. Rolled back with a sign-in that fails after it."""
    spent = db.session.execute(
        update(MfaMethod)
        .where(MfaMethod.id == method.id, or_(MfaMethod.totp_step.is_(None), MfaMethod.totp_step < step))
        .values(totp_step=step).execution_options(synchronize_session=False))
    return spent.rowcount == 1


# ------------------------------------------------------------------ managing methods
def is_fresh(entry) -> bool:
    fresh = policy.current().sec("mfa").fresh_seconds
    return entry.mfa_at is not None and time.time() - entry.mfa_at <= fresh


def mark_fresh(entry, passed: Passed) -> None:
    entry.mfa_at = int(time.time())
    entry.amr = sorted(set(entry.amr) | set(passed.amr))
    if passed.acr == protocol.ACR_PHISHING_RESISTANT:
        entry.acr = passed.acr
    db.session.commit()


def _require_fresh(entry) -> None:
    if not is_fresh(entry):
        raise MfaError(_("Confirm it is you with a second factor first."), "not_fresh")


def remove(entry, method_id: str) -> None:
    account = entry.account
    _require_fresh(entry)
    hold_row(Account.id, account.id)  # of two changes at once, the second counts what the first left
    method = method_of(account, method_id)
    remaining = [m for m in methods_of(account) if m.id != method.id]
    if not remaining:
        raise MfaError(_("You cannot remove your only sign-in method. Add another one first."), "last")
    db.session.delete(method)
    if method.preferred:
        remaining[0].preferred = True
    audit.record("mfa.method_removed", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 kind=method.kind)
    db.session.commit()


def set_preferred(entry, method_id: str) -> None:
    account = entry.account
    hold_row(Account.id, account.id)  # of two changes at once, the second counts what the first left
    method = method_of(account, method_id)
    for other in methods_of(account):
        other.preferred = other.id == method.id
    audit.record("mfa.preferred_changed", actor=account.sub, subject=account.sub, centre=account.centre_number,
                 kind=method.kind)
    db.session.commit()


def regenerate_recovery_codes(entry) -> list[str]:
    _require_fresh(entry)
    account = entry.account
    # of two at once (two tabs), the second waits for the first's commit and replaces its codes:
    # else each deleted only the codes it could see, and both sets worked
    hold_row(Account.id, account.id)
    shown = recovery.regenerate(account.id)
    audit.record("mfa.recovery_codes_regenerated", actor=account.sub, subject=account.sub,
                 centre=account.centre_number)
    db.session.commit()
    return shown


# ------------------------------------------------------------------ resets
def remove_every_method(account: Account) -> list[str]:
    """Every second factor and recovery code of the account goes, and the next sign-in must enrol
    a new one (an MFA reset: who may ask for it is admin's to decide). Returns the kinds removed.
    The caller commits."""
    removed = [m.kind for m in methods_of(account)]
    db.session.execute(delete(MfaMethod).where(MfaMethod.account_id == account.id))
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
    account.mfa_reset_at = utcnow()
    return removed


# ------------------------------------------------------------------ re-verification in My account
def reverify(entry, **answer) -> Passed:
    """A fresh second factor in My account. When the answer spends the budget or the account is
    locked, this session ends too."""
    try:
        passed = verify_answer(entry.account, **answer)
    except MfaError as exc:
        if exc.code in ("ended", "locked"):
            account = entry.account
            sessions.end(entry)
            audit.record("session.ended", actor=account.sub, subject=account.sub, centre=account.centre_number,
                         reason="mfa_budget_spent", sid=entry.sid)
            db.session.commit()
        raise
    mark_fresh(entry, passed)
    return passed
