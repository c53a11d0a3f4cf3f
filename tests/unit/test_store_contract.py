"""The Store contract (idp/store.py): one suite that every implementation passes.

``MemoryStore`` always; when IDP_TEST_REDIS_URL is set, ``RedisStore`` too, on three topologies:
the single server at that URL, a Sentinel set-up (a primary, a replica, three Sentinels; writes
wait for the replica) and a three-primary Cluster, both started by this module on free ports in
7100-7999 from Debian's redis-server (tests/redis_servers.py), once per test process. Each test
gets its own random key prefix and removes its keys afterwards.

Expiry: the in-process store uses ``time.time``, so its tests travel in time with
time-machine; Redis keeps its own clock, so the Redis expiry checks share one short real sleep.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections import Counter

import pytest
import redis
import time_machine

from idp.store import MemoryStore, RedisStore, Store

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "")
TOPOLOGIES = ["redis", "sentinel", "cluster"] if REDIS_URL else []
KINDS = ["memory"] + TOPOLOGIES
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="IDP_TEST_REDIS_URL not set")


def _prefix() -> str:
    return f"t:store:{uuid.uuid4().hex[:12]}:"


def _cleanup(prefix: str, url: str = REDIS_URL) -> None:
    store = RedisStore(url)
    client = store.client
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    store.close()


#: how each topology's store is made: (URL, wait_for_replicas)
def _topology(name: str, request) -> tuple[str, int]:
    if name == "sentinel":
        return request.getfixturevalue("sentinel_setup").url, 1
    if name == "cluster":
        return request.getfixturevalue("cluster_setup").url, 0
    return REDIS_URL, 0


@pytest.fixture(params=TOPOLOGIES)
def topology(request) -> tuple[str, int]:
    """(URL, wait_for_replicas) of each Redis topology."""
    return _topology(request.param, request)


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def store(kind, request):
    if kind == "memory":
        instance: Store = MemoryStore()
        yield instance
        instance.close()
        return
    url, wait = _topology(kind, request)
    prefix = _prefix()
    instance = RedisStore(url, prefix, wait)
    yield instance
    instance.close()
    _cleanup(prefix, url)


def _race(n_threads: int, work) -> list:
    """Run ``work(i)`` in n threads released at the same moment; return their results in order."""
    barrier = threading.Barrier(n_threads)
    results: list = [None] * n_threads
    errors: list = []

    def run(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return results


# ----------------------------------------------------------------- put / get
def test_only_a_store_other_processes_reach_says_it_is_shared(store, kind):
    """What is kept on the strength of other processes' notices (claims copies) relies on it."""
    assert store.shared is (kind != "memory")


def test_get_absent_is_none(store):
    assert store.get("nothing-here") is None


def test_put_then_get(store):
    store.put("k", "v1", 60)
    assert store.get("k") == "v1"
    assert isinstance(store.get("k"), str)


def test_put_replaces_value_and_expiry(store):
    store.put("k", "v1", 1000)
    store.put("k", "v2", 50)
    assert store.get("k") == "v2"
    assert 45 <= store.ttl("k") <= 50


def test_values_round_trip_unchanged(store):
    value = '{"sub": "abc", "amr": ["pwd", "otp"], "name": "Siân Ŵ"}'
    store.put("json", value, 60)
    assert store.get("json") == value
    store.put("empty", "", 60)
    assert store.get("empty") == ""


def test_keys_are_independent(store):
    store.put("a", "1", 60)
    store.put("b", "2", 60)
    assert (store.get("a"), store.get("b")) == ("1", "2")
    store.delete("a")
    assert (store.get("a"), store.get("b")) == (None, "2")


# ----------------------------------------------------------------- add
def test_add_first_wins(store):
    assert store.add("code", "first", 60) is True
    assert store.add("code", "second", 60) is False
    assert store.get("code") == "first"


def test_add_after_delete_succeeds(store):
    assert store.add("code", "first", 60) is True
    store.delete("code")
    assert store.add("code", "again", 60) is True
    assert store.get("code") == "again"


def test_add_sets_expiry(store):
    assert store.add("code", "x", 30)
    assert 25 <= store.ttl("code") <= 30


