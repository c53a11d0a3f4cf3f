"""Short-lived records in the store, one adapter per kind: each kind's key prefix and lifetime are
declared once, beside the code that owns it (``CODES = Record("code", ttl=60)``), instead of
f-string keys spread over the modules that read and write them."""

from __future__ import annotations

import json
import logging
import time

from .extensions import store
from .store import StoreUnavailable

log = logging.getLogger(__name__)


class Record:
    """One kind of record: ``prefix:<id>`` keys living ``ttl`` seconds unless told otherwise."""

    def __init__(self, prefix: str, ttl: int) -> None:
        self.prefix, self.ttl = prefix, ttl

    def key(self, record_id: str) -> str:
        return f"{self.prefix}:{record_id}"

    # ---- text values
    def put(self, record_id: str, value: str, ttl: int | None = None) -> None:
        store.put(self.key(record_id), value, self.ttl if ttl is None else ttl)

    def add(self, record_id: str, value: str = "1", ttl: int | None = None) -> bool:
        """Set only if absent: True for the first caller (single use across processes)."""
        return store.add(self.key(record_id), value, self.ttl if ttl is None else ttl)

    def replace(self, record_id: str, value: str, ttl: int | None = None) -> bool:
        """Set only if present: False when another caller has taken or deleted it meanwhile."""
        return store.replace(self.key(record_id), value, self.ttl if ttl is None else ttl)

    def get(self, record_id: str) -> str | None:
        return store.get(self.key(record_id))

    def take(self, record_id: str) -> str | None:
        """Get and delete in one step: of several concurrent callers, one gets the value."""
        return store.take(self.key(record_id))

    def add_to(self, record_id: str, amount: int, ttl: int | None = None) -> int:
        """Count up or down (never below zero); the record lives ``ttl`` from this call."""
        return store.add_to(self.key(record_id), amount, self.ttl if ttl is None else ttl)

    def swap(self, record_id: str, value: str, ttl: int | None = None) -> str | None:
        return store.swap(self.key(record_id), value, self.ttl if ttl is None else ttl)

    def delete(self, *record_ids: str) -> None:
        store.delete(*(self.key(i) for i in record_ids))

    def incr(self, record_id: str, ttl: int | None = None) -> int:
        """A counter over a fixed window of ``ttl`` seconds from its first increment."""
        return store.incr(self.key(record_id), self.ttl if ttl is None else ttl)

    # ---- JSON values
    def put_json(self, record_id: str, value, ttl: int | None = None) -> None:
        self.put(record_id, json.dumps(value), ttl)

    def replace_json(self, record_id: str, value, ttl: int | None = None) -> bool:
        return self.replace(record_id, json.dumps(value), ttl)

    def get_json(self, record_id: str):
        raw = self.get(record_id)
        return None if raw is None else json.loads(raw)

    def take_json(self, record_id: str):
        raw = self.take(record_id)
        return None if raw is None else json.loads(raw)


# ------------------------------------------------------------------ since when the store remembers
#: The last whole second the store has forgotten: written (if absent) as the app starts, and again
#: by whoever finds it gone. It is gone when the store has forgotten everything (a Redis restarted
#: without persistence, or flushed; the embedded store at every restart), and with it every
#: revocation, and every record of a one-time value having been used. What was issued or made up
#: to that second cannot be told apart any more from what was revoked or used, so it is refused
#: (fail closed): an access token (``idp.oidc.tokens``), a DPoP proof, a client assertion. It never
#: expires of itself (the store is run with ``maxmemory-policy noeviction``).
STORE_FORGOT = Record("store-forgot", ttl=10 * 365 * 86400)
_FORGOT_ID = "up-to"


def note_store_beginning() -> None:
    """As the app starts: if the store has no record of what it forgot (its first start, or it
    forgot everything while this service was stopped), everything up to the last whole second.
    (Not this second: a token this app issues as soon as it is up is after it.) A store out of
    reach leaves it to the first reader."""
    try:
        if STORE_FORGOT.add(_FORGOT_ID, str(int(time.time()) - 1)):
            log.info("the store held no record of what it forgot (it is new, or has forgotten everything): "
                     "what was issued or used before now is refused")
    except StoreUnavailable:
        log.warning("the store is out of reach; what it may have forgotten is checked by the first reader")


def store_forgot_key() -> str:
    """The key to read with others (in one round trip) and give to ``store_forgot``."""
    return STORE_FORGOT.key(_FORGOT_ID)


def store_forgot(value: str | None) -> int:
    """The last whole second the store has forgotten (what was issued then or before is refused),
    given the value of ``store_forgot_key()``. Missing: the store has forgotten everything since it
    was written, up to now (this second included: a token issued in it may predate the loss)."""
    if value is not None:
        try:
            return int(value)
        except ValueError:
            pass
    now = int(time.time())
    try:
        if value is not None:  # garbled: as good as gone, and replaced (not left to refuse everything for ever)
            STORE_FORGOT.put(_FORGOT_ID, str(now))
        elif STORE_FORGOT.add(_FORGOT_ID, str(now)):
            log.warning("the store has forgotten everything (restarted empty?): access tokens, DPoP "
                        "proofs and client assertions from before now are refused")
    except StoreUnavailable:
        pass  # refused now all the same; the next reader writes it
    return now


def made_before_the_store_forgot(moment: float) -> bool:
    """Whether something made at ``moment`` (an ``iat``) is from before the store last forgot
    everything, so that the record of its single use may be among what was forgotten (one read)."""
    return moment <= store_forgot(STORE_FORGOT.get(_FORGOT_ID))
