"""Short-lived shared state behind one small interface.

Used for what several server processes must agree on at once and that may
expire: single-use values (authorization codes, used TOTP steps, client
assertion ``jti``), atomic counters (failed attempts, rate limits) and the
SSO sessions. Two implementations pass the same contract suite
(tests/unit/test_store_contract.py):

- ``RedisStore``: production and CI; every operation is one atomic Redis command. One server
  (``redis://``), a primary watched by Redis Sentinel (``redis+sentinel://``: failover) or a Redis
  Cluster (``redis+cluster://``: sharding), chosen by the URL (``redis_client``).
- ``MemoryStore``: the embedded quick start; one process only.

Every atomic operation (``add``, ``take``, ``swap``, ``incr``, ``add_to``, ``claim_due``) touches one
key, so on a Cluster it runs on the one node holding that key's slot. The only commands naming
several keys are ``get_many`` (reads of independent markers, which never need to agree with each
other at one instant) and ``delete``: on a Cluster they are sent per slot, in one round trip per
node.

Besides keys, the store carries change notices between processes (``publish`` and
``watch``): how per-process caches learn at once that what they hold has changed,
without a round trip on every request.

Nothing that must survive a restart belongs here: that goes to the database.
Values are ``str``; callers serialise structured data themselves (JSON).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable

log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The store cannot be reached (or is failing over) right now. Requests that need it fail
    closed with 503 and a Retry-After (idp.errors); nothing is assumed about what it holds."""


class Store(ABC):
    """The whole contract. ``ttl`` is in whole seconds, at least 1, and always required:
    everything in the store expires. (A ttl below 1 is treated as 1 by every implementation.)"""

    #: whether other processes (the CLI, other workers) read and write the same store: what is
    #: kept here on the strength of notices they write (claims copies) is only safe if they do
    shared: bool = True

    @abstractmethod
    def put(self, key: str, value: str, ttl: int) -> None:
        """Set ``key`` to ``value``, replacing any previous value."""

    @abstractmethod
    def add(self, key: str, value: str, ttl: int) -> bool:
        """Set ``key`` only if it is absent. True if this call set it (first use wins)."""

    @abstractmethod
    def replace(self, key: str, value: str, ttl: int) -> bool:
        """Set ``key`` only if it is present (not taken, deleted or expired meanwhile). True if
        this call set it: what another caller ended stays ended."""

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
    def add_to(self, key: str, amount: int, ttl: int) -> int:
        """Add ``amount`` (negative to take away, never below zero) and return the new count; the
        expiry is set to ``ttl`` from now on every call (a count of things in progress, kept while
        they last: taking away from a count that expired leaves zero, not a debt)."""

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

    def close(self) -> None:  # noqa: B027 - a no-op unless a store holds connections
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

    shared = False

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

    def replace(self, key, value, ttl):
        with self._lock:
            if self._live(key) is None:
                return False
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

    def add_to(self, key, amount, ttl):
        with self._lock:
            item = self._live(key)
            count = max(0, (int(item[0]) if item else 0) + amount)
            self._data[key] = (str(count), time.time() + max(1, ttl))
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


SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
#: how long one Redis command may take before the request gives up on it (and answers 503)
SOCKET_TIMEOUT = 5
#: connections per process: each serving thread (at most 64) keeps one for reads and may borrow
#: one more at a time; the watches and background work take a few
POOL_SIZE = 192