def test_add_concurrent_exactly_one_wins(store):
    results = _race(16, lambda i: store.add("jti", f"t{i}", 60))
    assert results.count(True) == 1
    assert results.count(False) == 15
    winner = results.index(True)
    assert store.get("jti") == f"t{winner}"


# ----------------------------------------------------------------- take
def test_take_gets_and_deletes(store):
    store.put("code", "payload", 60)
    assert store.take("code") == "payload"
    assert store.get("code") is None
    assert store.take("code") is None


def test_take_absent_is_none(store):
    assert store.take("never-set") is None


def test_take_concurrent_exactly_one_wins(store):
    keys = [f"code{i}" for i in range(40)]
    for i, key in enumerate(keys):
        store.put(key, f"value{i}", 60)

    def taker(_):
        return [store.take(key) for key in keys]

    per_thread = _race(12, taker)
    for i, key in enumerate(keys):
        got = [results[i] for results in per_thread]
        winners = [v for v in got if v is not None]
        assert winners == [f"value{i}"], (key, got)
        assert store.get(key) is None


# ----------------------------------------------------------------- replace
def test_replace_sets_only_what_is_there(store):
    assert store.replace("r", "new", 60) is False
    assert store.get("r") is None
    store.put("r", "old", 5)
    assert store.replace("r", "new", 60) is True
    assert store.get("r") == "new"
    assert 50 < store.ttl("r") <= 60


def test_replace_never_brings_back_what_was_taken(store):
    # a step written by one caller while another takes the record to finish with it: whichever
    # comes first, the record ends taken, and the step was written only if it came first
    for round_ in range(30):
        store.put("r", "start", 60)
        taken, replaced = _race(2, lambda i: store.take("r") if i == 0 else store.replace("r", "step", 60))
        assert (taken, replaced) in (("start", False), ("step", True)), round_
        assert store.get("r") is None, round_


# ----------------------------------------------------------------- swap
def test_swap_returns_previous(store):
    assert store.swap("s", "one", 60) is None
    assert store.get("s") == "one"
    assert store.swap("s", "two", 60) == "one"
    assert store.swap("s", "three", 60) == "two"
    assert store.get("s") == "three"


def test_swap_sets_new_expiry(store):
    store.put("s", "old", 1000)
    assert store.swap("s", "new", 40) == "old"
    assert 35 <= store.ttl("s") <= 40


def test_swap_concurrent_each_previous_returned_once(store):
    store.put("s", "initial", 60)
    results = _race(16, lambda i: store.swap("s", f"v{i}", 60))
    # an atomic swap forms a chain: every value but the final one is handed back exactly once
    seen = Counter(results + [store.get("s")])
    assert seen == Counter(["initial"] + [f"v{i}" for i in range(16)])


# ----------------------------------------------------------------- delete
def test_delete_many_and_absent(store):
    for key in ("a", "b", "c"):
        store.put(key, key, 60)
    store.delete("a", "c", "never-existed")
    assert [store.get(k) for k in ("a", "b", "c")] == [None, "b", None]
    store.delete()  # no keys: nothing to do, no error
    store.delete("never-existed")
    assert store.get("b") == "b"


def test_delete_makes_ttl_none(store):
    store.put("k", "v", 60)
    store.delete("k")
    assert store.ttl("k") is None


# ----------------------------------------------------------------- add_to
def test_add_to_counts_up_and_down(store):
    assert store.add_to("n", 1, 60) == 1
    assert store.add_to("n", 1, 60) == 2
    assert store.add_to("n", -1, 60) == 1
    assert store.add_to("n", -1, 60) == 0
    assert store.get("n") == "0"


def test_add_to_never_goes_below_zero(store):
    assert store.add_to("n", -1, 60) == 0
    assert store.add_to("n", 1, 60) == 1
    assert store.add_to("n", -3, 60) == 0
    assert store.add_to("n", 1, 60) == 1


def test_add_to_renews_the_expiry_on_every_call(store):
    store.add_to("n", 1, 100)
    assert 95 <= store.ttl("n") <= 100
    store.add_to("n", 1, 5_000)
    assert 4_995 <= store.ttl("n") <= 5_000
    store.add_to("n", -1, 50)
    assert 45 <= store.ttl("n") <= 50


