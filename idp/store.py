"""Short-lived shared state behind one small interface.

Used for what several server processes must agree on at once and that may
expire: single-use values (authorization codes, used TOTP steps, client
assertion ``jti``), atomic counters (failed attempts, rate limits) and the
SSO sessions. Two implementations pass the same contract suite
(tests/unit/test_store_contract.py):

- ``RedisStore``: production and CI; every operation is one atomic Redis command.
- ``MemoryStore``: the embedded quick start; one process only.

Besides keys, the store carries change notices between processes (``publish`` and
``watch``): how per-process caches learn at once that what they hold has changed,
without a round trip on every request.

Nothing that must survive a restart belongs here: that goes to the database.
Values are ``str``; callers serialise structured data themselves (JSON).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The store cannot be reached (or is failing over) right now. Requests that need it fail
    closed with 503 and a Retry-After (idp.errors); nothing is assumed about what it holds."""


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

    @abstractmethod
    def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to every current watcher of ``channel``, in every process."""

    @abstractmethod
    def watch(self, channel: str, on_message: Callable[[str], None], on_reset: Callable[[], None]) -> Watch:
        """Call ``on_message`` for each message published on ``channel`` from now on.

        Messages are not kept for a watcher that is disconnected, so ``on_reset`` is called each
        time the watch (re)connects and each time it loses the connection: the watcher drops
        whatever it holds. ``Watch.live`` is True only while messages are sure to arrive; a cache
        must not be trusted while it is False."""

    def close(self) -> None:  # pragma: no cover - trivial
        """Release connections (and stop watches)."""


class Watch:
    """A subscription made by ``Store.watch``."""

    live: bool = False

    def stop(self) -> None:
        """Stop delivering messages."""


class MemoryStore(Store):
    """In-process store for the single-process quick start.

    Expiry uses ``time.time`` (not ``monotonic``) so tests can travel in time.
    """

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self._queues: dict[str, list[tuple[float, str]]] = {}
        self._watchers: dict[str, list[_MemoryWatch]] = {}
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

    def publish(self, channel, message):
        with self._lock:
            watchers = list(self._watchers.get(channel, ()))
        for watcher in watchers:  # one process: delivered before publish returns
            watcher.on_message(message)

    def watch(self, channel, on_message, on_reset):
        watcher = _MemoryWatch(self, channel, on_message)
        with self._lock:
            self._watchers.setdefault(channel, []).append(watcher)
        on_reset()
        return watcher


class _MemoryWatch(Watch):
    live = True

    def __init__(self, store: MemoryStore, channel: str, on_message) -> None:
        self._store, self._channel, self.on_message = store, channel, on_message

    def stop(self) -> None:
        with self._store._lock:
            watchers = self._store._watchers.get(self._channel, [])
            if self in watchers:
                watchers.remove(self)
        self.live = False


def _unavailable_on_redis_errors(cls):
    """Every public operation of ``cls`` raises StoreUnavailable when Redis cannot be reached,
    times out or is read-only during a failover (other Redis errors are bugs and stay as they are)."""
    import functools

    import redis

    outage = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError)

    def guard(method):
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except outage as exc:
                raise StoreUnavailable(f"Redis: {exc.__class__.__name__}") from exc

        return guarded

    for name in ("put", "add", "get", "get_many", "take", "swap", "delete", "incr", "enqueue", "claim_due", "ttl",
                 "ping", "publish"):
        setattr(cls, name, guard(getattr(cls, name)))
    return cls


@_unavailable_on_redis_errors
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
        self._watches: list[_RedisWatch] = []
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

    def publish(self, channel, message):
        self._redis.publish(self._k(channel), message)

    def watch(self, channel, on_message, on_reset):
        watch = _RedisWatch(self._redis, self._k(channel), on_message, on_reset)
        self._watches.append(watch)
        return watch

    def close(self):
        for watch in self._watches:
            watch.stop()
        self._redis.close()


class _RedisWatch(Watch):
    """A Redis SUBSCRIBE in a daemon thread, reconnecting with backoff.

    A silently dead connection is noticed by a PING every ``PING_EVERY`` seconds: without a
    reply within ``DEAD_AFTER`` the watch resets and reconnects."""

    PING_EVERY = 5.0
    DEAD_AFTER = 12.0

    def __init__(self, redis_client, channel: str, on_message, on_reset) -> None:
        self._redis, self._channel = redis_client, channel
        self._on_message, self._on_reset = on_message, on_reset
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"store-watch {channel}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        # not joined: the thread notices within a second (get_message's timeout) and ends
        self._stopped.set()
        self.live = False

    def _run(self) -> None:
        backoff = 0.1
        while not self._stopped.is_set():
            pubsub = self._redis.pubsub()
            try:
                pubsub.subscribe(self._channel)
                last_heard = last_ping = time.monotonic()
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    now = time.monotonic()
                    if message is not None:
                        last_heard = now
                        if message["type"] == "subscribe":
                            self._on_reset()  # whatever was published before now was missed
                            self.live = True
                            backoff = 0.1
                        elif message["type"] == "message":
                            self._on_message(message["data"])
                    if now - last_ping >= self.PING_EVERY:
                        pubsub.ping()
                        last_ping = now
                    if now - last_heard > self.DEAD_AFTER:
                        raise ConnectionError(f"no reply from Redis on {self._channel} for {self.DEAD_AFTER:.0f}s")
            except Exception as exc:  # noqa: BLE001 - any failure means: stop trusting, reconnect
                if not self._stopped.is_set():
                    log.warning("store watch on %s lost (%s); reconnecting", self._channel, exc)
            finally:
                was_live, self.live = self.live, False
                if was_live:
                    self._on_reset()
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001 - the connection is already gone
                    pass
            self._stopped.wait(backoff)
            backoff = min(backoff * 2, 5.0)


def from_settings(settings) -> Store:
    if settings.store.redis_url:
        return RedisStore(settings.store.redis_url, settings.store.prefix)
    return MemoryStore()
