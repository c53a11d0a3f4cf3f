"""Short-lived records in the store, one adapter per kind: each kind's key prefix and lifetime are
declared once, beside the code that owns it (``CODES = Record("code", ttl=60)``), instead of
f-string keys spread over the modules that read and write them."""

from __future__ import annotations

import json

from .extensions import store


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

    def get_json(self, record_id: str):
        raw = self.get(record_id)
        return None if raw is None else json.loads(raw)

    def take_json(self, record_id: str):
        raw = self.take(record_id)
        return None if raw is None else json.loads(raw)