def test_add_to_atomic_under_threads(store):
    _race(10, lambda i: store.add_to("n", 1, 60))
    _race(10, lambda i: store.add_to("n", -1, 60) if i % 2 else store.add_to("n", 1, 60))
    assert store.get("n") == "10"


# ----------------------------------------------------------------- incr
def test_incr_counts_from_one(store):
    assert store.incr("n", 60) == 1
    assert store.incr("n", 60) == 2
    assert store.incr("n", 60) == 3
    assert store.get("n") == "3"


def test_incr_sets_ttl_on_first_only(store):
    assert store.incr("n", 100) == 1
    assert 95 <= store.ttl("n") <= 100
    # later increments with a longer ttl do not extend (or reset) the window
    assert store.incr("n", 10_000) == 2
    assert store.incr("n", 5_000) == 3
    assert 95 <= store.ttl("n") <= 100


def test_incr_after_delete_restarts(store):
    store.incr("n", 60)
    store.incr("n", 60)
    store.delete("n")
    assert store.incr("n", 60) == 1


def test_incr_atomic_under_threads(store):
    def work(_):
        return [store.incr("hits", 60) for _ in range(50)]

    per_thread = _race(20, work)
    returned = [n for values in per_thread for n in values]
    assert store.get("hits") == "1000"
    # every increment saw a distinct count: no two threads read the same old value
    assert sorted(returned) == list(range(1, 1001))
    assert 55 <= store.ttl("hits") <= 60


# ----------------------------------------------------------------- ttl
def test_ttl_absent_is_none(store):
    assert store.ttl("nothing") is None


def test_ttl_counts_down_in_whole_seconds(store):
    store.put("k", "v", 120)
    remaining = store.ttl("k")
    assert isinstance(remaining, int)
    assert 115 <= remaining <= 120


def test_ping(store):
    assert store.ping() is None


# ----------------------------------------------------------------- expiry: in-process store, time travel
@pytest.fixture
def travel():
    with time_machine.travel(1_800_000_000, tick=False) as traveller:
        yield traveller


def test_memory_expiry_every_operation(travel):
    store = MemoryStore()
    store.put("put", "v", 10)
    store.add("add", "v", 10)
    store.swap("swap", "v", 10)
    store.incr("incr", 10)
    travel.shift(9)
    assert [store.get(k) for k in ("put", "add", "swap", "incr")] == ["v", "v", "v", "1"]
    assert store.ttl("put") == 1
    travel.shift(2)
    for key in ("put", "add", "swap", "incr"):
        assert store.get(key) is None, key
        assert store.ttl(key) is None, key
        assert store.take(key) is None, key


def test_memory_add_succeeds_once_expired(travel):
    store = MemoryStore()
    assert store.add("jti", "first", 5)
    assert not store.add("jti", "second", 5)
    travel.shift(6)
    assert store.add("jti", "third", 5)
    assert store.get("jti") == "third"


def test_memory_swap_of_expired_returns_none(travel):
    store = MemoryStore()
    store.put("s", "old", 5)
    travel.shift(6)
    assert store.swap("s", "new", 5) is None
    assert store.get("s") == "new"


def test_memory_incr_window_fixed_not_sliding(travel):
    store = MemoryStore()
    assert store.incr("n", 10) == 1
    travel.shift(6)
    assert store.incr("n", 10) == 2
    assert store.ttl("n") == 4  # not extended back to 10
    travel.shift(5)  # 11 s after the first increment: the window has closed
    assert store.get("n") is None
    assert store.incr("n", 10) == 1
    assert store.ttl("n") == 10


def test_memory_ttl_counts_down(travel):
    store = MemoryStore()
    store.put("k", "v", 100)
    travel.shift(30)
    assert store.ttl("k") == 70


def test_memory_expired_entries_are_swept(travel):
    store = MemoryStore()
    for i in range(10_001):
        store.put(f"old{i}", "v", 5)
    travel.shift(6)
    store.put("new", "v", 5)  # a write past the size bound drops what has expired
    assert len(store._data) <= 2


