"""Recovery codes: shown once, stored as keyed hashes, each usable once."""

from __future__ import annotations

import secrets as _secrets

from sqlalchemy import delete, select, update

from .. import policy, secrets
from ..clock import utcnow
from ..extensions import db, pepper
from .models import RecoveryCode

ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def _normalise(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())[:40]


def _hash(code: str) -> str:
    return secrets.fast_hash(_normalise(code), pepper())


def regenerate(account_id: str) -> list[str]:
    """New codes; every old one stops working. The caller commits."""
    count = policy.current().sec("mfa").recovery_codes
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
    codes = []
    for _ in range(count):
        raw = "".join(_secrets.choice(ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(account_id=account_id, code_hash=_hash(raw)))
    return codes


def use(account_id: str, code: str) -> bool:
    """Consume a code atomically (a conditional UPDATE: one winner across processes)."""
    if len(_normalise(code)) != 10:
        return False
    row = db.session.scalar(select(RecoveryCode).where(RecoveryCode.account_id == account_id,
                                                       RecoveryCode.code_hash == _hash(code)))
    if row is None:
        return False
    result = db.session.execute(update(RecoveryCode).where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                                .values(used_at=utcnow()).execution_options(synchronize_session=False))
    return result.rowcount == 1


def remaining(account_id: str) -> int:
    return len(list(db.session.scalars(select(RecoveryCode.id).where(
        RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None)))))