def _locations(netloc: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` (after any ``user:password@``) -> [(host, port)]."""
    hosts = []
    for location in netloc.rpartition("@")[2].split(","):
        host, _, port = location.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"expected host:port, got {location!r}")
        hosts.append((host.strip("[]"), int(port)))
    return hosts


def redis_client(url: str):
    """A redis-py client for ``url``:

    - ``redis://[user:password@]host:port/db`` (or ``rediss://``, ``unix://``): one server;
    - ``redis+sentinel://[user:password@]host:port,host:port/service_name[?db=N]``: the primary that
      these Sentinels name, found again after a failover (the password is the same for both);
    - ``redis+cluster://[user:password@]host:port,host:port``: a Redis Cluster, from any of its nodes.

    The same URL configures the rate limiter (the ``limits`` library reads the same schemes)."""
    from urllib.parse import parse_qs, unquote, urlsplit

    import redis

    parts = urlsplit(url)
    common = {"decode_responses": True, "socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": SOCKET_TIMEOUT}
    auth = {k: unquote(v) for k, v in (("username", parts.username), ("password", parts.password)) if v}
    if parts.scheme == SENTINEL_SCHEME:
        from redis.sentinel import Sentinel

        service = parts.path.strip("/")
        if not service:
            raise ValueError("a redis+sentinel:// URL names the service after the hosts: .../mymaster")
        db = int(parse_qs(parts.query).get("db", ["0"])[0])
        sentinel = Sentinel(_locations(parts.netloc), sentinel_kwargs={**auth, "socket_timeout": SOCKET_TIMEOUT,
                                                                      "socket_connect_timeout": SOCKET_TIMEOUT},
                            **auth)
        return sentinel.master_for(service, db=db, health_check_interval=30, max_connections=POOL_SIZE, **common)
    if parts.scheme == CLUSTER_SCHEME:
        return _LazyCluster([*_locations(parts.netloc)], {**common, **auth})
    return redis.Redis.from_url(url, health_check_interval=30, max_connections=POOL_SIZE, **common)


class _LazyCluster:
    """A RedisCluster made at its first use, not at start-up: redis-py asks a node for the slot map
    when the client is made, and a worker must start (and answer 503) while the cluster is away."""

    def __init__(self, nodes: list[tuple[str, int]], options: dict) -> None:
        self._nodes, self._options = nodes, options
        self._client = None
        self._lock = threading.Lock()

    def client(self):
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from redis.cluster import ClusterNode, RedisCluster

                    self._client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in self._nodes],
                                                **self._options)
        return self._client

    def __getattr__(self, name):
        return getattr(self.client(), name)

    def close(self):
        if self._client is not None:
            self._client.close()


def _unavailable_on_redis_errors(cls):
    """Every public operation of ``cls`` raises StoreUnavailable when Redis cannot be reached,
    times out, is read-only during a failover or (a Cluster) is moving a slot or has lost a node's
    slots. Other Redis errors are bugs and stay as they are."""
    import functools

    import redis
    from redis.exceptions import ClusterDownError, RedisClusterException, TryAgainError

    outage = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError,
              ClusterDownError, TryAgainError, RedisClusterException)

    def guard(method):
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except outage as exc:
                raise StoreUnavailable(f"Redis: {exc.__class__.__name__}") from exc

        return guarded

    for name in ("put", "add", "get", "get_many", "take", "swap", "delete", "incr", "add_to", "enqueue", "claim_due",
                 "ttl", "ping", "publish"):
        setattr(cls, name, guard(getattr(cls, name)))
    return cls


class _ReadConnection:
    """A pooled connection one thread keeps for its reads. Given back to the pool when it is
    dropped: replaced, or the thread ends and its thread-local data goes (granian retires idle
    threads: a connection kept past its thread would stay checked out, and the pool run dry)."""

    def __init__(self, pool) -> None:
        self.pid = os.getpid()
        self.connection = pool.get_connection()
        weakref.finalize(self, _give_back, pool, self.connection)

    def usable(self, pool) -> bool:
        """Still this process's, connected (redis-py disconnects it on any error; a reconnection
        of its own would not ask the Sentinels where the primary is), owned by the pool (for
        Sentinel: still leading to the primary the pool knows) and not told to reconnect (a
        maintenance notice)."""
        connection = self.connection
        return self.pid == os.getpid() and connection.is_connected and pool.owns_connection(connection) \
            and not connection.should_reconnect()


def _give_back(pool, connection) -> None:
    try:
        connection.disconnect()
        pool.release(connection)
    except Exception:  # a pool closed or reset meanwhile has let it go already
        log.debug("a read connection was not given back", exc_info=True)


class _PrimaryCheck:
    """Asks the Sentinels where the primary is every ``EVERY`` seconds, for a store whose primary
    they watch. redis-py asks only when it makes a connection; a connection that stays up to a
    primary the Sentinels have replaced (cut off from them, it never heard it was demoted, so it
    never closed its clients) would otherwise serve this process's reads, and take its writes and
    notices, for as long as it stays up. When the answer changes, the pool drops its idle
    connections and no longer owns the rest: kept read connections are replaced at their next read
    (``_ReadConnection.usable``), the watches reconnect, a borrowed connection is dropped when it
    is given back. Every pool in ``pools`` is asked about: the store's, and the rate limiter's
    (``RedisStore.follow_primary_with``); the list may grow while the check runs."""

    EVERY = 1.0

    def __init__(self, pools: list) -> None:
        self.pid = os.getpid()
        self._pools = pools
        self._stopped = threading.Event()
        threading.Thread(target=self._run, name="store primary check", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        while not self._stopped.wait(self.EVERY):
            for pool in list(self._pools):
                try:
                    before = pool.master_address
                    now = pool.get_master_address()
                    if before is not None and now != before:
                        log.warning("the Sentinels name a new Redis primary (%s:%s); leaving %s:%s", *now, *before)
                except Exception as exc:  # noqa: BLE001 - no Sentinel answered: ask again next time
                    log.debug("the Sentinels were not asked where the primary is: %r", exc)


def _sentinel_pool(redis_client):
    """The client's pool if Sentinels watch its primary, else None (never building a Cluster's
    client to find out: that happens in the watch's thread, which retries)."""
    from redis.sentinel import SentinelConnectionPool

    if isinstance(redis_client, _LazyCluster):
        return None
    pool = getattr(redis_client, "connection_pool", None)
    return pool if isinstance(pool, SentinelConnectionPool) else None


def _packed(connection, command: tuple) -> list[bytes]:
    """``command`` in the Redis protocol, packed by hiredis in C in one call: redis-py's packer
    (each argument through its encoder in Python) was a fifth of a UserInfo call's CPU. Anything
    hiredis will not pack (a lone surrogate, say) goes to redis-py's, to fail as it would there."""
    try:
        import hiredis

        return [hiredis.pack_command(command)]
    except (ImportError, TypeError, UnicodeError):
        return connection.pack_command(*command)


@_unavailable_on_redis_errors
class RedisStore(Store):
    """Redis-backed store; each method is a single atomic command (or script)."""

    # INCR then set the expiry only when the key was just created, atomically.
    _INCR = """
    local n = redis.call('INCR', KEYS[1])
    if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
    return n
    """

    # INCRBY (floored at zero) and a new expiry, atomically.
    _ADD_TO = """
    local n = redis.call('INCRBY', KEYS[1], ARGV[1])
    if n < 0 then
        n = 0
        redis.call('SET', KEYS[1], 0)
    end
    redis.call('EXPIRE', KEYS[1], ARGV[2])
    return n
    """

    # Take the due jobs off a sorted set (score = due time) in one step.
    _CLAIM = """
    local jobs = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
    if #jobs > 0 then redis.call('ZREM', KEYS[1], unpack(jobs)) end
    return jobs
    """

    #: how long a write waits for its replicas (``wait_for_replicas``) before it fails closed
    WAIT_MS = 1000

    def __init__(self, url: str, prefix: str = "idp:", wait_for_replicas: int = 0) -> None:
        self._redis = redis_client(url)
        self._cluster = isinstance(self._redis, _LazyCluster)
        if wait_for_replicas and self._cluster:
            raise ValueError("wait_for_replicas works with one primary (redis:// or redis+sentinel://), "
                             "not a Cluster")
        self._prefix = prefix
        self._wait = wait_for_replicas
        self._watches: list[_RedisWatch] = []
        self._scripts: dict[str, object] = {}
        self._reads = threading.local()
        self._sentinel_pool = None if self._cluster else _sentinel_pool(self._redis)
        #: every pool the primary check asks about (the store's, then any follow_primary_with adds)
        self._followed_pools = [] if self._sentinel_pool is None else [self._sentinel_pool]
        self._primary_check: _PrimaryCheck | None = None
        self._primary_check_lock = threading.Lock()
        import redis

        self._connection_trouble = (redis.ConnectionError, redis.TimeoutError, OSError)

    def _write(self, command):
        """Run ``command(client)``, one write. With ``wait_for_replicas``, the write and a WAIT go
        in one pipeline (one connection, one round trip): the write counts only once that many
        replicas have it, so a failover to one of them loses no used code, counter or marker.
        Otherwise the write has already happened on the primary, and the caller fails closed."""
        if not self._wait:
            return command(self._redis)
        pipe = self._redis.pipeline(transaction=False)
        command(pipe)
        pipe.execute_command("WAIT", self._wait, self.WAIT_MS)
        result, acknowledged = pipe.execute()
        if acknowledged < self._wait:
            raise StoreUnavailable(f"Redis: a write reached {acknowledged} of {self._wait} replicas")
        return result

    def _script(self, source: str):
        """A registered Lua script, made at its first call (a Cluster client is made at first use)."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts.setdefault(source, self.client.register_script(source))
        return script

    def _k(self, key: str) -> str:
        return self._prefix + key

    def put(self, key, value, ttl):
        self._write(lambda r: r.set(self._k(key), value, ex=max(1, ttl)))

    def add(self, key, value, ttl):
        return bool(self._write(lambda r: r.set(self._k(key), value, ex=max(1, ttl), nx=True)))

    def replace(self, key, value, ttl):
        return bool(self._write(lambda r: r.set(self._k(key), value, ex=max(1, ttl), xx=True)))

    def get(self, key):
        return self._redis.get(self._k(key))

    def get_many(self, *keys):
        if not keys:
            return []
        if self._cluster:  # grouped by slot, one round trip per node (see the module's docstring)
            return self._redis.mget_nonatomic([self._k(k) for k in keys])
        return self._read_plainly("MGET", *(self._k(k) for k in keys))

    def _read_plainly(self, *command):
        """A read sent on a connection this thread keeps for its reads, without the client's command
        machinery around it: the pool's lending and that machinery were a third of the busiest
        read's cost (every token check's revocation markers). Any trouble with the connection (the
        server closed it: a restart, an idle timeout, the CLIENT KILL with which Sentinel ends
        clients of a demoted primary) and it is given back, and the read goes the ordinary way,
        with redis-py's retries and errors; the next read is kept on a connection the pool lends
        afresh (it asks the Sentinels where the primary is). It is also changed when the pool no
        longer owns it (after a fork, or a failover the pool has seen), and given back when the
        thread ends."""
        pool = self._redis.connection_pool
        kept = getattr(self._reads, "kept", None)
        if kept is None or not kept.usable(pool):
            self._check_primary()
            kept = self._reads.kept = _ReadConnection(pool)  # (the one it replaces is given back)
        connection = kept.connection
        try:
            # no health-check PING: a connection the server closed fails the read itself, and a
            # reconnection must go through the pool (and the Sentinels), not the connection's retry
            connection.send_packed_command(_packed(connection, command), check_health=False)
            return connection.read_response()
        except self._connection_trouble:
            self._reads.kept = None
        except BaseException:  # a reply may be left unread: never send on this one again
            self._reads.kept = None
            raise
        return self._redis.execute_command(*command)

    def take(self, key):
        return self._write(lambda r: r.getdel(self._k(key)))

    def swap(self, key, value, ttl):
        return self._write(lambda r: r.set(self._k(key), value, ex=max(1, ttl), get=True))

    def delete(self, *keys):
        if keys:
            self._write(lambda r: r.delete(*(self._k(k) for k in keys)))

    def incr(self, key, ttl):
        script = self._script(self._INCR)
        return int(self._write(lambda r: script(keys=[self._k(key)], args=[max(1, ttl)], client=r)))

    def add_to(self, key, amount, ttl):
        script = self._script(self._ADD_TO)
        return int(self._write(lambda r: script(keys=[self._k(key)], args=[int(amount), max(1, ttl)], client=r)))

    def enqueue(self, queue, value, due):
        # a job id keeps identical payloads distinct in the sorted set
        import uuid

        self._write(lambda r: r.zadd(self._k(f"queue:{queue}"), {f"{uuid.uuid4().hex}|{value}": due}))

    def claim_due(self, queue, now, limit=50):
        script = self._script(self._CLAIM)
        jobs = self._write(lambda r: script(keys=[self._k(f"queue:{queue}")], args=[now, limit], client=r))
        return [job.split("|", 1)[1] for job in jobs]

    def ttl(self, key):
        remaining = self._redis.ttl(self._k(key))
        return None if remaining < 0 else remaining

    def ping(self):
        self._redis.ping()

    def publish(self, channel, message):
        self._redis.publish(self._k(channel), message)

    def watch(self, channel, on_message, on_reset):
        self._check_primary()
        watch = _RedisWatch(self._redis, self._k(channel), on_message, on_reset)
        self._watches.append(watch)
        return watch

    def _check_primary(self) -> None:
        """Start asking the Sentinels where the primary is, once per process (started where a
        server process first reads or watches, so after a fork)."""
        if self._sentinel_pool is None:
            return
        with self._primary_check_lock:
            check = self._primary_check
            if check is None or check.pid != os.getpid():
                self._primary_check = _PrimaryCheck(self._followed_pools)

    def follow_primary_with(self, redis_client) -> None:
        """Make another client of the same Sentinel-watched primary (the rate limiter's, which
        keeps its own connections) leave a replaced primary when this store's check does: else
        its counters would go on to a primary cut off from the Sentinels, and be lost when it
        rejoins as a replica."""
        pool = _sentinel_pool(redis_client)
        if self._sentinel_pool is not None and pool is not None and pool not in self._followed_pools:
            self._followed_pools.append(pool)

    def close(self):
        for watch in self._watches:
            watch.stop()
        if self._primary_check is not None:
            self._primary_check.stop()
        self._redis.close()

    @property
    def client(self):
        """The redis-py client (for tests and ``idp`` commands that inspect the store)."""
        return self._redis.client() if self._cluster else self._redis


class _RedisWatch(Watch):
    """A Redis SUBSCRIBE in a daemon thread, reconnecting with backoff.

    A silently dead connection is noticed by a PING every ``PING_EVERY`` seconds: without a
    reply within ``DEAD_AFTER`` the watch resets and reconnects."""

    PING_EVERY = 5.0
    DEAD_AFTER = 12.0

    def __init__(self, redis_client, channel: str, on_message, on_reset) -> None:
        self._redis, self._channel = redis_client, channel
        #: for a primary the Sentinels watch: the subscription leaves a primary they have replaced
        self._sentinel_pool = _sentinel_pool(redis_client)
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
            pubsub = None
            try:
                pubsub = self._redis.pubsub()  # (a Cluster client may be made here, and fail)
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
                    if self._sentinel_pool is not None and pubsub.connection is not None \
                            and not self._sentinel_pool.owns_connection(pubsub.connection):
                        raise ConnectionError(f"the Sentinels name another primary than {self._channel}'s")
            except Exception as exc:  # noqa: BLE001 - any failure means: stop trusting, reconnect
                if not self._stopped.is_set():
                    log.warning("store watch on %s lost (%s); reconnecting", self._channel, exc)
            finally:
                was_live, self.live = self.live, False
                if was_live:
                    self._on_reset()
                try:
                    if pubsub is not None:
                        pubsub.close()
                except Exception:  # noqa: BLE001 - the connection is already gone
                    pass
            self._stopped.wait(backoff)
            backoff = min(backoff * 2, 5.0)


def from_settings(settings) -> Store:
    if settings.store.redis_url:
        return RedisStore(settings.store.redis_url, settings.store.prefix, settings.store.wait_for_replicas)
    return MemoryStore()