# ----------------------------------------------------------------- expiry: Redis, one real second
@needs_redis
def test_redis_expiry_every_operation(topology):
    url, wait = topology
    prefix = _prefix()
    store = RedisStore(url, prefix, wait)
    try:
        store.put("put", "v", 1)
        store.add("add", "v", 1)
        store.swap("swap", "v", 1)
        store.incr("incr", 1)
        store.put("take", "v", 1)
        assert store.incr("window", 2) == 1
        store.put("long", "v", 60)
        time.sleep(1.15)
        for key in ("put", "add", "swap", "incr", "take"):
            assert store.get(key) is None, key
            assert store.ttl(key) is None, key
        assert store.take("take") is None
        assert store.add("add", "again", 60) is True
        assert store.swap("swap", "new", 60) is None
        assert store.incr("incr", 60) == 1
        # the 2-second window: a second increment 1 s in does not push its end back
        assert store.incr("window", 2) == 2
        assert store.ttl("window") <= 1
        assert store.get("long") == "v"
    finally:
        store.close()
        _cleanup(prefix, url)


@needs_redis
def test_redis_prefix_isolates_stores(topology):
    url, wait = topology
    a, b = _prefix(), _prefix()
    one, two = RedisStore(url, a, wait), RedisStore(url, b, wait)
    try:
        one.put("k", "from-one", 60)
        assert two.get("k") is None
        assert two.add("k", "from-two", 60) is True
        assert one.get("k") == "from-one"
        raw = one.client
        assert raw.get(a + "k") == "from-one"
        assert raw.get(b + "k") == "from-two"
    finally:
        one.close()
        two.close()
        _cleanup(a, url)
        _cleanup(b, url)


# ----------------------------------------------------------------- Redis across processes
def _take_all(url: str, wait: int, prefix: str, keys: list[str], start, out) -> None:
    store = RedisStore(url, prefix, wait)
    start.wait(30)
    won = [key for key in keys if store.take(key) is not None]
    out.put((os.getpid(), won))
    store.close()


@needs_redis
def test_redis_take_across_processes_each_key_once(topology):
    url, wait = topology
    prefix = _prefix()
    keys = [f"code{i}" for i in range(200)]
    store = RedisStore(url, prefix, wait)
    try:
        for key in keys:
            store.put(key, "v", 60)
        ctx = multiprocessing.get_context("fork")
        start, out = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_take_all, args=(url, wait, prefix, keys, start, out)) for _ in range(2)]
        for p in procs:
            p.start()
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == 0
        assert len({pid for pid, _ in results}) == 2
        taken = Counter(key for _, won in results for key in won)
        assert set(taken) == set(keys), "some keys were taken by nobody"
        assert max(taken.values()) == 1, [k for k, n in taken.items() if n > 1]
        assert all(store.get(key) is None for key in keys)
    finally:
        store.close()
        _cleanup(prefix, url)


