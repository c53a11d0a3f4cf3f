"""Short-lived shared state behind one small interface.

Used for what several server processes must agree on at once and that may
expire: single-use values (authorization codes, used TOTP steps, client
assertion ``jti``), atomic counters (failed attempts, rate limits) and the
SSO sessions. Two implementations pass the same contract suite
(tests/unit/test_store_contract.py):

- ``RedisStore``: production and CI; every operation is one atomic Redis command.
- ``MemoryStore``: the embedded quick start; one process only.

Nothing that must survive a restart belongs here: that goes to the database.
Values are ``str``; callers serialise structured data themselves (JSON).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod


class Store(ABC):
    """The whole contract. ``ttl`` is in whole seconds, at least 1, and always required:
    everything in the store expires. (A ttl below 1 is treated as 1 by every implementation.)"""

    @abstractmethod
    def put(self, key: str, value: str, ttl: int) -> None:
        """Set ``key`` to ``value``, replacing any previous value."""

    @abstractmethod
    def add(self, key: str, value: str, ttl: int) -> bool:
        """Set ``key`` only if it is absent. True if this call set it (first use wins)."""

    @abstractmethod
    def get(self, key: str) -> str | None:
        """The current value, or None if absent or expired."""

    @abstractmethod
    def get_many(self, *keys: str) -> list[str | None]:
        """The values of several keys in one round trip, in order."""

    @abstractmethod
    def take(self, key: str) -> str | None:
        """Get and delete in one step: of several concurrent callers, exactly one gets the value."""

    @abstractmethod
    def swap(self, key: str, value: str, ttl: int) -> str | None:
        """Set ``key`` to ``value`` and return the previous value, in one step."""

    @abstractmethod
    def delete(self, *keys: str) -> None:
        """Remove keys; absent keys are ignored."""

    @abstractmethod
    def incr(self, key: str, ttl: int) -> int:
        """Add one and return the new count. The expiry is set when the counter is created
        and not extended by later increments (a fixed window)."""

    @abstractmethod
    def enqueue(self, queue: str, value: str, due: float) -> None:
        """Add a job to a delayed queue, to be handed out from time ``due`` (epoch seconds)."""

    @abstractmethod
    def claim_due(self, queue: str, now: float, limit: int = 50) -> list[str]:
        """Remove and return up to ``limit`` jobs whose time has come; each job goes to one caller."""

    @abstractmethod
    def ttl(self, key: str) -> int | None:
        """Seconds until ``key`` expires, or None if it is absent."""

    @abstractmethod
    def ping(self) -> None:
        """Raise if the store cannot be reached."""

    def close(self) -> None:  # pragma: no cover - trivial
        """Release connections."""


class MemoryStore(Store):
    """In-process store for the single-process quick start.

    Expiry uses ``time.time`` (not ``monotonic``) so tests can travel in time.
    """

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._queues: dict[str, list[tuple[float, str]]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> tuple[str, float] | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= time.time():
            del self._data[key]
            return None
        return item

    def _sweep(self) -> None:
        # Bound memory: drop expired entries now and then, not on every call.
        if len(self._data) > 10_000:
            now = time.time()
            for key in [k for k, (_, exp) in self._data.items() if exp <= now]:
                del self._data[key]

    def put(self, key, value, ttl):
        with self._lock:
            self._sweep()
            self._data[key] = (value, time.time() + max(1, ttl))

    def add(self, key, value, ttl):
        with self._lock:
            if self._live(key) is not None:
                return False
            self._sweep()
            self._data[key] = (value, time.time() + max(1, ttl))
            return True

    def get(self, key):
        with self._lock:
            item = self._live(key)
            return item[0] if item else None

    def get_many(self, *keys):
        with self._lock:
            return [(item[0] if (item := self._live(k)) else None) for k in keys]

    def take(self, key):
        with self._lock:
            item = self._live(key)
            if item is None:
                return None
            del self._data[key]
            return item[0]

    def swap(self, key, value, ttl):
        with self._lock:
            item = self._live(key)
            self._data[key] = (value, time.time() + max(1, ttl))
            return item[0] if item else None

    def delete(self, *keys):
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def incr(self, key, ttl):
        with self._lock:
            item = self._live(key)
            if item is None:
                self._data[key] = ("1", time.time() + max(1, ttl))
                return 1
            count = int(item[0]) + 1
            self._data[key] = (str(count), item[1])
            return count

    def enqueue(self, queue, value, due):
        with self._lock:
            self._queues.setdefault(queue, []).append((due, value))

    def claim_due(self, queue, now, limit=50):
        with self._lock:
            jobs = sorted(self._queues.get(queue, []), key=lambda j: j[0])
            due = [j for j in jobs if j[0] <= now][:limit]
            self._queues[queue] = jobs[len(due):]  # sorted: the due jobs are the front
            return [value for _, value in due]

    def ttl(self, key):
        with self._lock:
            item = self._live(key)
            return None if item is None else max(0, int(round(item[1] - time.time())))

    def ping(self):
        return None


class RedisStore(Store):
    """Redis-backed store; each method is a single atomic command (or script)."""

    # INCR then set the expiry only when the key was just created, atomically.
    _INCR = """
    local n = redis.call('INCR', KEYS[1])
    if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
    return n
    """

    # Take the due jobs off a sorted set (score = due time) in one step.
    _CLAIM = """
    local jobs = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
    if #jobs > 0 then redis.call('ZREM', KEYS[1], unpack(jobs)) end
    return jobs
    """

    def __init__(self, url: str, prefix: str = "idp:") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5,
                                           socket_connect_timeout=5, health_check_interval=30)
        self._prefix = prefix
        self._incr = self._redis.register_script(self._INCR)
        self._claim = self._redis.register_script(self._CLAIM)

    def _k(self, key: str) -> str:
        return self._prefix + key

    def put(self, key, value, ttl):
        self._redis.set(self._k(key), value, ex=max(1, ttl))

    def add(self, key, value, ttl):
        return bool(self._redis.set(self._k(key), value, ex=max(1, ttl), nx=True))

    def get(self, key):
        return self._redis.get(self._k(key))

    def get_many(self, *keys):
        return self._redis.mget([self._k(k) for k in keys]) if keys else []

    def take(self, key):
        return self._redis.getdel(self._k(key))

    def swap(self, key, value, ttl):
        return self._redis.set(self._k(key), value, ex=max(1, ttl), get=True)

    def delete(self, *keys):
        if keys:
            self._redis.delete(*(self._k(k) for k in keys))

    def incr(self, key, ttl):
        return int(self._incr(keys=[self._k(key)], args=[max(1, ttl)]))

    def enqueue(self, queue, value, due):
        # a job id keeps identical payloads distinct in the sorted set
        import uuid

        self._redis.zadd(self._k(f"queue:{queue}"), {f"{uuid.uuid4().hex}|{value}": due})

    def claim_due(self, queue, now, limit=50):
        jobs = self._claim(keys=[self._k(f"queue:{queue}")], args=[now, limit])
        return [job.split("|", 1)[1] for job in jobs]

    def ttl(self, key):
        remaining = self._redis.ttl(self._k(key))
        return None if remaining < 0 else remaining

    def ping(self):
        self._redis.ping()

    def close(self):
        self._redis.close()


def from_settings(settings) -> Store:
    if settings.store.redis_url:
        return RedisStore(settings.store.redis_url, settings.store.prefix)
    return MemoryStore()