# ----------------------------------------------------------------- change notices (publish / watch)
class Recorder:
    """Collects what a watch delivers; waits for it with a deadline (Redis delivers from a thread)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.resets = 0
        self._cond = threading.Condition()

    def on_message(self, message: str) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def on_reset(self) -> None:
        with self._cond:
            self.resets += 1
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)


def _wait_live(watch, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not watch.live:
        assert time.monotonic() < deadline, "the watch never connected"
        time.sleep(0.005)


def test_watch_delivers_messages_published_after_it_is_live(store):
    seen = Recorder()
    watch = store.watch("changes", seen.on_message, seen.on_reset)
    _wait_live(watch)
    assert seen.resets == 1  # told once, on connecting, to drop whatever it held
    for message in ("a", "b", "c", "client-7"):
        store.publish("changes", message)
    assert seen.wait_for(lambda r: len(r.messages) == 4), seen.messages
    assert seen.messages == ["a", "b", "c", "client-7"]
    watch.stop()


def test_watch_hears_only_its_own_channel_and_every_watcher_hears_it(store):
    first, second, other = Recorder(), Recorder(), Recorder()
    watches = [store.watch("changes", first.on_message, first.on_reset),
               store.watch("changes", second.on_message, second.on_reset),
               store.watch("elsewhere", other.on_message, other.on_reset)]
    for watch in watches:
        _wait_live(watch)
    store.publish("changes", "x")
    assert first.wait_for(lambda r: r.messages == ["x"])
    assert second.wait_for(lambda r: r.messages == ["x"])
    store.publish("elsewhere", "marker")  # delivered in order: once it arrives, "x" would have too
    assert other.wait_for(lambda r: r.messages == ["marker"])
    for watch in watches:
        watch.stop()


def test_a_stopped_watch_hears_nothing_more(store):
    seen, marker = Recorder(), Recorder()
    watch = store.watch("changes", seen.on_message, seen.on_reset)
    _wait_live(watch)
    watch.stop()
    assert watch.live is False
    time.sleep(1.2 if isinstance(store, RedisStore) else 0)  # the Redis thread notices within a second
    probe = store.watch("changes", marker.on_message, marker.on_reset)
    _wait_live(probe)
    store.publish("changes", "after-stop")
    assert marker.wait_for(lambda r: r.messages == ["after-stop"])
    assert seen.messages == []
    probe.stop()


def test_publish_without_watchers_is_harmless(store):
    store.publish("nobody-listens", "x")


@needs_redis
def test_redis_watch_channels_are_isolated_by_prefix(topology):
    url, wait = topology
    a, b = _prefix(), _prefix()
    one, two = RedisStore(url, a, wait), RedisStore(url, b, wait)
    heard_one, heard_two = Recorder(), Recorder()
    try:
        w1 = one.watch("changes", heard_one.on_message, heard_one.on_reset)
        w2 = two.watch("changes", heard_two.on_message, heard_two.on_reset)
        _wait_live(w1)
        _wait_live(w2)
        one.publish("changes", "for-one")
        two.publish("changes", "for-two")
        assert heard_one.wait_for(lambda r: r.messages == ["for-one"])
        assert heard_two.wait_for(lambda r: r.messages == ["for-two"])
    finally:
        one.close()
        two.close()


def _publish_from_another_process(url: str, prefix: str, messages: list[str]) -> None:
    store = RedisStore(url, prefix)
    for message in messages:
        store.publish("changes", message)
    store.close()


@needs_redis
def test_redis_watch_hears_another_process(topology):
    url, wait = topology
    prefix = _prefix()
    store = RedisStore(url, prefix, wait)
    seen = Recorder()
    try:
        _wait_live(store.watch("changes", seen.on_message, seen.on_reset))
        proc = multiprocessing.get_context("spawn").Process(
            target=_publish_from_another_process, args=(url, prefix, ["client-a", "client-b"]))
        proc.start()
        proc.join(timeout=60)
        assert proc.exitcode == 0
        assert seen.wait_for(lambda r: r.messages == ["client-a", "client-b"]), seen.messages
    finally:
        store.close()


@needs_redis
def _servers(store: RedisStore) -> list:
    """A plain client for each server that may hold the store's subscriptions."""
    client = store.client
    if hasattr(client, "get_primaries"):  # a Cluster: a subscription lives on one of its nodes
        return [client.get_redis_connection(node) for node in client.get_primaries()]
    return [client]


def _pubsub_clients(servers) -> set:
    return {(n, c["id"]) for n, server in enumerate(servers) for c in server.client_list(_type="pubsub")}


def test_redis_watch_that_loses_its_connection_resets_and_reconnects(topology):
    url, wait = topology
    prefix = _prefix()
    store = RedisStore(url, prefix, wait)
    servers = _servers(store)
    before = _pubsub_clients(servers)
    seen = Recorder()
    try:
        watch = store.watch("changes", seen.on_message, seen.on_reset)
        _wait_live(watch)
        ours = _pubsub_clients(servers) - before
        assert ours, "the watch's subscriber connection is not listed"
        for n, client_id in ours:  # (another test's watch caught here just reconnects: the same property)
            servers[n].client_kill_filter(_id=client_id)
        # dropped: a reset (the owner empties its cache), then a new subscription and another reset
        assert seen.wait_for(lambda r: r.resets >= 3), seen.resets
        _wait_live(watch)
        store.publish("changes", "after-reconnect")
        assert seen.wait_for(lambda r: "after-reconnect" in r.messages)
    finally:
        store.close()


@needs_redis
def test_redis_watch_on_a_quiet_channel_stays_live(monkeypatch):
    # one topology is enough: the PINGs are the watch's own, the same on each
    """The liveness PINGs are answered: silence on the channel is not taken for a dead connection
    (which would empty every cache over and over)."""
    from idp.store import _RedisWatch

    monkeypatch.setattr(_RedisWatch, "PING_EVERY", 0.5)
    monkeypatch.setattr(_RedisWatch, "DEAD_AFTER", 1.5)
    store = RedisStore(REDIS_URL, _prefix())
    seen = Recorder()
    try:
        watch = store.watch("changes", seen.on_message, seen.on_reset)
        _wait_live(watch)
        time.sleep(4)  # more than twice DEAD_AFTER without a message
        assert watch.live and seen.resets == 1
    finally:
        store.close()


# ----------------------------------------------------------------- the kept read connection
@pytest.fixture(params=["redis", "sentinel"])  # (a Cluster reads per node the ordinary way)
def one_primary(request):
    """A RedisStore on one server or a Sentinel-watched primary, holding a=1."""
    if not REDIS_URL:
        pytest.skip("IDP_TEST_REDIS_URL not set")
    url, wait = _topology(request.param, request)
    prefix = _prefix()
    store = RedisStore(url, prefix, wait)
    store.put("a", "1", 60)
    yield store
    store.close()
    _cleanup(prefix, url)


def test_a_read_whose_connection_was_cut_still_answers(one_primary):
    """Reads of several keys are sent on a connection the thread keeps, without the client's
    machinery; every connection of the pool cut by the server (a restart, a failover's CLIENT
    KILL), the read is still answered, on a connection made again."""
    store = one_primary
    assert store.get_many("a", "b") == ["1", None]
    pool = store.client.connection_pool
    pooled = [*pool._available_connections, *pool._in_use_connections]
    assert pooled
    for connection in pooled:
        outside = redis.Redis(host=connection.host, port=connection.port)
        try:
            outside.client_kill_filter(_id=_client_id(connection))
        finally:
            outside.close()
    assert store.get_many("a", "b") == ["1", None]
    assert store.get_many("b", "a") == [None, "1"]
    assert len(pool._in_use_connections) == 1  # this thread's, kept


def test_a_read_whose_connection_fails_midway_goes_the_ordinary_way(one_primary, monkeypatch):
    """The kept connection fails after the command was sent (the server gone between the two): it
    is given back, and the read is made again the ordinary way."""
    failures = []
    real_read = redis.connection.AbstractConnection.read_response

    def fails_once(self, *args, **kwargs):
        if not failures:
            failures.append(self)
            self.disconnect()
            raise redis.ConnectionError("the server went away")
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "read_response", fails_once)
    assert one_primary.get_many("a", "b") == ["1", None]
    assert len(failures) == 1 and not one_primary.client.connection_pool._in_use_connections  # (given back)


def test_a_thread_that_ends_gives_its_read_connection_back(one_primary):
    """Each thread keeps a connection for its reads; the server's threads come and go (granian
    retires idle ones), so a thread's connection goes back to the pool when the thread ends."""
    import gc

    pool = one_primary.client.connection_pool
    for _round in range(3):
        threads = [threading.Thread(target=lambda: one_primary.get_many("a", "b")) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        gc.collect()
        assert not pool._in_use_connections
    assert one_primary.get_many("a") == ["1"]
    assert len(pool._in_use_connections) == 1  # this thread's, kept


def test_a_kept_read_connection_that_was_disconnected_is_not_reconnected_by_itself(one_primary, monkeypatch):
    """redis-py disconnects a connection on any error; the next read must take one the pool
    lends (for Sentinel: through the Sentinels), not let the kept one reconnect on its own."""
    assert one_primary.get_many("a") == ["1"]
    kept = one_primary._reads.kept.connection
    kept.disconnect()
    connects = []
    real_connect = type(kept).connect_check_health
    monkeypatch.setattr(type(kept), "connect_check_health",
                        lambda self, *a, **k: (connects.append(self), real_connect(self, *a, **k))[1])
    assert one_primary.get_many("a") == ["1"]
    assert kept not in connects and one_primary._reads.kept.connection is not kept


def _client_id(connection) -> int:
    connection.send_command("CLIENT", "ID")
    return int(connection.read_response())
